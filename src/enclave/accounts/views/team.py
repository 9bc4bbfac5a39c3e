"""Team and roles pages (/app/team/…). Thin edges over ``accounts.actions``; what each
needs is its entry in ``access.endpoints`` (enforced before the view runs)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from enclave.access.permissions import (
    BUILT_IN_ROLES,
    CUSTOM_ROLE_PERMISSIONS,
    DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Permission,
)
from enclave.accounts import actions
from enclave.accounts.access import access_membership
from enclave.accounts.actions import role_label
from enclave.accounts.models import Membership, Role
from enclave.core.validation import whole_number
from enclave.core.views import render_error_page

P = Permission


def _rule_error(request, exc) -> HttpResponse:
    return render_error_page(request, 409, "Not allowed", str(exc))


# --- team ---

def team(request: HttpRequest) -> HttpResponse:
    ctx = request.principal
    rows = (Membership.objects.select_related("member", "custom_role")
            .filter(account_id=ctx.account_id).order_by("created_at", "pk"))
    roles = list(Role.objects.filter(account_id=ctx.account_id).order_by("name"))
    return render(request, "accounts/team.html", {
        "ctx": ctx, "rows": [(m, role_label(m)) for m in rows],
        "built_in": BUILT_IN_ROLES, "custom_roles": roles,
        "can_manage": ctx.can(P.TEAM_MANAGE), "is_owner": ctx.can(P.ACCOUNT_MANAGE)})


def team_change_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    ctx = request.principal
    target = access_membership(ctx, membership_id)
    value = request.POST.get("role", "")
    role = value
    if value.startswith("custom:"):
        role_id = whole_number(value.removeprefix("custom:"))
        role = None if role_id is None else \
            Role.objects.filter(account_id=ctx.account_id, pk=role_id).first()
        if role is None:
            return render_error_page(request, 422, "Unknown role", "Choose a listed role.")
    try:
        actions.do_change_role(target, role, actor=ctx, request=request)
    except ValidationError:
        return render_error_page(request, 422, "Unknown role", "Choose a listed role.")
    except actions.TeamRuleError as exc:
        return _rule_error(request, exc)
    return redirect("/app/team/")


def team_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    ctx = request.principal
    target = access_membership(ctx, membership_id)
    try:
        actions.do_remove_member(target, actor=ctx, request=request)
    except actions.TeamRuleError as exc:
        return _rule_error(request, exc)
    return redirect("/app/team/")


def team_transfer(request: HttpRequest, membership_id: int) -> HttpResponse:
    ctx = request.principal
    target = access_membership(ctx, membership_id)
    try:
        actions.do_transfer_ownership(target, actor=ctx, request=request)
    except actions.TeamRuleError as exc:
        return _rule_error(request, exc)
    return redirect("/app/team/")


def team_roles(request: HttpRequest) -> HttpResponse:
    """Custom roles: everyone with ``team.read`` sees them; owners define them (after
    re-authenticating)."""
    ctx = request.principal
    errors = {}
    if request.method == "POST":
        try:
            actions.do_save_custom_role(ctx.account, request.POST.get("name", ""),
                                        request.POST.getlist("permissions"),
                                        actor=ctx, request=request)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return redirect("/app/team/roles/")
    roles = Role.objects.filter(account_id=ctx.account_id).order_by("name")
    return render(request, "accounts/roles.html", {
        "roles": roles, "errors": errors,
        "choices": [(p.value, DESCRIPTIONS[p]) for p in sorted(CUSTOM_ROLE_PERMISSIONS)],
        "can_define": ctx.can(P.ACCOUNT_MANAGE), "built_in": BUILT_IN_ROLES,
        "matrix": permissions_table()}, status=422 if errors else 200)


def permissions_table() -> list[tuple[str, list[bool]]]:
    """Rows for the roles page: each permission × built-in role."""
    return [(p.value, [p in ROLE_PERMISSIONS[r] for r in BUILT_IN_ROLES]) for p in Permission]
