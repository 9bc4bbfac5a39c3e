"""The encrypted backup format: authenticated chunks plus an authenticated manifest.

``data.enc`` = MAGIC, then records ``length (4 bytes, big-endian) || nonce (12) ||
ciphertext+tag``. Each chunk holds at most :data:`CHUNK_SIZE` plaintext bytes and is sealed
with AES-256-GCM under the backup's own data key; the associated data names the backup id,
the chunk index and whether it is the final chunk, so a chunk moved to another backup or
position, a dropped chunk and a truncated stream are all detected. The last chunk is always
flagged final (it may be empty). Memory use is one chunk, whatever the database size.

``manifest.json`` = a readable header (id, created_at, environment, key id) and the full
manifest sealed under the same key with the canonical header as associated data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.backups.errors import BackupCorrupt

MAGIC = b"ENCLAVE-BACKUP-1\n"
CHUNK_SIZE = 1024 * 1024
NONCE = 12
TAG = 16
FORMAT = 1


def _chunk_aad(backup_id: str, index: int, final: bool) -> bytes:
    return b"enclave-backup-chunk\0" + backup_id.encode() + b"\0" + struct.pack(
        ">QB", index, 1 if final else 0)


class ChunkWriter:
    """Encrypts a plaintext stream into ``sink`` chunk by chunk. Call :meth:`close` once."""

    def __init__(self, sink: Callable[[bytes], None], key: bytes, backup_id: str) -> None:
        self._sink = sink
        self._aead = AESGCM(key)
        self._id = backup_id
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self.index = 0
        self.plaintext_bytes = 0
        self.stored_bytes = 0
        self._emit(MAGIC)

    def _emit(self, data: bytes) -> None:
        self._sink(data)
        self.stored_bytes += len(data)

    def _seal(self, plaintext, final: bool) -> None:
        nonce = os.urandom(NONCE)
        sealed = self._aead.encrypt(nonce, plaintext, _chunk_aad(self._id, self.index, final))
        # Two writes rather than one concatenation: no copy of the (1 MiB) sealed chunk.
        self._emit(struct.pack(">I", NONCE + len(sealed)) + nonce)
        self._emit(sealed)
        self.index += 1

    def write(self, data) -> None:
        """Take any bytes-like ``data``; it is not kept after the call returns."""
        self._digest.update(data)
        self.plaintext_bytes += len(data)
        view = memoryview(data)
        if self._buffer:
            need = CHUNK_SIZE - len(self._buffer)
            self._buffer += view[:need]
            view = view[need:]
            if len(self._buffer) < CHUNK_SIZE:
                return
            self._seal(self._buffer, final=False)
            self._buffer.clear()
        # Whole chunks are sealed straight from the caller's buffer (no copy).
        while len(view) >= CHUNK_SIZE:
            self._seal(view[:CHUNK_SIZE], final=False)
            view = view[CHUNK_SIZE:]
        self._buffer += view

    def close(self) -> None:
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def iter_plaintext(stream: BinaryIO, key: bytes, backup_id: str,
                   out: bytearray | None = None) -> Iterator[bytes | memoryview]:
    """Yield the plaintext chunk by chunk, each authenticated before it is yielded.

    With ``out`` (a buffer of at least CHUNK_SIZE bytes) every chunk is decrypted into it
    and yielded as a view of it, valid only until the next chunk: a streaming pass that
    reuses one buffer. Raises BackupCorrupt naming the chunk: altered, reordered, from
    another backup, truncated, missing its final chunk, or followed by extra bytes.
    """
    if _read_exact(stream, len(MAGIC)) != MAGIC:
        raise BackupCorrupt(f"backup {backup_id}: data is not an Enclave backup (bad header)")
    aead = AESGCM(key)
    target = None if out is None else memoryview(out)
    index = 0
    while True:
        head = _read_exact(stream, 4)
        if len(head) < 4:
            raise BackupCorrupt(f"backup {backup_id}: truncated before chunk {index} "
                                "(final chunk missing)")
        (length,) = struct.unpack(">I", head)
        if not NONCE + TAG <= length <= NONCE + CHUNK_SIZE + TAG:
            raise BackupCorrupt(f"backup {backup_id}: chunk {index} has an invalid length")
        record = _read_exact(stream, length)
        if len(record) < length:
            raise BackupCorrupt(f"backup {backup_id}: chunk {index} is truncated")
        view = memoryview(record)
        nonce, sealed = view[:NONCE], view[NONCE:]
        for final in (False, True):
            aad = _chunk_aad(backup_id, index, final)
            try:
                if target is None:
                    plaintext = aead.decrypt(nonce, sealed, aad)
                else:
                    plaintext = target[:len(sealed) - TAG]
                    aead.decrypt_into(nonce, sealed, aad, plaintext)
                break
            except InvalidTag:
                continue
        else:
            raise BackupCorrupt(f"backup {backup_id}: chunk {index} failed authentication "
                                "(altered, reordered or wrong key)")
        yield plaintext
        index += 1
        if final:
            if stream.read(1):
                raise BackupCorrupt(f"backup {backup_id}: unexpected data after final chunk "
                                    f"{index - 1}")
            return


def verify_stream(stream: BinaryIO, key: bytes, backup_id: str) -> tuple[int, str, int]:
    """Authenticate every chunk; return (plaintext bytes, sha256 hex, chunk count)."""
    digest, size, count = hashlib.sha256(), 0, 0
    for plaintext in iter_plaintext(stream, key, backup_id, out=bytearray(CHUNK_SIZE)):
        digest.update(plaintext)
        size += len(plaintext)
        count += 1
    return size, digest.hexdigest(), count


def _canonical(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def seal_manifest(header: dict, body: dict, key: bytes) -> bytes:
    """The manifest object: readable ``header``, ``body`` sealed with the header as AAD."""
    nonce = os.urandom(NONCE)
    sealed = AESGCM(key).encrypt(nonce, _canonical(body),
                                 b"enclave-backup-manifest\0" + _canonical(header))
    return json.dumps({"format": FORMAT, "header": header,
                       "sealed": base64.b64encode(nonce + sealed).decode()}).encode()


def read_header(raw: bytes, backup_id: str) -> dict:
    """The unauthenticated header (for listing and finding the key). Raises BackupCorrupt."""
    try:
        doc = json.loads(raw)
        header = doc["header"]
        if doc.get("format") != FORMAT or header.get("id") != backup_id:
            raise ValueError
        base64.b64decode(doc["sealed"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupCorrupt(f"backup {backup_id}: manifest is malformed") from None
    return header


def open_manifest(raw: bytes, key: bytes, backup_id: str) -> dict:
    """Authenticate the manifest and return header and body merged. Raises BackupCorrupt."""
    header = read_header(raw, backup_id)
    blob = base64.b64decode(json.loads(raw)["sealed"])
    try:
        body = AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:],
                                   b"enclave-backup-manifest\0" + _canonical(header))
    except (InvalidTag, ValueError):
        raise BackupCorrupt(f"backup {backup_id}: manifest failed authentication "
                            "(altered or wrong key)") from None
    return {**json.loads(body), **header}
