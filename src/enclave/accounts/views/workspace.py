"""The signed-in home (accounts, links by permission), switching account, invitations
and the account's security settings. Thin edges; what each route needs is its entry in
``access.endpoints`` (enforced before the view runs)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from enclave.access.permissions import Permission
from enclave.accounts import actions, forms
from enclave.accounts.actions import role_label
from enclave.accounts.models import Membership
from enclave.audience import access as audience_access
from enclave.identity import actions as identity_actions
from enclave.identity import sessions
from enclave.identity.views import add_errors, form_status

P = Permission


def home(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    memberships = (Membership.objects.filter(member=request.user).select_related("account")
                   .order_by("account__name", "account_id"))
    role = role_label(principal.membership) if principal.membership is not None else None
    return render(request, "identity/home.html", {
        "memberships": memberships, "account": principal.account, "role": role,
        "can_invite": principal.can(P.TEAM_MANAGE),
        "can_secure": principal.can(P.ACCOUNT_MANAGE),
        "counts": audience_access.account_counts(principal)
        if principal.account_id is not None else None,
        "mfa_enabled": request.user.mfa_enabled})


def switch_account(request: HttpRequest) -> HttpResponse:
    try:
        account_id = int(request.POST.get("account", ""))
    except ValueError:
        account_id = 0
    if not identity_actions.do_switch_account(request.user, account_id,
                                              actor=request.principal, request=request):
        raise PermissionDenied("You are not a member of that account.")
    sessions.rotate(request)  # a privilege change: a new session id
    return redirect("app-home")


def invite(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    form = forms.InviteForm(request.POST if request.method == "POST" else None)
    sent = False
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_invite_member(principal.account, form.cleaned_data["email"],
                                     form.cleaned_data["role"], actor=principal,
                                     request=request)
        except PermissionDenied as exc:
            form.add_error("role", str(exc))
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            sent = True
            form = forms.InviteForm()
    return render(request, "identity/invite.html", {"form": form, "sent": sent,
                                                    "account": principal.account},
                  status=form_status(request, form))


def account_security(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    account = principal.account
    initial = {"idle_timeout_minutes": account.idle_timeout_minutes,
               "require_mfa": account.require_mfa}
    form = forms.AccountSecurityForm(request.POST if request.method == "POST" else None,
                                     initial=initial)
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_account_security(
                account, idle_timeout_minutes=form.cleaned_data["idle_timeout_minutes"],
                require_mfa=form.cleaned_data["require_mfa"], actor=principal,
                request=request)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            saved = True
    return render(request, "identity/account_security.html", {
        "form": form, "saved": saved, "account": account}, status=form_status(request, form))
