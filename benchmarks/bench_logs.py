"""Added cost per log record of redaction + encrypted storage, against plain JSON logging
of the same records in the same run. Target: at most 10 µs added per record.

Also the cost of one ``LogStore.append()`` of a 64-record batch (one encrypted frame, the
hash chain and the head seal), in this process's own steady state and when another
process wrote last (the writer re-reads the tail and checks the seal)."""

from __future__ import annotations

import io
import logging
import tempfile
import time

import structlog

from enclave.logs import pipeline
from enclave.logs.services import MemoryLogKeys
from enclave.logs.store import LogStore

RECORDS = 20_000
ROUNDS = 7
TARGET_US = 10.0
CARD = "4111 1111 1111 1111"
APPENDS = 2000
BATCH = ['{"ts": "2025-01-01T00:00:00+00:00", "level": "info", "logger": "enclave.access", '
         '"kind": "access", "pid": 1, "event": "request", "method": "GET", '
         '"path": "/app/people/123", "status": 200, "duration_ms": 1.2}'] * 64


def _emit_all(logger: logging.Logger) -> None:
    for i in range(RECORDS // 4):
        logger.info("request handled path=%s status=%s", f"/app/people/{i}", 200)
        logger.info("member %s signed in", i)
        logger.warning("payment failed for card %s", CARD)
        logger.info("webhook sent to https://hooks.example.com/x?id=%d", i)


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _plain_handler() -> logging.Handler:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[pipeline.add_meta],
        processors=[pipeline.drop_private, structlog.processors.JSONRenderer(default=str)]))
    return handler


def _enclave_handler(directory: str) -> pipeline.StoreHandler:
    handler = pipeline.StoreHandler(directory, keys=MemoryLogKeys())
    handler.setFormatter(pipeline.json_formatter())
    handler.addFilter(pipeline.RedactingFilter())
    return handler


def _timed(logger: logging.Logger, after=None) -> float:
    start = time.perf_counter()
    _emit_all(logger)
    if after:
        after()
    return (time.perf_counter() - start) / RECORDS * 1e6


def _append_cost(directory: str) -> tuple[float, float]:
    """Best µs per append() of BATCH: (this process wrote last, another process did)."""
    store = LogStore(directory, MemoryLogKeys(), max_bytes=1 << 40)
    store.append(BATCH)
    own = other = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(APPENDS):
            store.append(BATCH)
        own = min(own, (time.perf_counter() - start) / APPENDS * 1e6)
        start = time.perf_counter()
        for _ in range(APPENDS // 4):
            store._tail = None  # as after another process's append: tail re-read, seal checked
            store.append(BATCH)
        other = min(other, (time.perf_counter() - start) / (APPENDS // 4) * 1e6)
    return own, other


def main() -> None:
    # Rounds alternate between the two pipelines and the best of each is kept, so a load
    # spike on a shared machine (CI) does not land on one side only.
    with tempfile.TemporaryDirectory() as tmp:
        plain_logger = _logger("bench.plain", _plain_handler())
        handler = _enclave_handler(f"{tmp}/logs")
        enclave_logger = _logger("bench.enclave", handler)
        plain = enclave = float("inf")
        for _ in range(ROUNDS):
            plain = min(plain, _timed(plain_logger))
            enclave = min(enclave, _timed(enclave_logger, handler.flush))
        segments = len(handler.store.segments())
        own, other = _append_cost(f"{tmp}/append")
    added = enclave - plain
    verdict = "within" if added <= TARGET_US else "OVER"
    print(f"plain JSON logging:              {plain:7.2f} µs/record")
    print(f"redacted + encrypted store:      {enclave:7.2f} µs/record ({segments} segment(s))")
    print(f"added by redaction + encryption: {added:7.2f} µs/record "
          f"({verdict} the {TARGET_US:.0f} µs target)")
    print(f"LogStore.append() of {len(BATCH)} records: {own:7.1f} µs "
          f"({own / len(BATCH):.2f} µs/record); after another process's append: {other:.1f} µs")


if __name__ == "__main__":
    main()
