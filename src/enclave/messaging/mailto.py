"""The ``mailto:`` half of ``List-Unsubscribe``: an address whose local part is a signed
token, for mail clients that unsubscribe by sending an email rather than by the https
one-click link (RFC 2369; the link stays first and is what RFC 8058 one-click uses).

Only when the deployment receives mail: ``ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN`` names a
domain whose MX is the email service provider's inbound service, which posts each
message to ``/webhooks/esp/<name>/inbound/`` (``messaging.webhooks``). Without it no
broadcast carries a mailto address.

The local part, ``unsubscribe.<person>.<broadcast>.<day>.<mac>``, names ids only, never
an address: ``day`` is when it was made (days since 1970, from the one clock) and ``mac``
is Django's ``salted_hmac`` (SHA-256 under the deployment's secret key, salt
``enclave.messaging.mailto``) over them and the person's account and ``row_id`` — so it
opens nothing for an erased person, nor for another person given the same id after a
restore — cut to 120 bits and written in lower-case base32 (a mail system may change
the case of a local part; nothing here depends on it). Valid ``LIFETIME``, as the link
is. An address that would be longer than a local part may be (64), or than an address
may be (254, what :func:`read` accepts), is not offered.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re

from django.conf import settings
from django.utils.crypto import salted_hmac

from enclave.core import clock

PREFIX = "unsubscribe"
LIFETIME = dt.timedelta(days=400)
LOCAL_MAX = 64
ADDRESS_MAX = 254  # RFC 5321's path (256) without its angle brackets
_SALT = "enclave.messaging.mailto"
_MAC_BYTES = 15  # 120 bits: 24 base32 characters, no padding
_LOCAL = re.compile(rf"{PREFIX}\.(\d{{1,18}})\.(\d{{1,18}})\.(\d{{1,6}})\.([a-z2-7]{{24}})\Z")


def _mac(account_id: int, person_id: int, row_id, broadcast_id: int, day: int) -> str:
    digest = salted_hmac(_SALT, f"{account_id}:{person_id}:{row_id}:{broadcast_id}:{day}",
                         algorithm="sha256").digest()[:_MAC_BYTES]
    return base64.b32encode(digest).decode().lower()


def _today() -> int:
    return int(clock.now().timestamp() // 86400)


def address(person, broadcast_id: int) -> str | None:
    """The mailto address that unsubscribes ``person`` from the topics of broadcast
    ``broadcast_id``; None when the deployment receives no mail (or the address would be
    too long)."""
    domain = settings.CONFIG.unsubscribe_mail_domain
    if not domain:
        return None
    day = _today()
    local = (f"{PREFIX}.{person.pk}.{broadcast_id}.{day}."
             f"{_mac(person.account_id, person.pk, person.row_id, broadcast_id, day)}")
    made = f"{local}@{domain}"
    return made if len(local) <= LOCAL_MAX and len(made) <= ADDRESS_MAX else None


def read(recipient: str):
    """(person, broadcast) for a recipient address this deployment made and that is still
    valid — at the configured domain, case aside; None for anything else."""
    from enclave.messaging.models import Broadcast
    from enclave.people.models import Person

    domain = settings.CONFIG.unsubscribe_mail_domain
    if not domain or not isinstance(recipient, str) or len(recipient) > ADDRESS_MAX:
        return None
    local, _, host = recipient.strip().lower().rpartition("@")
    match = _LOCAL.match(local)
    if host != domain or match is None:
        return None
    person_id, broadcast_id, day, mac = (int(match[1]), int(match[2]), int(match[3]),
                                         match[4])
    if not 0 <= _today() - day <= LIFETIME.days:
        return None
    try:
        base64.b32decode(mac.upper())
    except (binascii.Error, ValueError):
        return None
    person = Person.objects.filter(pk=person_id).first()
    if person is None or not hmac.compare_digest(
            mac, _mac(person.account_id, person.pk, person.row_id, broadcast_id, day)):
        return None
    broadcast = Broadcast.objects.filter(pk=broadcast_id, account_id=person.account_id) \
        .first()
    return (person, broadcast) if broadcast is not None else None
