"""Email template pages under /app/templates/ and sender-domain pages under
/app/senders/. Thin edges over ``messaging.access`` and
the actions; what each route needs is its entry in ``access.endpoints``.

The preview page shows the subject and the plain-text part for a sample person or a
chosen one (their fields as the member may see them); the HTML part opens as its own
document under a sandboxing CSP (``core.headers.SANDBOXED_DOCUMENT_CSP``): no script
runs, it has no origin to reach the app with, only its inline styles and data: images
load, and its link/meta/base elements are dropped — nothing is fetched from elsewhere.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape

from enclave.access.permissions import Permission
from enclave.core import ratelimit
from enclave.core.validation import MissingReference, whole_number
from enclave.messaging import access, actions, rendering
from enclave.messaging.models import KINDS, MJML

P = Permission
STARTER = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hello {{ person.first_name | default: "there" }},</mj-text>
        <mj-text>News from {{ account.name }}.</mj-text>
        <mj-text font-size="11px"><a href="{{ unsubscribe_url }}">Unsubscribe</a> ·
          <a href="{{ preferences_url }}">Preferences</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def _form(request) -> dict:
    return {k: request.POST.get(k, "") for k in ("name", "kind", "subject", "source")}


def _errors(exc: ValidationError) -> dict[str, str]:
    return {field: " ".join(messages) for field, messages in exc.message_dict.items()}


def templates_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    return render(request, "messaging/templates.html", {
        "templates": list(access.templates_of(principal)),
        "can_manage": principal.can(P.EMAIL_MANAGE)})


def template_create(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    form, errors, status = {"kind": MJML, "source": STARTER, "subject": ""}, {}, 200
    if request.method == "POST":
        form = _form(request)
        try:
            template = actions.do_create_template(
                principal.account, form["name"], form["kind"], form["subject"],
                form["source"], actor=principal, request=request)
            return redirect(f"/app/templates/{template.pk}/")
        except ValidationError as exc:
            errors, status = _errors(exc), 422
        except ratelimit.Limited as exc:
            errors, status = {"template": str(exc)}, 429
    return render(request, "messaging/template_form.html", {
        "form": form, "errors": errors, "kinds": KINDS, "template": None,
        "can_manage": True}, status=status)


def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    """The template and (``email.manage``) its edit form."""
    principal = request.principal
    template = access.access_template(principal, template_id,
                                      for_write=request.method == "POST")
    form = {"name": template.name, "kind": template.kind, "subject": template.subject,
            "source": template.source}
    errors, status = {}, 200
    if request.method == "POST":
        form = _form(request)
        try:
            actions.do_change_template(template, actor=principal, request=request, **form)
            return redirect(f"/app/templates/{template.pk}/")
        except ValidationError as exc:
            errors, status = _errors(exc), 409 if isinstance(exc, MissingReference) else 422
        except ratelimit.Limited as exc:
            errors, status = {"template": str(exc)}, 429
    return render(request, "messaging/template_form.html", {
        "form": form, "errors": errors, "kinds": KINDS, "template": template,
        "can_manage": principal.can(P.EMAIL_MANAGE)}, status=status)


def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    principal = request.principal
    template = access.access_template(principal, template_id, for_write=True)
    try:
        actions.do_delete_template(template, actor=principal, request=request)
    except ValidationError as exc:  # used by broadcasts
        form = {"name": template.name, "kind": template.kind, "subject": template.subject,
                "source": template.source}
        return render(request, "messaging/template_form.html", {
            "form": form, "errors": _errors(exc), "kinds": KINDS, "template": template,
            "can_manage": True}, status=409)
    return redirect("/app/templates/")


def _person_id(request, source=None) -> int | None:
    return whole_number((request.GET if source is None else source).get("person", ""))


def _rendered(request, template_id):
    principal = request.principal
    template = access.access_template(principal, template_id)
    person_id = _person_id(request)
    try:
        return template, person_id, access.preview(principal, template, person_id), ""
    except rendering.TemplateError as exc:
        return template, person_id, None, exc.message


def template_preview(request: HttpRequest, template_id: int) -> HttpResponse:
    template, person_id, out, error = _rendered(request, template_id)
    return render(request, "messaging/template_preview.html", {
        "template": template, "person_id": person_id, "out": out, "error": error,
        "bad_person": bool(request.GET.get("person")) and person_id is None},
        status=422 if error else 200)


# Elements that act on their own when a document loads — prefetching a name, refreshing
# to an address — which CSP does not reliably stop: a preview drops them.
_ACTIVE_HEAD = re.compile(r"<\s*(?:link|meta|base)\b[^>]*>", re.IGNORECASE)


def template_preview_html(request: HttpRequest, template_id: int) -> HttpResponse:
    """The rendered HTML part as its own sandboxed document, without link/meta/base."""
    _, _, out, error = _rendered(request, template_id)
    response = HttpResponse(_ACTIVE_HEAD.sub("", out.html) if out
                            else f"<p>{escape(error)}</p>",
                            content_type="text/html; charset=utf-8",
                            status=200 if out else 422)
    response.sandboxed_document = True  # core.middleware applies the sandbox CSP
    return response


# --- sender domains ---

def senders_list(request: HttpRequest) -> HttpResponse:
    """The account's sender domains and (``email.manage``) a form to add one."""
    principal = request.principal
    error, status, typed = "", 200, ""
    if request.method == "POST":
        typed = request.POST.get("domain", "")
        try:
            sender = actions.do_add_sender_domain(principal.account, typed, actor=principal,
                                                  request=request)
            return redirect(f"/app/senders/{sender.pk}/")
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 422
        except ratelimit.Limited as exc:
            error, status = str(exc), 429
    return _senders_page(request, error=error, typed=typed, status=status)


def _senders_page(request, *, error="", typed="", address_error="", address=None,
                  status=200) -> HttpResponse:
    principal = request.principal
    return render(request, "messaging/senders.html", {
        "senders": list(access.sender_domains_of(principal)), "error": error,
        "typed": typed, "can_manage": principal.can(P.EMAIL_MANAGE),
        "address": principal.account.postal_address if address is None else address,
        "address_error": address_error}, status=status)


def senders_address(request: HttpRequest) -> HttpResponse:
    """Set the postal address every email ends with."""
    principal = request.principal
    typed = request.POST.get("postal_address", "")
    try:
        actions.do_set_postal_address(principal.account, typed, actor=principal,
                                      request=request)
    except ValidationError as exc:
        return _senders_page(request, address_error=" ".join(exc.messages), address=typed,
                             status=422)
    return redirect("/app/senders/")


def _sender_page(request, sender, *, error: str = "", status: int = 200) -> HttpResponse:
    return render(request, "messaging/sender_detail.html", {
        "sender": sender, "keys": access.live_keys(sender),
        "records": access.records_to_publish(sender), "error": error,
        "can_manage": request.principal.can(P.EMAIL_MANAGE)}, status=status)


def sender_detail(request: HttpRequest, domain_id: int) -> HttpResponse:
    """A sender domain: its state, the records to publish, and (``email.manage``)
    check, rotate and remove."""
    return _sender_page(request, access.access_sender_domain(request.principal, domain_id))


def _sender_action(request, domain_id, act, *, then: str | None = None) -> HttpResponse:
    principal = request.principal
    sender = access.access_sender_domain(principal, domain_id, for_write=True)
    try:
        act(sender, actor=principal, request=request)
    except ratelimit.Limited as exc:
        return _sender_page(request, sender, error=str(exc), status=429)
    except ValidationError as exc:  # MissingReference included: the rows moved on
        return _sender_page(request, sender, error=" ".join(exc.messages), status=409)
    return redirect(then or f"/app/senders/{sender.pk}/")


def sender_check(request: HttpRequest, domain_id: int) -> HttpResponse:
    return _sender_action(request, domain_id, actions.do_check_sender_domain)


def sender_rotate(request: HttpRequest, domain_id: int) -> HttpResponse:
    return _sender_action(request, domain_id, actions.do_rotate_dkim_key)


def sender_throttle(request: HttpRequest, domain_id: int) -> HttpResponse:
    """Set or lift (empty) the domain's messages-a-second limit."""
    raw = request.POST.get("max_per_second", "").strip()
    value = None if not raw else whole_number(raw, 6)
    value = -1 if raw and value is None else value
    return _sender_action(request, domain_id, lambda sender, **kw: (
        actions.do_throttle_sender_domain(sender, value, **kw)))


def sender_remove(request: HttpRequest, domain_id: int) -> HttpResponse:
    return _sender_action(request, domain_id, actions.do_remove_sender_domain,
                          then="/app/senders/")


# --- broadcasts ---

def _broadcast_choices(principal) -> dict:
    from enclave.audience import access as audience_access

    return {"templates": list(access.templates_of(principal)),
            "senders": list(access.sender_domains_of(principal)),
            "topics": list(audience_access.topics_of(principal)),
            "segments": (list(audience_access.segments_of(principal))
                         if principal.can(P.SEGMENTS_READ) else [])}


def broadcasts_list(request: HttpRequest) -> HttpResponse:
    """The account's broadcasts and (``email.manage``) a form to draft one."""
    from enclave.messaging.models import EmailTemplate, SenderDomain

    principal = request.principal
    error, status, form = "", 200, {}
    if request.method == "POST":
        form = request.POST
        try:
            broadcast = actions.do_create_broadcast(
                principal.account, form.get("name", ""),
                template=access.referenced(principal, EmailTemplate, form.get("template"),
                                           "template"),
                sender=access.referenced(principal, SenderDomain, form.get("sender"),
                                         "sender"),
                from_local=form.get("from_local", ""), from_name=form.get("from_name", ""),
                topics=form.getlist("topics"), segments=form.getlist("segments"),
                track_opens=form.get("track_opens") == "on",
                track_clicks=form.get("track_clicks") == "on",
                actor=principal, request=request)
            return redirect(f"/app/broadcasts/{broadcast.pk}/")
        except ValidationError as exc:
            error = " ".join(exc.messages)
            status = 409 if isinstance(exc, MissingReference) else 422
    return render(request, "messaging/broadcasts.html", {
        "broadcasts": list(access.broadcasts_of(principal).select_related("sender")),
        "can_manage": principal.can(P.EMAIL_MANAGE), "error": error, "form": form,
        **(_broadcast_choices(principal) if principal.can(P.EMAIL_MANAGE) else {})},
        status=status)


def _broadcast_page(request, broadcast, *, error="", notice="",
                    status=200) -> HttpResponse:
    from enclave.messaging import pipeline

    wall = actions.local_wall(broadcast)
    return render(request, "messaging/broadcast_detail.html", {
        "broadcast": broadcast, "progress": pipeline.progress(broadcast), "error": error,
        # Formatted here: the date filter would show it in UTC.
        "local_wall": wall.strftime("%Y-%m-%d %H:%M") if wall else "",
        "notice": notice, "can_manage": request.principal.can(P.EMAIL_MANAGE),
        "member_email": getattr(request.user, "email", "")}, status=status)


def broadcast_detail(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    """A broadcast, its live progress, and (``email.manage``) send / cancel / delete."""
    return _broadcast_page(request, access.access_broadcast(request.principal, broadcast_id))


def _broadcast_action(request, broadcast_id, act, *, then=None) -> HttpResponse:
    principal = request.principal
    broadcast = access.access_broadcast(principal, broadcast_id, for_write=True)
    try:
        act(broadcast, actor=principal, request=request)
    except ratelimit.Limited as exc:
        return _broadcast_page(request, broadcast, error=str(exc), status=429)
    except ValidationError as exc:
        broadcast.refresh_from_db()
        return _broadcast_page(request, broadcast, error=" ".join(exc.messages), status=409)
    return redirect(then or f"/app/broadcasts/{broadcast.pk}/")


def broadcast_send(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    return _broadcast_action(request, broadcast_id, actions.do_queue_broadcast)


def broadcast_cancel(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    return _broadcast_action(request, broadcast_id, actions.do_cancel_broadcast)


def broadcast_schedule(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    """Send a draft at a time given in UTC (the form's ``send_at``, YYYY-MM-DDTHH:MM),
    or (``local_time`` checked) at that time on each recipient's clock."""
    import datetime as dt

    raw = request.POST.get("send_at", "").strip()
    try:
        send_at = dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M").replace(tzinfo=dt.UTC)
    except ValueError:
        broadcast = access.access_broadcast(request.principal, broadcast_id, for_write=True)
        return _broadcast_page(request, broadcast, status=422,
                               error="A date and time in UTC: YYYY-MM-DDTHH:MM.")
    local_time = request.POST.get("local_time") == "on"
    return _broadcast_action(request, broadcast_id, lambda broadcast, **kw: (
        actions.do_schedule_broadcast(broadcast, send_at, local_time=local_time, **kw)))


def broadcast_pause(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    return _broadcast_action(request, broadcast_id, actions.do_pause_broadcast)


def broadcast_resume(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    return _broadcast_action(request, broadcast_id, actions.do_resume_broadcast)


def broadcast_test(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    """Send the email once to the member's own address (optionally rendered for one of
    the account's people, as the member may see them)."""
    principal = request.principal
    broadcast = access.access_broadcast(principal, broadcast_id, for_write=True)
    try:
        outcome = actions.do_send_test_broadcast(broadcast, _person_id(request, request.POST),
                                                 actor=principal, request=request)
    except ratelimit.Limited as exc:
        return _broadcast_page(request, broadcast, error=str(exc), status=429)
    except ValidationError as exc:
        return _broadcast_page(request, broadcast, error=" ".join(exc.messages), status=409)
    if outcome.kind != "sent":
        return _broadcast_page(request, broadcast, status=502,
                               error=f"The mail server did not take the test ({outcome.detail}).")
    return _broadcast_page(request, broadcast, notice="Test sent to your address.")


def broadcast_delete(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    return _broadcast_action(request, broadcast_id, actions.do_delete_broadcast,
                             then="/app/broadcasts/")


# --- captured mail (the embedded default's capture transport) ---

def captured_list(request: HttpRequest) -> HttpResponse:
    """The newest captured messages, ``CAPTURED_PAGE`` a page (``?page=``)."""
    from enclave.messaging import captured, transports
    from enclave.messaging.models import Broadcast

    principal = request.principal
    raw_page = request.GET.get("page", "1")
    page = max(whole_number(raw_page, 4) or 1, 1)
    rows = list(access.captured_of(principal)[
        (page - 1) * access.CAPTURED_PAGE:page * access.CAPTURED_PAGE + 1])
    names = dict(Broadcast.objects.filter(
        account_id=principal.account_id, pk__in={r.broadcast_id for r in rows})
        .values_list("pk", "name"))
    return render(request, "messaging/captured.html", {
        "messages": [(captured.read(row, bodies=False), names.get(row.broadcast_id, ""))
                     for row in rows[:access.CAPTURED_PAGE]],
        "page": page, "more": len(rows) > access.CAPTURED_PAGE,
        "keep": transports.CAPTURE_KEEP,
        "capturing": isinstance(transports.configured(), transports.CaptureTransport)})


def captured_detail(request: HttpRequest, row_id: str) -> HttpResponse:
    """One captured message: its headers and plain-text part, a link to its HTML part."""
    from enclave.messaging import captured

    row = access.access_captured(request.principal, row_id)
    return render(request, "messaging/captured_detail.html",
                  {"message": captured.read(row)})


def captured_html(request: HttpRequest, row_id: str) -> HttpResponse:
    """A captured message's HTML part as its own sandboxed document (as a preview)."""
    from enclave.messaging import captured

    message = captured.read(access.access_captured(request.principal, row_id))
    response = HttpResponse(_ACTIVE_HEAD.sub("", message.html),
                            content_type="text/html; charset=utf-8")
    response.sandboxed_document = True  # core.middleware applies the sandbox CSP
    return response
