"""Signed, expiring links a person uses without signing in: the preference centre, the
double opt-in confirmation and an email's one-click unsubscribe link.

A token is Django's ``Signer`` (HMAC-SHA256 under the deployment's secret key) over the
time it was made (from the one clock, so tests move it), the person's account, id and
``row_id`` — so a token for an erased person, or one
minted before a restore gave their id to someone else, opens nothing — plus, for a
confirmation, the topic. Tokens ride in URL paths the log policy redacts
(``/preferences/<token>``, ``/confirm/<token>``, ``/unsubscribe/<token>``); they are
never stored.
"""

from __future__ import annotations

import datetime as dt

from django.core import signing

PREFERENCES, CONFIRMATION, UNSUBSCRIBE = "preferences", "confirmation", "unsubscribe"
LIFETIME = {PREFERENCES: dt.timedelta(days=90), CONFIRMATION: dt.timedelta(days=7),
            # An email's one-click link (RFC 8058) must work as long as people keep mail.
            UNSUBSCRIBE: dt.timedelta(days=400)}


def _signer(kind: str) -> signing.Signer:
    return signing.Signer(salt=f"enclave.audience.{kind}")


def make(person, kind: str, *, topic_id: int | None = None,
         topic_ids: list[int] | None = None) -> str:
    """A token for ``person``: a confirmation names one topic, an unsubscribe link the
    topics of the email it came in."""
    from enclave.core import clock

    payload = {"a": person.account_id, "p": person.pk, "r": str(person.row_id),
               "i": int(clock.now().timestamp())}
    if topic_id is not None:
        payload["t"] = topic_id
    if topic_ids is not None:
        payload["t"] = sorted(int(t) for t in topic_ids)
    return _signer(kind).sign_object(payload, compress=False)


def read(token: str, kind: str):
    """(person, topic id(s) or None) for a valid, unexpired ``token`` of ``kind``; None
    for anything else (tampered, expired, another kind, the person gone)."""
    from enclave.core import clock
    from enclave.people.models import Person

    if not isinstance(token, str) or len(token) > 1000:  # an unsubscribe token names topics
        return None
    try:
        payload = _signer(kind).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), int):
        return None
    age = clock.now().timestamp() - payload["i"]
    if not 0 <= age <= LIFETIME[kind].total_seconds():
        return None
    person = Person.objects.filter(account_id=payload.get("a"), pk=payload.get("p"),
                                   row_id=payload.get("r")).first()
    if person is None:
        return None
    return person, payload.get("t")
