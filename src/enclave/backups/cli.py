"""``enclave backup ...`` — thin: parse, call an action, print. Errors are one line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from enclave.backups.errors import BackupError


def add_backup_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("backup", help="encrypted backups, restore and restore drills")
    cmds = parser.add_subparsers(dest="backup_command", required=True)
    p = cmds.add_parser("create", help="make an encrypted backup now")
    p.add_argument("--json", action="store_true")
    _progress_flag(p)
    p = cmds.add_parser("list", help="complete backups on the target")
    p.add_argument("--json", action="store_true")
    p = cmds.add_parser("verify", help="authenticate a backup's manifest and every chunk")
    p.add_argument("backup_id")
    p.add_argument("--json", action="store_true")
    _progress_flag(p)
    p = cmds.add_parser("restore", help="restore into a new database (or --replace the live one)")
    p.add_argument("backup_id")
    p.add_argument("--to", help="new SQLite file path or new PostgreSQL database name")
    p.add_argument("--replace", action="store_true", help="replace the live database")
    p.add_argument("--yes", action="store_true", help="confirm --replace non-interactively")
    p.add_argument("--anonymize", action="store_true",
                   help="mask personal data (needed for a production backup outside production)")
    p.add_argument("--json", action="store_true")
    _progress_flag(p)
    p = cmds.add_parser("prune", help="apply the 30/90-day retention policy")
    p.add_argument("--dry-run", action="store_true", help="only show what would be expunged")
    p.add_argument("--json", action="store_true")
    p = cmds.add_parser("drill", help="restore the latest backup into a scratch database")
    p.add_argument("--json", action="store_true")
    _progress_flag(p)
    return parser


def _progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action="store_true",
                        help="progress lines on stderr even when it is not a terminal")


@contextlib.contextmanager
def _progress(args):
    """A progress line on stderr when it is a terminal or with --progress, else None."""
    if not (getattr(args, "progress", False) or sys.stderr.isatty()):
        yield None
        return
    from enclave.backups.progress import ProgressLine

    line = ProgressLine(sys.stderr)
    try:
        yield line
    finally:
        line.close()


def _confirm(args) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return False
    answer = input(f"This replaces the LIVE database with backup {args.backup_id}.\n"
                   "Type the backup id to confirm: ")
    return answer.strip() == args.backup_id


def _emit(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _list(args) -> int:
    from enclave.backups import container, services
    from enclave.backups.models import Backup

    target = services.get_target()
    catalog = {b.backup_id: b for b in Backup.objects.all()}
    rows = []
    for backup_id in target.list_ids():
        header = container.read_header(target.read_manifest(backup_id), backup_id)
        known = catalog.get(backup_id)
        rows.append({**header, "stored_bytes": known.stored_bytes if known else None})
    lines = [f"{r['id']}  {r['environment']:<10}  {r['engine']:<10}  "
             f"{r['stored_bytes'] if r['stored_bytes'] is not None else '?':>12} bytes"
             for r in rows]
    _emit(args, {"target": target.describe(), "backups": rows},
          "\n".join(lines) or f"no backups on {target.describe()}")
    return 0


def _run(args) -> int:
    from enclave.backups import actions

    cmd = args.backup_command
    if cmd == "create":
        with _progress(args) as progress:
            b = actions.do_create_backup(progress=progress)
        _emit(args, {"id": b.backup_id, "target": b.target, "stored_bytes": b.stored_bytes,
                     "seconds": round(b.duration_seconds, 3)},
              f"backup {b.backup_id}: {b.stored_bytes} bytes to {b.target} "
              f"in {b.duration_seconds:.1f} s")
        return 0
    if cmd == "list":
        return _list(args)
    if cmd == "verify":
        with _progress(args) as progress:
            m = actions.do_verify_backup(args.backup_id, progress=progress)
        _emit(args, {"id": args.backup_id, "ok": True, "chunks": m["chunks"],
                     "created_at": m["created_at"], "environment": m["environment"]},
              f"backup {args.backup_id}: manifest and {m['chunks']} chunks authentic")
        return 0
    if cmd == "restore":
        if args.replace and not _confirm(args):
            print("enclave: backup: --replace not confirmed (use --yes non-interactively); "
                  "nothing changed", file=sys.stderr)
            return 2
        with _progress(args) as progress:
            r = actions.do_restore_backup(args.backup_id, to=args.to, replace=args.replace,
                                          anonymize=args.anonymize, progress=progress)
        _emit(args, r, f"backup {args.backup_id} restored into {r['destination']} "
                       f"({r['erasures_reapplied']} erasures re-applied, "
                       f"{r['rows_anonymized']} rows anonymized)")
        return 0
    if cmd == "prune":
        r = actions.do_prune_backups(dry_run=args.dry_run)
        verb = "would expunge" if args.dry_run else "expunged"
        _emit(args, r, f"{verb} {len(r['expunge'])}: {' '.join(r['expunge']) or '-'}; "
                       f"keeping {len(r['keep'])}")
        return 0
    with _progress(args) as progress:
        drill = actions.do_run_restore_drill(progress=progress)
    _emit(args, {"backup": drill.backup_id, "succeeded": drill.succeeded,
                 "rto_seconds": round(drill.rto_seconds, 3), "detail": drill.detail},
          f"drill {'passed' if drill.succeeded else 'FAILED'}: {drill.backup_id or '-'} "
          f"restored in {drill.rto_seconds:.1f} s — {drill.detail}")
    return 0 if drill.succeeded else 1


def run(args) -> int:
    try:
        return _run(args)
    except BackupError as exc:
        print(f"enclave: backup: {exc}", file=sys.stderr)
        return 2
