"""The audit-log page and CSV export (/app/audit/…). Person targets are labelled
through the people visibility formatter; what each route needs is its entry in
``access.endpoints``."""

from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from enclave.accounts import actions
from enclave.accounts.access import BadFilter, audit_rows, describe_event, person_labels
from enclave.core.models import AuditEventType
from enclave.core.views import render_error_page
from enclave.people.csvsafe import neutralise

AUDIT_PAGE_SIZE = 100


def audit_log(request: HttpRequest) -> HttpResponse:
    ctx = request.principal
    params = {k: v for k, v in request.GET.items() if v != ""}
    try:
        events = list(audit_rows(ctx, params)[:AUDIT_PAGE_SIZE + 1])
    except BadFilter as exc:
        return render_error_page(request, 400, "Cannot apply this filter", str(exc))
    more = len(events) > AUDIT_PAGE_SIZE
    events = events[:AUDIT_PAGE_SIZE]
    labels = person_labels(ctx, events)
    next_query = request.GET.copy()
    if more:
        next_query["before"] = str(events[-1].pk)
    return render(request, "accounts/audit.html", {
        "events": [describe_event(e, labels) for e in events],
        "event_names": [t.name.lower() for t in AuditEventType], "params": params,
        "next_url": f"?{next_query.urlencode()}" if more else "",
        "export_query": request.GET.urlencode()})


class _Echo:
    def write(self, value):
        return value


def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered audit log as CSV, streamed (constant memory); the export is audited."""
    ctx = request.principal
    params = {k: v for k, v in request.GET.items() if v != "" and k != "before"}
    try:
        rows = audit_rows(ctx, params)
    except BadFilter as exc:
        return render_error_page(request, 400, "Cannot apply this filter", str(exc))
    actions.do_record_audit_export(ctx.account, filters=sorted(params), actor=ctx,
                                   request=request)
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
            labels = person_labels(ctx, batch)
            for event in batch:
                d = describe_event(event, labels)
                yield writer.writerow([neutralise(str(d[k])) for k in (
                    "id", "at", "event", "actor", "target", "ip", "trace_id", "extra")])
            last = batch[-1].pk

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
