"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    return {
        "csp_nonce": getattr(request, "csp_nonce", ""),
        "enclave_env": settings.CONFIG.env,
        "public_url": settings.CONFIG.public_url,
    }
