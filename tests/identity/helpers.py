"""Shared helpers for identity tests: members with accounts, signing in, TOTP codes."""

from __future__ import annotations

import re

import pyotp
from django.test import Client

from enclave.accounts.models import Account, Membership
from enclave.core import clock
from enclave.identity import mfa
from enclave.identity.models import Member

PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a different, longer passphrase 7"


def mailing():
    """Run on-commit callbacks (emails are sent after commit) inside a test transaction."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def last_link(path_prefix: str) -> str:
    """The token of the last emailed link starting with ``path_prefix``."""
    from django.core import mail

    return re.search(re.escape(path_prefix) + r"(\S+)", mail.outbox[-1].body)[1]


def https_client(**kwargs) -> Client:
    from tests.conftest import HttpsClient

    return HttpsClient(**kwargs)


def make_member(email: str = "jane@example.com", password: str = PASSWORD,
                account: Account | None = None, account_name: str = "Acme",
                role: str = "owner") -> Member:
    member = Member(email=email)
    member.set_password(password)
    member.save()
    account = account or Account.objects.create(name=account_name)
    Membership.objects.create(member=member, account=account, role=role)
    return member


def log_in(client: Client, email: str = "jane@example.com", password: str = PASSWORD,
           **extra):
    return client.post("/app/login/", {"email": email, "password": password}, **extra)


def enable_mfa(client: Client) -> tuple[str, list[str]]:
    """Enrol TOTP through the pages; returns (secret, recovery codes)."""
    page = client.get("/app/mfa/setup/")
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)[1]
    done = client.post("/app/mfa/setup/", {"code": totp_now(secret)})
    codes = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", done.text)
    return secret, codes


def totp_now(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((mfa.current_step() + offset_steps) * mfa.STEP_SECONDS)


def strip_volatile(html: str) -> str:
    """Remove per-response tokens (CSRF, CSP nonce) so two pages can be compared."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', html)
    return re.sub(r'nonce="[^"]+"', 'nonce=""', html)


def now():
    return clock.now()
