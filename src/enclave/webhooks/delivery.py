"""The delivery engine: each endpoint's queue, in order, at most one worker at a time;
many endpoints at once, so one slow endpoint never delays another.

A worker **claims** endpoints whose oldest pending delivery is due (``FOR UPDATE SKIP
LOCKED`` and a lease on the endpoint row, so no two workers deliver one endpoint's
queue), then delivers each claimed endpoint's queue in its own thread: the oldest pending
delivery first, the next only once that one is delivered — a failure waits for its retry
and holds the later ones back, so a receiver sees events in the order they happened. Each attempt is
signed afresh (a new ``webhook-timestamp``; the same ``webhook-id``) and made through
``core.outbound`` (SSRF guard, timeouts, a capped response), and its outcome recorded at
once.

Outcomes: a 2xx is delivered; 410 Gone disables the endpoint (the receiver said it is
gone for good); anything else — another status, a refusal, a timeout — is retried after
``BACKOFF`` (about three days in all), then the delivery fails and the endpoint is
disabled, its owners told by email. Redirects are not followed (a 3xx is a failure).
The log keeps the status, the time taken and the response size — never the response
body, which may echo what was sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import structlog
from django.db import close_old_connections, connections, transaction
from django.db.models import OuterRef, Q, Subquery

from enclave.core import clock, outbound
from enclave.webhooks import actions, events, signing
from enclave.webhooks.models import (
    ACTIVE,
    DELIVERED,
    FAILED,
    PENDING,
    WebhookDelivery,
    WebhookEndpoint,
)

LEASE = dt.timedelta(minutes=5)
ENDPOINTS_AT_ONCE = 8
TIMEOUT_SECONDS = 10.0
# Deliveries of one endpoint per claim, then others get a turn: even if each takes the
# whole timeout, the claim ends well inside its lease (and an attempt is never started
# with less than a timeout of lease left).
PER_CLAIM = 20
MAX_RESPONSE_BYTES = 4096  # only the status is kept: read little
BACKOFF = (dt.timedelta(seconds=5), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
           dt.timedelta(hours=2), dt.timedelta(hours=5), dt.timedelta(hours=10),
           dt.timedelta(hours=14), dt.timedelta(hours=20), dt.timedelta(hours=20))
USER_AGENT = "Enclave-Webhooks/1"
log = structlog.get_logger("enclave.webhooks")


@dataclasses.dataclass(frozen=True)
class Claim:
    endpoint_id: int
    token: str


def claim(limit: int = ENDPOINTS_AT_ONCE, *, now=None) -> list[Claim]:
    """Up to ``limit`` active endpoints whose oldest pending delivery is due (an endpoint
    whose head waits for its retry has nothing to send: claiming it would take a turn
    from one that has), now leased to the caller — those waiting longest first."""
    now = now or clock.now()
    head_due_at = Subquery(WebhookDelivery.objects.filter(
        endpoint=OuterRef("pk"), state=PENDING).order_by("pk")
        .values("next_attempt_at")[:1])
    with transaction.atomic():
        ids = list(WebhookEndpoint.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now),
                           state=ACTIVE)
                   .annotate(head_due_at=head_due_at).filter(head_due_at__lte=now)
                   .order_by("head_due_at", "pk").values_list("pk", flat=True)[:limit])
        claims = [Claim(pk, secrets.token_hex(16)) for pk in ids]
        for c in claims:
            WebhookEndpoint.objects.filter(pk=c.endpoint_id).update(
                leased_until=now + LEASE, lease_id=c.token)
    return claims


def _release(claimed: Claim) -> None:
    WebhookEndpoint.objects.filter(pk=claimed.endpoint_id, lease_id=claimed.token).update(
        leased_until=None, lease_id="")


def _secrets(endpoint: WebhookEndpoint, now) -> list[str]:
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > now:
        keys.append(endpoint.previous_secret)
    return keys


def attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    """Send ``delivery`` once: (HTTP status or None when no answer, a short detail)."""
    now = clock.now()
    try:
        body = events.body(endpoint, delivery)
        keys = _secrets(endpoint, now)
    except Exception:
        log.exception("webhook delivery could not be prepared", endpoint_id=endpoint.pk)
        return None, "internal error"
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **signing.headers(delivery.message_id, body, now, keys)}
    started = time.monotonic()
    try:
        response = outbound.post(endpoint.url, body=body, headers=headers,
                                 timeout=TIMEOUT_SECONDS,
                                 max_response_bytes=MAX_RESPONSE_BYTES)
    except outbound.Refused as exc:
        return None, exc.reason[:200]
    except Exception:
        log.exception("webhook attempt failed", endpoint_id=endpoint.pk)
        return None, "internal error"
    took = int((time.monotonic() - started) * 1000)
    size = f"{len(response.body)}{'+' if response.truncated else ''} bytes"
    return response.status, f"{response.status} in {took} ms, {size}"


def _record(delivery: WebhookDelivery, status: int | None, detail: str, now) -> str:
    """Write the attempt's outcome; the delivery's state."""
    attempts = delivery.attempts + 1
    if status is not None and 200 <= status < 300:
        state, next_at = DELIVERED, None
    elif status == 410 or attempts > len(BACKOFF):
        state, next_at = FAILED, None
    else:
        state, next_at = PENDING, now + BACKOFF[attempts - 1]
    WebhookDelivery.objects.filter(pk=delivery.pk, state=PENDING).update(
        state=state, attempts=attempts, next_attempt_at=next_at, last_attempt_at=now,
        last_status=status, last_detail=detail)
    if status == 410:
        actions.disable_failing(delivery.endpoint_id, "the receiver answered 410 Gone")
    elif state == FAILED:
        actions.disable_failing(delivery.endpoint_id,
                                "a delivery failed every retry (about three days)")
    return state


def deliver(claimed: Claim, *, limit: int = PER_CLAIM) -> dict[str, int]:
    """Deliver the claimed endpoint's due queue in order until a delivery is not
    delivered (it waits for its retry, and the ones after it with it) or ``limit``;
    how many ended in each state."""
    counts: dict[str, int] = {}
    try:
        # The endpoint (URL, secrets) is read once a claim; whether it is still active
        # and still ours with a timeout of lease to spare is asked with each head, in
        # the same query.
        endpoint = WebhookEndpoint.objects.filter(pk=claimed.endpoint_id,
                                                  lease_id=claimed.token).first()
        for _ in range(limit if endpoint is not None else 0):
            now = clock.now()
            head = WebhookDelivery.objects.filter(
                endpoint_id=claimed.endpoint_id, state=PENDING, endpoint__state=ACTIVE,
                endpoint__lease_id=claimed.token,
                endpoint__leased_until__gt=now + dt.timedelta(seconds=TIMEOUT_SECONDS),
            ).order_by("pk").first()
            if head is None or head.next_attempt_at is None or head.next_attempt_at > now:
                break
            status, detail = attempt(endpoint, head)
            state = _record(head, status, detail, clock.now())
            counts[state] = counts.get(state, 0) + 1
            if state != DELIVERED:
                break
    finally:
        _release(claimed)
    return counts


def _deliver_in_thread(claimed: Claim) -> dict[str, int]:
    try:
        return deliver(claimed)
    finally:
        connections.close_all()  # this thread's own connections


def run_once(*, limit: int = ENDPOINTS_AT_ONCE, threads: bool = True,
             until: float | None = None) -> dict[str, int]:
    """Claim endpoints and deliver their queues — each in its own thread (``threads``),
    ``limit`` at a time: whenever one endpoint's turn ends another is claimed into its
    slot, so a receiver that takes the whole timeout on every request holds one slot and
    delays no other endpoint. Claims stop at ``until`` (``time.monotonic()``) or when
    nothing is due; returns when every claimed turn has ended, with the counts."""
    totals: dict[str, int] = {}

    def add(counts: dict[str, int]) -> None:
        for state, n in counts.items():
            totals[state] = totals.get(state, 0) + n

    def more(slots: int) -> list[Claim]:
        if slots <= 0 or (until is not None and time.monotonic() >= until):
            return []
        return claim(slots)

    if not threads:
        while claims := more(limit):
            for c in claims:
                add(deliver(c))
        return totals
    close_old_connections()
    with ThreadPoolExecutor(max_workers=limit) as pool:
        running = {pool.submit(_deliver_in_thread, c) for c in more(limit)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                add(future.result())
            running |= {pool.submit(_deliver_in_thread, c)
                        for c in more(limit - len(running))}
    return totals
