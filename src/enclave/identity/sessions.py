"""Server-side session policy: one ``MemberSession`` row per signed-in browser.

Django's DB session holds the data; the row (keyed by a SHA-256 of the session key, so
the database never holds a usable key twice) holds what policy needs: idle and absolute
expiry, revocation, the account in use, the last time the member proved who they are.
Rows are created by the ``user_logged_in`` signal, so every login path (password + MFA,
first-owner set-up, ``Client.force_login`` in tests) gets one.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db.models import Min
from django.http import HttpRequest

from enclave.core import audit, clock
from enclave.identity.models import Member, MemberSession

USER_AGENT_MAX = 300
# The idle limits an account may choose (minutes): 5 minutes to 12 hours.
IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX, IDLE_TIMEOUT_DEFAULT = 5, 720, 30


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def absolute_timeout() -> dt.timedelta:
    return dt.timedelta(hours=settings.SESSION_ABSOLUTE_TIMEOUT_HOURS)


def idle_timeout(row: MemberSession) -> dt.timedelta:
    """The strictest idle limit of every account the member belongs to (so switching
    to a laxer account cannot revive an idle session), else the default. ``row`` comes
    from :func:`current`, which reads that limit in the same query."""
    minutes = getattr(row, "strictest_idle_minutes", None)
    if minutes is None:
        minutes = strictest_idle_minutes(row.member_id)
    return dt.timedelta(minutes=minutes or settings.SESSION_IDLE_TIMEOUT_MINUTES)


def _strictest_idle():
    # Read through the member's memberships (identity imports no accounts code).
    return Min("member__memberships__account__idle_timeout_minutes")


def strictest_idle_minutes(member_id: int) -> int | None:
    return (Member.objects.filter(pk=member_id)
            .aggregate(m=Min("memberships__account__idle_timeout_minutes"))["m"])


def default_account_id(member) -> int | None:
    first = member.memberships.order_by("created_at", "pk").first()
    return first.account_id if first else None


def on_login(sender, request: HttpRequest, user, **kwargs) -> None:
    """``user_logged_in`` receiver: record the new (already rotated) session."""
    if request is None or not hasattr(request, "session"):
        return
    if request.session.session_key is None:
        request.session.save()
    now = clock.now()
    MemberSession.objects.create(
        key_hash=key_hash(request.session.session_key), member=user,
        account_id=default_account_id(user),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
        ip=audit.client_ip(request), created_at=now, last_seen_at=now, authenticated_at=now,
        absolute_expires_at=now + absolute_timeout(),
    )


def on_logout(sender, request: HttpRequest, user, **kwargs) -> None:
    """``user_logged_out`` receiver: the row is ended with the session."""
    row = current(request) if request is not None else None
    if row is not None and row.revoked_at is None:
        MemberSession.objects.filter(pk=row.pk).update(revoked_at=clock.now())


def current(request: HttpRequest) -> MemberSession | None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if not key:
        return None
    return (MemberSession.objects.select_related("account")
            .annotate(strictest_idle_minutes=_strictest_idle())
            .filter(key_hash=key_hash(key)).first())


def ended_reason(row: MemberSession | None, member_id: int) -> str | None:
    """Why the session may no longer be used, or None when it is valid now."""
    if row is None or row.member_id != member_id or row.revoked_at is not None:
        return "revoked"
    now = clock.now()
    if now >= row.absolute_expires_at:
        return "absolute"
    if now - row.last_seen_at > idle_timeout(row):
        return "idle"
    return None


def touch(row: MemberSession) -> None:
    """Record activity, at most once per ``SESSION_LAST_SEEN_INTERVAL_SECONDS``."""
    now = clock.now()
    if (now - row.last_seen_at).total_seconds() >= settings.SESSION_LAST_SEEN_INTERVAL_SECONDS:
        MemberSession.objects.filter(pk=row.pk).update(last_seen_at=now)
        row.last_seen_at = now


def rotate(request: HttpRequest) -> None:
    """New session id for the same session (privilege change); the row follows it."""
    row = current(request)
    request.session.cycle_key()
    if row is not None:
        MemberSession.objects.filter(pk=row.pk).update(
            key_hash=key_hash(request.session.session_key))


def follow_new_key(request: HttpRequest) -> None:
    """The session got a new key outside :func:`rotate` (Django's
    ``update_session_auth_hash``): point the member's session row at it."""
    row = getattr(request, "member_session", None)
    if row is not None:
        MemberSession.objects.filter(pk=row.pk).update(
            key_hash=key_hash(request.session.session_key))


def active_for(member) -> list[MemberSession]:
    """The member's sessions that could still be used, newest activity first."""
    rows = (MemberSession.objects.select_related("account")
            .annotate(strictest_idle_minutes=_strictest_idle())
            .filter(member=member, revoked_at__isnull=True).order_by("-last_seen_at"))
    return [r for r in rows if ended_reason(r, member.pk) is None]
