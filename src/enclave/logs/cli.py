"""``enclave logs tail | search | verify``: decrypt the store for operators.

Every use is an audit event and a security log record. Failures are one line on stderr
and a non-zero exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import deque

from enclave.core import clock

_RELATIVE = re.compile(r"^(\d{1,6})([mhd])$")


def _when(text: str) -> dt.datetime:
    """ISO date/time (UTC if no zone) or a relative age: 30m, 12h, 7d."""
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return clock.now() - dt.timedelta(**{unit: int(match.group(1))})
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date/time or an age like 30m, 12h, 7d; got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000, got {value}")
    return value


def _trace_id(text: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise argparse.ArgumentTypeError(f"a trace id is 32 hex characters, got {text!r}")
    return text


def add_logs_parser(sub) -> argparse.ArgumentParser:
    logs = sub.add_parser("logs", help="read, search and verify the encrypted log store")
    cmds = logs.add_subparsers(dest="logs_command", required=True)
    p = cmds.add_parser("tail", help="print the newest records (decrypted, redacted)")
    p.add_argument("-n", type=_count, default=20, metavar="N", help="how many (default 20)")
    p.set_defaults(logs_func=tail)
    p = cmds.add_parser("search", help="print records matching all the given filters")
    p.add_argument("--since", type=_when, help="ISO date/time or age (30m, 12h, 7d)")
    p.add_argument("--until", type=_when, help="ISO date/time or age")
    p.add_argument("--grep", help="case-insensitive text the JSON record must contain")
    p.add_argument("--trace-id", type=_trace_id, help="the trace id of one request")
    p.add_argument("--limit", type=_count, default=1000, help="at most this many (1000)")
    p.set_defaults(logs_func=search)
    p = cmds.add_parser("verify", help="check every segment's encryption and hash chain")
    p.set_defaults(logs_func=verify)
    return logs


def run(args: argparse.Namespace) -> int:
    from enclave.logs.pipeline import flush_stores

    try:
        return args.logs_func(args)
    finally:
        flush_stores()


def _print_errors(errors: list[str]) -> None:
    for error in errors:
        print(f"enclave: logs: {error}", file=sys.stderr)


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


def tail(args: argparse.Namespace) -> int:
    from enclave.core.models import AuditEventType
    from enclave.logs.actions import do_record_log_access
    from enclave.logs.store import default_store

    do_record_log_access(AuditEventType.LOGS_TAILED, detail={"n": args.n})
    errors: list[str] = []
    newest = deque(default_store().records(errors=errors), maxlen=args.n)
    for record in newest:
        print(_line(record))
    _print_errors(errors)
    return 1 if errors else 0


def _in_window(record: dict, since, until) -> bool:
    if since is None and until is None:
        return True
    try:
        ts = dt.datetime.fromisoformat(record.get("ts", ""))
    except (TypeError, ValueError):
        return False
    return (since is None or ts >= since) and (until is None or ts <= until)


def search(args: argparse.Namespace) -> int:
    from enclave.core.models import AuditEventType
    from enclave.logs.actions import do_record_log_access
    from enclave.logs.store import default_store

    if args.since and args.until and args.since > args.until:
        print("enclave: logs: --since is after --until", file=sys.stderr)
        return 2
    do_record_log_access(AuditEventType.LOGS_SEARCHED, detail={
        "since": args.since.isoformat() if args.since else None,
        "until": args.until.isoformat() if args.until else None,
        "trace_id": args.trace_id, "grep": bool(args.grep), "limit": args.limit,
    })
    needle = args.grep.lower() if args.grep else None
    errors: list[str] = []
    shown = 0
    for record in default_store().records(args.since, args.until, errors=errors):
        if args.trace_id and record.get("trace_id") != args.trace_id:
            continue
        if not _in_window(record, args.since, args.until):
            continue
        line = _line(record)
        if needle and needle not in line.lower():
            continue
        print(line)
        shown += 1
        if shown >= args.limit:
            break
    _print_errors(errors)
    return 1 if errors else 0


def verify(args: argparse.Namespace) -> int:
    from enclave.core.models import AuditEventType
    from enclave.logs.actions import do_record_log_access
    from enclave.logs.store import default_store

    report = default_store().verify()
    do_record_log_access(AuditEventType.LOGS_VERIFIED, detail={
        "segments": report.segments, "frames": report.frames, "ok": report.ok,
        "errors": report.errors[:20]})
    if report.ok:
        print(f"ok: {report.segments} segment(s), {report.frames} frame(s); chain intact")
        return 0
    _print_errors(report.errors)
    print(f"FAILED: {len(report.errors)} problem(s) in {report.segments} segment(s)",
          file=sys.stderr)
    return 1
