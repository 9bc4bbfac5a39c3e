"""Re-authentication for sensitive actions (role changes, API keys, exports, billing, MFA).

``@require_recent_auth`` lets a view run only if the member proved who they are
(password, plus MFA when enrolled) within ``settings.REAUTH_WINDOW_MINUTES`` (10) on this
session; otherwise the browser goes to ``/app/reauth/?next=<this page>`` and the API gets
401 problem+json.
"""

from __future__ import annotations

import datetime as dt
import functools
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect

from enclave.core import clock, problems


def recently_authenticated(request: HttpRequest) -> bool:
    row = getattr(request, "member_session", None)
    if row is None:
        return False
    window = dt.timedelta(minutes=settings.REAUTH_WINDOW_MINUTES)
    return clock.now() - row.authenticated_at <= window


def require_recent_auth(view):
    """Decorator for views of sensitive actions (see module docstring)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if recently_authenticated(request):
            return view(request, *args, **kwargs)
        if problems.wants_problem_json(request):
            return problems.problem_response(
                request, "unauthenticated",
                "This action needs you to confirm your password (and MFA) again.")
        if not request.user.is_authenticated:
            return HttpResponseRedirect("/app/login/?" + urlencode({"next": request.path}))
        return HttpResponseRedirect("/app/reauth/?" + urlencode({"next": request.path}))

    return wrapped
