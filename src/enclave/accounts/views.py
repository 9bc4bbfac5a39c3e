"""Team, roles and audit-log pages (/app/team/…, /app/audit/…). Thin edges over
``accounts.actions``; every route has an entry in ``people.endpoints.ENDPOINTS``."""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from enclave.accounts import actions
from enclave.accounts.models import Membership, Role
from enclave.accounts.permissions import (
    BUILT_IN_ROLES,
    CUSTOM_ROLE_PERMISSIONS,
    PERMISSIONS,
    ROLE_PERMISSIONS,
    role_label,
)
from enclave.core import audit
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.views import render_error_page
from enclave.identity.reauth import recently_authenticated, require_recent_auth
from enclave.people import access, visibility
from enclave.people.csvsafe import neutralise

AUDIT_PAGE_SIZE = 100
AUDIT_FILTERS = {"event", "actor", "target_type", "target_id", "since", "until", "before"}
app_login_required = login_required(login_url="login")


def _ctx(request: HttpRequest, codename: str) -> access.MemberContext:
    ctx = access.context_for(request.user, request.account)
    access.require(ctx, codename)
    return ctx


def access_membership(ctx: access.MemberContext, membership_id) -> Membership:
    """A membership of the member's account; Http404 for another account's or missing."""
    row = (Membership.objects.select_related("member", "custom_role")
           .filter(account_id=ctx.account_id, pk=membership_id).first())
    if row is None:
        raise Http404("No such member.")
    return row


def _rule_error(request, exc) -> HttpResponse:
    return render_error_page(request, 409, "Not allowed", str(exc))


# --- team ---

@app_login_required
def team(request: HttpRequest) -> HttpResponse:
    ctx = _ctx(request, "team.read")
    rows = (Membership.objects.select_related("member", "custom_role")
            .filter(account_id=ctx.account_id).order_by("created_at", "pk"))
    roles = list(Role.objects.filter(account_id=ctx.account_id).order_by("name"))
    return render(request, "accounts/team.html", {
        "ctx": ctx, "rows": [(m, role_label(m)) for m in rows],
        "built_in": BUILT_IN_ROLES, "custom_roles": roles,
        "can_manage": ctx.can("team.manage"), "is_owner": ctx.can("account.manage")})


@require_POST
@app_login_required
@require_recent_auth
def team_change_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    ctx = _ctx(request, "team.manage")
    target = access_membership(ctx, membership_id)
    value = request.POST.get("role", "")
    role = value
    if value.startswith("custom:"):
        role = Role.objects.filter(account_id=ctx.account_id,
                                   pk=value.removeprefix("custom:") or 0).first()
        if role is None:
            return render_error_page(request, 422, "Unknown role", "Choose a listed role.")
    try:
        actions.do_change_role(target, role, actor=request.user, request=request)
    except ValidationError:
        return render_error_page(request, 422, "Unknown role", "Choose a listed role.")
    except actions.TeamRuleError as exc:
        return _rule_error(request, exc)
    return redirect("/app/team/")


@require_POST
@app_login_required
@require_recent_auth
def team_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    ctx = _ctx(request, "team.manage")
    target = access_membership(ctx, membership_id)
    try:
        actions.do_remove_member(target, actor=request.user, request=request)
    except actions.TeamRuleError as exc:
        return _rule_error(request, exc)
    return redirect("/app/team/")


@require_POST
@app_login_required
@require_recent_auth
def team_transfer(request: HttpRequest, membership_id: int) -> HttpResponse:
    ctx = _ctx(request, "account.manage")
    target = access_membership(ctx, membership_id)
    try:
        actions.do_transfer_ownership(target, actor=request.user, request=request)
    except actions.TeamRuleError as exc:
        return _rule_error(request, exc)
    return redirect("/app/team/")


@require_http_methods(["GET", "POST"])
@app_login_required
def team_roles(request: HttpRequest) -> HttpResponse:
    """Custom roles: everyone with ``team.read`` sees them; owners define them (after
    re-authenticating)."""
    ctx = _ctx(request, "team.read")
    errors = {}
    if request.method == "POST":
        access.require(ctx, "account.manage")
        if not recently_authenticated(request):
            return redirect("/app/reauth/?next=/app/team/roles/")
        try:
            actions.do_save_custom_role(ctx.account, request.POST.get("name", ""),
                                        request.POST.getlist("permissions"),
                                        actor=request.user, request=request)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return redirect("/app/team/roles/")
    roles = Role.objects.filter(account_id=ctx.account_id).order_by("name")
    return render(request, "accounts/roles.html", {
        "ctx": ctx, "roles": roles, "errors": errors,
        "choices": [(c, PERMISSIONS[c]) for c in sorted(CUSTOM_ROLE_PERMISSIONS)],
        "can_define": ctx.can("account.manage"), "built_in": BUILT_IN_ROLES,
        "matrix": permissions_table()}, status=422 if errors else 200)


# --- audit log ---

class BadFilter(Exception):
    """An audit filter that cannot be applied. ``str()`` is safe to show."""


def _date(value: str, name: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name} must be a date as YYYY-MM-DD.") from None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def audit_rows(ctx, params):
    """The account's audit rows, newest first, filtered; raises BadFilter."""
    unknown = set(params) - AUDIT_FILTERS
    if unknown:
        raise BadFilter(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
    rows = AuditEvent.objects.filter(account_id=ctx.account_id).select_related("actor")
    if params.get("event"):
        try:
            rows = rows.filter(event_type=AuditEventType[params["event"].upper()])
        except KeyError:
            raise BadFilter("Unknown event type.") from None
    if params.get("actor"):
        rows = rows.filter(actor__email__iexact=params["actor"].strip())
    if params.get("target_type"):
        rows = rows.filter(target_type=params["target_type"][:64])
    if params.get("target_id"):
        rows = rows.filter(target_id=params["target_id"][:64])
    if params.get("since"):
        rows = rows.filter(created_at__gte=_date(params["since"], "since"))
    if params.get("until"):
        rows = rows.filter(created_at__lt=_date(params["until"], "until")
                           + dt.timedelta(days=1))
    if params.get("before"):
        if not params["before"].isdigit():
            raise BadFilter("before must be an event id.")
        rows = rows.filter(pk__lt=int(params["before"]))
    return rows.order_by("-pk")


def _targets(ctx, events) -> dict[str, str]:
    """Person targets labelled through the visibility formatter (email as the role sees it)."""
    from enclave.people.models import Person

    ids = {int(e.target_id) for e in events if e.target_type == "person"
           and e.target_id.isdigit()}
    people = Person.objects.filter(account_id=ctx.account_id, pk__in=ids)
    labels = {}
    for person in people:
        shown = visibility.display(person, "email", ctx.perms)
        labels[str(person.pk)] = shown.text if not shown.hidden and shown.text else ""
    return labels


def _describe(event, labels) -> dict:
    target = f"{event.target_type}:{event.target_id}" if event.target_type else ""
    if event.target_type == "person" and labels.get(event.target_id):
        target += f" ({labels[event.target_id]})"
    try:
        name = AuditEventType(event.event_type).label
    except ValueError:
        name = str(event.event_type)
    return {"id": event.pk, "at": event.created_at, "event": name,
            "actor": event.actor.email if event.actor else "system", "target": target,
            "ip": event.ip or "", "trace_id": event.trace_id,
            "extra": "(scrubbed)" if event.scrubbed else event.extra_data}


@app_login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    ctx = _ctx(request, "audit.read")
    params = {k: v for k, v in request.GET.items() if v != ""}
    try:
        events = list(audit_rows(ctx, params)[:AUDIT_PAGE_SIZE + 1])
    except BadFilter as exc:
        return render_error_page(request, 400, "Cannot apply this filter", str(exc))
    more = len(events) > AUDIT_PAGE_SIZE
    events = events[:AUDIT_PAGE_SIZE]
    labels = _targets(ctx, events)
    next_query = request.GET.copy()
    if more:
        next_query["before"] = str(events[-1].pk)
    return render(request, "accounts/audit.html", {
        "ctx": ctx, "events": [_describe(e, labels) for e in events],
        "event_names": [t.name.lower() for t in AuditEventType], "params": params,
        "next_url": f"?{next_query.urlencode()}" if more else "",
        "export_query": request.GET.urlencode()})


class _Echo:
    def write(self, value):
        return value


@app_login_required
@require_recent_auth
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered audit log as CSV, streamed (constant memory); the export is audited."""
    from django.db import transaction

    ctx = _ctx(request, "audit.read")
    params = {k: v for k, v in request.GET.items() if v != "" and k != "before"}
    try:
        rows = audit_rows(ctx, params)
    except BadFilter as exc:
        return render_error_page(request, 400, "Cannot apply this filter", str(exc))
    with transaction.atomic():
        audit.record(AuditEventType.AUDIT_LOG_EXPORTED, actor=request.user,
                     account_id=ctx.account_id, request=request, target_type="account",
                     target_id=ctx.account_id, extra={"filters": sorted(params)})
    writer = csv.writer(_Echo())

    def stream():
        yield writer.writerow(["id", "created_at", "event", "actor", "target", "ip",
                               "trace_id", "extra"])
        last = None
        while True:
            page = rows if last is None else rows.filter(pk__lt=last)
            batch = list(page[:1000])
            if not batch:
                return
            labels = _targets(ctx, batch)
            for event in batch:
                d = _describe(event, labels)
                yield writer.writerow([neutralise(str(d[k])) for k in (
                    "id", "at", "event", "actor", "target", "ip", "trace_id", "extra")])
            last = batch[-1].pk

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response


def permissions_table() -> list[tuple[str, list[bool]]]:
    """Rows for the roles page: each permission × built-in role."""
    return [(c, [c in ROLE_PERMISSIONS[r] for r in BUILT_IN_ROLES]) for c in PERMISSIONS]
