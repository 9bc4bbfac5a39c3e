"""The principal of every web request, and the endpoint registry enforced on web routes.

``PrincipalMiddleware`` (after ``identity.middleware.MemberSessionMiddleware``) sets
``request.principal``: the signed-in member's principal in their session's account
(``accounts.access.principal_for``), or ``None`` when nobody is signed in.

``EndpointMiddleware`` reads ``access.endpoints`` for the resolved route and method and
applies it before the view runs, so views declare no permission, login or method rule:
an unlisted method is a 405; ``SIGNED_IN``/``ACCOUNT`` routes send anonymous browsers to
sign in; ``ACCOUNT`` routes need an account and the entry's permission (403 otherwise);
``reauth`` routes need a recent password (+ MFA) confirmation. API routes are left to
``api.base.ApiView``, which reads the same registry. A route of Enclave's URLconf without
an entry is refused, whatever module its view comes from (tests/people/test_authorization.py
keeps that unreachable).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from enclave.access import endpoints
from enclave.access.principal import NotAuthorized, authorize
from enclave.accounts.access import principal_for
from enclave.core import problems
from enclave.identity.reauth import reauth_response, recently_authenticated

PROJECT_URLCONF = "enclave.urls"


def _project_urlconf(request: HttpRequest) -> bool:
    return (getattr(request, "urlconf", None) or settings.ROOT_URLCONF) == PROJECT_URLCONF


class CrossSiteFormMiddleware:
    """Before Django's CSRF check: a route the registry marks ``cross_site`` (a public
    form embedded on other sites) is not asked for a CSRF token. Every other route is."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        match = request.resolver_match
        entry = endpoints.lookup(match.url_name if match else None, request.method)
        if entry is not None and entry.cross_site and _project_urlconf(request):
            request._dont_enforce_csrf_checks = True


class PrincipalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        row = getattr(request, "member_session", None)
        request.principal = None
        if row is not None and request.user.is_authenticated:
            request.principal = principal_for(request.user, row.account_id,
                                              session_id=row.pk)
        return self.get_response(request)


class EndpointMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        match = request.resolver_match
        name = match.url_name if match else None
        if name not in endpoints.NAMES:
            # Every route of Enclave's own URLconf has an entry, whoever wrote its view (a
            # third-party view routed there is refused, not served unchecked); only another
            # URLconf (a test's) may add routes of its own.
            if _project_urlconf(request) or getattr(view_func, "__module__",
                                                    "").startswith("enclave."):
                raise ImproperlyConfigured(f"route {name!r} has no entry in access.endpoints")
            return None
        entry = endpoints.lookup(name, request.method)
        if entry is None:
            if all(e.surface == endpoints.API for e in endpoints.ENDPOINTS if e.name == name):
                return None  # ApiView answers the API's 405 as problem+json
            allowed = ", ".join(sorted(endpoints.methods(name)))
            if problems.wants_problem_json(request):
                return problems.problem_response(
                    request, "method-not-allowed",
                    f"{request.method} is not allowed here; use {allowed}.",
                    headers={"Allow": allowed})
            return HttpResponseNotAllowed(sorted(endpoints.methods(name)))
        if entry.surface == endpoints.API or entry.access == endpoints.PUBLIC:
            return None
        principal = getattr(request, "principal", None)
        if principal is None:
            if problems.wants_problem_json(request):
                return problems.problem_response(request, "unauthenticated",
                                                 "Sign in to use this page.")
            return redirect_to_login(request.get_full_path(), "/app/login/")
        if entry.access == endpoints.ACCOUNT:
            if principal.account_id is None:
                raise NotAuthorized("Choose an account you are a member of.")
            if entry.permission is not None:
                authorize(principal, entry.permission)
        if entry.reauth and not recently_authenticated(request):
            return reauth_response(request)
        return None
