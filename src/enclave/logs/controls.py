"""Security controls of the logs app: LOG-1 … LOG-4."""

from __future__ import annotations

import logging
import stat

from django.conf import settings

from enclave.core import clock
from enclave.core.controls import Outcome, Probe, control, failed, not_applicable, passed
from enclave.logs import pipeline
from enclave.logs.store import MARKER, SegmentError, default_store


def unredacted_handlers() -> list[str]:
    """'<logger>: <handler>' for every handler without the redaction filter, and every
    required logger that reaches no handler at all."""
    problems = []
    loggers = [("root", logging.getLogger())]
    loggers += [(name, obj) for name, obj in sorted(logging.root.manager.loggerDict.items())
                if isinstance(obj, logging.Logger)]
    for name, logger in loggers:
        for handler in logger.handlers:
            # A NullHandler writes nothing (libraries add one to stay quiet).
            if not pipeline.has_redaction(handler) and type(handler) is not logging.NullHandler:
                problems.append(f"{name}: {type(handler).__name__}")
    for name in pipeline.LOGGERS:
        logger = logging.getLogger(name)
        if not logger.hasHandlers():
            problems.append(f"{name}: no handler")
    return problems


@control("LOG-1", claim="The redaction policy runs on every handler of every logger",
         public="Passwords, keys, tokens and card numbers are redacted before logs are written")
def check_redaction_everywhere(probe: Probe) -> Outcome:
    problems = unredacted_handlers()
    if problems:
        return failed("handlers without redaction: " + "; ".join(problems[:10]))
    rules = len(pipeline.get_policy().rules)
    return passed(f"every handler carries the redaction filter ({rules} policy rules)")


@control("LOG-2", claim="Log segments are encrypted (no plaintext marker on disk; they decrypt)",
         public="Logs are stored encrypted")
def check_store_encrypted(probe: Probe) -> Outcome:
    store = default_store()
    if not store.segments():
        pipeline.flush_stores()
    segments = store.segments()
    if not segments:
        return not_applicable("no log segment has been written yet")
    mode = stat.S_IMODE(store.directory.stat().st_mode)
    if mode & 0o077:
        return failed(f"{store.directory} is accessible to group/others (mode {mode:o})")
    sample = {segments[0], segments[-1]}
    for _, path in sorted(sample):
        raw = path.read_bytes()
        if MARKER.encode() in raw or b'"event"' in raw:
            return failed(f"{path.name} holds plaintext log records")
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            return failed(f"{path.name} is readable by group/others")
        try:
            segment = store.read_segment(path, newest=path == segments[-1][1])
        except SegmentError as exc:
            return failed(f"sampled segment does not decrypt: {exc}")
        if not segment.frames or MARKER not in segment.frames[0][1][0]:
            return failed(f"{path.name} decrypts but lacks its start marker")
    return passed(f"{len(segments)} segment(s); sampled {len(sample)}: no plaintext on disk, "
                  "decrypt with the keyring's logs key")


@control("LOG-3", claim="No log segment is older than the retention period (at most 90 days)",
         public="Logs are deleted after at most 90 days")
def check_retention(probe: Probe) -> Outcome:
    from enclave.logs.actions import retention_cutoff

    days = settings.CONFIG.log_retention_days
    ends = default_store().segment_ends()
    if not ends:
        return not_applicable("no log segment has been written yet")
    _seq, path, end = ends[0]
    if end <= retention_cutoff():
        age = (clock.now() - end).days
        return failed(f"{path.name} holds records {age} days old; retention is {days} days")
    return passed(f"oldest segment {path.name} ends {end:%Y-%m-%d %H:%M} UTC; "
                  f"retention {days} days")


@control("LOG-4", claim="The log store's hash chain verifies (no altered or missing segment)",
         public="Stored logs are tamper-evident")
def check_chain(probe: Probe) -> Outcome:
    report = default_store().verify()
    if not report.segments:
        return not_applicable("no log segment has been written yet")
    if not report.ok:
        return failed("; ".join(report.errors[:5]))
    return passed(f"{report.segments} segment(s), {report.frames} frame(s) verified")
