"""Session policy on every request: expiry, revocation, last-seen, account MFA rule."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from enclave.core import problems
from enclave.identity import sessions

# Pages a member of an MFA-requiring account may use before enrolling.
MFA_SETUP_PATHS = ("/app/mfa/", "/app/logout/", "/app/reauth/")


class MemberSessionMiddleware:
    """Ends sessions that are revoked, idle too long or past their absolute lifetime.

    Browsers are sent to the login page; ``/api/`` requests get 401 problem+json.
    Valid sessions get ``request.member_session`` and ``request.account``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.member_session = None
        request.account = None
        if not request.user.is_authenticated:
            return self.get_response(request)
        row = sessions.current(request)
        reason = sessions.ended_reason(row, request.user.pk)
        if reason is not None:
            logout(request)
            return ended_response(request)
        sessions.touch(row)
        request.member_session = row
        request.account = row.account
        if (row.account and row.account.require_mfa and request.path.startswith("/app/")
                and not request.path.startswith(MFA_SETUP_PATHS)
                and not request.user.mfa_enabled):
            return HttpResponseRedirect("/app/mfa/setup/?required=1")
        return self.get_response(request)


def ended_response(request: HttpRequest) -> HttpResponse:
    if problems.wants_problem_json(request):
        return problems.problem_response(
            request, "unauthenticated", "Your session has ended (expired or signed out). "
            "Sign in again.")
    query = {"ended": "1"}
    if request.method == "GET" and request.path.startswith("/app/"):
        query["next"] = request.get_full_path()
    return HttpResponseRedirect("/app/login/?" + urlencode(query))
