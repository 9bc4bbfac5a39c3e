"""Tenant-scoped, permission-checked reads of email templates (and their previews) and
sender domains.

Another account's template looks exactly like a missing one (Http404)."""

from __future__ import annotations

from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.core.validation import id_or_404
from enclave.messaging import dkim, footer, rendering
from enclave.messaging.models import (
    ACTIVE,
    PENDING,
    VERIFIED,
    Broadcast,
    CapturedMessage,
    DkimKey,
    EmailTemplate,
    SenderDomain,
)

P = Permission
# A preview never holds a person's real links: a working preference-centre token would
# show a member everything held about the person, past the visibility table.
PREVIEW_LINKS = {"unsubscribe_url": "https://example.com/unsubscribe (preview)",
                 "preferences_url": "https://example.com/preferences (preview)"}


def templates_of(principal: Principal):
    """The account's templates (needs ``email.read``)."""
    authorize(principal, P.EMAIL_READ)
    return EmailTemplate.objects.filter(account_id=principal.account_id).order_by("name")


def access_template(principal: Principal, template_id, *,
                    for_write: bool = False) -> EmailTemplate:
    """One template of the principal's account; Http404 if missing or another
    account's. ``email.read`` to see it, ``email.manage`` to change it."""
    return _one(principal, EmailTemplate, template_id, "template", for_write=for_write)


def _one(principal: Principal, model, value, kind: str, *, for_write: bool):
    """The account's ``model`` row with id ``value`` (``email.read``; ``email.manage``
    for a write); Http404 — the same for another account's — otherwise."""
    authorize(principal, P.EMAIL_MANAGE if for_write else P.EMAIL_READ)
    found = model.objects.filter(account_id=principal.account_id,
                                 pk=id_or_404(value, kind)).first()
    if found is None:
        raise Http404(f"No such {kind}.")
    return found


def preview(principal: Principal, template: EmailTemplate,
            person_id=None) -> rendering.Rendered:
    """``template`` rendered for a sample person, or for one of the account's people
    (Http404 for another account's) with their fields exactly as THE formatter shows
    them to the principal: masked values stay masked, and without ``people.read`` every
    field is empty whatever the id (existence is not told). Links are placeholders.
    Raises ``TemplateError`` when the stored template no longer renders."""
    from enclave.people.access import field_definitions
    from enclave.people.models import Person

    authorize(principal, P.EMAIL_READ)
    definitions = field_definitions(template.account_id)
    context = rendering.sample_context(definitions)
    if person_id is not None and not principal.can(P.PEOPLE_READ):
        # Every field would be hidden: show them empty for any id, so the answer does not
        # tell which ids are the account's people.
        context["person"] = {**{f: "" for f in context["person"] if f != "custom"},
                             "custom": {d.key: "" for d in definitions}}
    elif person_id is not None:
        person = Person.objects.filter(account_id=principal.account_id,
                                       pk=id_or_404(person_id, "person")).first()
        if person is None:
            raise Http404("No such person.")
        context["person"] = rendering.person_context(person, principal.perms, definitions)
    context.update(PREVIEW_LINKS)
    context["account"] = {"name": principal.account.name if principal.account else ""}
    out = rendering.render_isolated(template.subject, template.compiled, context)
    return footer.add(out, principal.account.postal_address if principal.account else "")


def sender_domains_of(principal: Principal):
    """The account's sender domains (needs ``email.read``)."""
    authorize(principal, P.EMAIL_READ)
    return SenderDomain.objects.filter(account_id=principal.account_id).order_by("domain")


def access_sender_domain(principal: Principal, domain_id, *,
                         for_write: bool = False) -> SenderDomain:
    """One sender domain of the principal's account; Http404 if missing or another
    account's."""
    return _one(principal, SenderDomain, domain_id, "sender domain", for_write=for_write)


def live_keys(sender: SenderDomain) -> list[DkimKey]:
    """The domain's pending and active keys, oldest first (public parts only are read)."""
    return list(DkimKey.objects.filter(domain=sender, state__in=(PENDING, ACTIVE))
                .defer("private_key").order_by("created_at"))


def records_to_publish(sender: SenderDomain) -> list[dkim.Record]:
    return dkim.records(sender.domain, live_keys(sender))


def signing_key(sender: SenderDomain) -> tuple[str, dkim.PrivateKey] | None:
    """(selector, private key) of a verified domain's active key; None when the domain
    may not be sent from. For the send pipeline (the system), never shown; the caller
    keeps it for the work at hand only."""
    if sender.state != VERIFIED:
        return None
    key = DkimKey.objects.filter(domain=sender, state=ACTIVE).first()
    return None if key is None else (key.selector, dkim.PrivateKey(key.private_key))


def broadcasts_of(principal: Principal):
    """The account's broadcasts, newest first (needs ``email.read``)."""
    authorize(principal, P.EMAIL_READ)
    return Broadcast.objects.filter(account_id=principal.account_id).order_by("-created_at",
                                                                              "-pk")


def access_broadcast(principal: Principal, broadcast_id, *,
                     for_write: bool = False) -> Broadcast:
    """One broadcast of the principal's account; Http404 if missing or another
    account's."""
    return _one(principal, Broadcast, broadcast_id, "broadcast", for_write=for_write)


def referenced(principal: Principal, model, value, field: str):
    """The account's ``model`` row with id ``value``, named in a request body;
    MissingReference (409) when the account has none (another account's looks the same)."""
    from enclave.core.validation import MissingReference

    try:
        found = model.objects.filter(account_id=principal.account_id,
                                     pk=int(value)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise MissingReference({field: f"No such {field.replace('_', ' ')}."})
    return found


# Captured mail holds personal data exactly as it was sent, past the visibility table:
# reading it needs the permissions that see every personal-data class in clear.
CAPTURED_PERMISSIONS = (P.EMAIL_READ, P.PEOPLE_WRITE, P.PEOPLE_UNMASK)
CAPTURED_PAGE = 50


def captured_of(principal: Principal):
    """The account's captured messages, newest first."""
    for permission in CAPTURED_PERMISSIONS:
        authorize(principal, permission)
    return CapturedMessage.objects.filter(account_id=principal.account_id) \
        .order_by("-created_at", "-pk")


def _by_row_id(rows, row_id):
    import uuid

    try:
        key = uuid.UUID(str(row_id))
    except ValueError:
        raise Http404("No such message.") from None
    found = rows.filter(row_id=key).first()
    if found is None:
        raise Http404("No such message.")
    return found


def access_captured(principal: Principal, row_id) -> CapturedMessage:
    """One captured message of the principal's account by its row id; Http404 if missing
    or another account's."""
    return _by_row_id(captured_of(principal), row_id)


def access_message(principal: Principal, row_id):
    """One transactional message of the principal's account by its id (``email.manage``:
    what sends them reads them); Http404 if missing or another account's."""
    from enclave.messaging.models import TransactionalMessage

    authorize(principal, P.EMAIL_MANAGE)
    return _by_row_id(TransactionalMessage.objects.filter(account_id=principal.account_id),
                      row_id)
