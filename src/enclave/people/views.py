"""People pages under /app/people/. Thin: parse, call access/actions, render through the
visibility formatter (``visibility.display``) — no view decides visibility itself.

What each page needs (sign-in, permission, re-authentication, methods) is its entry in
``access.endpoints``, enforced before the view runs; views work with
``request.principal``."""

from __future__ import annotations

import csv

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from enclave.access.permissions import Permission
from enclave.core.views import render_error_page
from enclave.people import access, actions, importer, visibility
from enclave.people.csvsafe import neutralise
from enclave.people.models import FIELD_TYPES, PD_CLASSES, PersonTag
from enclave.people.queries import (  # re-exported: the REST API builds on these
    COUNT_CAP,
    LIST_PARAMS,
    PAGE_SIZE,
    BadQuery,
    filtered_people,
    query_people,
)
from enclave.people.queries import decode_cursor as _decode_cursor
from enclave.people.queries import encode_cursor as _encode_cursor

__all__ = ["COUNT_CAP", "LIST_PARAMS", "PAGE_SIZE", "BadQuery", "_decode_cursor",
           "_encode_cursor", "filtered_people", "query_people"]

EXPORT_CHUNK = 2000
DEFAULT_COLUMNS = ("email", "first_name", "last_name", "company", "country")
P = Permission


def _params(request: HttpRequest) -> dict[str, str]:
    """Query parameters; the column chooser's repeated ``col`` becomes ``cols``."""
    params = request.GET.dict()
    if "col" in request.GET:
        params.pop("col")
        params["cols"] = ",".join(request.GET.getlist("col"))
    return params


def _error_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "message_dict") else {"form": exc.messages}


# --- list ---

def _columns(ctx, raw: str, definitions) -> list[str]:
    wanted = [c.strip() for c in raw.split(",") if c.strip()] if raw else list(DEFAULT_COLUMNS)
    known = set(visibility.FIELD_CLASSES) | {f"custom.{d.key}" for d in definitions}
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise BadQuery(f"Unknown column(s): {', '.join(unknown)}.")
    return visibility.visible_fields(wanted, ctx.perms, definitions)


def people_list(request: HttpRequest) -> HttpResponse:
    """Anyone in the account sees the count; ``people.read`` sees the rows."""
    ctx = request.principal
    if not ctx.can(P.PEOPLE_READ):
        total = access.count_people(ctx)
        return render(request, "people/aggregate.html", {"total": total, "ctx": ctx})
    definitions = access.field_definitions(ctx.account_id)
    params = _params(request)
    try:
        columns = _columns(ctx, params.get("cols", ""), definitions)
        page, cursor, total = query_people(ctx, params, definitions)
    except (BadQuery, visibility.FieldNotQueryable) as exc:
        return render_error_page(request, 400, "Cannot run this search", str(exc))
    rows = [(p, visibility.format_person(p, columns, ctx.perms, definitions)) for p in page]
    next_query = request.GET.copy()
    next_query["after"] = cursor
    sortable = [f for f in (*visibility.QUERYABLE, *(f"custom.{d.key}" for d in definitions))
                if visibility.queryable(ctx.perms, f, definitions)]
    return render(request, "people/list.html", {
        "ctx": ctx, "rows": rows, "total": min(total, COUNT_CAP),
        "more": total > COUNT_CAP,
        "columns": [(c, visibility.FIELD_LABELS.get(c, c)) for c in columns],
        "next_url": f"?{next_query.urlencode()}" if cursor else "",
        "q": params.get("q", ""), "sort": params.get("sort", ""), "sortable": sortable,
        "choosable": [(f, visibility.FIELD_LABELS.get(f, f), f in columns) for f in
                      visibility.visible_fields(list(visibility.FIELD_CLASSES)
                                                + [f"custom.{d.key}" for d in definitions],
                                                ctx.perms, definitions)]})


# --- detail, reveal ---

def _detail(request, ctx, person, *, revealed=None, errors=None, status=200) -> HttpResponse:
    definitions = access.field_definitions(ctx.account_id)
    fields = list(visibility.FIELD_CLASSES) + [f"custom.{d.key}" for d in definitions]
    labels = {**visibility.FIELD_LABELS, **{f"custom.{d.key}": d.label for d in definitions}}
    shown = [(labels[s.field], s) for s in
             visibility.format_person(person, fields, ctx.perms, definitions) if not s.hidden]
    tags = list(PersonTag.objects.filter(person=person).values_list("tag__name", flat=True))
    return render(request, "people/detail.html", {
        "person": person, "shown": shown, "tags": tags,
        "can_reveal": ctx.can(P.PEOPLE_UNMASK), "can_write": ctx.can(P.PEOPLE_WRITE),
        "can_erase": ctx.can(P.PEOPLE_ERASE), "revealed": revealed, "errors": errors or {}},
        status=status)


def person_detail(request: HttpRequest, person_id: int) -> HttpResponse:
    ctx = request.principal
    return _detail(request, ctx, access.access_person(ctx, person_id))


def person_reveal(request: HttpRequest, person_id: int) -> HttpResponse:
    ctx = request.principal
    person = access.access_person(ctx, person_id)
    field = request.POST.get("field", "")
    try:
        value = actions.do_reveal_value(person, field, request.POST.get("reason", ""),
                                        actor=ctx, request=request)
    except ValidationError as exc:
        return _detail(request, ctx, person, errors=_error_dict(exc), status=422)
    return _detail(request, ctx, person, revealed={"field": field, "value": value})


# --- create, edit ---

def _form_fields(ctx, definitions, person=None):
    """Inputs the member may fill: editable fields that are visible to them."""
    out = []
    for name in actions.EDITABLE:
        if visibility.field_level(ctx.perms, name) != visibility.VISIBLE:
            continue
        value = visibility.display(person, name, ctx.perms).text if person else ""
        out.append((name, visibility.FIELD_LABELS[name], value))
    for d in definitions:
        key = f"custom.{d.key}"
        if visibility.field_level(ctx.perms, key, definitions) != visibility.VISIBLE:
            continue
        value = visibility.display(person, key, ctx.perms, definitions).text if person else ""
        out.append((key, f"{d.label} ({d.type})", value))
    return out


def _posted(ctx, request, definitions) -> dict:
    names = [n for n, _, _ in _form_fields(ctx, definitions)] + ["tags"]
    return {n: request.POST.get(n, "") for n in names if n in request.POST}


def person_create(request: HttpRequest) -> HttpResponse:
    ctx = request.principal
    definitions = access.field_definitions(ctx.account_id)
    errors, values = {}, {}
    if request.method == "POST":
        values = _posted(ctx, request, definitions)
        try:
            person = actions.do_create_person(ctx.account, values, actor=ctx,
                                              request=request)
        except ValidationError as exc:
            errors = _error_dict(exc)
        else:
            return redirect(f"/app/people/{person.pk}/")
    fields = [(n, label, values.get(n, v)) for n, label, v in _form_fields(ctx, definitions)]
    return render(request, "people/form.html", {
        "fields": fields, "errors": errors, "tags": values.get("tags", ""),
        "title": "Add a person"}, status=422 if errors else 200)


def person_edit(request: HttpRequest, person_id: int) -> HttpResponse:
    ctx = request.principal
    person = access.access_person(ctx, person_id, for_write=True)
    definitions = access.field_definitions(ctx.account_id)
    errors, values = {}, {}
    if request.method == "POST":
        values = _posted(ctx, request, definitions)
        try:
            actions.do_update_person(person, values, actor=ctx, request=request)
        except ValidationError as exc:
            errors = _error_dict(exc)
        else:
            return redirect(f"/app/people/{person.pk}/")
    tags = ", ".join(PersonTag.objects.filter(person=person)
                     .values_list("tag__name", flat=True))
    fields = [(n, label, values.get(n, v))
              for n, label, v in _form_fields(ctx, definitions, person)]
    return render(request, "people/form.html", {
        "fields": fields, "errors": errors,
        "tags": values.get("tags", tags), "title": f"Edit person {person.pk}"},
        status=422 if errors else 200)


# --- archive, erase ---

def person_archive(request: HttpRequest, person_id: int) -> HttpResponse:
    ctx = request.principal
    person = access.access_person(ctx, person_id, for_write=True)
    actions.do_archive_person(person, actor=ctx, request=request)
    return redirect(f"/app/people/{person.pk}/")


def person_erase(request: HttpRequest, person_id: int) -> HttpResponse:
    ctx = request.principal
    person = access.access_person(ctx, person_id, for_write=True)
    if request.method == "POST":
        if request.POST.get("confirm") != "erase":
            return render(request, "people/erase.html", {
                "person": person, "error": "Type erase to confirm."}, status=422)
        actions.do_erase_person(person, actor=ctx, request=request)
        return redirect("/app/people/")
    return render(request, "people/erase.html", {"person": person, "error": ""})


# --- export ---

class _Echo:
    def write(self, value):
        return value


def export_rows(ctx, rows, columns, definitions):
    """CSV lines for ``rows`` in id order, fetched in chunks (constant memory), each
    value through the formatter and neutralised against formula injection."""
    writer = csv.writer(_Echo())
    yield writer.writerow(["id", *columns])
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last).order_by("pk")[:EXPORT_CHUNK])
        if not chunk:
            return
        for person in chunk:
            shown = visibility.format_person(person, columns, ctx.perms, definitions)
            yield writer.writerow([person.pk, *(neutralise(s.text) for s in shown)])
        last = chunk[-1].pk


def people_export(request: HttpRequest) -> HttpResponse:
    """Streamed CSV of the filtered people (``people.export``); masked values stay masked,
    hidden columns are left out. The export itself is audited."""
    ctx = request.principal
    definitions = access.field_definitions(ctx.account_id)
    params = {k: v for k, v in _params(request).items() if k not in ("after", "sort")}
    try:
        columns = _columns(ctx, params.get("cols", ""), definitions)
        rows = filtered_people(ctx, params, definitions)
    except (BadQuery, visibility.FieldNotQueryable) as exc:
        return render_error_page(request, 400, "Cannot export this selection", str(exc))
    actions.do_record_export(ctx.account, columns=columns, filters=sorted(params),
                             actor=ctx, request=request)
    response = StreamingHttpResponse(export_rows(ctx, rows, columns, definitions),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="people.csv"'
    return response


# --- import ---

PREVIEW_ROWS = 10


def _import_page(request, ctx, *, plan=None, error="", status=200) -> HttpResponse:
    preview = []
    if plan is not None and plan.ok:
        # The preview goes through the formatter like every other surface.
        columns = [c for c in plan.columns if c in visibility.FIELD_CLASSES]
        for row in plan.rows[:PREVIEW_ROWS]:
            person = access.Person(**{c: row[c] or None if c == "ip" else row[c]
                                      for c in columns})
            preview.append(visibility.format_person(person, columns, ctx.perms))
        columns = visibility.visible_fields(columns, ctx.perms)
    else:
        columns = []
    return render(request, "people/import.html", {
        "plan": plan, "error": error, "preview": preview,
        "preview_columns": columns, "max_mb": importer.MAX_BYTES // (1024 * 1024),
        "destinations": actions.import_destinations(ctx) if plan is not None and plan.ok
        else []}, status=status)


def people_import(request: HttpRequest) -> HttpResponse:
    """Upload → validate the whole file → preview (nothing written; the file is held
    encrypted until confirmed) or per-row errors."""
    ctx = request.principal
    if request.method == "GET":
        return _import_page(request, ctx)
    upload = request.FILES.get("file")
    if upload is None:
        return _import_page(request, ctx, error="Choose a CSV file.", status=422)
    if upload.size > importer.MAX_BYTES:
        return _import_page(request, ctx, error="The file is too large.", status=422)
    data = upload.read()
    try:
        plan = importer.plan_import(data, ctx.account_id, ctx.perms)
        if plan.ok:
            actions.do_stage_import(ctx.account, importer.decode(data), plan, actor=ctx,
                                    request=request)
    except importer.ImportFileError as exc:
        return _import_page(request, ctx, error=str(exc), status=422)
    return _import_page(request, ctx, plan=plan, status=200 if plan.ok else 422)


def people_import_confirm(request: HttpRequest) -> HttpResponse:
    """Write the held file (validated again) in one transaction, or nothing — with
    everyone in it added to the chosen list (``list``), if any, in that transaction."""
    ctx = request.principal
    held = actions.held_import(ctx.account, actor=ctx)
    if held is None:
        return _import_page(request, ctx, error="Nothing to import: upload the file again.",
                            status=409)
    try:
        plan = importer.plan_import(held.data.encode(), ctx.account_id, ctx.perms)
        chosen = request.POST.get("list", "")
        then = actions.import_destination(ctx, chosen, request=request) if chosen else None
        counts = actions.do_import_people(ctx.account, plan, actor=ctx, request=request,
                                          held=held, then=then)
    except importer.ImportFileError as exc:
        return _import_page(request, ctx, error=str(exc), status=422)
    except ValidationError as exc:
        return _import_page(request, ctx, error=" ".join(exc.messages), status=422)
    return render(request, "people/import_done.html", {"counts": counts})


def people_import_cancel(request: HttpRequest) -> HttpResponse:
    """Discard the held file."""
    ctx = request.principal
    actions.do_discard_import(ctx.account, actor=ctx, request=request)
    return redirect("/app/people/import/")


# --- custom fields ---

def people_fields(request: HttpRequest) -> HttpResponse:
    """The account's custom fields; members with ``people.write`` define new ones."""
    ctx = request.principal
    errors = {}
    if request.method == "POST":
        options = request.POST.get("options", "").split(",")
        try:
            actions.do_define_field(ctx.account, request.POST.get("key", ""),
                                    request.POST.get("label", ""),
                                    request.POST.get("type", ""), options=options,
                                    pd_class=request.POST.get("pd_class", ""),
                                    encrypt_at_rest=request.POST.get("encrypt_at_rest") == "on",
                                    actor=ctx, request=request)
        except ValidationError as exc:
            errors = _error_dict(exc)
        else:
            return redirect("/app/people/fields/")
    return render(request, "people/fields.html", {
        "ctx": ctx, "definitions": access.field_definitions(ctx.account_id),
        "errors": errors, "types": FIELD_TYPES, "classes": PD_CLASSES,
        "can_define": ctx.can(P.PEOPLE_WRITE)}, status=422 if errors else 200)
