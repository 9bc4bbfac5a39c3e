"""The encrypted chunk format on its own: round trip, tamper, truncation, wrong key."""

from __future__ import annotations

import hashlib
import io
import os
import struct

import pytest

from enclave.backups import container
from enclave.backups.errors import BackupCorrupt

KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(container, "CHUNK_SIZE", 64)


def seal(data: bytes, key: bytes = KEY, backup_id: str = "b1") -> bytes:
    out = io.BytesIO()
    writer = container.ChunkWriter(out.write, key, backup_id)
    for start in range(0, len(data), 50):
        writer.write(data[start:start + 50])
    writer.close()
    return out.getvalue()


def records(blob: bytes) -> list[bytes]:
    pos, out = len(container.MAGIC), []
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        out.append(blob[pos:pos + 4 + length])
        pos += 4 + length
    return out


def opened(blob: bytes, key: bytes = KEY, backup_id: str = "b1") -> bytes:
    return b"".join(container.iter_plaintext(io.BytesIO(blob), key, backup_id))


class TestChunks:
    def test_round_trip_returns_identical_bytes(self):
        data = os.urandom(1000)
        assert opened(seal(data)) == data

    def test_writes_from_a_reused_buffer_round_trip(self):
        data = os.urandom(1000)
        out, buffer = io.BytesIO(), bytearray(256)
        writer = container.ChunkWriter(out.write, KEY, "b1")
        pos = 0
        for size in (192, 10, 200, 1, 64, 256, 256, 21):  # whole chunks and odd pieces
            buffer[:size] = data[pos:pos + size]
            writer.write(memoryview(buffer)[:size])
            buffer[:] = bytes(256)  # the writer must not have kept the caller's buffer
            pos += size
        writer.close()
        assert opened(out.getvalue()) == data

    def test_verify_stream_reports_size_digest_and_chunks(self):
        data = os.urandom(1000)
        size, digest, chunks = container.verify_stream(io.BytesIO(seal(data)), KEY, "b1")
        assert (size, digest, chunks) == (1000, hashlib.sha256(data).hexdigest(), 16)

    def test_round_trip_empty_stream(self):
        assert opened(seal(b"")) == b""

    def test_flipped_byte_names_the_chunk(self):
        blob = bytearray(seal(os.urandom(300)))
        third = records(bytes(blob))[2]
        offset = bytes(blob).index(third) + 30
        blob[offset] ^= 1
        with pytest.raises(BackupCorrupt, match="chunk 2 failed authentication"):
            opened(bytes(blob))

    def test_truncation_at_chunk_boundary_is_detected(self):
        blob = seal(os.urandom(300))
        last = records(blob)[-1]
        with pytest.raises(BackupCorrupt, match="final chunk missing"):
            opened(blob[: len(blob) - len(last)])

    def test_truncation_inside_chunk_is_detected(self):
        blob = seal(os.urandom(300))
        with pytest.raises(BackupCorrupt, match="truncated"):
            opened(blob[:-5])

    def test_reordered_chunks_are_refused(self):
        blob = seal(os.urandom(300))
        parts = records(blob)
        parts[0], parts[1] = parts[1], parts[0]
        with pytest.raises(BackupCorrupt, match="chunk 0"):
            opened(container.MAGIC + b"".join(parts))

    def test_chunk_from_another_backup_is_refused(self):
        with pytest.raises(BackupCorrupt, match="chunk 0"):
            opened(seal(b"x" * 100, backup_id="other"))

    def test_wrong_key_is_refused(self):
        with pytest.raises(BackupCorrupt, match="chunk 0 failed authentication"):
            opened(seal(b"secret rows"), key=bytes(32))

    def test_trailing_bytes_are_refused(self):
        with pytest.raises(BackupCorrupt, match="after final chunk"):
            opened(seal(b"rows") + b"extra")


class TestManifest:
    header = {"id": "b1", "environment": "test", "created_at": "2026-01-01T00:00:00+00:00"}

    def test_round_trip_merges_header_and_body(self):
        raw = container.seal_manifest(self.header, {"row_counts": {"t": 3}}, KEY)
        assert container.open_manifest(raw, KEY, "b1")["row_counts"] == {"t": 3}

    def test_altered_header_is_refused(self):
        raw = container.seal_manifest(self.header, {"row_counts": {}}, KEY)
        with pytest.raises(BackupCorrupt, match="manifest failed authentication"):
            container.open_manifest(raw.replace(b'"test"', b'"prod"'), KEY, "b1")

    def test_wrong_key_is_refused(self):
        raw = container.seal_manifest(self.header, {}, KEY)
        with pytest.raises(BackupCorrupt, match="manifest failed authentication"):
            container.open_manifest(raw, bytes(32), "b1")

    def test_garbage_is_malformed(self):
        with pytest.raises(BackupCorrupt, match="malformed"):
            container.open_manifest(b"{not json", KEY, "b1")
