"""The billing page (plan, status, usage against the plan's limits, invoices) and the two
hand-offs to Stripe's hosted pages. Every route needs ``billing.manage``
(``access.endpoints``); card details are only ever typed into Stripe's own pages.

Checkout and the portal are reached by a page that navigates there (a link, followed at
once): the strict CSP's ``form-action 'self'`` would stop a form post redirected to
another origin, and stays as it is.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from enclave.billing import actions, entitlements, stripe_api
from enclave.billing.models import HOLDING_PLAN, BillingAccount
from enclave.billing.plans import load_plans

MAX_INVOICES = 12
CHECKOUT_NOTES = {
    "done": "Thank you. Your subscription shows here as soon as Stripe confirms it "
            "(usually within a few seconds).",
    "cancelled": "Checkout was cancelled; nothing changed.",
}


def _invoices(row: BillingAccount | None) -> tuple[list[dict], bool]:
    """The customer's latest invoices from Stripe, and whether Stripe answered."""
    if row is None or not entitlements.billing_on():
        return [], True
    try:
        found = stripe_api.call("invoices.list",
                                stripe_api.client(quick=True).v1.invoices.list,
                                params={"customer": row.customer_id, "limit": MAX_INVOICES})
    except stripe_api.StripeUnavailable:
        return [], False
    out = []
    for invoice in stripe_api.field(found, "data", []) or []:
        link = str(stripe_api.field(invoice, "hosted_invoice_url", "") or "")
        created = stripe_api.field(invoice, "created", 0)
        currency = str(stripe_api.field(invoice, "currency", "") or "")[:3]
        out.append({
            "number": str(stripe_api.field(invoice, "number", "") or invoice["id"])[:64],
            "date": dt.datetime.fromtimestamp(int(created), tz=dt.UTC) if created else None,
            "amount": _major(int(stripe_api.field(invoice, "amount_due", 0) or 0), currency),
            "currency": currency.upper(),
            "status": str(stripe_api.field(invoice, "status", "") or "")[:20],
            # Only Stripe's own pages are linked.
            "link": link if link.startswith("https://invoice.stripe.com/") else "",
        })
    return out, True


# Stripe's zero-decimal currencies: amounts are whole units, not hundredths.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                          "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def _major(amount: int, currency: str) -> str:
    """An amount in Stripe's smallest unit, written in the currency's major unit."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return f"{amount:,}"
    if currency in THREE_DECIMAL:
        return f"{amount / 1000:,.3f}"
    return f"{amount / 100:,.2f}"


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    account = request.principal.account
    held = entitlements.standing(account.pk)
    row = BillingAccount.objects.filter(account_id=account.pk).first()
    usage = [{"label": entitlements.LABELS[name].capitalize(),
              "used": entitlements.usage(account.pk, name),
              "limit": held.limit(name)}
             for name in (entitlements.PEOPLE, entitlements.MEMBERS,
                          entitlements.MONTHLY_SENDS, entitlements.FLOWS)]
    for line in usage:
        line["over"] = line["limit"] is not None and line["used"] >= line["limit"]
    subscribed = row is not None and row.status in HOLDING_PLAN
    invoices, invoices_ok = _invoices(row) if not error else ([], True)
    response = render(request, "billing/billing.html", {
        "billing_on": entitlements.billing_on(), "standing": held, "row": row,
        "usage": usage, "subscribed": subscribed,
        "plans": [p for p in load_plans() if p.stripe_price],
        "invoices": invoices, "invoices_ok": invoices_ok, "error": error,
        "note": CHECKOUT_NOTES.get(request.GET.get("checkout", "")),
        "grace_days": entitlements.grace().days,
        "status_label": row.status.replace("_", " ") if row is not None else "",
    }, status=status)
    # Stripe's hosted invoice links on it are bearer links.
    response["Cache-Control"] = "no-store"
    return response


def billing(request: HttpRequest) -> HttpResponse:
    if request.GET.get("checkout") == "done" and entitlements.billing_on():
        # Back from Checkout: show the subscription now, whenever its webhook arrives.
        # Stripe unreachable: the page says what it knows; the webhook brings the rest.
        with contextlib.suppress(stripe_api.StripeUnavailable):
            actions.do_sync_subscription(request.principal.account,
                                         actor=request.principal, request=request)
    return _page(request)


def _hand_over(request: HttpRequest, start) -> HttpResponse:
    try:
        url = start()
    except actions.BillingOff as exc:
        return _page(request, error=" ".join(exc.messages), status=409)
    except ValidationError as exc:
        status = 409 if actions.ALREADY_SUBSCRIBED in exc.messages \
            or actions.NO_CUSTOMER in exc.messages else 422
        return _page(request, error=" ".join(exc.messages), status=status)
    except stripe_api.StripeUnavailable as exc:
        return _page(request, error=str(exc), status=503)
    response = render(request, "billing/handoff.html", {"url": url})
    # The page's link is a bearer link to the customer's Stripe session.
    response["Cache-Control"] = "no-store"
    return response


def checkout(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    return _hand_over(request, lambda: actions.do_start_checkout(
        principal.account, request.POST.get("plan", "")[:40], actor=principal,
        request=request))


def portal(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    return _hand_over(request, lambda: actions.do_open_portal(
        principal.account, actor=principal, request=request))
