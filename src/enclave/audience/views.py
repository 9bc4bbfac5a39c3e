"""Public pages a person uses without signing in: the preference centre (a signed,
expiring link), the double opt-in confirmation, and a topic's subscribe form (which a
site may embed by posting to it). Every route has a PUBLIC entry in ``access.endpoints``;
tokens travel in paths the log policy redacts.

Links in emails are opened by scanners: a GET never changes anything — confirming,
unsubscribing and saving preferences are POSTs from the page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from enclave.audience import subscriptions, tokens
from enclave.audience.models import PENDING, SUBSCRIBED, Subscription, Topic
from enclave.core import audit, ratelimit

HONEYPOT = "website"  # a field people never see or fill; bots fill every field


def _limited(request, name: str, ident: str | None = None) -> bool:
    """True when over the named per-IP (or per-``ident``) limit."""
    ident = ident or audit.client_ip(request) or "unknown"
    return not ratelimit.hit(name, ident).allowed


def _gone(request, status: int = 404) -> HttpResponse:
    return render(request, "audience/link_invalid.html", status=status)


def _too_many(request) -> HttpResponse:
    response = render(request, "audience/too_many.html", status=429)
    response["Retry-After"] = "60"
    return response


def _topics_of(person) -> list[dict]:
    states = dict(Subscription.objects.filter(person=person)
                  .values_list("topic_id", "status"))
    return [{"topic": topic, "status": states.get(topic.pk, ""),
             "on": states.get(topic.pk) in (SUBSCRIBED, PENDING)}
            for topic in Topic.objects.filter(account_id=person.account_id).order_by("name")]


def _held(person) -> list[tuple[str, str]]:
    """What the account holds about the person, for their own eyes."""
    from enclave.people import visibility
    from enclave.people.models import PersonTag

    rows = [(label, visibility.as_text(getattr(person, field)))
            for field, label in visibility.FIELD_LABELS.items()]
    rows += [(f"custom.{key}", visibility.as_text(value))
             for key, value in sorted((person.custom or {}).items())]
    tags = sorted(PersonTag.objects.filter(person=person).values_list("tag__name", flat=True))
    rows.append(("Tags", ", ".join(tags)))
    return [(label, text) for label, text in rows if text]


def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """The preference centre: topics on/off, unsubscribe from all, what is held, and a
    request for erasure."""
    if _limited(request, "preferences.ip"):
        return _too_many(request)
    found = tokens.read(token, tokens.PREFERENCES)
    if found is None:
        return _gone(request)
    person, _ = found
    ip = audit.client_ip(request)
    message = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "unsubscribe_all":
            subscriptions.do_unsubscribe_all(person, method="preference_centre", ip=ip,
                                             actor=None, request=request)
            message = "You are unsubscribed from everything."
        elif action == "erase":
            subscriptions.do_request_erasure(person, ip=ip, actor=None, request=request)
            message = ("Your request to be erased is recorded, and you will receive no "
                       "more messages.")
        elif action == "save":
            wanted = set(request.POST.getlist("topic"))
            for row in _topics_of(person):
                on = row["topic"].public_id in wanted
                if on != row["on"]:
                    subscriptions.do_change_subscription(
                        person, row["topic"], on, method="preference_centre", ip=ip,
                        actor=None, request=request)
            message = "Your preferences are saved."
        else:
            return render(request, "audience/preferences.html", {
                "topics": _topics_of(person), "held": _held(person),
                "message": "Choose what to do.", "error": True}, status=422)
    return render(request, "audience/preferences.html", {
        "topics": _topics_of(person), "held": _held(person), "message": message,
        "error": False})


def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Double opt-in: GET shows a button (scanners follow links), POST confirms."""
    if _limited(request, "preferences.ip"):
        return _too_many(request)
    found = tokens.read(token, tokens.CONFIRMATION)
    topic = None if found is None else Topic.objects.filter(
        pk=found[1], account_id=found[0].account_id).first()
    if topic is None:
        return _gone(request)
    person = found[0]
    confirmed = False
    if request.method == "POST":
        confirmed = subscriptions.do_confirm_subscription(
            person, topic, ip=audit.client_ip(request), actor=None, request=request)
    state = Subscription.objects.filter(person=person, topic=topic) \
        .values_list("status", flat=True).first()
    return render(request, "audience/confirm.html", {
        "topic": topic, "posted": request.method == "POST", "confirmed": confirmed,
        "subscribed": state == SUBSCRIBED, "pending": state == PENDING})


def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """An email's unsubscribe link. GET shows what the link would do and a button (link
    scanners follow every link: a GET changes nothing); POST unsubscribes the person from
    the email's topics — the button, or a mailbox provider's one-click POST
    (``List-Unsubscribe=One-Click``, RFC 8058). Replaying it changes nothing more.
    One-click POSTs come from a few mailbox providers' servers, so they have a limit of
    their own (the signed token is what gates them)."""
    if _limited(request, "unsubscribe.ip" if request.method == "POST" else "preferences.ip"):
        return _too_many(request)
    found = tokens.read(token, tokens.UNSUBSCRIBE)
    if found is None or not isinstance(found[1], list):
        return _gone(request)
    person, topic_ids = found
    topics = list(Topic.objects.filter(account_id=person.account_id, pk__in=topic_ids)
                  .order_by("name"))
    if request.method == "POST":
        ip = audit.client_ip(request)
        for topic in topics:
            subscriptions.do_change_subscription(person, topic, False,
                                                 method="unsubscribe_link", ip=ip,
                                                 actor=None, request=request)
    # No link to the preference centre from here: this token lives longer than a
    # preference link and must not mint one (that page shows what is held).
    return render(request, "audience/unsubscribe.html", {
        "topics": topics, "done": request.method == "POST"})


def subscribe_form(request: HttpRequest, public_id: str) -> HttpResponse:
    """A topic's subscribe form. Cross-site posts are expected (the form is embedded on
    the account's site), so it takes no CSRF token (``cross_site`` in the registry). A
    forged post can only send a confirmation email (every form subscription of a double
    opt-in topic waits for the link), and the per-IP and per-address limits bound how
    many. A filled honeypot gets
    the same answer as a success and changes nothing."""
    topic = Topic.objects.filter(public_id=public_id).select_related(None).first()
    if topic is None:
        return _gone(request)
    if request.method == "GET":
        return render(request, "audience/subscribe.html", {"topic": topic, "error": ""})
    if _limited(request, "subscribe.ip"):
        return _too_many(request)
    if request.POST.get(HONEYPOT):
        return render(request, "audience/subscribed.html", {"topic": topic})
    email = request.POST.get("email", "")
    try:
        subscriptions.do_subscribe_by_form(topic, email, ip=audit.client_ip(request),
                                           request=request)
    except subscriptions.FormError as exc:
        return render(request, "audience/subscribe.html", {"topic": topic,
                                                           "error": str(exc)}, status=422)
    except subscriptions.AddressLimited:
        return _too_many(request)
    return render(request, "audience/subscribed.html", {"topic": topic})
