"""Email template state changes. One transaction and one audit row each; the audit row
names the template by id and which parts changed, never its text."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.core import audit, clock, ratelimit
from enclave.core.models import AuditEventType
from enclave.core.validation import MissingReference, clean_name
from enclave.messaging import rendering
from enclave.messaging.models import EmailTemplate

P = Permission
NAME_MAX = 100
DUPLICATE_NAME = "Another template has this name."
IN_USE = "Broadcasts or transactional messages use this template; it stays with their record."
CHANGED_MEANWHILE = "Someone changed this template meanwhile; nothing was saved. Reload it."


def _clean_name(name) -> str:
    return clean_name(name, "template", NAME_MAX)


def _compiled(account_id: int, *, kind: str, subject: str, source: str) -> str:
    from enclave.people.access import field_definitions

    ratelimit.require("template.save", str(account_id))
    try:
        return rendering.compile_template(kind, subject, source,
                                          field_definitions(account_id))
    except rendering.TemplateError as exc:
        raise ValidationError({exc.field: exc.message}) from None


def do_create_template(account, name: str, kind: str, subject: str, source: str, *,
                       actor: Principal, request=None) -> EmailTemplate:
    """A template from MJML or HTML with Liquid; refused (``ValidationError`` naming the
    field) unless it compiles, reads only allowed merge fields and renders within the
    sandbox's limits. Needs ``email.manage``."""
    authorize(actor, P.EMAIL_MANAGE, account_id=account.pk)
    name = _clean_name(name)
    compiled = _compiled(account.pk, kind=kind, subject=subject, source=source)
    try:
        with transaction.atomic():
            template = EmailTemplate.objects.create(
                account=account, name=name, kind=kind, subject=subject, source=source,
                compiled=compiled, created_by_id=actor.member_id)
            audit.record(AuditEventType.TEMPLATE_CREATED, actor=actor,
                         account_id=account.pk, request=request, target_type="template",
                         target_id=template.pk, extra={"kind": kind})
    except IntegrityError:
        raise ValidationError({"name": DUPLICATE_NAME}, code="unique") from None
    return template


def do_change_template(template: EmailTemplate, *, name=None, kind=None, subject=None,
                       source=None, actor: Principal, request=None) -> EmailTemplate:
    """Change any of name, kind, subject and source (``None``: keep). The result is
    checked as a whole, as when creating — compiled before the row is locked (compiling
    may take seconds); if someone changed the template meanwhile, nothing is saved (409).
    No change → no audit row."""
    authorize(actor, P.EMAIL_MANAGE, account_id=template.account_id)
    name = None if name is None else _clean_name(name)
    current = EmailTemplate.objects.filter(pk=template.pk,
                                           account_id=template.account_id).first()
    if current is None:
        raise MissingReference({"template": "The template was deleted meanwhile."})
    wanted = {"name": name, "kind": kind, "subject": subject, "source": source}
    changed = [f for f, v in wanted.items() if v is not None and v != getattr(current, f)]
    if not changed:
        return current
    after = {f: wanted[f] if f in changed else getattr(current, f)
             for f in ("kind", "subject", "source")}
    compiled = _compiled(current.account_id, **after) if set(changed) - {"name"} else None
    try:
        with transaction.atomic():
            locked = EmailTemplate.objects.select_for_update().filter(
                pk=current.pk, account_id=current.account_id).first()
            if locked is None or any(getattr(locked, f) != getattr(current, f)
                                     for f in ("kind", "subject", "source")):
                raise MissingReference({"template": CHANGED_MEANWHILE})
            for field in changed:
                setattr(locked, field, wanted[field])
            if compiled is not None:
                locked.compiled = compiled
            locked.updated_at = clock.now()
            locked.save()
            audit.record(AuditEventType.TEMPLATE_CHANGED, actor=actor,
                         account_id=locked.account_id, request=request,
                         target_type="template", target_id=locked.pk,
                         extra={"fields": changed})
    except IntegrityError:
        raise ValidationError({"name": DUPLICATE_NAME}, code="unique") from None
    return locked


def do_delete_template(template: EmailTemplate, *, actor: Principal, request=None) -> None:
    """Delete a template. Needs ``email.manage``; a template already gone is a no-op;
    one a broadcast or a transactional message uses stays (409: ``IN_USE``)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=template.account_id)
    with transaction.atomic():
        try:
            deleted, _ = EmailTemplate.objects.filter(
                pk=template.pk, account_id=template.account_id).delete()
        except ProtectedError:
            raise MissingReference({"template": IN_USE}) from None
        if deleted:
            audit.record(AuditEventType.TEMPLATE_DELETED, actor=actor,
                         account_id=template.account_id, request=request,
                         target_type="template", target_id=template.pk)
