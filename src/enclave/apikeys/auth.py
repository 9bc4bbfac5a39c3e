"""Authenticating API requests by key: the DRF class and the plain-Django function.

Per request: the token's shape, checksum and environment are checked without the
database; then ONE indexed query loads the key with its account, creator and the
creator's membership; the keyed hash is compared in constant time; then state (exposed,
revoked, rolled past grace, expired, creator removed) and the IP allowlist. Nothing about
key validity is cached in the process, so a revocation takes effect on the next request
on every app server.

The result is an ``access.Principal`` (``access.principal.for_api_key``): the creator's
CURRENT permissions ∩ the role ceiling's ∩ the union of the key's scopes'
(``access.scopes``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication

from enclave.access.principal import Principal, for_api_key
from enclave.apikeys import errors, throttle, tokens
from enclave.apikeys.actions import note_key_use, token_matches
from enclave.apikeys.models import ApiKey
from enclave.core import audit, clock
from enclave.core.netaddr import in_networks
from enclave.core.prepared import Prepared

__all__ = ["ApiKeyAuthentication", "WriteKeyAuthentication", "authenticate_request",
           "authenticate_token"]

_STATE_ERRORS = {
    "exposed": errors.KeyExposed,
    "revoked": errors.KeyRevoked,
    "rolled": errors.KeyRolled,
    "expired": errors.KeyExpired,
}


def credential_from(request: HttpRequest, *, basic: bool = False) -> str:
    """The key from ``Authorization: Bearer <key>`` — or, when ``basic`` (the tracking
    spec's SDKs), ``Basic base64(<key>:)``, the key as the user name and the password
    ignored. Raises KeyMissing / KeyMalformed."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.strip():
        raise errors.KeyMissing()
    scheme, _, value = header.strip().partition(" ")
    if basic and scheme.lower() == "basic":
        return _basic_user(value.strip())
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.KeyMalformed("Send the API key as `Authorization: Bearer <key>`"
                                  + (" or as the Basic user name." if basic else "."))
    return value.strip()


def _basic_user(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    user = decoded.partition(":")[0].strip()
    if not user:
        raise errors.KeyMalformed("Send the write key as the Basic user name "
                                  "(`Authorization: Basic base64(<key>:)`).")
    return user


def _allowed(networks, ip: str | None) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return in_networks(str(address), tuple(networks))


# --- the one query -----------------------------------------------------------------------
# The key, its account, its creator and the creator's membership (with custom role) in
# one indexed query. Compiling that ORM query costs several times more than running it,
# and on PostgreSQL planning the five-table join did too, so it is an
# ``enclave.core.prepared.Prepared`` query: compiled once per connection (and a
# server-side prepared statement on PostgreSQL), re-run with the public id. The ORM's
# own converters turn the row into values and ``from_db`` the values into instances.
# Only the query is prepared: every request reads the key's row afresh.
_SENTINEL = "~public-id~"


def _parts():
    from enclave.accounts.models import Account, Membership, Role
    from enclave.identity.models import Member

    return (("", ApiKey), ("account__", Account), ("creator_membership__", Membership),
            ("creator_membership__custom_role__", Role), ("created_by__", Member))


@functools.cache
def _layout():
    return [(prefix, model, [f.attname for f in model._meta.concrete_fields])
            for prefix, model in _parts()]


_LOOKUP = Prepared(
    "api_key_lookup",
    lambda public_id: ApiKey.objects.filter(public_id=public_id).values_list(
        *[prefix + attname for prefix, _, attnames in _layout() for attname in attnames])[:1],
    public_id=_SENTINEL)


def load_key(public_id: str) -> ApiKey | None:
    """The key with ``public_id`` and its related rows (one query), or None."""
    alias = ApiKey.objects.db
    rows = _LOOKUP.rows(alias, public_id=public_id)
    if not rows:
        return None
    row = rows[0]
    objects, at = {}, 0
    for prefix, model, attnames in _layout():
        values = row[at:at + len(attnames)]
        at += len(attnames)
        objects[prefix] = (None if values[0] is None
                           else model.from_db(alias, attnames, values))
    key = objects[""]
    key.account = objects["account__"]
    key.created_by = objects["created_by__"]
    membership = objects["creator_membership__"]
    if membership is not None:
        membership.custom_role = objects["creator_membership__custom_role__"]
        membership.account = key.account
        if key.created_by is not None and key.created_by.pk == membership.member_id:
            membership.member = key.created_by
    key.creator_membership = membership
    return key


def authenticate_token(token: str, ip: str | None) -> Principal:
    """Check ``token`` sent from ``ip``; the principal, or an ``errors.ApiKeyError``."""
    try:
        parsed = tokens.parse(token)
    except tokens.TokenFormatError as exc:
        cls = errors.KeyBadChecksum if exc.reason == "checksum" else errors.KeyMalformed
        raise cls(str(exc)) from None
    if parsed.environment != settings.ENCLAVE_ENV:
        raise errors.WrongEnvironment(
            f"This key was issued by a {parsed.environment} deployment; this is "
            f"{settings.ENCLAVE_ENV}.")
    key = load_key(parsed.public_id)
    if key is None or not token_matches(key, token):
        raise errors.KeyUnknown()
    state = key.state(clock.now())
    if state in _STATE_ERRORS:
        raise _STATE_ERRORS[state]()
    membership = key.creator_membership
    member = key.created_by
    if membership is None or member is None or not member.is_active:
        raise errors.KeyCreatorRemoved()
    if not _allowed(key.allowed_ips, ip):
        raise errors.IpNotAllowed(f"Requests from {ip or 'this address'} are outside the "
                                  "key's IP allowlist.")
    note_key_use(key, ip, token)
    return for_api_key(key, membership, member=member)


def authenticate_request(request: HttpRequest, *, basic: bool = False,
                         token: str | None = None) -> Principal:
    """The principal of the request's key (for :class:`ApiKeyAuthentication`), or an
    ``errors.ApiKeyError`` (the API exception handler renders it). Also sets
    ``request.principal``. An address over the ``api.auth_failures`` limit of refused
    keys gets ``throttle.RateLimited`` (429) before any lookup. ``token``: the key as
    found elsewhere than the Authorization header (a browser library's body)."""
    ip = audit.client_ip(request)
    throttle.refuse_if_failing(ip)
    try:
        principal = authenticate_token(token if token is not None
                                       else credential_from(request, basic=basic), ip)
    except errors.ApiKeyError:
        throttle.count_failure(ip)
        raise
    request.principal = principal
    return principal


class ApiKeyAuthentication(BaseAuthentication):
    """DRF: ``request.user`` = the key's creator, ``request.auth`` = its Principal.

    Without an Authorization header it answers None, so public endpoints stay public;
    ``permissions.HasScope`` then refuses with 401 ``key-missing``.
    """

    basic = False

    def authenticate(self, request):
        django_request = getattr(request, "_request", request)
        if not django_request.META.get("HTTP_AUTHORIZATION", "").strip():
            return None
        principal = authenticate_request(django_request, basic=self.basic)
        return principal.member, principal

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="enclave"'


class WriteKeyAuthentication(ApiKeyAuthentication):
    """The tracking spec's SDKs send the key as the Basic user name; Bearer works too."""

    basic = True

    def authenticate_header(self, request) -> str:
        return 'Basic realm="enclave"'
