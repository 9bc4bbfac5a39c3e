"""The limited child process that compiles templates: a crash, a memory or CPU hog and a
hang each come back as ``Failed`` — the server process goes on."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from enclave.messaging import isolation


class Expected(Exception):
    pass


def _segfault():
    ctypes.string_at(0)  # reads address 0: SIGSEGV in native code


def _allocate():
    return len(bytearray(4 << 30))


def _spin():
    while True:
        pass


def _sleep():
    time.sleep(60)


def _pid():
    return os.getpid()


def _refuse():
    raise Expected("field", "a clear message")


class TestRun:
    def test_the_result_comes_back(self):
        assert isolation.run(lambda a, b: {"sum": a + b}, 2, 3, expected=Expected) == {
            "sum": 5}

    def test_it_runs_in_another_process(self):
        assert isolation.run(_pid, expected=Expected) != os.getpid()

    def test_an_expected_exception_is_raised_again_with_its_args(self):
        with pytest.raises(Expected) as caught:
            isolation.run(_refuse, expected=Expected)
        assert caught.value.args == ("field", "a clear message")

    def test_a_segfault_is_a_failure_not_a_dead_server(self):
        with pytest.raises(isolation.Failed):
            isolation.run(_segfault, expected=Expected)

    def test_memory_past_the_limit_is_a_failure(self):
        with pytest.raises(isolation.Failed):
            isolation.run(_allocate, expected=Expected)

    def test_cpu_past_the_limit_is_a_failure(self, monkeypatch):
        monkeypatch.setattr(isolation, "CPU_SECONDS", 1)
        started = time.monotonic()
        with pytest.raises(isolation.Failed):
            isolation.run(_spin, expected=Expected)
        assert time.monotonic() - started < 10

    def test_a_hang_is_killed_at_the_deadline(self, monkeypatch):
        monkeypatch.setattr(isolation, "WALL_SECONDS", 0.5)
        started = time.monotonic()
        with pytest.raises(isolation.Failed):
            isolation.run(_sleep, expected=Expected)
        assert time.monotonic() - started < 5


def _is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_the_child_holds_none_of_the_parents_files(tmp_path):
    with (tmp_path / "held").open("w") as held:
        assert isolation.run(_is_open, held.fileno(), expected=Expected) is False
