"""The ``enclave`` command. Thin: parse, call into the apps, print, exit.

Every failure is one clear line on stderr and a non-zero exit — never a traceback.
Exit codes: 0 success; 1 a check/report failed; 2 bad input or configuration;
3 incomplete audit (``deps audit``); 70 internal error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from enclave.config import ConfigError


def _setup_django() -> None:
    from enclave import config
    from enclave.server.supervisor import prepare_directories

    # var/ directories (0700 data and secrets) exist before anything opens the database.
    prepare_directories(config.load())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enclave.settings")
    import django

    django.setup()


def cmd_serve(args: argparse.Namespace) -> int:
    from enclave import config
    from enclave.server.supervisor import serve

    return serve(config.load())


def cmd_security_report(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.core import actions, controls

    probe = controls.Probe.from_settings(args.url, args.http_url)
    results = controls.run_all(probe)
    if args.record:
        actions.do_record_control_results(results)
    failed = [r for r in results if r.status == controls.FAIL]
    if args.json:
        print(json.dumps({"passed": not failed, "controls": [r.as_dict() for r in results]},
                         indent=2))
    else:
        width = max(len(r.control_id) for r in results)
        for r in results:
            print(f"{r.status.upper():4}  {r.control_id:<{width}}  {r.claim}")
            print(f"{'':4}  {'':<{width}}  evidence: {r.evidence}")
        print(f"\n{len(results) - len(failed)}/{len(results)} controls pass or do not apply"
              + ("" if not failed else f"; failing: {', '.join(r.control_id for r in failed)}"))
    return 1 if failed else 0


def cmd_deps_audit(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.scanning.cli import deps_audit

    return deps_audit(args)


def cmd_setup_link(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.identity.actions import do_issue_owner_setup_link

    link = do_issue_owner_setup_link()
    if link is None:
        print("enclave: an owner already exists; no set-up link is needed", file=sys.stderr)
        return 1
    print(link)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.keys.cli import run

    return run(args)


def cmd_logs(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.logs.cli import run

    return run(args)


def cmd_backup(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.backups.cli import run

    return run(args)


def cmd_deploy(args: argparse.Namespace) -> int:
    from enclave.deploy.cli import run

    return run(args)


def cmd_apikeys(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.apikeys.cli import run

    return run(args)


def cmd_segments(args: argparse.Namespace) -> int:
    _setup_django()
    from enclave.audience.cli import run

    return run(args, act_as=_act_as)


def _act_as(account_id: int, email: str):
    """The member with ``email`` acting in ``account_id`` (their permissions there), or
    None when there is no such member."""
    from enclave.accounts.access import principal_for
    from enclave.identity.models import Member

    member = Member.objects.with_email(email).first()
    return None if member is None else principal_for(member, account_id)


def cmd_manage(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["enclave manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enclave", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the embedded HTTPS server, HTTP redirector and jobs")
    p.set_defaults(func=cmd_serve)

    sec = sub.add_parser("security", help="security controls").add_subparsers(
        dest="security_command", required=True)
    p = sec.add_parser("report", help="check every control against the running deployment")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--url", help="HTTPS base URL to probe (default: the local listener)")
    p.add_argument("--http-url", help="plain-HTTP base URL to probe")
    p.add_argument("--record", action="store_true", help="store results for /security")
    p.set_defaults(func=cmd_security_report)

    deps = sub.add_parser("deps", help="dependencies").add_subparsers(
        dest="deps_command", required=True)
    p = deps.add_parser("audit", help="audit locked dependencies for known vulnerabilities")
    from enclave.scanning.cli import add_audit_arguments

    add_audit_arguments(p)
    p.set_defaults(func=cmd_deps_audit)

    p = sub.add_parser("setup-link", help="print a new one-time owner set-up link")
    p.set_defaults(func=cmd_setup_link)

    from enclave.keys.cli import add_keys_parser

    add_keys_parser(sub).set_defaults(func=cmd_keys)

    from enclave.logs.cli import add_logs_parser

    add_logs_parser(sub).set_defaults(func=cmd_logs)

    from enclave.deploy.cli import add_deploy_parser

    add_deploy_parser(sub).set_defaults(func=cmd_deploy)

    from enclave.backups.cli import add_backup_parser

    add_backup_parser(sub).set_defaults(func=cmd_backup)

    from enclave.apikeys.cli import add_apikeys_parser

    add_apikeys_parser(sub).set_defaults(func=cmd_apikeys)

    from enclave.audience.cli import add_segments_parser, add_suppressions_parser

    add_segments_parser(sub).set_defaults(func=cmd_segments)
    add_suppressions_parser(sub).set_defaults(func=cmd_segments)

    p = sub.add_parser("manage", help="run a Django management command", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"enclave: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 — the CLI never shows a traceback.
        from enclave.core.errors import EnvironmentMismatch

        if isinstance(exc, EnvironmentMismatch):
            print(f"enclave: {exc}", file=sys.stderr)
            return 2
        print(f"enclave: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        # 70 (EX_SOFTWARE): distinct from 1, which commands use for "a check failed".
        return 70


if __name__ == "__main__":
    sys.exit(main())
