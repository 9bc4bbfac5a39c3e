"""``enclave apikeys …``: create, list, revoke — for operators on the server.

Thin: parse, call an action, print. ``create`` prints the token once, on stdout (the only
line there), so scripts can capture it. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys


def add_apikeys_parser(sub) -> argparse.ArgumentParser:
    keys = sub.add_parser("apikeys", help="API keys: create, list, revoke")
    cmds = keys.add_subparsers(dest="apikeys_command", required=True)
    p = cmds.add_parser("create", help="create a key for a member (prints the token once)")
    p.add_argument("--account", required=True, help="account id")
    p.add_argument("--member", required=True, help="the creating member's email")
    p.add_argument("--scopes", default="",
                   help="comma-separated, e.g. people:read,events:write (server keys)")
    p.add_argument("--kind", default="server", choices=["server", "browser"],
                   help="browser: a website's tracking key (events:write from its origins)")
    p.add_argument("--allowed-origins", default="",
                   help="browser keys: the sites' origins, comma-separated "
                        "(https://www.example.com, https://*.example.com)")
    p.add_argument("--require-consent", action="store_true",
                   help="browser keys: refuse calls without the visitor's consent")
    p.add_argument("--identify-mode", default=None, choices=["link", "fill_new"],
                   help="browser keys: identify links the visitor only (link, default) or "
                        "also fills the fields of people it creates (fill_new)")
    p.add_argument("--role-ceiling", default=None, help="built-in role (default: member's)")
    p.add_argument("--name", required=True)
    p.add_argument("--expires-days", default=None)
    p.add_argument("--allowed-ips", default="", help="comma-separated CIDRs")
    p.set_defaults(apikeys_func=create)
    p = cmds.add_parser("list", help="list an account's keys (never secrets)")
    p.add_argument("--account", required=True, help="account id")
    p.set_defaults(apikeys_func=list_keys)
    p = cmds.add_parser("revoke", help="revoke a key now")
    p.add_argument("public_id")
    p.add_argument("--member", required=True, help="email of the member revoking it "
                   "(needs api_keys.manage)")
    p.set_defaults(apikeys_func=revoke)
    return keys


def _fail(message: str) -> int:
    print(f"enclave: apikeys: {message}", file=sys.stderr)
    return 2


def _account(raw: str):
    from enclave.accounts.models import Account

    if not str(raw).isdigit():
        return None
    return Account.objects.filter(pk=int(raw)).first()


def _member(email: str):
    from enclave.identity.models import Member

    return Member.objects.with_email(email).first()


def _messages(exc) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def run(args: argparse.Namespace) -> int:
    return args.apikeys_func(args)


def create(args: argparse.Namespace) -> int:
    from django.core.exceptions import PermissionDenied, ValidationError

    from enclave.accounts.access import principal_for
    from enclave.apikeys.actions import do_create_api_key

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with id {args.account!r}")
    member = _member(args.member)
    if member is None:
        return _fail(f"no member with email {args.member!r}")
    try:
        token, key = do_create_api_key(
            account, name=args.name, scopes=args.scopes, role_ceiling=args.role_ceiling,
            allowed_ips=args.allowed_ips, expires_days=args.expires_days, kind=args.kind,
            allowed_origins=args.allowed_origins, require_consent=args.require_consent,
            identify_mode=args.identify_mode, actor=principal_for(member, account.pk))
    except ValidationError as exc:
        return _fail(_messages(exc))
    except PermissionDenied as exc:
        return _fail(f"{args.member} may not create keys in account {account.pk}: {exc}")
    print(token)
    print(f"created {key.kind} key {key.public_id} ({', '.join(key.scopes)}; ceiling "
          f"{key.role_ceiling}; "
          f"expires {key.expires_at:%Y-%m-%d}) — the token above is shown only once",
          file=sys.stderr)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    from enclave.apikeys.models import ApiKey

    account = _account(args.account)
    if account is None:
        return _fail(f"no account with id {args.account!r}")
    rows = ApiKey.objects.filter(account=account).order_by("created_at", "pk")
    print(f"{'public id':<12}  {'state':<8}  {'created':<10}  {'expires':<10}  name / scopes")
    for key in rows:
        print(f"{key.public_id:<12}  {key.state():<8}  {key.created_at:%Y-%m-%d}  "
              f"{key.expires_at:%Y-%m-%d}  {key.name} / {','.join(key.scopes)}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    from django.core.exceptions import PermissionDenied

    from enclave.accounts.access import principal_for
    from enclave.apikeys.actions import do_revoke_api_key
    from enclave.apikeys.models import ApiKey

    key = ApiKey.objects.filter(public_id=args.public_id).first()
    if key is None:
        return _fail(f"no key with public id {args.public_id!r}")
    member = _member(args.member)
    if member is None:
        return _fail(f"no member with email {args.member!r}")
    try:
        do_revoke_api_key(key, actor=principal_for(member, key.account_id))
    except PermissionDenied as exc:
        return _fail(str(exc))
    print(f"revoked {key.public_id}")
    return 0
