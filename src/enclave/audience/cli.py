"""``enclave segments …`` and ``enclave suppressions …`` — for operators on the server.

segments: list an account's segments with live counts, count one, list its members' ids,
bring dynamic membership up to date; create, snapshot and delete as a named member
(``--member``: their permissions in the segment's account, the same actions and audit
rows as the app). suppressions: add or take off addresses read from stdin, one per line
(never from the command line, which shell history keeps).

Thin: parse, call ``audience`` functions, print. Nothing printed is personal data: counts
and ids. Bad input: one line on stderr, exit 2. ``run`` is handed ``act_as(account_id,
email)`` by ``enclave.cli`` (resolving a member is the accounts layer's, above this one).
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
    p = cmds.add_parser("members", help="ids of the people in a segment now, in id order")
    p.add_argument("segment", help="segment id")
    p.add_argument("--after", default="0", help="only ids above this (the next page)")
    p.add_argument("--limit", default="1000", help="at most this many (1–100000)")
    p.set_defaults(segments_func=members)
    p = cmds.add_parser("create", help="create a dynamic segment (--rules) or a list "
                        "(--static); prints its id")
    p.add_argument("--account", required=True, help="account id")
    p.add_argument("--member", required=True, help="email of the member creating it")
    p.add_argument("--name", required=True)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--rules", help="the rule tree as JSON (docs/audience.md)")
    kind.add_argument("--static", action="store_true", help="a static list")
    p.set_defaults(segments_func=create)
    p = cmds.add_parser("snapshot", help="a new list of the segment's people now; prints "
                        "its id")
    p.add_argument("segment", help="segment id")
    p.add_argument("--member", required=True, help="email of the member taking it")
    p.add_argument("--name", required=True, help="the new list's name")
    p.set_defaults(segments_func=snapshot)
    p = cmds.add_parser("delete", help="delete a segment (refused while others refer "
                        "to it)")
    p.add_argument("segment", help="segment id")
    p.add_argument("--member", required=True, help="email of the member deleting it")
    p.set_defaults(segments_func=delete)
    return segments


def add_suppressions_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("suppressions", help="the suppression list: add or remove "
                            "addresses read from stdin")
    cmds = parser.add_subparsers(dest="suppressions_command", required=True)
    for name, text in (("add", "never email these addresses (one per line on stdin)"),
                       ("remove", "take these addresses off the list (one per line on "
                                  "stdin; not those an erasure put there)")):
        p = cmds.add_parser(name, help=text)
        p.add_argument("--account", required=True, help="account id")
        p.add_argument("--member", required=True, help="email of the member doing it "
                       "(needs people.write)")
        p.set_defaults(suppressions_func=add_suppressions if name == "add"
                       else remove_suppressions)
    return parser


def _fail(message: str, command: str = "segments") -> int:
    print(f"enclave: {command}: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace, *, act_as=None) -> int:
    args.act_as = act_as
    func = getattr(args, "segments_func", None) or args.suppressions_func
    return func(args)


def _id(raw) -> int | None:
    text = str(raw)
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _account(raw):
    """The account with id ``raw`` (the model is reached through the segment's foreign
    key: accounts is a layer above audience), or None."""
    from enclave.audience.models import Segment

    pk = _id(raw)
    model = Segment._meta.get_field("account").related_model
    return None if pk is None else model.objects.filter(pk=pk).first()


def _segment(raw):
    from enclave.audience.models import Segment

    pk = _id(raw)
    return None if pk is None else Segment.objects.filter(pk=pk).first()


def _actor(args, account_id: int, command: str = "segments"):
    """The named member acting in ``account_id``; None (after one line on stderr) when
    there is no such member."""
    actor = args.act_as(account_id, args.member) if args.act_as else None
    if actor is None:
        _fail(f"no member with email {args.member!r}", command)
    return actor


def _act(action) -> tuple[object, int | None]:
    """Run ``action()``: (its result, None), or — a refusal, written as one stderr
    line — (None, 2)."""
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.http import Http404

    try:
        return action(), None
    except ValidationError as exc:
        return None, _fail(" ".join(exc.messages))
    except (PermissionDenied, Http404) as exc:
        return None, _fail(str(exc) or "not allowed")


def _unusable(segment) -> int:
    return _fail(f"segment {segment.pk}'s rules cannot be evaluated; change them first")


def _count(segment) -> int | str:
    from enclave.audience import membership, rules

    try:
        return membership.members_of(segment,
                                     membership.context(segment.account_id)).count()
    except rules.RuleError:
        return "rules-unusable"


def list_segments(args: argparse.Namespace) -> int:
    from enclave.audience.models import Segment

    if not str(args.account).isdigit():
        return _fail(f"no account with id {args.account!r}")
    rows = Segment.objects.filter(account_id=int(args.account)).order_by("name", "pk")
    for segment in rows:
        print(f"{segment.pk}\t{segment.kind}\t{_count(segment)}\t{segment.name}")
    return 0


def count(args: argparse.Namespace) -> int:
    segment = _segment(args.segment)
    if segment is None:
        return _fail(f"no segment with id {args.segment!r}")
    found = _count(segment)
    if isinstance(found, str):
        return _unusable(segment)
    print(found)
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


def members(args: argparse.Namespace) -> int:
    from enclave.audience import membership, rules

    segment, after, limit = _segment(args.segment), _id(args.after), _id(args.limit)
    if segment is None:
        return _fail(f"no segment with id {args.segment!r}")
    if after is None or limit is None or not 1 <= limit <= 100_000:
        return _fail("--after is an id, --limit a number from 1 to 100000")
    try:
        people = membership.members_of(segment, membership.context(segment.account_id))
    except rules.RuleError:
        return _unusable(segment)
    ids = list(people.filter(pk__gt=after).order_by("pk")
               .values_list("pk", flat=True)[:limit + 1])
    for pk in ids[:limit]:
        print(pk)
    if len(ids) > limit:
        print(f"more: --after {ids[limit - 1]}", file=sys.stderr)
    return 0


def create(args: argparse.Namespace) -> int:
    import json

    from enclave.audience import actions
    from enclave.core import jsondepth

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with id {args.account!r}")
    actor = _actor(args, account.pk)
    if actor is None:
        return 2
    rule_data = None
    if not args.static:
        try:
            rule_data = jsondepth.loads(args.rules)
        except (ValueError, json.JSONDecodeError, jsondepth.TooDeep):
            return _fail("--rules is not valid JSON (or nests too deep)")
    made, failed = _act(lambda: actions.do_create_segment(
        account, args.name, "static" if args.static else "dynamic", rule_data,
        actor=actor))
    if failed is not None:
        return failed
    print(made.pk)
    return 0


def snapshot(args: argparse.Namespace) -> int:
    from enclave.audience import actions

    segment = _segment(args.segment)
    if segment is None:
        return _fail(f"no segment with id {args.segment!r}")
    actor = _actor(args, segment.account_id)
    if actor is None:
        return 2
    made, failed = _act(lambda: actions.do_snapshot_segment(segment, args.name,
                                                             actor=actor))
    if failed is not None:
        return failed
    print(made.pk)
    print(f"the new list holds {_count(made)} people", file=sys.stderr)
    return 0


def delete(args: argparse.Namespace) -> int:
    from enclave.audience import actions

    segment = _segment(args.segment)
    if segment is None:
        return _fail(f"no segment with id {args.segment!r}")
    actor = _actor(args, segment.account_id)
    if actor is None:
        return 2
    _, failed = _act(lambda: actions.do_delete_segment(segment, actor=actor))
    if failed is not None:
        return failed
    print(f"deleted segment {segment.pk}", file=sys.stderr)
    return 0


def _addresses() -> list[str]:
    return [line.strip() for line in sys.stdin if line.strip()]


class _Refused(Exception):
    pass


def _suppressions(args, change) -> int:
    """Every address on stdin in one transaction: all changed, or (on the first
    refusal, named by its line) none."""
    from django.db import transaction

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with id {args.account!r}", "suppressions")
    actor = _actor(args, account.pk, "suppressions")
    if actor is None:
        return 2
    from django.core.exceptions import PermissionDenied, ValidationError

    results: list[bool] = []
    try:
        with transaction.atomic():
            for line, email in enumerate(_addresses(), start=1):
                try:
                    results.append(change(account, email, actor))
                except ValidationError as exc:
                    raise _Refused(f"line {line} of stdin: {' '.join(exc.messages)} "
                                   "Nothing was changed.") from None
    except PermissionDenied as exc:
        return _fail(str(exc), "suppressions")
    except _Refused as exc:
        return _fail(str(exc), "suppressions")
    changed = sum(results)
    print(f"{changed} changed, {len(results) - changed} unchanged", file=sys.stderr)
    return 0


def add_suppressions(args: argparse.Namespace) -> int:
    from enclave.audience.subscriptions import do_suppress_address

    return _suppressions(args, lambda account, email, actor: do_suppress_address(
        account, email, actor=actor))


def remove_suppressions(args: argparse.Namespace) -> int:
    from enclave.audience.subscriptions import do_unsuppress_address

    return _suppressions(args, lambda account, email, actor: do_unsuppress_address(
        account, email, actor=actor))
