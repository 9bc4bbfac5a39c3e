"""Web app pages for identity. Thin: parse the form, call an action, render.

Pages: first-owner set-up, sign-up, log in (+ MFA challenge), log out, home with the
account switcher, sessions, password change and reset, MFA set-up and recovery codes,
re-authentication, invitations and account security settings.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from enclave.accounts import actions as account_actions
from enclave.accounts.models import Membership
from enclave.accounts.permissions import has_perm, permissions_of
from enclave.core import clock
from enclave.identity import actions, forms, mfa, sessions
from enclave.identity.models import Member
from enclave.identity.reauth import require_recent_auth

MFA_PENDING_KEY = "enclave_mfa_pending"
MFA_PENDING_LIFETIME = dt.timedelta(minutes=5)
app_login_required = login_required(login_url="login")


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "message_dict"):
        for field, messages in exc.message_dict.items():
            for message in messages:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def _status(request: HttpRequest, form=None) -> int:
    return 422 if request.method == "POST" and form is not None and form.errors else 200


def _safe_next(request: HttpRequest, value: str | None, default: str = "/app/") -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=True) and value.startswith("/"):
        return value
    return default


# --- first owner (one-time set-up link) ---

@require_http_methods(["GET", "POST"])
def setup_owner(request: HttpRequest, token: str) -> HttpResponse:
    if not actions.setup_token_valid(token):
        return render(request, "identity/setup_invalid.html", status=404)
    form = forms.OwnerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = actions.do_create_first_owner(
                token, form.cleaned_data["email"], form.cleaned_data["password"], request=request
            )
        except actions.SetupError:
            return render(request, "identity/setup_invalid.html", status=404)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            login(request, member, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("app-home")
    return render(request, "identity/setup.html", {"form": form},
                  status=422 if request.method == "POST" else 200)


# --- sign-up ---

@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = forms.EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_request_signup(form.cleaned_data["email"], request=request)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return render(request, "identity/check_email.html", {"purpose": "signup"})
    return render(request, "identity/signup.html", {"form": form}, status=_status(request, form))


@require_http_methods(["GET", "POST"])
def signup_complete(request: HttpRequest, token: str) -> HttpResponse:
    if actions.usable_signup(token) is None:
        return _invalid_link(request, "sign-up", "/app/signup/")
    form = forms.SignupCompleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = actions.do_complete_signup(token, form.cleaned_data["account_name"],
                                                form.cleaned_data["password"], request=request)
        except actions.TokenError:
            return _invalid_link(request, "sign-up", "/app/signup/")
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            actions.do_complete_login(request, member, method="signup")
            return redirect("app-home")
    return render(request, "identity/signup_complete.html", {"form": form},
                  status=_status(request, form))


def _invalid_link(request: HttpRequest, kind: str, again: str) -> HttpResponse:
    return render(request, "identity/link_invalid.html", {"kind": kind, "again": again},
                  status=404)


# --- log in, MFA challenge, log out ---

@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = forms.LoginForm(request.POST or None)
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


@require_http_methods(["GET", "POST"])
def login_mfa(request: HttpRequest) -> HttpResponse:
    from enclave.core.audit import client_ip
    from enclave.identity import throttle

    member, next_url = _pending_member(request)
    if member is None:
        return redirect("login")
    form = forms.CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ip = client_ip(request)
        if throttle.blocked_scopes(member.email, ip):
            form.add_error("code", "Too many attempts. Wait a few minutes and try again.")
        elif actions.verify_second_factor(member, form.cleaned_data["code"], request=request):
            request.session.pop(MFA_PENDING_KEY, None)
            actions.do_complete_login(request, member, method="password+totp")
            return redirect(next_url)
        else:
            throttle.record_failure(member.email, ip)
            form.add_error("code", "That code is not correct or was already used.")
    return render(request, "identity/login_mfa.html", {"form": form},
                  status=_status(request, form))


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    actions.do_logout(request)
    return redirect("login")


# --- home and account switcher ---

@app_login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = (Membership.objects.filter(member=request.user).select_related("account")
                   .order_by("account__name", "account_id"))
    account_id = getattr(request.account, "pk", None)
    role = account_actions.role_of(request.user, account_id)
    perms = permissions_of(account_actions.membership_of(request.user, account_id))
    return render(request, "identity/home.html", {
        "memberships": memberships, "account": request.account, "role": role,
        "can_invite": "team.manage" in perms, "can_secure": "account.manage" in perms,
        "can_people": "people.read" in perms, "can_team": "team.read" in perms,
        "can_audit": "audit.read" in perms, "can_keys": "api_keys.manage" in perms,
        "mfa_enabled": request.user.mfa_enabled})


def _require_account_perm(request: HttpRequest, codename: str, message: str):
    """The current account when the member's role (built-in or custom) has ``codename``;
    PermissionDenied otherwise."""
    account = request.account
    if account is None or not has_perm(account_actions.membership_of(request.user, account.pk),
                                       codename):
        raise PermissionDenied(message)
    return account


@require_POST
@app_login_required
def switch_account(request: HttpRequest) -> HttpResponse:
    try:
        account_id = int(request.POST.get("account", ""))
    except ValueError:
        account_id = 0
    if not actions.do_switch_account(request, account_id):
        raise PermissionDenied("You are not a member of that account.")
    return redirect("app-home")


# --- sessions ---

@app_login_required
def sessions_page(request: HttpRequest) -> HttpResponse:
    rows = sessions.active_for(request.user)
    return render(request, "identity/sessions.html", {
        "rows": rows, "current_id": request.member_session.pk})


@require_POST
@app_login_required
def revoke_session(request: HttpRequest, session_id: int) -> HttpResponse:
    if session_id == request.member_session.pk:
        actions.do_logout(request)
        return redirect("login")
    if not actions.do_revoke_session(request.user, session_id, request=request):
        return render(request, "core/error.html", {
            "status": 404, "title": "Session not found",
            "detail": "That session does not exist or has already ended."}, status=404)
    return redirect("sessions")


@require_POST
@app_login_required
def revoke_all_sessions(request: HttpRequest) -> HttpResponse:
    actions.do_sign_out_everywhere(request)
    return redirect("/app/login/?ended=1")


# --- passwords ---

@require_http_methods(["GET", "POST"])
@app_login_required
def password_change(request: HttpRequest) -> HttpResponse:
    form = forms.PasswordChangeForm(request.POST or None)
    done = False
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_change_password(request, form.cleaned_data["current_password"],
                                       form.cleaned_data["new_password"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            done = True
            form = forms.PasswordChangeForm()
    return render(request, "identity/password_change.html", {"form": form, "done": done},
                  status=_status(request, form))


@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    form = forms.EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_request_password_reset(form.cleaned_data["email"], request=request)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return render(request, "identity/check_email.html", {"purpose": "reset"})
    return render(request, "identity/password_reset.html", {"form": form},
                  status=_status(request, form))


@require_http_methods(["GET", "POST"])
def password_reset_confirm(request: HttpRequest, token: str) -> HttpResponse:
    if actions.usable_reset(token) is None:
        return _invalid_link(request, "password reset", "/app/password/reset/")
    form = forms.NewPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_reset_password(token, form.cleaned_data["new_password"], request=request)
        except actions.TokenError:
            return _invalid_link(request, "password reset", "/app/password/reset/")
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return render(request, "identity/password_reset_done.html")
    return render(request, "identity/password_reset_confirm.html", {"form": form},
                  status=_status(request, form))


# --- MFA ---

@app_login_required
def mfa_page(request: HttpRequest) -> HttpResponse:
    remaining = request.user.recovery_codes.filter(used_at__isnull=True).count()
    return render(request, "identity/mfa.html", {
        "enabled": request.user.mfa_enabled, "remaining": remaining})


@require_http_methods(["GET", "POST"])
@app_login_required
@require_recent_auth
def mfa_setup(request: HttpRequest) -> HttpResponse:
    if request.user.mfa_enabled:
        return redirect("mfa")
    form = forms.CodeForm(request.POST or None)
    secret = actions.pending_totp_secret(request.user)
    if secret is None or (request.method == "GET" and request.GET.get("restart") == "1"):
        secret = actions.do_begin_totp_enrolment(request.user)
    if request.method == "POST" and form.is_valid():
        try:
            codes = actions.do_confirm_totp(request, form.cleaned_data["code"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return render(request, "identity/recovery_codes.html", {"codes": codes,
                                                                    "new": True})
    uri = mfa.provisioning_uri(secret, request.user.email)
    return render(request, "identity/mfa_setup.html", {
        "form": form, "secret": secret, "qr": mfa.qr_data_uri(uri),
        "required": request.GET.get("required") == "1"}, status=_status(request, form))


@require_POST
@app_login_required
@require_recent_auth
def mfa_recovery_codes(request: HttpRequest) -> HttpResponse:
    if not request.user.mfa_enabled:
        return redirect("mfa")
    codes = actions.do_regenerate_recovery_codes(request)
    return render(request, "identity/recovery_codes.html", {"codes": codes, "new": False})


@require_POST
@app_login_required
@require_recent_auth
def mfa_disable(request: HttpRequest) -> HttpResponse:
    account = request.account
    if account is not None and account.require_mfa:
        return render(request, "core/error.html", {
            "status": 409, "title": "MFA is required",
            "detail": f"{account.name} requires MFA for every member."}, status=409)
    actions.do_disable_mfa(request)
    return redirect("mfa")


@require_http_methods(["GET", "POST"])
@app_login_required
def reauth(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = forms.ReauthForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if actions.do_reauthenticate(request, form.cleaned_data["password"],
                                     form.cleaned_data["code"]):
            return redirect(next_url)
        form.add_error(None, "That password or code is not correct.")
    return render(request, "identity/reauth.html", {
        "form": form, "next": next_url, "mfa": request.user.mfa_enabled,
        "window": settings.REAUTH_WINDOW_MINUTES}, status=_status(request, form))


# --- invitations and account settings ---

@require_http_methods(["GET", "POST"])
@app_login_required
def invite(request: HttpRequest) -> HttpResponse:
    account = _require_account_perm(request, "team.manage",
                                    "Your role does not include team.manage.")
    form = forms.InviteForm(request.POST or None)
    sent = False
    if request.method == "POST" and form.is_valid():
        try:
            account_actions.do_invite_member(account, form.cleaned_data["email"],
                                             form.cleaned_data["role"], actor=request.user,
                                             request=request)
        except PermissionDenied as exc:
            form.add_error("role", str(exc))
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            sent = True
            form = forms.InviteForm()
    return render(request, "identity/invite.html", {"form": form, "sent": sent,
                                                    "account": account},
                  status=_status(request, form))


@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation = account_actions.usable_invitation(token)
    if invitation is None:
        return _invalid_link(request, "invitation", "")
    member = request.user if request.user.is_authenticated else None
    has_login = member is None and Member.objects.filter(
        email__iexact=invitation.email).exists()
    form = forms.AcceptInvitationForm(request.POST or None) if member is None else None
    error = ""
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            accepted = account_actions.do_accept_invitation(
                token, member=member, password=form.cleaned_data["password"] if form else None,
                request=request)
        except account_actions.InvitationError as exc:
            error = str(exc)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            if member is None:
                actions.do_complete_login(request, accepted, method="invitation")
            else:
                actions.do_switch_account(request, invitation.account_id)
            return redirect("app-home")
    status = 422 if error or (form is not None and form.errors) else 200
    return render(request, "identity/invitation.html", {
        "invitation": invitation, "form": form, "member": member, "has_login": has_login,
        "error": error, "login_next": f"/app/login/?next=/app/invite/{token}"}, status=status)


@require_http_methods(["GET", "POST"])
@app_login_required
@require_recent_auth
def account_security(request: HttpRequest) -> HttpResponse:
    account = _require_account_perm(request, "account.manage",
                                    "Your role does not include account.manage.")
    initial = {"idle_timeout_minutes": account.idle_timeout_minutes,
               "require_mfa": account.require_mfa}
    form = forms.AccountSecurityForm(request.POST or None, initial=initial)
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            account_actions.do_update_account_security(
                account, idle_timeout_minutes=form.cleaned_data["idle_timeout_minutes"],
                require_mfa=form.cleaned_data["require_mfa"], actor=request.user,
                request=request)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            saved = True
    return render(request, "identity/account_security.html", {
        "form": form, "saved": saved, "account": account}, status=_status(request, form))
