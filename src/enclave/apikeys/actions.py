"""Every API-key state change: create, roll, revoke, expose, age policy — each one
transaction with its audit row. Audit rows name keys by public id; never the token or
its hash.

Re-authentication for creating and rolling keys from the web is the endpoint registry's
rule (``reauth`` in ``access.endpoints``), as for role changes; operators on the server
use ``enclave apikeys`` (shell access is the stronger proof).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from enclave.access.permissions import ROLE_PERMISSIONS, Permission
from enclave.access.principal import MEMBER, NotAuthorized, Principal, authorize
from enclave.access.scopes import CEILINGS, SCOPES, ceiling_permissions
from enclave.apikeys import tokens
from enclave.apikeys.models import (
    BROWSER,
    IDENTIFY_LINK,
    IDENTIFY_MODES,
    KINDS,
    POLICY_MAX_DAYS,
    POLICY_MIN_DAYS,
    SERVER,
    ApiKey,
    ApiKeyPolicy,
)
from enclave.core import audit, clock
from enclave.core.actions import path_without_credentials
from enclave.core.models import AuditEventType

MAC_PURPOSE = "tokens"
MAX_NAME_LENGTH = 100
MAX_ALLOWED_NETWORKS = 50
MAX_ALLOWED_ORIGINS = 20
BROWSER_SCOPES = ["events:write"]
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(\*\.)?({_LABEL}\.)*{_LABEL}")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class ApiKeyRuleError(Exception):
    """The key's state does not allow this (rolling a revoked key...). ``str()`` is safe."""


def token_message(token: str) -> bytes:
    """What the keyed hash covers: the whole token, under a domain label."""
    return b"enclave.api-key:" + token.encode("ascii")


def mac_token(token: str) -> tuple[int, bytes]:
    from enclave.keys import api

    return api.mac(MAC_PURPOSE, token_message(token))


def token_matches(key: ApiKey, token: str) -> bool:
    """Constant-time check of ``token`` against the key's stored keyed hash."""
    from enclave.keys import api
    from enclave.keys.errors import KeyringError

    try:
        return api.verify_mac(MAC_PURPOSE, key.mac_version, token_message(token),
                              bytes(key.secret_mac))
    except KeyringError:
        return False  # the key's hash version was retired: the key can no longer be checked


# --- validation ---

def _require_member_manager(actor: Principal, account_id: int) -> None:
    """Keys are made by members (never by another key) holding ``API_KEYS_MANAGE``."""
    authorize(actor, Permission.API_KEYS_MANAGE, account_id=account_id)
    if actor.kind != MEMBER or actor.membership is None:
        raise NotAuthorized("Only a member of the account can create or roll API keys.")


def default_ceiling(perms) -> str:
    """The largest built-in role whose permissions the creator holds (their own role
    for built-in roles; the best fit under a custom role)."""
    fitting = [r for r in CEILINGS if ROLE_PERMISSIONS[r] <= perms]
    return max(fitting, key=lambda r: len(ROLE_PERMISSIONS[r])) if fitting else "viewer"


def clean_name(name) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError({"name": "Give the key a name (what uses it)."})
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError({"name": f"Names are at most {MAX_NAME_LENGTH} characters."})
    return name


def _scope_list(scopes) -> list[str]:
    """Scopes as given: a list, or one text separated by commas or spaces."""
    if isinstance(scopes, str):
        return [s for s in scopes.replace(" ", ",").split(",") if s]
    return list(scopes or ())


def clean_scopes(scopes, ceiling_perms: frozenset[str]) -> list[str]:
    scopes = _scope_list(scopes)
    if not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(map(str, unknown))}. "
                                         f"Known: {', '.join(SCOPES)}."})
    too_wide = [s for s in scopes if not SCOPES[s] <= ceiling_perms]
    if too_wide:
        raise ValidationError({"scopes": f"The role ceiling does not allow: "
                                         f"{', '.join(too_wide)}."})
    return sorted(set(scopes))


def clean_ceiling(role, creator_perms: frozenset[str]) -> str:
    if role not in CEILINGS:
        raise ValidationError({"role_ceiling": f"Choose one of: {', '.join(CEILINGS)}."})
    if not ceiling_permissions(role) <= creator_perms:
        raise ValidationError({"role_ceiling": f"The ceiling cannot exceed your own role: "
                                               f"{role} has permissions you do not."})
    return role


def clean_networks(values) -> list[str]:
    """CIDRs (or single addresses) as normalised network strings."""
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    out = []
    for value in values or ():
        try:
            out.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            raise ValidationError({"allowed_ips": f"{str(value)[:60]!r} is not an IP address "
                                                  "or CIDR network."}) from None
    if len(out) > MAX_ALLOWED_NETWORKS:
        raise ValidationError({"allowed_ips": f"At most {MAX_ALLOWED_NETWORKS} networks."})
    return sorted(set(out))


def clean_kind(value) -> str:
    kind = str(value or SERVER).strip().lower()
    if kind not in KINDS:
        raise ValidationError({"kind": f"Choose one of: {', '.join(KINDS)}."})
    return kind


def clean_origin(value) -> str:
    """One allowed origin, normalised: ``https://host[:port]`` (``http://`` only for
    localhost), a ``*.`` prefix for every subdomain of a host; no path, query or user."""
    text = str(value).strip().lower().rstrip("/")
    shown = f"{text[:80]!r}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValidationError({"allowed_origins": f"{shown} is not an origin."}) from None
    host = parts.hostname or ""
    if (parts.scheme not in ("https", "http") or parts.path or parts.query
            or parts.fragment or "@" in parts.netloc or not host):
        raise ValidationError({"allowed_origins": f"{shown} is not an origin: give the "
                                                  "scheme and host only, like "
                                                  "https://www.example.com."})
    local = host in _LOCAL_HOSTS
    if parts.scheme == "http" and not local:
        raise ValidationError({"allowed_origins": f"{shown}: a site that tracks must be "
                                                  "served over https (http only for "
                                                  "localhost)."})
    if not local and (not _HOST.fullmatch(host) or "." not in host.removeprefix("*.")):
        raise ValidationError({"allowed_origins": f"{shown} is not a host name a site can "
                                                  "have."})
    if host.startswith("*.") and _too_wide(host[2:]):
        raise ValidationError({"allowed_origins": f"{shown} would allow every site under a "
                                                  "public suffix (or an address); name your "
                                                  "own domain."})
    bracketed = f"[{host}]" if ":" in host else host
    default = {"https": 443, "http": 80}[parts.scheme]  # browsers leave it out of Origin
    return f"{parts.scheme}://{bracketed}" + (f":{port}" if port and port != default else "")


def origin_allowed(origin: str, allowed) -> bool:
    """Whether the request's ``Origin`` header is one of a browser key's origins (exact,
    or under a ``*.`` origin: any subdomain of its host, same scheme and port)."""
    origin = origin.strip().lower()
    if not origin or origin == "null":
        return False
    for entry in allowed:
        if origin == entry:
            return True
        scheme, _, rest = entry.partition("://*.")
        if rest:
            o_scheme, _, o_rest = origin.partition("://")
            if o_scheme == scheme and o_rest.endswith("." + rest) and \
                    "/" not in o_rest and "@" not in o_rest:
                return True
    return False


@functools.cache
def _suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _too_wide(domain: str) -> bool:
    """A wildcard's domain that many unrelated owners share: a public suffix (``co.uk``,
    ``github.io``) or an IP address's tail."""
    return all(label.isdigit() for label in domain.split(".")) or \
        _suffixes().is_public(domain)


def clean_origins(values) -> list[str]:
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    out = sorted({clean_origin(v) for v in values or ()})
    if not out:
        raise ValidationError({"allowed_origins": "A browser key needs at least one "
                                                  "allowed origin (the site it runs on)."})
    if len(out) > MAX_ALLOWED_ORIGINS:
        raise ValidationError({"allowed_origins": f"At most {MAX_ALLOWED_ORIGINS} origins."})
    return out


def clean_identify_mode(value) -> str:
    mode = str(value or IDENTIFY_LINK).strip().lower()
    if mode not in IDENTIFY_MODES:
        raise ValidationError({"identify_mode": f"Choose one of: {', '.join(IDENTIFY_MODES)}."})
    return mode


def _browser_settings(kind, *, scopes, networks, origins, require_consent, identify_mode
                      ) -> dict:
    """A browser key's fixed shape: the ``events:write`` scope only, no IP allowlist
    (visitors come from anywhere), at least one origin. Server keys take no browser
    settings."""
    if kind == SERVER:
        if origins or require_consent or identify_mode not in (None, "", IDENTIFY_LINK):
            raise ValidationError({"kind": "Allowed origins, consent and identify rules "
                                           "are settings of browser keys."})
        return {}
    if _scope_list(scopes) not in ([], BROWSER_SCOPES):
        raise ValidationError({"scopes": "A browser key has the events:write scope only."})
    if networks:
        raise ValidationError({"allowed_ips": "A browser key is used by visitors from any "
                                              "address: it has no IP allowlist."})
    return {"allowed_origins": clean_origins(origins),
            "require_consent": bool(require_consent),
            "identify_mode": clean_identify_mode(identify_mode)}


def clean_days(value, *, field: str = "expires_days") -> int:
    if value in (None, ""):
        return settings.API_KEY_DEFAULT_DAYS
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "Enter a whole number of days."}) from None
    if not 1 <= days <= settings.API_KEY_MAX_DAYS:
        raise ValidationError({field: f"Keys expire after 1 to {settings.API_KEY_MAX_DAYS} "
                                      "days."})
    return days


def clean_grace_hours(value) -> int:
    if value in (None, ""):
        return settings.API_KEY_ROLL_GRACE_HOURS
    try:
        hours = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"grace_hours": "Enter a whole number of hours."}) from None
    limit = settings.API_KEY_ROLL_GRACE_MAX_HOURS
    if not 0 <= hours <= limit:
        raise ValidationError({"grace_hours": f"The grace period is 0 to {limit} hours."})
    return hours


def _new_public_id() -> str:
    while True:
        public_id = tokens.new_public_id()
        if not ApiKey.objects.filter(public_id=public_id).exists():
            return public_id


def _issue(account_id: int, *, name, scopes, ceiling, networks, days, actor: Principal,
           predecessor=None, kind=SERVER, browser=None) -> tuple[str, ApiKey]:
    """Insert a key row; returns the token (only here, once)."""
    public_id = _new_public_id()
    token = tokens.make_token(settings.ENCLAVE_ENV, public_id)
    version, tag = mac_token(token)
    now = clock.now()
    key = ApiKey.objects.create(
        account_id=account_id, public_id=public_id, name=name, secret_mac=tag,
        mac_version=version, scopes=scopes, role_ceiling=ceiling, allowed_ips=networks,
        created_by=actor.member, creator_membership=actor.membership, created_at=now,
        expires_at=now + dt.timedelta(days=days), predecessor=predecessor, kind=kind,
        **(browser or {}))
    return token, key


def _browser_of(key: ApiKey) -> dict:
    return ({"allowed_origins": list(key.allowed_origins),
             "require_consent": key.require_consent, "identify_mode": key.identify_mode}
            if key.kind == BROWSER else {})


def _key_extra(key: ApiKey, **more) -> dict:
    return {"api_key": key.public_id, "kind": key.kind, "scopes": list(key.scopes),
            "role_ceiling": key.role_ceiling, "expires_at": key.expires_at.isoformat(),
            "allowed_networks": len(key.allowed_ips), **_browser_of(key), **more}


# --- actions ---

def do_create_api_key(account, *, name, scopes=(), role_ceiling=None, allowed_ips=(),
                      expires_days=None, kind=SERVER, allowed_origins=(),
                      require_consent=False, identify_mode=None, actor: Principal,
                      request=None) -> tuple[str, ApiKey]:
    """Create a key; returns ``(token, key)`` — the token exists only in this return value.

    Needs ``api_keys.manage``. The role ceiling (default: the creator's own role or the
    best built-in fit) may not exceed the creator's permissions, and each scope must fit
    under the ceiling. A ``browser`` key (a website's tracking key, ``apikeys.browser``)
    has the ``events:write`` scope only, no IP allowlist, its ``allowed_origins``, whether
    visitors must consent first and its ``identify_mode``. Raises PermissionDenied or
    ValidationError (field → message).
    """
    account_id = getattr(account, "pk", account)
    _require_member_manager(actor, account_id)
    creator_perms = actor.perms
    name = clean_name(name)
    kind = clean_kind(kind)
    ceiling = clean_ceiling(role_ceiling or default_ceiling(creator_perms), creator_perms)
    browser = _browser_settings(kind, scopes=scopes, networks=allowed_ips,
                                origins=allowed_origins, require_consent=require_consent,
                                identify_mode=identify_mode)
    scopes = clean_scopes(BROWSER_SCOPES if browser else scopes,
                          ceiling_permissions(ceiling) & creator_perms)
    networks = clean_networks(allowed_ips)
    days = clean_days(expires_days)
    with transaction.atomic():
        token, key = _issue(account_id, name=name, scopes=scopes, ceiling=ceiling,
                            networks=networks, days=days, actor=actor, kind=kind,
                            browser=browser)
        audit.record(AuditEventType.API_KEY_CREATED, actor=actor, account_id=account_id,
                     request=request, target_type="api_key", target_id=key.public_id,
                     extra=_key_extra(key))
    return token, key


def do_roll_api_key(key: ApiKey, *, actor: Principal, grace_hours=None, expires_days=None,
                    request=None) -> tuple[str, ApiKey]:
    """Issue a successor (same name, scopes, ceiling, allowlist; new expiry) and keep
    ``key`` valid for ``grace_hours`` (default ``API_KEY_ROLL_GRACE_HOURS``, at most
    ``API_KEY_ROLL_GRACE_MAX_HOURS``). The successor belongs to ``actor``, so its ceiling
    must fit the actor's role. Returns ``(token, successor)``.

    Raises PermissionDenied, ValidationError, or ApiKeyRuleError when the key is not
    active (revoked, exposed, expired or already rolled).
    """
    _require_member_manager(actor, key.account_id)
    creator_perms = actor.perms
    hours = clean_grace_hours(grace_hours)
    days = clean_days(expires_days)
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        state = locked.state()
        if state != "active":
            raise ApiKeyRuleError(f"Only an active key can be rolled; this key is {state}.")
        ceiling = clean_ceiling(locked.role_ceiling, creator_perms)
        scopes = clean_scopes(locked.scopes, ceiling_permissions(ceiling) & creator_perms)
        now = clock.now()
        locked.rolled_at = now
        locked.grace_until = min(now + dt.timedelta(hours=hours), locked.expires_at)
        locked.save(update_fields=["rolled_at", "grace_until"])
        token, successor = _issue(locked.account_id, name=locked.name, scopes=scopes,
                                  ceiling=ceiling, networks=list(locked.allowed_ips),
                                  days=days, actor=actor, predecessor=locked,
                                  kind=locked.kind, browser=_browser_of(locked))
        audit.record(AuditEventType.API_KEY_ROLLED, actor=actor, account_id=locked.account_id,
                     request=request, target_type="api_key", target_id=locked.public_id,
                     extra=_key_extra(successor, api_key=locked.public_id,
                                      successor=successor.public_id,
                                      grace_until=locked.grace_until.isoformat()))
    key.rolled_at, key.grace_until = locked.rolled_at, locked.grace_until
    return token, successor


def do_revoke_api_key(key: ApiKey, *, actor: Principal, request=None) -> ApiKey:
    """Revoke ``key`` now; the next request with it is refused on every app server (no
    server caches key validity). Needs ``API_KEYS_MANAGE`` (a member, or a key with the
    ``api_keys:revoke`` scope — named in the audit row as ``via_api_key``). Revoking
    twice is a no-op."""
    authorize(actor, Permission.API_KEYS_MANAGE, account_id=key.account_id)
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = clock.now()
        locked.save(update_fields=["revoked_at"])
        extra = {"api_key": locked.public_id}
        audit.record(AuditEventType.API_KEY_REVOKED, actor=actor, account_id=locked.account_id,
                     request=request, target_type="api_key", target_id=locked.public_id,
                     extra=extra)
    key.revoked_at = locked.revoked_at
    return locked


def do_mark_api_keys_exposed(candidates, *, request=None) -> list[str]:
    """System action: keys whose full token arrived over plain HTTP are marked exposed and
    revoked. ``candidates`` are texts that may hold tokens (header values, query values).

    Only a token whose secret matches is acted on, so nobody can revoke someone else's
    key by sending its public id in clear. Returns the public ids marked.
    """
    found = {}
    for text in candidates:
        for token in tokens.find_tokens(text):
            found[tokens.public_id_of(token)] = token
    marked = []
    if not found:
        return marked
    # The path may hold a token itself (they are found anywhere in a request): never store it.
    path = path_without_credentials(getattr(request, "path", ""), found.values())[:200]
    with transaction.atomic():
        rows = ApiKey.objects.select_for_update().filter(public_id__in=list(found))
        for key in rows.order_by("pk"):
            if key.exposed_at is not None or not token_matches(key, found[key.public_id]):
                continue
            now = clock.now()
            key.exposed_at = now
            key.revoked_at = key.revoked_at or now
            key.save(update_fields=["exposed_at", "revoked_at"])
            audit.record(AuditEventType.API_KEY_EXPOSED, account_id=key.account_id,
                         request=request, target_type="api_key", target_id=key.public_id,
                         extra={"api_key": key.public_id, "path": path})
            marked.append(key.public_id)
    return marked


def policy_of(account_id: int) -> ApiKeyPolicy:
    """The account's key-age policy (unsaved default when never set)."""
    return (ApiKeyPolicy.objects.filter(account_id=account_id).first()
            or ApiKeyPolicy(account_id=account_id))


def do_set_api_key_policy(account, *, max_age_days, actor: Principal,
                          request=None) -> ApiKeyPolicy:
    """Set the account's key-age policy (``ACCOUNT_MANAGE``): keys older than
    ``max_age_days`` are flagged on the keys page and by control API-1."""
    account_id = getattr(account, "pk", account)
    authorize(actor, Permission.ACCOUNT_MANAGE, account_id=account_id)
    try:
        days = int(max_age_days)
    except (TypeError, ValueError):
        raise ValidationError({"max_age_days": "Enter a whole number of days."}) from None
    if not POLICY_MIN_DAYS <= days <= POLICY_MAX_DAYS:
        raise ValidationError({"max_age_days": f"Choose {POLICY_MIN_DAYS} to "
                                               f"{POLICY_MAX_DAYS} days."})
    with transaction.atomic():
        policy, _ = ApiKeyPolicy.objects.select_for_update().get_or_create(
            account_id=account_id)
        if policy.max_age_days == days:
            return policy
        old = policy.max_age_days
        policy.max_age_days, policy.updated_at = days, clock.now()
        policy.save(update_fields=["max_age_days", "updated_at"])
        audit.record(AuditEventType.API_KEY_POLICY_CHANGED, actor=actor, account_id=account_id,
                     request=request, target_type="account", target_id=account_id,
                     extra={"old": old, "new": days})
    return policy


def note_key_use(key: ApiKey, ip: str | None, token: str) -> bool:
    """Record ``last_used_at``/``last_used_ip`` at most once per
    ``API_KEY_LAST_USED_INTERVAL_SECONDS`` per key (one conditional UPDATE, safe across
    servers). Bookkeeping, not a state change anyone decides, so no audit row (like a
    session's last-seen time). When the keyring's ``tokens`` key was rotated, the stored
    hash is upgraded to the primary version in the same write. Returns True if written.
    """
    now = clock.now()
    interval = dt.timedelta(seconds=settings.API_KEY_LAST_USED_INTERVAL_SECONDS)
    if key.last_used_at is not None and now - key.last_used_at < interval:
        return False
    fields = {"last_used_at": now, "last_used_ip": ip}
    version, tag = mac_token(token)
    if version != key.mac_version:
        fields.update(mac_version=version, secret_mac=tag)
    written = (ApiKey.objects.filter(pk=key.pk)
               .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - interval))
               .update(**fields))
    if written:
        key.last_used_at, key.last_used_ip = now, ip
    return bool(written)
