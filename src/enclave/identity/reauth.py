"""Re-authentication for sensitive actions (role changes, API keys, exports, billing, MFA).

Endpoints marked ``reauth`` in the endpoint registry (``access.endpoints``) run only if
the member proved who they are (password, plus MFA when enrolled) within
``settings.REAUTH_WINDOW_MINUTES`` (10) on this session; otherwise the browser goes to
``/app/reauth/?next=<this page>`` and the API gets 401 problem+json. The registry's
middleware (``accounts.middleware.EndpointMiddleware``) applies the rule.
"""

from __future__ import annotations

import datetime as dt
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


def reauth_response(request: HttpRequest):
    """What a request for a ``reauth`` endpoint gets without a recent confirmation: the
    API a 401 problem+json, a browser the re-authentication page (then back here)."""
    if problems.wants_problem_json(request):
        return problems.problem_response(
            request, "unauthenticated",
            "This action needs you to confirm your password (and MFA) again.")
    return HttpResponseRedirect("/app/reauth/?" + urlencode({"next": request.path}))
