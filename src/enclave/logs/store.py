"""The encrypted, hash-chained log store: segment files under ``var/logs`` (0700).

Layout of a segment file ``segment-<seq>.elog`` (0600)::

    b"ENCLOG1\\n" u32 header-length  header (JSON: seq, id, created_at, roll_seconds, prev,
                                     wrapped segment key, key version)
    frame*  :=  b"FR" u32 index u32 blob-length  blob  chain(32) u32 index u32 frame-length

* Each segment has its own random 32-byte key, wrapped by the keyring (purpose ``logs``).
  HKDF derives an AES-256-GCM key and an HMAC key from it.
* A frame holds a batch of redacted JSON records, encrypted with AAD
  ``enclave-logs|<segment id>|<frame index>``: a frame moved to another place fails to decrypt.
* ``chain_0 = HMAC(header)``, ``chain_i = HMAC(chain_{i-1} || frame head || blob)``: any
  flipped byte, dropped or reordered frame breaks the chain. The next segment's header
  carries the previous segment's final chain value (``prev``), so a deleted, replaced or
  reordered segment is detected, and named. ``head`` (newest segment) and ``anchor``
  (where the chain starts after retention expunged older segments) are MAC'd by the keyring.
* The head's per-append part, ``seal`` (fixed size, rewritten in place by every
  :meth:`LogStore.append` under the lock), authenticates the newest segment's id, its
  frame count and the chain value after its last frame, MAC'd with a key derived from that
  segment's key. A chain only proves that what is there is intact; the seal proves that
  nothing was cut off the end: a truncated tail or a deleted newest segment is reported.
  Frames *beyond* the seal (a crash between writing a frame and the seal) are accepted:
  the chain authenticates them. A writer that finds frames missing below the seal does not
  continue the chain; it starts a new segment marked ``prev_broken`` with the reason.

Concurrency: every process (gunicorn workers, the Celery worker, the CLI) appends to the
*same* newest segment, one whole frame per ``write(2)`` on an ``O_APPEND`` descriptor,
under an exclusive ``flock`` on ``var/logs/.lock``. One lock keeps one global chain (a
per-process file would leave chains whose last segment could vanish unnoticed); writes
are batched, so the lock is taken once per frame, not per record.

Corruption never stops writing: a writer that finds the newest segment's tail unreadable
starts a new segment (marked ``prev_broken``) and ``verify`` reports the broken one.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enclave.core import clock
from enclave.logs.services import LogKeys

MAGIC = b"ENCLOG1\n"
FRAME_HEAD = struct.Struct(">2sII")  # b"FR", index, blob length
TRAILER = struct.Struct(">32sII")  # chain, index, whole frame length
SEAL = struct.Struct(">8sQ16sQ32s")  # magic, segment seq, segment id, frames, chain
SEAL_MAGIC = b"ENCSEAL1"
SEAL_SIZE = SEAL.size + 32  # + HMAC-SHA256 tag
ZERO = "0" * 64
MARKER = "enclave-log-store-plaintext-marker"  # written in clear into every new segment
SEGMENT_RE = re.compile(r"^segment-(\d{10})\.elog$")
DEFAULT_ROLL_SECONDS = 3600
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
MAX_HEADER = 64 * 1024


class SegmentError(Exception):
    """A segment is unreadable or fails its chain; ``str()`` names the segment."""

    def __init__(self, name: str, message: str) -> None:
        self.segment = name
        super().__init__(f"{name}: {message}")


def segment_name(seq: int) -> str:
    return f"segment-{seq:010d}.elog"


@dataclass
class SegmentKeys:
    aead: AESGCM
    chain_key: bytes
    seal_key: bytes


def _derive(segment_key: bytes) -> SegmentKeys:
    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
            segment_key)

    return SegmentKeys(AESGCM(hkdf(b"enclave-logs/aead")), hkdf(b"enclave-logs/chain"),
                       hkdf(b"enclave-logs/seal"))


def _mac(key: bytes, *parts: bytes) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        h.update(part)
    return h.digest()


def frame_aad(segment_id: str, index: int) -> bytes:
    return f"enclave-logs|{segment_id}|{index}".encode()


def key_aad(segment_id: str, seq: int) -> bytes:
    return f"enclave-logs-segment|{segment_id}|{seq}".encode()


@dataclass
class Header:
    seq: int
    id: str
    created_at: dt.datetime
    roll_seconds: int
    prev: str
    wrapped_key: bytes
    key_version: str
    prev_broken: bool = False
    broken_reason: str = ""  # why the previous segment was not continued (for verify)
    raw: bytes = b""
    size: int = 0  # bytes up to the first frame

    def to_bytes(self) -> bytes:
        body = {
            "v": 1, "seq": self.seq, "id": self.id, "created_at": self.created_at.isoformat(),
            "roll_seconds": self.roll_seconds, "prev": self.prev,
            "prev_broken": self.prev_broken, "key_version": self.key_version,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
        }
        if self.broken_reason:
            body["broken_reason"] = self.broken_reason
        data = json.dumps(body, sort_keys=True).encode()
        return MAGIC + struct.pack(">I", len(data)) + data

    @property
    def ends_by(self) -> dt.datetime:
        return self.created_at + dt.timedelta(seconds=self.roll_seconds)


def parse_header(name: str, data: bytes) -> Header:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise SegmentError(name, "not a log segment (bad magic)")
    (length,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    if length > MAX_HEADER or len(data) < len(MAGIC) + 4 + length:
        raise SegmentError(name, "header is truncated or corrupt")
    raw = data[:len(MAGIC) + 4 + length]
    try:
        body = json.loads(raw[len(MAGIC) + 4:])
        return Header(
            seq=int(body["seq"]), id=str(body["id"]),
            created_at=dt.datetime.fromisoformat(body["created_at"]),
            roll_seconds=int(body["roll_seconds"]), prev=str(body["prev"]),
            wrapped_key=base64.b64decode(body["wrapped_key"], validate=True),
            key_version=str(body.get("key_version", "")),
            prev_broken=bool(body.get("prev_broken", False)),
            broken_reason=str(body.get("broken_reason", "")), raw=raw, size=len(raw))
    except (ValueError, KeyError, TypeError):
        raise SegmentError(name, "header is corrupt") from None


@dataclass
class Segment:
    """A decoded segment: its header, frames (index, records) and final chain value."""

    name: str
    header: Header
    frames: list[tuple[int, list[str]]] = field(default_factory=list)
    final: str = ZERO
    complete: bool = True  # False when the newest segment ends in a frame being written
    chains: list[bytes] = field(default_factory=list)  # [k]: the chain value after k frames


@dataclass
class VerifyReport:
    segments: int = 0
    frames: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Tail:
    seq: int
    size: int
    inode: int
    index: int  # next frame index
    chain: bytes


@dataclass(frozen=True)
class Seal:
    """The head's per-append part: segment ``seq`` (with id ``segment_id``) held ``frames``
    frames, the last ending in chain value ``chain``. ``tag`` is checked with that
    segment's keys (:meth:`LogStore._seal_authentic`)."""

    seq: int
    segment_id: bytes
    frames: int
    chain: bytes
    tag: bytes = b""

    def body(self) -> bytes:
        return SEAL.pack(SEAL_MAGIC, self.seq, self.segment_id, self.frames, self.chain)

    @classmethod
    def parse(cls, data: bytes) -> Seal | None:
        """None when ``data`` is not a seal (wrong size or magic)."""
        if len(data) != SEAL_SIZE:
            return None
        magic, seq, segment_id, frames, chain = SEAL.unpack_from(data)
        if magic != SEAL_MAGIC:
            return None
        return cls(seq, segment_id, frames, chain, data[SEAL.size:])


def _seal_tag(keys: SegmentKeys, body: bytes) -> bytes:
    return _mac(keys.seal_key, b"enclave-logs/seal|", body)


def _segment_id_bytes(header: Header) -> bytes:
    try:
        raw = bytes.fromhex(header.id)  # uuid4().hex
    except ValueError:
        raw = b""
    return raw if len(raw) == 16 else b"\0" * 16  # not written by us: the seal won't match


_INVALID_SEAL = Seal(0, b"", 0, b"")  # a seal file that is there but is not a seal


class LogStore:
    """Append, read, verify and expunge the segments in ``directory``."""

    def __init__(self, directory: Path, keys: LogKeys, *, roll_seconds: int = DEFAULT_ROLL_SECONDS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.keys = keys
        self.roll_seconds = roll_seconds
        self.max_bytes = max_bytes
        self._segment_keys: dict[tuple[int, str], SegmentKeys] = {}
        self._tail: _Tail | None = None
        self._header: Header | None = None
        self._header_inode = 0
        # The writer's copy of the MAC-checked head, with the stat of the file it was read
        # from: a replaced or rewritten head changes inode, size, mtime or ctime.
        self._head_seen: tuple[tuple[int, int, int, int], dict] | None = None
        self._unsealed_head = False  # the head predates seals: mark it after the next seal
        self._directory_ready = False

    # -- files ---------------------------------------------------------------------------
    def ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory.chmod(0o700)

    def path(self, seq: int) -> Path:
        return self.directory / segment_name(seq)

    def segments(self) -> list[tuple[int, Path]]:
        """(seq, path) of every segment file, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in os.scandir(self.directory):
            match = SEGMENT_RE.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
        return sorted(found)

    @contextlib.contextmanager
    def _locked(self, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
        # The directory is created (0700) on first use, again whenever a segment is
        # created, and when it has vanished; not re-checked for every frame.
        if not self._directory_ready:
            self.ensure_directory()
            self._directory_ready = True
        lock = self.directory / ".lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            self.ensure_directory()
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read_signed(self, name: str) -> dict | None:
        path = self.directory / name
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            body = {k: v for k, v in doc.items() if k != "tag"}
            tag = doc["tag"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, AttributeError):
            return {"invalid": True}
        if not self.keys.verify(_canonical(name, body), tag):
            return {"invalid": True}
        return body

    def _write_signed(self, name: str, body: dict) -> None:
        doc = dict(body, tag=self.keys.mac(_canonical(name, body)))
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.directory / name)

    def head(self) -> dict | None:
        """{"seq": newest segment written, "sealed": 1} (MAC-checked), or None before the
        first write. ``sealed`` says the store keeps a :class:`Seal` (heads written before
        seals existed lack it, and their store is checked without one until its next
        append)."""
        return self._read_signed("head")

    def seal(self) -> Seal | None:
        """The seal file, parsed but not yet authenticated (that needs the segment's keys);
        None when there is none, ``_INVALID_SEAL`` when the file is not a seal."""
        try:
            with (self.directory / "seal").open("rb") as fh:
                data = fh.read(SEAL_SIZE + 1)
        except FileNotFoundError:
            return None
        except OSError:
            return _INVALID_SEAL
        return Seal.parse(data) or _INVALID_SEAL

    def _seal_authentic(self, seal: Seal, header: Header) -> bool:
        return (seal.seq == header.seq and seal.segment_id == _segment_id_bytes(header)
                and hmac.compare_digest(_seal_tag(self._keys_for(header), seal.body()),
                                        seal.tag))

    def _write_seal(self, header: Header, tail: _Tail) -> None:
        """Record (segment, frame count, chain) after an append. In place, one ``pwrite``
        of a fixed-size record, no fsync: the frames before it are not fsynced either,
        and a seal that is behind the segment is accepted."""
        seal = Seal(header.seq, _segment_id_bytes(header), tail.index, tail.chain)
        body = seal.body()
        data = body + _seal_tag(self._keys_for(header), body)
        fd = os.open(self.directory / "seal", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def _check_seal(self, header: Header, tail: _Tail, head: dict | None) -> None:
        """Before continuing a segment another process (or nobody) wrote last: raise
        :class:`SegmentError` when frames the seal recorded are gone, so the writer starts
        a new segment (``prev_broken``) instead of chaining over the cut."""
        name = segment_name(header.seq)
        seal = self.seal()
        if seal is None:
            # Only a brand-new store may lack it (a crash right after its first head).
            if head and head.get("sealed") and not (tail.index == 0 and header.prev == ZERO):
                raise SegmentError("seal", "the head seal is missing (deleted)")
            return
        if seal is _INVALID_SEAL:
            raise SegmentError("seal", "the head seal is not readable (altered)")
        if seal.seq < header.seq:
            return  # behind: a crash between a new segment's head and its first seal
        if seal.seq > header.seq:
            raise SegmentError(segment_name(seal.seq), "the head seal names a newer segment "
                               f"than the head ({name}): head rolled back or segment removed")
        if not self._seal_authentic(seal, header):
            raise SegmentError("seal", "the head seal fails its MAC check (altered)")
        if tail.index < seal.frames:
            raise SegmentError(name, f"{seal.frames - tail.index} newest frame(s) missing "
                               f"(truncated): the head seal records {seal.frames} frame(s), "
                               f"the segment holds {tail.index}")
        if tail.index == seal.frames and not hmac.compare_digest(tail.chain, seal.chain):
            raise SegmentError(name, f"frame {tail.index - 1} is not the one the head seal "
                               "records (replaced)")

    def _head_for_write(self) -> dict | None:
        """:meth:`head`, re-read and re-checked only when the file changed since the last
        valid read (one ``stat`` per frame instead of a read, a parse and a MAC)."""
        try:
            st = (self.directory / "head").stat()
        except FileNotFoundError:
            self._head_seen = None
            return None
        except OSError:
            return self.head()
        seen = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if self._head_seen is not None and self._head_seen[0] == seen:
            return self._head_seen[1]
        head = self.head()
        self._head_seen = (seen, head) if head and not head.get("invalid") else None
        return head

    def anchor(self) -> dict | None:
        """{"next_seq", "prev", ...}: where the chain starts after an expunge."""
        return self._read_signed("anchor")

    # -- keys ----------------------------------------------------------------------------
    def _keys_for(self, header: Header) -> SegmentKeys:
        cache_key = (header.seq, header.id)
        keys = self._segment_keys.get(cache_key)
        if keys is None:
            segment_key = self.keys.unwrap(header.wrapped_key, aad=key_aad(header.id, header.seq))
            keys = _derive(segment_key)
            if len(self._segment_keys) > 64:
                self._segment_keys.clear()
            self._segment_keys[cache_key] = keys
        return keys

    # -- writing -------------------------------------------------------------------------
    def append(self, records: list[str]) -> None:
        """Append ``records`` (redacted JSON lines) as one encrypted frame."""
        if not records:
            return
        plaintext = "\n".join(records).encode("utf-8")
        with self._locked():
            header, tail = self._writable_segment()
            tail = self._write_frame(header, tail, plaintext)
            self._write_seal(header, tail)
            if self._unsealed_head:  # once, for a store written before seals existed
                self._write_signed("head", {"seq": header.seq, "sealed": 1})
                self._unsealed_head = False

    def _writable_segment(self) -> tuple[Header, _Tail]:
        now = clock.now()
        head = self._head_for_write()
        seq = head.get("seq") if head and not head.get("invalid") else None
        current = self.path(seq) if isinstance(seq, int) else None
        try:
            st = current.stat() if current is not None else None
        except OSError:
            st = None
        if current is not None and st is not None:
            # Marked sealed only after its first seal is written (by append), so a crash
            # in between leaves a head that needs no seal.
            self._unsealed_head = not head.get("sealed")
            try:
                header = self._cached_header(seq, current, st)
                tail = self._tail_state(header, current, st, head)
            except SegmentError as exc:
                return self._create(prev=ZERO, prev_broken=True, reason=str(exc))
            except (InvalidTag, OSError, ValueError) as exc:
                return self._create(prev=ZERO, prev_broken=True,
                                    reason=f"{current.name}: unreadable ({type(exc).__name__})")
            if header.ends_by > now and tail.size < self.max_bytes and header.created_at <= now:
                return header, tail
            return self._create(prev=tail.chain.hex())
        return self._create_after_missing()

    def _cached_header(self, seq: int, path: Path, st: os.stat_result) -> Header:
        inode = st.st_ino
        if self._header is not None and self._header.seq == seq and self._header_inode == inode:
            return self._header
        with path.open("rb") as fh:
            header = parse_header(path.name, fh.read(MAX_HEADER + len(MAGIC) + 4))
        if header.seq != seq:
            raise SegmentError(path.name, "header names another segment")
        self._header, self._header_inode = header, inode
        return header

    def _tail_state(self, header: Header, path: Path, st: os.stat_result,
                    head: dict | None) -> _Tail:
        """Where the segment ends. This process's own last write is trusted (same inode and
        size); anything else is read from the file and checked against the seal."""
        tail = self._tail
        if tail and tail.seq == header.seq and tail.size == st.st_size and tail.inode == st.st_ino:
            return tail
        tail = self._read_tail(header, path, st)
        self._check_seal(header, tail, head)
        return tail

    def _read_tail(self, header: Header, path: Path, st: os.stat_result) -> _Tail:
        keys = self._keys_for(header)
        if st.st_size == header.size:
            chain = _mac(keys.chain_key, b"header", header.raw)
            return _Tail(header.seq, st.st_size, st.st_ino, 0, chain)
        with path.open("rb") as fh:
            fh.seek(st.st_size - TRAILER.size)
            chain, index, length = TRAILER.unpack(fh.read(TRAILER.size))
            if length > st.st_size - header.size or length < FRAME_HEAD.size + TRAILER.size:
                raise SegmentError(path.name, "tail frame is corrupt")
            fh.seek(st.st_size - length)
            magic, head_index, _ = FRAME_HEAD.unpack(fh.read(FRAME_HEAD.size))
        if magic != b"FR" or head_index != index:
            raise SegmentError(path.name, "tail frame is corrupt")
        return _Tail(header.seq, st.st_size, st.st_ino, index + 1, chain)

    def _create_after_missing(self) -> tuple[Header, _Tail]:
        anchor = self.anchor()
        existing = self.segments()
        head = self.head()
        last = max([s for s, _ in existing] + [head["seq"] if head and "seq" in head else 0])
        if anchor and not anchor.get("invalid") and anchor["next_seq"] > last:
            return self._create(prev=anchor["prev"], seq=anchor["next_seq"])
        # The newest segment vanished (deleted by hand): start anew, and say so.
        return self._create(prev=ZERO, prev_broken=bool(last), seq=last + 1,
                            reason=f"{segment_name(last)} is missing" if last else "")

    def _create(self, *, prev: str, prev_broken: bool = False, seq: int | None = None,
                reason: str = "") -> tuple[Header, _Tail]:
        """A new segment: its file (header), then the head naming it, then a seal at its
        header (so a crash at any point leaves a head and seal that verify accepts), then
        the plaintext marker frame."""
        if seq is None:
            existing = self.segments()
            head = self.head() or {}
            seq = max([s for s, _ in existing] + [head.get("seq", 0)]) + 1
        self.ensure_directory()
        segment_id = uuid.uuid4().hex
        segment_key = os.urandom(32)
        wrapped = self.keys.wrap(segment_key, aad=key_aad(segment_id, seq))
        header = Header(seq=seq, id=segment_id, created_at=clock.now(),
                        roll_seconds=self.roll_seconds, prev=prev, wrapped_key=wrapped,
                        key_version=self.keys.version_of(wrapped), prev_broken=prev_broken,
                        broken_reason=reason if prev_broken else "")
        data = header.to_bytes()
        header.raw, header.size = data, len(data)
        path = self.path(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        keys = _derive(segment_key)
        self._segment_keys[(seq, segment_id)] = keys
        st = path.stat()
        self._header, self._header_inode = header, st.st_ino
        tail = _Tail(seq, st.st_size, st.st_ino, 0, _mac(keys.chain_key, b"header", data))
        self._write_signed("head", {"seq": seq, "sealed": 1})
        self._unsealed_head = False
        self._write_seal(header, tail)
        marker = json.dumps({"ts": header.created_at.isoformat(), "level": "info",
                             "logger": "enclave.logs.store", "kind": "app",
                             "event": "log segment opened", "segment": seq, "marker": MARKER})
        tail = self._write_frame(header, tail, marker.encode())
        return header, tail

    def _write_frame(self, header: Header, tail: _Tail, plaintext: bytes) -> _Tail:
        keys = self._keys_for(header)
        nonce = os.urandom(12)
        blob = nonce + keys.aead.encrypt(nonce, plaintext, frame_aad(header.id, tail.index))
        head = FRAME_HEAD.pack(b"FR", tail.index, len(blob))
        chain = _mac(keys.chain_key, tail.chain, head, blob)
        frame = head + blob + TRAILER.pack(chain, tail.index, len(head) + len(blob) + TRAILER.size)
        path = self.path(header.seq)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, frame)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        self._tail = _Tail(header.seq, size, tail.inode, tail.index + 1, chain)
        return self._tail

    # -- reading -------------------------------------------------------------------------
    def read_segment(self, path: Path, *, limit: int | None = None,
                     newest: bool = False) -> Segment:
        """Decode and check one segment. Raises :class:`SegmentError` naming it.

        ``limit`` (bytes) stops at a size snapshot; ``newest`` tolerates a last frame that
        is still being written by another process.
        """
        name = path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SegmentError(name, f"cannot be read ({exc.strerror})") from None
        if limit is not None:
            data = data[:limit]
        header = parse_header(name, data)
        match = SEGMENT_RE.match(name)
        if match and int(match.group(1)) != header.seq:
            raise SegmentError(name, f"header says segment {header.seq}: renamed or reordered")
        try:
            keys = self._keys_for(header)
        except Exception as exc:  # noqa: BLE001 — any key failure means "cannot decrypt".
            raise SegmentError(name, f"segment key cannot be unwrapped ({type(exc).__name__})"
                               ) from None
        segment = Segment(name, header)
        chain = _mac(keys.chain_key, b"header", header.raw)
        segment.chains.append(chain)
        offset, index = header.size, 0
        while offset < len(data):
            if len(data) - offset < FRAME_HEAD.size + TRAILER.size:
                return self._truncated(segment, chain, index, newest)
            magic, frame_index, blob_len = FRAME_HEAD.unpack_from(data, offset)
            end = offset + FRAME_HEAD.size + blob_len + TRAILER.size
            if magic != b"FR" or frame_index != index:
                raise SegmentError(name, f"frame {index} at byte {offset} is corrupt")
            if end > len(data):
                return self._truncated(segment, chain, index, newest)
            head = data[offset:offset + FRAME_HEAD.size]
            blob = data[offset + FRAME_HEAD.size:end - TRAILER.size]
            stored, trailer_index, length = TRAILER.unpack_from(data, end - TRAILER.size)
            chain = _mac(keys.chain_key, chain, head, blob)
            if not hmac.compare_digest(chain, stored) or trailer_index != index \
                    or length != end - offset:
                raise SegmentError(name, f"frame {index} at byte {offset} fails its chain "
                                   "check (altered, removed or reordered data)")
            try:
                plaintext = keys.aead.decrypt(blob[:12], blob[12:], frame_aad(header.id, index))
            except InvalidTag:
                raise SegmentError(name, f"frame {index} does not decrypt") from None
            segment.frames.append((index, plaintext.decode("utf-8").split("\n")))
            segment.chains.append(chain)
            offset, index = end, index + 1
        segment.final = chain.hex()
        return segment

    def _truncated(self, segment: Segment, chain: bytes, index: int, newest: bool) -> Segment:
        if not newest:
            raise SegmentError(segment.name, f"frame {index} is truncated")
        segment.final = chain.hex()
        segment.complete = False
        return segment

    def records(self, since: dt.datetime | None = None, until: dt.datetime | None = None,
                errors: list[str] | None = None) -> Iterator[dict]:
        """Every record (decrypted JSON) oldest first. Unreadable segments are skipped and
        described in ``errors``; the rest of the store stays readable."""
        segments = self.segments()
        for position, (_seq, path) in enumerate(segments):
            newest = position == len(segments) - 1
            try:
                segment = self.read_segment(path, newest=newest)
            except SegmentError as exc:
                if errors is not None:
                    errors.append(str(exc))
                continue
            header = segment.header
            if since is not None and header.ends_by < since:
                continue
            if until is not None and header.created_at > until:
                continue
            for _, lines in segment.frames:
                for line in lines:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        record = {"event": line}
                    if isinstance(record, dict):
                        yield record

    # -- verification --------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check every segment, the links between them, the head, its seal and the anchor.

        The head and seal must account for the newest frames: a segment the head or seal
        names must exist and hold at least the frames the seal records, ending in the chain
        value it records. Frames written after the seal (a crash before it was updated) are
        accepted; the chain authenticates them.
        """
        report = VerifyReport()
        with self._locked(fcntl.LOCK_SH):
            snapshot = [(seq, path, path.stat().st_size) for seq, path in self.segments()]
            head, anchor, seal = self.head(), self.anchor(), self.seal()
        head_problem = False
        if head and head.get("invalid"):
            report.errors.append("head: MAC check failed (altered)")
            head, head_problem = None, True
        if anchor and anchor.get("invalid"):
            report.errors.append("anchor: MAC check failed (altered)")
            anchor = None
        if seal is _INVALID_SEAL:
            report.errors.append("seal: not a head seal (altered or truncated)")
            seal, head_problem = None, True
        seal_checked = False
        expected_seq = anchor["next_seq"] if anchor else 1
        expected_prev: str | None = anchor["prev"] if anchor else ZERO
        for position, (seq, path, size) in enumerate(snapshot):
            if seq < expected_seq and anchor:
                continue  # left over by an interrupted expunge; older than the anchor
            report.segments += 1
            if seq != expected_seq:
                missing = ", ".join(segment_name(s) for s in range(expected_seq, seq)[:5])
                report.errors.append(f"{path.name}: previous segment(s) missing: {missing}")
                expected_prev = None
            try:
                segment = self.read_segment(path, limit=size,
                                            newest=position == len(snapshot) - 1)
            except SegmentError as exc:
                report.errors.append(str(exc))
                expected_prev, expected_seq = None, seq + 1
                seal_checked = seal_checked or (seal is not None and seal.seq == seq)
                continue
            report.frames += len(segment.frames)
            if segment.header.prev_broken:
                reason = segment.header.broken_reason
                report.errors.append(f"{path.name}: started after a broken or missing segment"
                                     + (f" ({reason})" if reason else ""))
            elif expected_prev is not None and segment.header.prev != expected_prev:
                report.errors.append(f"{path.name}: does not chain to the previous segment "
                                     "(replaced, reordered or a segment is missing)")
            if seal is not None and seal.seq == seq:
                seal_checked = True
                self._verify_seal(seal, segment, report)
            expected_prev, expected_seq = segment.final, seq + 1
        self._verify_newest(report, head, seal, seal_checked, anchor, expected_seq,
                            head_problem)
        return report

    def _verify_seal(self, seal: Seal, segment: Segment, report: VerifyReport) -> None:
        name, held = segment.name, len(segment.frames)
        if not self._seal_authentic(seal, segment.header):
            report.errors.append(f"seal: MAC check failed for {name} (altered or replaced)")
        elif held < seal.frames:
            report.errors.append(
                f"{name}: {seal.frames - held} newest frame(s) missing (truncated): the head "
                f"seal records {seal.frames} frame(s), the segment holds {held}")
        elif not hmac.compare_digest(segment.chains[seal.frames], seal.chain):
            report.errors.append(f"{name}: frame {seal.frames - 1} is not the one the head "
                                 "seal records (replaced)")

    def _verify_newest(self, report: VerifyReport, head: dict | None, seal: Seal | None,
                       seal_checked: bool, anchor: dict | None, expected_seq: int,
                       head_problem: bool) -> None:
        """The head and seal name segments that exist, and are there when frames are."""
        missing: list[int] = []
        if head and head.get("seq", 0) >= expected_seq:
            missing.append(head["seq"])
        expunged = anchor is not None and seal is not None and seal.seq < anchor["next_seq"]
        if seal is not None and not seal_checked and not expunged:
            missing.append(seal.seq)
        for seq in sorted(set(missing)):
            report.errors.append(f"{segment_name(seq)}: the newest segment is missing "
                                 "(deleted)")
        if not report.frames or head_problem:
            return
        if head is None:
            report.errors.append("head: missing (deleted): the newest frames cannot be "
                                 "checked")
        elif seal is None and head.get("sealed"):
            report.errors.append("seal: missing (deleted): the newest frames cannot be "
                                 "checked")

    # -- retention -----------------------------------------------------------------------
    def segment_ends(self) -> list[tuple[int, Path, dt.datetime]]:
        """(seq, path, time by which its last record was written), oldest first."""
        out = []
        segments = self.segments()
        headers = []
        for seq, path in segments:
            try:
                with path.open("rb") as fh:
                    headers.append((seq, path, parse_header(path.name, fh.read(MAX_HEADER))))
            except (SegmentError, OSError):
                headers.append((seq, path, None))
        for i, (seq, path, header) in enumerate(headers):
            nxt = headers[i + 1][2] if i + 1 < len(headers) else None
            if header is None:
                end = nxt.created_at if nxt else clock.now()
            else:
                end = header.ends_by if nxt is None else min(header.ends_by, nxt.created_at)
            out.append((seq, path, end))
        return out

    def expunge(self, cutoff: dt.datetime) -> list[str]:
        """Delete the oldest segments whose records are all older than ``cutoff``.

        Writes the anchor first (the chain then starts at the oldest kept segment), then
        deletes. Returns the names deleted.
        """
        with self._locked():
            ends = self.segment_ends()
            doomed = []
            for seq, path, end in ends:
                if end > cutoff:
                    break
                doomed.append((seq, path))
            if not doomed:
                return []
            kept = ends[len(doomed):]
            if kept:
                seq, path, _ = kept[0]
                try:
                    with path.open("rb") as fh:
                        prev = parse_header(path.name, fh.read(MAX_HEADER)).prev
                except (SegmentError, OSError):
                    prev = ZERO
                anchor = {"next_seq": seq, "prev": prev}
            else:
                seq, path = doomed[-1]
                try:
                    prev = self.read_segment(path, newest=True).final
                except SegmentError:
                    prev = ZERO
                anchor = {"next_seq": seq + 1, "prev": prev}
            anchor.update(expunged_through=doomed[-1][0], at=clock.now().isoformat(),
                          cutoff=cutoff.isoformat())
            self._write_signed("anchor", anchor)
            for _, path in doomed:
                path.unlink(missing_ok=True)
            self._tail = None
            return [path.name for _, path in doomed]

    def key_versions(self) -> dict[str, int]:
        """Number of segments under each keyring version (rotation and retire reports)."""
        counts: dict[str, int] = {}
        for _, path in self.segments():
            try:
                with path.open("rb") as fh:
                    version = parse_header(path.name, fh.read(MAX_HEADER)).key_version
            except (SegmentError, OSError):
                continue
            counts[version] = counts.get(version, 0) + 1
        return counts


def _canonical(name: str, body: dict) -> bytes:
    return f"enclave-logs/{name}|".encode() + json.dumps(body, sort_keys=True).encode()


def default_store() -> LogStore:
    """The deployment's log store (``var/logs``) with the keyring's keys."""
    from django.conf import settings

    from enclave.logs.services import get_log_keys

    return LogStore(settings.CONFIG.var_dir / "logs", get_log_keys())
