"""One-time links that create a member together with an account or a membership: the
first owner's set-up link, sign-up completion and invitations. Public routes (the link
is the authority); thin edges over ``accounts.onboarding`` and ``accounts.actions``."""

from __future__ import annotations

from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from enclave.accounts import actions, onboarding
from enclave.identity import actions as identity_actions
from enclave.identity import forms, sessions
from enclave.identity.models import Member
from enclave.identity.views import add_errors, form_status, invalid_link


def setup_owner(request: HttpRequest, token: str) -> HttpResponse:
    if not identity_actions.setup_token_valid(token):
        return render(request, "identity/setup_invalid.html", status=404)
    form = forms.OwnerForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            member = onboarding.do_create_first_owner(
                token, form.cleaned_data["email"], form.cleaned_data["password"],
                request=request)
        except identity_actions.SetupError:
            return render(request, "identity/setup_invalid.html", status=404)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            login(request, member, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("app-home")
    return render(request, "identity/setup.html", {"form": form},
                  status=422 if request.method == "POST" else 200)


def signup_complete(request: HttpRequest, token: str) -> HttpResponse:
    if identity_actions.usable_signup(token) is None:
        return invalid_link(request, "sign-up", "/app/signup/")
    form = forms.SignupCompleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            member = onboarding.do_complete_signup(
                token, form.cleaned_data["account_name"], form.cleaned_data["password"],
                request=request)
        except identity_actions.TokenError:
            return invalid_link(request, "sign-up", "/app/signup/")
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            identity_actions.do_complete_login(request, member, method="signup")
            return redirect("app-home")
    return render(request, "identity/signup_complete.html", {"form": form},
                  status=form_status(request, form))


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation = actions.usable_invitation(token)
    if invitation is None:
        return invalid_link(request, "invitation", "")
    member = request.user if request.user.is_authenticated else None
    has_login = member is None and Member.objects.with_email(invitation.email).exists()
    posted = request.POST if request.method == "POST" else None
    form = forms.AcceptInvitationForm(posted) if member is None else None
    error = ""
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            accepted = actions.do_accept_invitation(
                token, member=member, password=form.cleaned_data["password"] if form else None,
                request=request)
        except actions.InvitationError as exc:
            error = str(exc)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if member is None:
                identity_actions.do_complete_login(request, accepted, method="invitation")
            else:
                identity_actions.do_switch_account(member, invitation.account_id,
                                                   actor=request.principal, request=request)
                sessions.rotate(request)
            return redirect("app-home")
    status = 422 if error or (form is not None and form.errors) else 200
    return render(request, "identity/invitation.html", {
        "invitation": invitation, "form": form, "member": member, "has_login": has_login,
        "error": error, "login_next": f"/app/login/?next=/app/invite/{token}"}, status=status)
