"""The progress line: throttled, bytes / total / rate, one redrawn line on a terminal."""

from __future__ import annotations

import io

from enclave.backups.progress import ProgressLine


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgressLine:
    def test_updates_at_most_four_times_a_second(self):
        clock, out = FakeClock(), io.StringIO()
        line = ProgressLine(out, clock=clock)
        for i in range(1, 1001):  # 1000 updates over one second
            line("verify", i * 1024, 1000 * 1024)
            clock.now += 0.001
        line.close()
        assert 4 <= line.updates <= 6
        assert out.getvalue().splitlines()[-1].startswith("verify: 1000.0 KiB / 1000.0 KiB (100%)")

    def test_shows_rate_and_no_percentage_when_total_unknown(self):
        clock, out = FakeClock(), io.StringIO()
        line = ProgressLine(out, clock=clock)
        line("backup", 0, None)
        clock.now += 2
        line("backup", 4 * 1024 * 1024, None)
        line.close()
        assert out.getvalue().splitlines()[-1] == "backup: 4.0 MiB 2.0 MiB/s"

    def test_terminal_redraws_one_line_per_phase(self):
        clock, out = FakeClock(), Terminal()
        line = ProgressLine(out, clock=clock)
        for phase in ("verify", "restore"):
            for i in range(3):
                line(phase, i, 2)
                clock.now += 1
        line.close()
        text = out.getvalue()
        assert text.count("\n") == 2
        assert text.count("\r") == 6
        assert "\x1b[K" in text
