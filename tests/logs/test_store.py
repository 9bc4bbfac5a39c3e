"""The encrypted store: round trip, tamper evidence, retention with the clock, processes."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import stat

import pytest

from enclave.core import clock
from enclave.logs.services import MemoryLogKeys
from enclave.logs.store import MARKER, TRAILER, LogStore, segment_name

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def mem_store(tmp_path):
    return LogStore(tmp_path / "logs", MemoryLogKeys())


def fill(store: LogStore, hours: int, per_hour: int = 3) -> None:
    """One segment per hour (the default roll), ``per_hour`` frames in each."""
    for hour in range(hours):
        for i in range(per_hour):
            store.append([f'{{"event": "r{hour}-{i}"}}'])
        clock.advance(dt.timedelta(hours=1))


def flip_byte(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


class TestRoundTrip:
    def test_records_come_back_in_order(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 2)
        events = [r["event"] for r in mem_store.records() if "marker" not in r]
        assert events == ["r0-0", "r0-1", "r0-2", "r1-0", "r1-1", "r1-2"]

    def test_files_hold_no_plaintext_and_are_private(self, mem_store):
        mem_store.append(['{"event": "visible-marker-text"}'])
        (_, path), = mem_store.segments()
        raw = path.read_bytes()
        assert b"visible-marker-text" not in raw
        assert MARKER.encode() not in raw
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(mem_store.directory.stat().st_mode) == 0o700

    def test_segment_rolls_by_size(self, tmp_path):
        store = LogStore(tmp_path / "logs", MemoryLogKeys(), max_bytes=2048)
        for i in range(20):
            store.append([f'{{"event": "{"x" * 200}{i}"}}'])
        assert len(store.segments()) > 2
        assert store.verify().ok

    def test_segments_from_another_key_do_not_decrypt(self, mem_store, tmp_path):
        mem_store.append(['{"event": "a"}'])
        other = LogStore(mem_store.directory, MemoryLogKeys())
        errors: list[str] = []
        assert list(other.records(errors=errors)) == []
        assert errors == [f"{segment_name(1)}: segment key cannot be unwrapped (InvalidTag)"]


class TestTamperEvidence:
    def test_flipped_byte_is_reported_naming_the_segment(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        _, path = mem_store.segments()[1]
        flip_byte(path, path.stat().st_size - 60)
        report = mem_store.verify()
        assert not report.ok
        assert report.errors[0].startswith(f"{segment_name(2)}: frame 3")

    def test_flipped_header_byte_is_reported(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 2)
        _, path = mem_store.segments()[0]
        flip_byte(path, 40)
        assert mem_store.verify().errors[0].startswith(segment_name(1))

    def test_deleted_middle_segment_is_detected(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        mem_store.path(2).unlink()
        errors = mem_store.verify().errors
        assert errors == [f"{segment_name(3)}: previous segment(s) missing: {segment_name(2)}"]

    def test_deleted_newest_segment_is_detected(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        mem_store.path(3).unlink()
        assert mem_store.verify().errors == [
            f"{segment_name(3)}: the newest segment is missing (deleted)"]

    def test_reordered_segments_are_detected(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        one, two = mem_store.path(1), mem_store.path(2)
        data_one, data_two = one.read_bytes(), two.read_bytes()
        one.write_bytes(data_two)
        two.write_bytes(data_one)
        errors = mem_store.verify().errors
        assert any(e.startswith(segment_name(1)) and "renamed or reordered" in e for e in errors)

    def test_writing_goes_on_after_the_newest_segment_is_corrupted(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 2)
            newest = mem_store.path(2)
            newest.write_bytes(newest.read_bytes()[:-7])  # torn tail
            mem_store.append(['{"event": "after corruption"}'])
        events = [r["event"] for r in mem_store.records(errors=[])]
        assert "after corruption" in events
        assert "r0-0" in events
        errors = mem_store.verify().errors
        assert any(e.startswith(segment_name(2)) for e in errors)
        assert (f"{segment_name(3)}: started after a broken or missing segment "
                f"({segment_name(2)}: tail frame is corrupt)") in errors


def cut_last_frame(path) -> None:
    """Truncate a segment by its last whole frame (the trailer says how long it is)."""
    data = path.read_bytes()
    _chain, _index, length = TRAILER.unpack(data[-TRAILER.size:])
    path.write_bytes(data[:-length])


def frames_in(store: LogStore, seq: int) -> int:
    return len(store.read_segment(store.path(seq), newest=True).frames)


class TestNewestFrames:
    """The head seal accounts for the newest frames: removing them is reported, a crash
    that leaves the seal behind is not."""

    def test_untouched_store_verifies(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        report = mem_store.verify()
        assert (report.ok, report.segments, report.frames) == (True, 3, 12)

    def test_tail_cut_by_one_frame_is_reported_naming_the_segment(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        cut_last_frame(mem_store.path(3))
        assert mem_store.verify().errors == [
            f"{segment_name(3)}: 1 newest frame(s) missing (truncated): the head seal "
            "records 4 frame(s), the segment holds 3"]

    def test_tail_cut_stays_reported_after_later_writes(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 1)
            cut_last_frame(mem_store.path(1))
            LogStore(mem_store.directory, mem_store.keys).append(['{"event": "later"}'])
        assert mem_store.verify().errors == [
            f"{segment_name(2)}: started after a broken or missing segment ({segment_name(1)}"
            ": 1 newest frame(s) missing (truncated): the head seal records 4 frame(s), the "
            "segment holds 3)"]

    def test_only_segment_cut_to_its_header_is_reported(self, mem_store):
        mem_store.append(['{"event": "a"}'])
        path = mem_store.path(1)
        cut_last_frame(path)
        cut_last_frame(path)
        assert mem_store.verify().errors == [
            f"{segment_name(1)}: 2 newest frame(s) missing (truncated): the head seal "
            "records 2 frame(s), the segment holds 0"]

    def test_deleted_newest_segment_with_its_head_is_reported(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        mem_store.path(3).unlink()
        (mem_store.directory / "head").unlink()
        assert mem_store.verify().errors == [
            f"{segment_name(3)}: the newest segment is missing (deleted)",
            "head: missing (deleted): the newest frames cannot be checked"]

    def test_deleted_newest_segment_head_and_seal_are_reported(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
        for name in (segment_name(3), "head", "seal"):
            (mem_store.directory / name).unlink()
        assert mem_store.verify().errors == [
            "head: missing (deleted): the newest frames cannot be checked"]

    def test_deleted_seal_is_reported(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 2)
        (mem_store.directory / "seal").unlink()
        assert mem_store.verify().errors == [
            "seal: missing (deleted): the newest frames cannot be checked"]

    def test_seal_of_another_store_is_reported(self, mem_store, tmp_path):
        mem_store.append(['{"event": "a"}'])
        other = LogStore(tmp_path / "other", mem_store.keys)
        other.append(['{"event": "b"}'])
        (mem_store.directory / "seal").write_bytes((other.directory / "seal").read_bytes())
        assert mem_store.verify().errors == [
            f"seal: MAC check failed for {segment_name(1)} (altered or replaced)"]

    def test_crash_before_the_seal_was_updated_verifies(self, mem_store):
        with clock.frozen(T0):
            for i in range(3):
                mem_store.append([f'{{"event": "{i}"}}'])
            seal = (mem_store.directory / "seal").read_bytes()
            mem_store.append(['{"event": "written, then the process died"}'])
            (mem_store.directory / "seal").write_bytes(seal)  # as the crash left it
        assert mem_store.verify().ok
        assert frames_in(mem_store, 1) == 5

    def test_writer_after_a_crash_before_the_seal_continues_the_segment(self, mem_store):
        with clock.frozen(T0):
            for i in range(3):
                mem_store.append([f'{{"event": "{i}"}}'])
            seal = (mem_store.directory / "seal").read_bytes()
            mem_store.append(['{"event": "written, then the process died"}'])
            (mem_store.directory / "seal").write_bytes(seal)
            LogStore(mem_store.directory, mem_store.keys).append(['{"event": "restarted"}'])
        assert [seq for seq, _ in mem_store.segments()] == [1]
        assert mem_store.verify().ok

    def test_crash_between_a_new_segments_head_and_seal_verifies(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 1)
            seal = (mem_store.directory / "seal").read_bytes()
            mem_store.append(['{"event": "first in segment 2"}'])  # rolls (one hour later)
            (mem_store.directory / "seal").write_bytes(seal)  # still naming segment 1
            assert mem_store.verify().ok
            LogStore(mem_store.directory, mem_store.keys).append(['{"event": "restarted"}'])
        assert [seq for seq, _ in mem_store.segments()] == [1, 2]
        assert mem_store.verify().ok

    def test_crash_before_the_first_seal_of_a_new_store_verifies(self, mem_store):
        mem_store.append(['{"event": "a"}'])
        path = mem_store.path(1)
        header = path.read_bytes()[:mem_store.read_segment(path).header.size]
        path.write_bytes(header)  # the head was written, nothing after it
        (mem_store.directory / "seal").unlink()
        assert mem_store.verify().ok
        LogStore(mem_store.directory, mem_store.keys).append(['{"event": "restarted"}'])
        assert [seq for seq, _ in mem_store.segments()] == [1]
        assert mem_store.verify().ok

    def test_store_written_before_seals_existed_verifies(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 2)
        (mem_store.directory / "seal").unlink()
        mem_store._write_signed("head", {"seq": 2})  # the head format without a seal
        assert mem_store.verify().ok

    def test_store_written_before_seals_existed_is_sealed_by_its_next_append(self, mem_store):
        with clock.frozen(T0):
            for i in range(3):
                mem_store.append([f'{{"event": "{i}"}}'])
            (mem_store.directory / "seal").unlink()
            mem_store._write_signed("head", {"seq": 1})
            LogStore(mem_store.directory, mem_store.keys).append(['{"event": "upgraded"}'])
        (mem_store.directory / "seal").unlink()
        assert mem_store.verify().errors == [
            "seal: missing (deleted): the newest frames cannot be checked"]


class TestRetention:
    def test_120_days_keep_only_the_retention_window_and_the_chain_verifies(self, mem_store):
        with clock.frozen(T0):
            for _day in range(120):
                mem_store.append(['{"event": "daily"}'])
                clock.advance(dt.timedelta(days=1))
                removed = mem_store.expunge(clock.now() - dt.timedelta(days=90))
                assert len(removed) <= 1
            ends = mem_store.segment_ends()
            assert all(end > clock.now() - dt.timedelta(days=90) for _, _, end in ends)
            assert len(ends) == 90
            assert mem_store.verify().ok
            assert mem_store.anchor()["next_seq"] == 31

    def test_expunging_every_segment_keeps_the_chain_for_the_next_write(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 2)
            clock.advance(dt.timedelta(days=100))
            assert len(mem_store.expunge(clock.now() - dt.timedelta(days=90))) == 2
            mem_store.append(['{"event": "fresh"}'])
            assert [seq for seq, _ in mem_store.segments()] == [3]
            assert mem_store.verify().ok

    def test_a_forged_anchor_is_reported(self, mem_store):
        with clock.frozen(T0):
            fill(mem_store, 3)
            assert mem_store.expunge(T0 + dt.timedelta(minutes=90)) == [segment_name(1)]
        anchor = mem_store.directory / "anchor"
        anchor.write_text(anchor.read_text().replace('"next_seq": 2', '"next_seq": 1'))
        assert "anchor: MAC check failed (altered)" in mem_store.verify().errors


def _writer(directory, keys, worker: int) -> None:
    store = LogStore(directory, keys)
    for i in range(25):
        store.append([f'{{"event": "w{worker}-{i}"}}'])


class TestConcurrentProcesses:
    def test_processes_appending_at_once_keep_one_intact_chain(self, mem_store):
        mem_store.ensure_directory()
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_writer, args=(mem_store.directory, mem_store.keys, w))
                 for w in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        events = {r["event"] for r in mem_store.records() if "marker" not in r}
        assert len(events) == 100
        report = mem_store.verify()
        assert report.ok, report.errors
