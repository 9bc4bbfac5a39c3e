"""Template context for /app pages: the one navigation (``access.navigation``)."""

from __future__ import annotations

from django.http import HttpRequest

from enclave.access.navigation import areas_for


def app_navigation(request: HttpRequest) -> dict:
    """``app_areas``: (area, current) for the areas the signed-in principal may open; the
    current one is the longest path the request's path starts with."""
    if not request.path.startswith("/app/"):
        return {"app_areas": []}
    areas = areas_for(getattr(request, "principal", None))
    here = max((a.path for a in areas if request.path.startswith(a.path)), key=len,
               default=None)
    return {"app_areas": [(a, a.path == here) for a in areas]}
