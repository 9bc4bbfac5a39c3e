"""Billing state: each account's Stripe customer and current subscription, as Stripe last
reported it, and the Stripe events already handled (webhook idempotency).

Nothing here is a card number or anything else from a card: Checkout and the customer
portal are Stripe's own pages; Enclave keeps Stripe's ids, the plan and the status.
"""

from __future__ import annotations

from django.db import models

from enclave.core import clock

# Stripe subscription statuses that grant the plan (past_due: within the grace period).
ENTITLED = ("active", "trialing", "past_due")
# Statuses of a subscription that keeps its plan (unpaid: overdue past Stripe's retries —
# limits kept, sending paused): the account is subscribed, never sold a second one.
HOLDING_PLAN = (*ENTITLED, "unpaid")


class BillingAccount(models.Model):
    """An account's Stripe customer and the subscription that decides its plan."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE,
                                   related_name="billing")
    customer_id = models.CharField(max_length=255, unique=True)
    subscription_id = models.CharField(max_length=255, blank=True)
    # The subscribed Stripe price (the plan is the one that sells it, now or formerly)
    # and the plans file's key it had when last synced; "" while on the free plan.
    price_id = models.CharField(max_length=255, blank=True)
    plan_key = models.CharField(max_length=40, blank=True)
    # Stripe's subscription status ("" before any subscription).
    status = models.CharField(max_length=32, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # When the subscription first became past due (payment failed); sending pauses once
    # the grace period after it has passed. Cleared when it is paid.
    past_due_since = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"billing of account {self.account_id}"


class StripeEvent(models.Model):
    """A Stripe webhook event handled once: a retried or replayed delivery of the same id
    changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    account = models.ForeignKey("accounts.Account", null=True, on_delete=models.SET_NULL,
                                related_name="+")
    received_at = models.DateTimeField(default=clock.now)
    # The delivery's signature timestamp: Stripe signs each retry anew, so the same id
    # with the same timestamp again is a captured request played back.
    signed_at = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["received_at"])]
