"""Billing state changes. Members with ``billing.manage`` (owners) start Stripe Checkout
and open the Stripe customer portal; the system applies what Stripe reports.

Stripe is asked first and Enclave's own state changes only after Stripe answered: when
Stripe cannot be reached (:class:`stripe_api.StripeUnavailable`) nothing is changed. The
state of a subscription always comes from Stripe's current subscription object
(:func:`stripe_api.current_subscription`), never from the order webhooks arrive in.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize, authorize_system
from enclave.billing import entitlements, stripe_api
from enclave.billing.models import HOLDING_PLAN, BillingAccount, StripeEvent
from enclave.billing.plans import load_plans
from enclave.billing.stripe_api import StripeUnavailable
from enclave.core import audit, clock
from enclave.core.models import AuditEventType

log = logging.getLogger(__name__)
P = Permission

# The Stripe events billing acts on; every other type is acknowledged and ignored.
HANDLED = frozenset({
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
})
BILLING_OFF = "Billing is not turned on for this deployment: nothing is limited."
ALREADY_SUBSCRIBED = ("This account already has a subscription: change its plan, card or "
                      "cancel it in the Stripe customer portal.")
NO_CUSTOMER = "This account has no subscription yet: choose a plan first."


class BillingOff(ValidationError):
    """Billing is off: there is nothing to buy or manage."""


def _require_on() -> None:
    if not entitlements.billing_on():
        raise BillingOff(BILLING_OFF)


def _url(path: str) -> str:
    return f"{settings.CONFIG.public_url}{path}"


def _stripe_page(url: str) -> str:
    """A page Stripe returned for the member to go to: Stripe's own (https), or the
    configured API base's host (a local fake in tests) — never anywhere else."""
    parts = urlsplit(url or "")
    base = settings.CONFIG.stripe_api_base
    if parts.scheme == "https" and parts.hostname and (
            parts.hostname == "stripe.com" or parts.hostname.endswith(".stripe.com")):
        return url
    if base and parts.hostname and parts.hostname == urlsplit(base).hostname \
            and parts.scheme == urlsplit(base).scheme:
        return url
    raise StripeUnavailable("Stripe answered with an unexpected page address. Nothing was "
                            "changed.")


def _customer(account) -> BillingAccount:
    """The account's billing row, making its Stripe customer first when it has none
    (one per account: the request is idempotent on the account)."""
    row = BillingAccount.objects.filter(account_id=account.pk).first()
    if row is not None:
        return row
    customer = stripe_api.call(
        "customers.create", stripe_api.client().v1.customers.create,
        params={"name": account.name[:100],
                "metadata": {"enclave_account": str(account.pk),
                             "enclave_environment": settings.CONFIG.env}},
        options={"idempotency_key": f"enclave-{settings.CONFIG.env}-customer-{account.pk}"})
    try:
        with transaction.atomic():
            row, _ = BillingAccount.objects.get_or_create(
                account_id=account.pk, defaults={"customer_id": customer.id})
    except IntegrityError:  # made meanwhile by a concurrent request
        row = BillingAccount.objects.get(account_id=account.pk)
    return row


def do_start_checkout(account, plan_key: str, *, actor: Principal, request=None) -> str:
    """The Stripe Checkout page subscribing ``account`` to the plan ``plan_key`` (its
    ``stripe_price``); the member is sent there and back. Needs ``billing.manage``.
    Raises ValidationError (billing off, no such plan, already subscribed) or
    StripeUnavailable; the subscription itself arrives by webhook."""
    authorize(actor, P.BILLING_MANAGE, account_id=account.pk)
    _require_on()
    plan = next((p for p in load_plans() if p.key == plan_key and p.stripe_price), None)
    if plan is None:
        raise ValidationError({"plan": "Choose one of the plans offered."})
    current = BillingAccount.objects.filter(account_id=account.pk).first()
    if current is not None and current.status in HOLDING_PLAN:
        raise ValidationError(ALREADY_SUBSCRIBED)
    if current is not None:
        # Paid a moment ago, its webhook not here yet (or lost): Stripe knows — never a
        # second subscription for the same account.
        current = _sync(account.pk, actor=actor, request=request)
        if current.status in HOLDING_PLAN:
            raise ValidationError(ALREADY_SUBSCRIBED)
    row = _customer(account)
    _expire_open_sessions(row.customer_id)
    session = stripe_api.call(
        "checkout.sessions.create", stripe_api.client().v1.checkout.sessions.create,
        params={"mode": "subscription", "customer": row.customer_id,
                "line_items": [{"price": plan.stripe_price, "quantity": 1}],
                "client_reference_id": str(account.pk),
                "metadata": {"enclave_account": str(account.pk), "plan": plan.key},
                "success_url": _url("/app/billing/?checkout=done"),
                "cancel_url": _url("/app/billing/?checkout=cancelled")})
    url = _stripe_page(getattr(session, "url", ""))
    with transaction.atomic():
        audit.record(AuditEventType.BILLING_CHECKOUT_STARTED, actor=actor,
                     account_id=account.pk, request=request, target_type="account",
                     target_id=account.pk, extra={"plan": plan.key})
    return url


def _expire_open_sessions(customer_id: str) -> None:
    """Close the customer's Checkout sessions still open (another tab, an earlier
    attempt): only the newest can be paid, so an account never pays for two
    subscriptions by checking out twice."""
    client = stripe_api.client()
    found = stripe_api.call("checkout.sessions.list", client.v1.checkout.sessions.list,
                            params={"customer": customer_id, "status": "open",
                                    "limit": 100})
    for session in stripe_api.field(found, "data", []) or []:
        stripe_api.call("checkout.sessions.expire", client.v1.checkout.sessions.expire,
                        session["id"])


def do_open_portal(account, *, actor: Principal, request=None) -> str:
    """The Stripe customer portal page for ``account`` (change plan, card, cancel; see
    invoices). Needs ``billing.manage``."""
    authorize(actor, P.BILLING_MANAGE, account_id=account.pk)
    _require_on()
    row = BillingAccount.objects.filter(account_id=account.pk).first()
    if row is None:
        raise ValidationError(NO_CUSTOMER)
    session = stripe_api.call(
        "billing_portal.sessions.create",
        stripe_api.client().v1.billing_portal.sessions.create,
        params={"customer": row.customer_id, "return_url": _url("/app/billing/")})
    url = _stripe_page(getattr(session, "url", ""))
    with transaction.atomic():
        audit.record(AuditEventType.BILLING_PORTAL_OPENED, actor=actor,
                     account_id=account.pk, request=request, target_type="account",
                     target_id=account.pk)
    return url


def _plan_key(row: BillingAccount, state) -> str:
    """The plans file's key for the subscription's price (current or former price of a
    plan); for a price no plan names, the key the same subscription had (a price changed
    in Stripe before the file), else "" — logged either way."""
    plan = entitlements.plan_by_price(state.price_id)
    if plan is not None:
        return plan.key
    if state.price_id:
        log.error("stripe subscription for a price no plan sells",
                  extra={"price": state.price_id[:100]})
    return row.plan_key if row.subscription_id == state.subscription_id else ""


def _apply(row: BillingAccount, state: stripe_api.SubscriptionState | None) -> dict:
    """Set ``row`` (locked) from Stripe's current subscription; the changes, for the
    audit row (empty: nothing changed)."""
    now = clock.now()
    before = {"plan": row.plan_key, "status": row.status}
    if state is None:
        row.subscription_id, row.price_id, row.plan_key, row.status = "", "", "", ""
        row.current_period_end, row.cancel_at_period_end = None, False
    else:
        row.plan_key = _plan_key(row, state)
        row.subscription_id = state.subscription_id[:255]
        row.price_id = state.price_id[:255]
        row.status = state.status[:32]
        row.current_period_end = state.current_period_end
        row.cancel_at_period_end = state.cancel_at_period_end
    if row.status in entitlements.PAUSING:
        row.past_due_since = row.past_due_since or now
    else:
        row.past_due_since = None
    row.synced_at = now
    row.save()
    after = {"plan": row.plan_key, "status": row.status}
    if after == before:
        return {}
    return {**after, "previous_plan": before["plan"], "previous_status": before["status"]}


def _sync(account_id: int, *, actor=None, request=None, quick: bool = False
          ) -> BillingAccount:
    """Read the account's subscription from Stripe with its row locked (so a webhook
    applied meanwhile is never overwritten by an older read) and apply it, audited when
    the plan or status changed; the row."""
    with transaction.atomic():
        row = BillingAccount.objects.select_for_update().get(account_id=account_id)
        state = stripe_api.current_subscription(row.customer_id, quick=quick)
        changes = _apply(row, state)
        if changes:
            audit.record(AuditEventType.BILLING_SUBSCRIPTION_CHANGED, actor=actor,
                         account_id=account_id, request=request, target_type="account",
                         target_id=account_id, extra=changes)
        _hold_sending_if_paused(account_id)
    return row


def do_sync_subscription(account, *, actor: Principal, request=None) -> BillingAccount | None:
    """Read the account's subscription from Stripe now — the billing page on the way
    back from Checkout, before (or without) its webhook; a short timeout, no retry.
    Needs ``billing.manage``; the row (None: no Stripe customer yet). Raises
    StripeUnavailable."""
    authorize(actor, P.BILLING_MANAGE, account_id=account.pk)
    _require_on()
    if not BillingAccount.objects.filter(account_id=account.pk).exists():
        return None
    return _sync(account.pk, actor=actor, request=request, quick=True)


def _hold_sending_if_paused(account_id: int) -> int:
    if not entitlements.standing(account_id).sending_paused:
        return 0
    return entitlements.hold_sending(account_id)


def do_handle_stripe_event(event, *, signed_at: int, actor=None, request=None) -> str:
    """Apply one verified Stripe event (a system action) signed at ``signed_at`` (the
    signature's timestamp): ``handled``; ``duplicate`` (Stripe delivering an id handled
    before again, signed anew: nothing changes); ``replayed`` (the same id with the same
    signature timestamp: a captured delivery played back — the webhook refuses it);
    ``ignored`` (a type billing does not act on) or ``unknown-customer``. Raises
    StripeUnavailable when the current subscription cannot be read (nothing is
    recorded: Stripe retries)."""
    authorize_system(actor)
    event_id, event_type = str(event["id"])[:255], str(event["type"])[:100]
    if event_type not in HANDLED:
        log.info("stripe event ignored", extra={"event_type": event_type})
        return "ignored"
    seen = StripeEvent.objects.filter(event_id=event_id).values_list("signed_at",
                                                                     flat=True).first()
    if seen is not None or StripeEvent.objects.filter(event_id=event_id).exists():
        return "replayed" if seen == signed_at else "duplicate"
    obj = event["data"]["object"]
    customer = stripe_api.state_of(obj).customer_id if obj else ""
    if not BillingAccount.objects.filter(customer_id=customer).exists():
        log.info("stripe event for a customer no account has",
                 extra={"event_type": event_type})
        return "unknown-customer"
    with transaction.atomic():
        # One event of a customer at a time: the subscription read last is written last.
        row = BillingAccount.objects.select_for_update().get(customer_id=customer)
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event_id, event_type=event_type,
                                           account_id=row.account_id, signed_at=signed_at)
        except IntegrityError:
            return "duplicate"
        changes = _apply(row, stripe_api.current_subscription(customer))
        audit.record(AuditEventType.BILLING_WEBHOOK_RECEIVED, actor=None,
                     account_id=row.account_id, request=request, target_type="account",
                     target_id=row.account_id,
                     extra={"event": event_id, "event_type": event_type})
        if changes:
            audit.record(AuditEventType.BILLING_SUBSCRIPTION_CHANGED, actor=None,
                         account_id=row.account_id, request=request, target_type="account",
                         target_id=row.account_id, extra=changes)
        _hold_sending_if_paused(row.account_id)
    return "handled"


def do_pause_overdue_sending(*, actor=None) -> int:
    """The periodic half of the grace period: hold the queued broadcasts of every
    account whose subscription has been overdue for longer than the grace period
    (a webhook holds them when it arrives after that). How many were held."""
    authorize_system(actor)
    if not entitlements.billing_on():
        return 0
    cutoff = clock.now() - entitlements.grace()
    accounts = BillingAccount.objects.filter(
        status__in=entitlements.PAUSING, past_due_since__lte=cutoff
    ).values_list("account_id", flat=True)
    return sum(_hold_sending_if_paused(account_id) for account_id in accounts)


EVENT_MEMORY_DAYS = 30  # Stripe retries an event for 3 days; ids are kept well past it


def do_purge_stripe_events(*, actor=None) -> int:
    """Forget handled Stripe event ids older than :data:`EVENT_MEMORY_DAYS` (a system
    action); how many."""
    import datetime as dt

    authorize_system(actor)
    cutoff = clock.now() - dt.timedelta(days=EVENT_MEMORY_DAYS)
    with transaction.atomic():
        return StripeEvent.objects.filter(received_at__lt=cutoff).delete()[0]
