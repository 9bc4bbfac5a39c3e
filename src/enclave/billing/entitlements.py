"""What an account's plan lets it hold and send, and whether it may send at all.

With billing off (the default, ``ENCLAVE_BILLING=off``) nothing is limited. With billing
on, an account is on the plan of its Stripe subscription while Stripe reports it
``active``, ``trialing``, ``past_due`` or ``unpaid`` (an overdue account keeps its
limits: nothing it holds is hidden, its sending pauses instead); otherwise on the free
plan (the first plan in
the plans file without a ``stripe_price``; without one, :data:`NO_PLAN`, which holds
nothing new). A subscription past due (or ``unpaid``) for longer than the grace period
(``ENCLAVE_BILLING_GRACE_DAYS``) pauses sending; nothing is ever deleted or hidden — an
account above a limit keeps everything it has and cannot add more.

The actions that add people, members or sends call :func:`check` inside their own
transaction; it raises :class:`PlanLimitReached` (a ValidationError: a page shows its
message, the API answers 403 ``plan-limit-reached``). What each limit counts is told by
the app that owns it (:func:`register_usage`, in its ``AppConfig.ready``), and what
pausing sending does by the app that sends (:func:`on_sending_paused`): billing sits
below them and imports none of them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from enclave.billing.plans import Limits, Plan, load_plans
from enclave.core import clock

log = logging.getLogger(__name__)

PEOPLE, MONTHLY_SENDS, MEMBERS, FLOWS = "people", "monthly_sends", "members", "flows"
LABELS = {PEOPLE: "people", MONTHLY_SENDS: "emails a month", MEMBERS: "team members",
          FLOWS: "flows"}
NO_PLAN = Plan("No plan", "", "", "", (), key="none",
               limits=Limits(people=0, monthly_sends=0, members=1, flows=0))
PAUSING = ("past_due", "unpaid")
_USAGE: dict[str, Callable[[int], int]] = {}
_PAUSE_HOOKS: list[Callable[[int], int]] = []


def register_usage(name: str, counter: Callable[[int], int]) -> None:
    """``counter(account_id)`` says how much of ``name`` an account uses now."""
    if name not in LABELS:
        raise ValueError(f"unknown limit {name!r}")
    _USAGE[name] = counter


def on_sending_paused(hook: Callable[[int], int]) -> None:
    """``hook(account_id)`` stops what an account has queued to send (how many it
    stopped) once its sending is paused."""
    if hook not in _PAUSE_HOOKS:
        _PAUSE_HOOKS.append(hook)


def hold_sending(account_id: int) -> int:
    return sum(hook(account_id) for hook in _PAUSE_HOOKS)


class PlanLimitReached(ValidationError):
    """The account's plan does not allow this; nothing was stored. ``str()`` is safe to
    show to the account's members."""

    problem_slug = "plan-limit-reached"

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message, code="plan_limit")
        self.limit = limit


class SendingPaused(PlanLimitReached):
    problem_slug = "sending-paused"


@dataclass(frozen=True)
class Standing:
    """An account's plan, its subscription's status and whether it may send."""

    plan: Plan | None  # None: billing is off, nothing is limited
    status: str
    sending_paused: bool
    paused_since: dt.datetime | None = None

    def limit(self, name: str) -> int | None:
        return None if self.plan is None else self.plan.limits.of(name)


def billing_on() -> bool:
    return settings.CONFIG.billing == "stripe"


def free_plan() -> Plan:
    return next((p for p in load_plans() if not p.stripe_price and not p.former_prices),
                NO_PLAN)


def plan_by_key(key: str) -> Plan | None:
    return next((p for p in load_plans() if key and p.key == key), None)


def plan_by_price(price_id: str) -> Plan | None:
    return next((p for p in load_plans() if p.sells(price_id)), None)


def grace() -> dt.timedelta:
    return dt.timedelta(days=settings.CONFIG.billing_grace_days)


def standing(account_id: int) -> Standing:
    if not billing_on():
        return Standing(None, "", False)
    from enclave.billing.models import HOLDING_PLAN, BillingAccount

    row = BillingAccount.objects.filter(account_id=account_id).first()
    if row is None:
        return Standing(free_plan(), "", False)
    plan = None
    if row.status in HOLDING_PLAN and (row.price_id or row.plan_key):
        plan = plan_by_price(row.price_id) or plan_by_key(row.plan_key)
        if plan is None:
            # Subscribed to a price no plan names (now or formerly) under a key the file
            # no longer has: the free plan's limits, and the operator is told.
            log.error("billing: subscribed price in no plan of the plans file",
                      extra={"plan": row.plan_key, "account": account_id})
    paused = (row.status in PAUSING and row.past_due_since is not None
              and clock.now() >= row.past_due_since + grace())
    return Standing(plan or free_plan(), row.status, paused,
                    row.past_due_since + grace() if paused else None)


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = (now or clock.now()).astimezone(dt.UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage(account_id: int, name: str) -> int:
    """How much of ``name`` the account uses now (sends: this calendar month, UTC); 0
    for what no installed app counts (flows, until they are built)."""
    if name not in LABELS:
        raise ValueError(f"unknown limit {name!r}")
    counter = _USAGE.get(name)
    return counter(account_id) if counter is not None else 0


def _held_limit(account_id: int, name: str) -> tuple[Standing | None, int | None]:
    """The account's standing and its plan's limit of ``name`` — the account held when
    there is a limit, so two requests adding at once cannot both fit under it."""
    if not billing_on():
        return None, None
    held = standing(account_id)
    limit = held.limit(name)
    if limit is not None:
        _hold(account_id)
    return held, limit


def _hold(account_id: int) -> None:
    from enclave.billing.models import BillingAccount

    # The account's row is held until the caller's transaction ends (PostgreSQL; SQLite
    # has one writer). FOR NO KEY UPDATE: rows referring to the account are still
    # written meanwhile.
    account = BillingAccount._meta.get_field("account").related_model
    list(account.objects.select_for_update(no_key=True).filter(pk=account_id)
         .values_list("pk"))


def limit_of(account_id: int, name: str) -> int | None:
    """The plan's limit of ``name`` (None: unlimited), with the account held like
    :func:`check` does."""
    return _held_limit(account_id, name)[1]


def room(account_id: int, name: str) -> int | None:
    """How many more of ``name`` the account's plan allows now (None: unlimited), with
    the account held like :func:`check` does. For callers that must not refuse where a
    refusal would tell something (ingest by a key that cannot see people)."""
    limit = limit_of(account_id, name)
    return None if limit is None else max(0, limit - usage(account_id, name))


def check(account_id: int, name: str, adding: int = 1) -> None:
    """Raise :class:`PlanLimitReached` when adding ``adding`` more of ``name`` would take
    the account past its plan's limit (``adding=0``: when what is counted already is
    past it). Call inside the action's transaction."""
    if adding < 0:
        return
    held, limit = _held_limit(account_id, name)
    if limit is None:
        return
    used = usage(account_id, name)
    if used + adding > limit:
        plan = held.plan.name if held.plan is not None else ""
        more = f" ({adding} more asked for)" if adding > 1 else ""
        if adding == 0:
            more = " (a plan with fewer was chosen since)"
        raise PlanLimitReached(
            f"The {plan} plan allows {limit:,} {LABELS[name]}; this account has "
            f"{used:,}{more}. Nothing was changed: choose a larger plan on the billing "
            f"page, or make room first.", limit=name)


def check_sending(account_id: int) -> None:
    """Raise :class:`SendingPaused` while the account's sending is paused for an
    unpaid subscription."""
    if not billing_on():
        return
    if standing(account_id).sending_paused:
        raise SendingPaused("Sending is paused: the subscription's payment is overdue. "
                            "Nothing was sent; update the payment method on the billing "
                            "page and sending can start again.", limit="sending")
