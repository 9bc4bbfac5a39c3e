"""The public website: landing, pricing, /security (live controls) and security.txt."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from enclave.core import clock
from enclave.core.controls import registry
from enclave.core.models import ControlResult
from enclave.website.plans import load_plans

SECURITY_TXT_LIFETIME = dt.timedelta(days=180)
# What a visitor reads for each stored status; anything unknown reads as failing.
STATUS_LABELS = {
    "pass": "Passing",
    "fail": "Failing",
    "n/a": "Not applicable",
    "pending": "Not checked yet",
}


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "website/landing.html")


@require_safe
def pricing(request: HttpRequest) -> HttpResponse:
    return render(request, "website/pricing.html", {"plans": load_plans()})


@require_safe
def security(request: HttpRequest) -> HttpResponse:
    """Public trust report: each control's public claim, its last result and check time."""
    stored = {r.control_id: r for r in ControlResult.objects.all()}
    rows = []
    for ctrl in registry().values():
        result = stored.get(ctrl.id)
        status = result.status if result else "pending"
        if status not in STATUS_LABELS:
            status = "fail"
        rows.append({
            "id": ctrl.id,
            "public": ctrl.public,
            "status": status,
            "label": STATUS_LABELS[status],
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


@require_safe
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
