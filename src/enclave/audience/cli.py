"""``enclave segments …``: list an account's segments with live counts, count one, and
bring dynamic membership up to date — for operators on the server.

Thin: parse, call ``audience`` functions, print. Counts are aggregates (no personal data
is printed). Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys


def add_segments_parser(sub) -> argparse.ArgumentParser:
    segments = sub.add_parser("segments", help="segments: list, count, refresh")
    cmds = segments.add_subparsers(dest="segments_command", required=True)
    p = cmds.add_parser("list", help="an account's segments with their live counts")
    p.add_argument("--account", required=True, help="account id")
    p.set_defaults(segments_func=list_segments)
    p = cmds.add_parser("count", help="how many people are in a segment now")
    p.add_argument("segment", help="segment id")
    p.set_defaults(segments_func=count)
    p = cmds.add_parser("refresh", help="bring dynamic segments' rows (and entry/exit "
                        "history) up to date now: changed people, or --full")
    p.add_argument("--full", action="store_true", help="re-evaluate everyone")
    p.set_defaults(segments_func=refresh)
    return segments


def _fail(message: str) -> int:
    print(f"enclave: segments: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    return args.segments_func(args)


def _count(segment) -> int:
    from enclave.audience import membership

    return membership.members_of(segment, membership.context(segment.account_id)).count()


def list_segments(args: argparse.Namespace) -> int:
    from enclave.audience.models import Segment

    if not str(args.account).isdigit():
        return _fail(f"no account with id {args.account!r}")
    rows = Segment.objects.filter(account_id=int(args.account)).order_by("name", "pk")
    for segment in rows:
        print(f"{segment.pk}\t{segment.kind}\t{_count(segment)}\t{segment.name}")
    return 0


def count(args: argparse.Namespace) -> int:
    from enclave.audience.models import Segment

    segment = Segment.objects.filter(pk=int(args.segment)).first() \
        if str(args.segment).isdigit() and len(str(args.segment)) <= 18 else None
    if segment is None:
        return _fail(f"no segment with id {args.segment!r}")
    print(_count(segment))
    return 0


def refresh(args: argparse.Namespace) -> int:
    from enclave.audience import membership
    from enclave.audience.models import DYNAMIC, Segment

    if args.full:
        ids = list(Segment.objects.filter(kind=DYNAMIC).values_list("pk", flat=True))
        for segment_id in ids:
            membership.refresh(segment_id)
        done = len(ids)
    else:
        done = membership.refresh_changed()
    print(f"refreshed {done} dynamic segment(s)", file=sys.stderr)
    return 0
