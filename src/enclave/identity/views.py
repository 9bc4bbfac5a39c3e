"""Web app pages for identity. Thin: parse the form, call an action, render.

Pages: sign-up, log in (+ MFA challenge), log out, sessions, password change and reset,
MFA set-up and recovery codes, re-authentication. (Pages that also create or change an
account — first owner, sign-up completion, invitations, home — are in
``accounts.views``.) What each route needs is its entry in ``access.endpoints``.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.contrib.auth import logout, update_session_auth_hash
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from enclave.core import clock
from enclave.identity import actions, forms, mfa, sessions, throttle
from enclave.identity.models import Member

MFA_PENDING_KEY = "enclave_mfa_pending"
MFA_PENDING_LIFETIME = dt.timedelta(minutes=5)


def add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "message_dict"):
        for field, messages in exc.message_dict.items():
            for message in messages:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def form_status(request: HttpRequest, form=None) -> int:
    return 422 if request.method == "POST" and form is not None and form.errors else 200


def _safe_next(request: HttpRequest, value: str | None, default: str = "/app/") -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=True) and value.startswith("/"):
        return value
    return default


def too_many_requests(request: HttpRequest, exc: actions.TooManyRequests) -> HttpResponse:
    """429 for sign-up and reset requests over their limits: the same page whether or not
    the address has a login (the limits count every address)."""
    minutes = math.ceil(exc.retry_after / 60)
    response = render(request, "core/error.html", {
        "status": 429, "title": "Too many requests",
        "detail": "Too many emails were asked for this address or from your network. "
                  f"Wait {minutes} minute{'s' * (minutes != 1)} and try again."}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


# --- sign-up ---

def signup(request: HttpRequest) -> HttpResponse:
    form = forms.EmailForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_request_signup(form.cleaned_data["email"], request=request)
        except actions.TooManyRequests as exc:
            return too_many_requests(request, exc)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            return render(request, "identity/check_email.html", {"purpose": "signup"})
    return render(request, "identity/signup.html", {"form": form},
                  status=form_status(request, form))


def invalid_link(request: HttpRequest, kind: str, again: str) -> HttpResponse:
    return render(request, "identity/link_invalid.html", {"kind": kind, "again": again},
                  status=404)


# --- log in, MFA challenge, log out ---

def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = forms.LoginForm(request.POST if request.method == "POST" else None)
    failed = False
    if request.method == "POST" and form.is_valid():
        # Unknown email, wrong password and throttled all end in the same page below.
        member = actions.check_credentials(form.cleaned_data["email"],
                                           form.cleaned_data["password"], request=request)
        if member is not None:
            if member.mfa_enabled:
                request.session.cycle_key()
                request.session[MFA_PENDING_KEY] = {
                    "member": member.pk, "at": clock.now().isoformat(), "next": next_url}
                return redirect("login-mfa")
            actions.do_complete_login(request, member, method="password")
            return redirect(next_url)
        failed = True
    context = {"form": form, "failed": failed, "next": next_url if next_url != "/app/" else "",
               "ended": request.GET.get("ended") == "1"}
    return render(request, "identity/login.html", context,
                  status=422 if form.errors else 200)


def _pending_member(request: HttpRequest) -> tuple[Member | None, str]:
    pending = request.session.get(MFA_PENDING_KEY)
    if not isinstance(pending, dict):
        return None, "/app/"
    started = dt.datetime.fromisoformat(pending["at"])
    if clock.now() - started > MFA_PENDING_LIFETIME:
        request.session.pop(MFA_PENDING_KEY, None)
        return None, "/app/"
    return Member.objects.filter(pk=pending["member"], is_active=True).first(), pending["next"]


def login_mfa(request: HttpRequest) -> HttpResponse:
    member, next_url = _pending_member(request)
    if member is None:
        return redirect("login")
    form = forms.CodeForm(request.POST if request.method == "POST" else None)
    status = None
    if request.method == "POST" and form.is_valid():
        try:
            ok = actions.verify_second_factor(member, form.cleaned_data["code"],
                                              request=request)
        except throttle.Throttled as exc:
            form.add_error("code", str(exc))
            status = 429
        else:
            if ok:
                request.session.pop(MFA_PENDING_KEY, None)
                actions.do_complete_login(request, member, method="password+totp")
                return redirect(next_url)
            form.add_error("code", "That code is not correct or was already used.")
    return render(request, "identity/login_mfa.html", {"form": form},
                  status=status or form_status(request, form))


def logout_view(request: HttpRequest) -> HttpResponse:
    if request.principal is not None:
        actions.do_logout(request.user, actor=request.principal, request=request)
    logout(request)
    return redirect("login")


# --- sessions ---

def sessions_page(request: HttpRequest) -> HttpResponse:
    rows = sessions.active_for(request.user)
    return render(request, "identity/sessions.html", {
        "rows": rows, "current_id": request.member_session.pk})


def revoke_session(request: HttpRequest, session_id: int) -> HttpResponse:
    if session_id == request.member_session.pk:
        return logout_view(request)
    if not actions.do_revoke_session(request.user, session_id, actor=request.principal,
                                     request=request):
        return render(request, "core/error.html", {
            "status": 404, "title": "Session not found",
            "detail": "That session does not exist or has already ended."}, status=404)
    return redirect("sessions")


def revoke_all_sessions(request: HttpRequest) -> HttpResponse:
    actions.do_sign_out_everywhere(request.user, actor=request.principal, request=request)
    logout(request)
    return redirect("/app/login/?ended=1")


# --- passwords ---

def password_change(request: HttpRequest) -> HttpResponse:
    form = forms.PasswordChangeForm(request.POST if request.method == "POST" else None)
    done = False
    status = None
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_change_password(request.user, form.cleaned_data["current_password"],
                                       form.cleaned_data["new_password"],
                                       actor=request.principal, request=request)
        except throttle.Throttled as exc:
            form.add_error("current_password", str(exc))
            status = 429
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            # Keep this session valid under the new hash, with a new id.
            update_session_auth_hash(request, request.user)
            sessions.follow_new_key(request)
            done = True
            form = forms.PasswordChangeForm()
    return render(request, "identity/password_change.html", {"form": form, "done": done},
                  status=status or form_status(request, form))


def password_reset(request: HttpRequest) -> HttpResponse:
    form = forms.EmailForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_request_password_reset(form.cleaned_data["email"], request=request)
        except actions.TooManyRequests as exc:
            return too_many_requests(request, exc)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            return render(request, "identity/check_email.html", {"purpose": "reset"})
    return render(request, "identity/password_reset.html", {"form": form},
                  status=form_status(request, form))


def password_reset_confirm(request: HttpRequest, token: str) -> HttpResponse:
    if actions.usable_reset(token) is None:
        return invalid_link(request, "password reset", "/app/password/reset/")
    form = forms.NewPasswordForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_reset_password(token, form.cleaned_data["new_password"], request=request)
        except actions.TokenError:
            return invalid_link(request, "password reset", "/app/password/reset/")
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            return render(request, "identity/password_reset_done.html")
    return render(request, "identity/password_reset_confirm.html", {"form": form},
                  status=form_status(request, form))


# --- MFA ---

def mfa_page(request: HttpRequest) -> HttpResponse:
    remaining = request.user.recovery_codes.filter(used_at__isnull=True).count()
    return render(request, "identity/mfa.html", {
        "enabled": request.user.mfa_enabled, "remaining": remaining})


def mfa_setup(request: HttpRequest) -> HttpResponse:
    if request.user.mfa_enabled:
        return redirect("mfa")
    form = forms.CodeForm(request.POST if request.method == "POST" else None)
    secret = actions.pending_totp_secret(request.user)
    if secret is None or (request.method == "GET" and request.GET.get("restart") == "1"):
        secret = actions.do_begin_totp_enrolment(request.user, actor=request.principal)
    if request.method == "POST" and form.is_valid():
        try:
            codes = actions.do_confirm_totp(request.user, form.cleaned_data["code"],
                                            actor=request.principal, request=request)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            sessions.rotate(request)  # a privilege change: a new session id
            return render(request, "identity/recovery_codes.html", {"codes": codes,
                                                                    "new": True})
    uri = mfa.provisioning_uri(secret, request.user.email)
    return render(request, "identity/mfa_setup.html", {
        "form": form, "secret": secret, "qr": mfa.qr_data_uri(uri),
        "required": request.GET.get("required") == "1"}, status=form_status(request, form))


def mfa_recovery_codes(request: HttpRequest) -> HttpResponse:
    if not request.user.mfa_enabled:
        return redirect("mfa")
    codes = actions.do_regenerate_recovery_codes(request.user, actor=request.principal,
                                                 request=request)
    return render(request, "identity/recovery_codes.html", {"codes": codes, "new": False})


def mfa_disable(request: HttpRequest) -> HttpResponse:
    account = request.account
    if account is not None and account.require_mfa:
        return render(request, "core/error.html", {
            "status": 409, "title": "MFA is required",
            "detail": f"{account.name} requires MFA for every member."}, status=409)
    if actions.do_disable_mfa(request.user, actor=request.principal, request=request):
        sessions.rotate(request)
    return redirect("mfa")


def reauth(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = forms.ReauthForm(request.POST if request.method == "POST" else None)
    status = None
    if request.method == "POST" and form.is_valid():
        try:
            if actions.do_reauthenticate(request.user, form.cleaned_data["password"],
                                         form.cleaned_data["code"], actor=request.principal,
                                         request=request):
                return redirect(next_url)
        except throttle.Throttled as exc:
            form.add_error(None, str(exc))
            status = 429
        else:
            form.add_error(None, "That password or code is not correct.")
    return render(request, "identity/reauth.html", {
        "form": form, "next": next_url, "mfa": request.user.mfa_enabled,
        "window": settings.REAUTH_WINDOW_MINUTES},
        status=status or form_status(request, form))
