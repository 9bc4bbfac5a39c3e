"""The public website: landing, pricing, /security (live controls) and security.txt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString

from enclave.core import clock
from enclave.core.controls import registry
from enclave.core.models import ControlResult
from enclave.scanning.controls import public_reason as dependency_audit_reason
from enclave.website.plans import load_plans

SECURITY_TXT_LIFETIME = dt.timedelta(days=180)
# What a visitor reads for each stored status; anything unknown reads as failing.
STATUS_LABELS = {
    "pass": "Passing",
    "fail": "Failing",
    "n/a": "Not applicable",
    "pending": "Not checked yet",
}


def _failure_reasons() -> dict[str, Callable[[], str | None]]:
    """Controls whose failure the page explains in one public sentence (no internal
    detail: each function returns wording written for the public page, or None)."""
    return {"DEP-1": dependency_audit_reason}


def _with_code(sentence: str) -> SafeString:
    """Escape ``sentence`` and show its `backticked` commands as <code>."""
    parts = sentence.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: plain text
        return escape(sentence)
    pairs = zip(parts[0:-1:2], parts[1::2], strict=True)
    return format_html_join("", "{}<code>{}</code>", pairs) + escape(parts[-1])


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "website/landing.html")


def pricing(request: HttpRequest) -> HttpResponse:
    return render(request, "website/pricing.html", {"plans": load_plans()})


def security(request: HttpRequest) -> HttpResponse:
    """Public trust report: each control's public claim, its last result and check time."""
    stored = {r.control_id: r for r in ControlResult.objects.all()}
    reasons = _failure_reasons()
    rows = []
    for ctrl in registry().values():
        result = stored.get(ctrl.id)
        status = result.status if result else "pending"
        if status not in STATUS_LABELS:
            status = "fail"
        reason = reasons[ctrl.id]() if status == "fail" and ctrl.id in reasons else None
        rows.append({
            "id": ctrl.id,
            "public": ctrl.public,
            "status": status,
            "label": STATUS_LABELS[status],
            "reason": _with_code(reason) if reason else None,
            "checked_at": result.checked_at if result else None,
        })
    checked = [r["checked_at"] for r in rows if r["checked_at"]]
    failing = sum(r["status"] == "fail" for r in rows)
    pending = sum(r["status"] == "pending" for r in rows)
    return render(request, "website/security.html", {
        "rows": rows,
        "last_checked": min(checked) if checked else None,
        "all_pass": bool(rows) and not failing and not pending,
        "failing": failing,
        "pending": pending,
    })


def security_txt(request: HttpRequest) -> HttpResponse:
    """RFC 9116 security.txt. Expires is recomputed on each request, always < 1 year ahead."""
    base = settings.CONFIG.public_url
    expires = (clock.now() + SECURITY_TXT_LIFETIME).replace(microsecond=0)
    lines = [
        f"Contact: {settings.CONFIG.security_contact}",
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"Policy: {base}/security#disclosure",
        "Preferred-Languages: en",
        f"Canonical: {base}/.well-known/security.txt",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
