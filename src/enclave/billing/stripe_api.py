"""The one place Enclave talks to Stripe: the official SDK's ``StripeClient``, built from
configuration for each use (the secret key is read from its file, never kept in settings,
the database or a log line), and the few calls billing makes.

Every call's failure — Stripe unreachable, a timeout, an error answer — becomes
:class:`StripeUnavailable` with a message safe to show; the callers change nothing of
their own state before the call has succeeded.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import stripe
from django.conf import settings

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 15
QUICK_TIMEOUT_SECONDS = 5


class StripeUnavailable(Exception):
    """Stripe could not do it (unreachable, or it refused). ``str()`` is safe to show."""


class SignatureRefused(Exception):
    """A webhook's signature is missing, wrong or too old; or its body is not an event."""


def _secret(path) -> str:
    return path.read_text(encoding="utf-8").strip()


def client(*, quick: bool = False) -> stripe.StripeClient:
    """A client for one use. Reads a page waits on are ``quick`` (a 5 s timeout, no
    retry): Stripe being slow must not hold the page."""
    cfg = settings.CONFIG
    if cfg.billing != "stripe" or cfg.stripe_secret_key_file is None:
        raise StripeUnavailable("Billing is not turned on for this deployment.")
    options = {}
    if cfg.stripe_api_base:
        options["base_addresses"] = {"api": cfg.stripe_api_base}
    return stripe.StripeClient(
        _secret(cfg.stripe_secret_key_file), max_network_retries=0 if quick else 1,
        http_client=stripe.new_default_http_client(
            timeout=QUICK_TIMEOUT_SECONDS if quick else TIMEOUT_SECONDS), **options)


def call(what: str, fn, *args, **kwargs):
    """Run one SDK call; any Stripe or network failure → :class:`StripeUnavailable`."""
    try:
        return fn(*args, **kwargs)
    except stripe.StripeError as exc:
        # The error's class and Stripe's request id; never its message (it can echo
        # what was sent).
        log.warning("stripe call failed", extra={
            "call": what, "error": type(exc).__name__,
            "stripe_status": getattr(exc, "http_status", None)})
        if isinstance(exc, stripe.APIConnectionError):
            raise StripeUnavailable("Stripe could not be reached. Nothing was changed; "
                                    "try again in a moment.") from None
        raise StripeUnavailable("Stripe refused the request. Nothing was changed; try "
                                "again, or contact the operator if it keeps failing.") from None


def construct_event(payload: bytes, signature: str) -> stripe.Event:
    """The verified event (the SDK checks the ``Stripe-Signature`` HMAC and its
    timestamp within :data:`stripe.Webhook.DEFAULT_TOLERANCE`, 300 s); raises
    :class:`SignatureRefused`."""
    secret = _secret(settings.CONFIG.stripe_webhook_secret_file)
    try:
        return stripe.Webhook.construct_event(payload.decode("utf-8"), signature, secret)
    except stripe.SignatureVerificationError as exc:
        raise SignatureRefused("stale signature" if "tolerance" in str(exc).lower()
                               else "signature") from None
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise SignatureRefused("malformed") from None


@dataclass(frozen=True)
class SubscriptionState:
    """What billing keeps of a Stripe subscription."""

    subscription_id: str
    customer_id: str
    price_id: str
    status: str
    current_period_end: dt.datetime | None
    cancel_at_period_end: bool
    created: int


def field(obj, key, default=None):
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


def state_of(sub) -> SubscriptionState:
    """Read a subscription object (SDK object or dict) the way every API version
    shapes it: the price of its first item (``price``, or the older ``plan``), the
    period end on the subscription or (newer API versions) on the item."""
    items = field(field(sub, "items", {}), "data", []) or []
    item = items[0] if items else {}
    price = field(field(item, "price", {}), "id", "") or field(field(item, "plan", {}), "id", "")
    end = field(sub, "current_period_end") or field(item, "current_period_end")
    customer = field(sub, "customer", "")
    if not isinstance(customer, str):
        customer = field(customer, "id", "")
    return SubscriptionState(
        subscription_id=str(field(sub, "id", "")), customer_id=str(customer),
        price_id=str(price), status=str(field(sub, "status", "")),
        current_period_end=dt.datetime.fromtimestamp(int(end), tz=dt.UTC) if end else None,
        cancel_at_period_end=bool(field(sub, "cancel_at_period_end", False)),
        created=int(field(sub, "created", 0) or 0))


# The statuses that decide an account's plan, best first: of a customer's subscriptions
# the one in the best status (the newest among equals) is the account's.
_RANK = {"active": 0, "trialing": 0, "past_due": 1, "unpaid": 2, "incomplete": 3,
         "paused": 4, "canceled": 5, "incomplete_expired": 6}


def current_subscription(customer_id: str, *, quick: bool = False
                         ) -> SubscriptionState | None:
    """The customer's subscription that decides the plan now, as Stripe has it now —
    whatever order its webhooks arrived in; None when it has none. ``quick``: for a
    page, a short timeout and no retry."""
    found = call("subscriptions.list", client(quick=quick).v1.subscriptions.list,
                 params={"customer": customer_id, "status": "all", "limit": 100})
    states = [state_of(s) for s in field(found, "data", [])]
    states = [s for s in states if s.customer_id == customer_id]
    if not states:
        return None
    return min(states, key=lambda s: (_RANK.get(s.status, 9), -s.created))
