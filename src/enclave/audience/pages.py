"""Segment and topic pages under /app/ for members. Thin edges over ``audience.access``
and the actions; what each route needs is its entry in ``access.endpoints`` (enforced
before the view runs). People are shown through the visibility formatter.

The segment builder works without JavaScript: a top-level "all"/"any" group of condition
rows (field, tag, event or segment; each may be negated) and up to three sub-groups of
rows (each all/any; negated, it matches when not all / not any of its rows do); for
deeper nesting the rule tree as JSON. Both are checked by ``audience.rules`` exactly as
the API's are.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from enclave.access.permissions import Permission
from enclave.audience import access, actions, rules, schema, subscriptions
from enclave.audience.models import DYNAMIC, STATIC
from enclave.core import jsondepth, ratelimit
from enclave.core.validation import whole_number
from enclave.core.views import render_error_page
from enclave.people import access as people_access
from enclave.people import visibility

P = Permission
ROWS = 8  # blank condition rows offered by the builder
SAMPLE = 20
KINDS = ("field", "tag", "event", "segment")
GROUPS = ("a", "b", "c")  # the builder's sub-groups, besides the main group


def _usable_fields(principal, definitions) -> list[tuple[str, str]]:
    """(name, type) of the fields the member may use in a rule."""
    out = []
    for variant in schema.field_conditions(definitions, principal.perms):
        kind = next(k for k, ops in rules.OPS.items()
                    if set(variant["properties"]["op"]["enum"]) <= set(ops))
        for name in variant["properties"]["field"]["enum"]:
            if (name, kind) not in out and name not in (n for n, _ in out):
                out.append((name, kind))
    return out


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value


def _row_rule(post, i: int, types: dict[str, str]) -> dict | None:
    """Row ``i`` of the builder as a rule (None when blank); ValueError says what is
    wrong with it."""
    kind = post.get(f"row-{i}-kind", "")
    value = post.get(f"row-{i}-value", "").strip()
    if not kind:
        return None
    if kind not in KINDS:
        raise ValueError(f"Row {i + 1}: choose field, tag, event or segment.")
    if kind == "tag":
        rule = {"type": "tag", "tag": value}
    elif kind == "segment":
        if whole_number(value) is None:
            raise ValueError(f"Row {i + 1}: choose a segment.")
        rule = {"type": "segment", "segment": whole_number(value)}
    elif kind == "event":
        rule = {"type": "event", "name": value}
        for key in ("min", "max", "within_days"):
            raw = post.get(f"row-{i}-{key}", "").strip()
            if raw:
                if whole_number(raw) is None:
                    raise ValueError(f"Row {i + 1}: {key} is a whole number.")
                rule[key] = whole_number(raw)
    else:
        name, op = post.get(f"row-{i}-field", ""), post.get(f"row-{i}-op", "")
        rule = {"type": "field", "field": name, "op": op,
                "value": _field_value(types.get(name, "text"), op, value, i)}
    return {"type": "not", "rule": rule} if post.get(f"row-{i}-not") else rule


def _field_value(kind: str, op: str, text: str, i: int):
    if op in rules.NO_VALUE_OPS:
        return None
    try:
        if op in rules.RELATIVE_OPS:
            return int(text)
        if kind == "number":
            return _number(text)
    except ValueError:
        raise ValueError(f"Row {i + 1}: enter a number.") from None
    if op == "in":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def tree_from_post(post, types: dict[str, str]):
    """The rule tree a builder form describes: its rows when any is filled, else the
    JSON box (deeper nesting; also where a preview or an edit shows the tree).

    Each row belongs to the main group or to one of the sub-groups ``GROUPS`` (its
    ``row-N-group``); a sub-group with rows becomes one condition of the main group,
    matching all or any of its rows (``group-X-match``), or none of them when negated
    (``group-X-not``) — e.g. "tagged trial, and (visited pricing 3 times or bought)"."""
    members: dict[str, list] = {"": [], **{g: [] for g in GROUPS}}
    for i in range(ROWS):
        rule = _row_rule(post, i, types)
        if rule is None:
            continue
        group = post.get(f"row-{i}-group", "")
        if group not in members:
            raise ValueError(f"Row {i + 1}: choose the main group or group "
                             f"{', '.join(g.upper() for g in GROUPS)}.")
        members[group].append(rule)
    rows = members[""]
    for group in GROUPS:
        if members[group]:
            match = "any" if post.get(f"group-{group}-match") == "any" else "all"
            rules_ = members[group]
            if post.get(f"group-{group}-not"):  # a "not" wraps one condition: De Morgan
                match = "all" if match == "any" else "any"
                rules_ = [r["rule"] if r["type"] == "not" else {"type": "not", "rule": r}
                          for r in rules_]
            rows.append({"type": "group", "match": match, "rules": rules_})
    if rows:
        return {"type": "group", "match": "any" if post.get("match") == "any" else "all",
                "rules": rows}
    advanced = post.get("rules_json", "").strip()
    if not advanced:
        raise ValueError("Add at least one condition.")
    try:
        return jsondepth.loads(advanced, parse_constant=_no_constant)
    except jsondepth.TooDeep:
        raise ValueError("The rules nest too deep.") from None
    except ValueError:
        raise ValueError("The rules are not valid JSON.") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number here")


def _sample(principal, people, definitions) -> tuple[list[str], list]:
    """Every built-in field the member may see (masked ones masked), per person."""
    columns = visibility.visible_fields(list(visibility.FIELD_CLASSES), principal.perms,
                                        definitions)
    return columns, [(p, visibility.format_person(p, columns, principal.perms, definitions))
                     for p in people]


def _builder_context(principal, segment=None, *, error="", tree=None, preview=None) -> dict:
    definitions = people_access.field_definitions(principal.account_id)
    fields = _usable_fields(principal, definitions)
    ops = sorted({op for ops in rules.OPS.values() for op in ops})
    segments = [s for s in access.segments_of(principal)
                if segment is None or s.pk != segment.pk]
    return {"segment": segment, "error": error, "fields": fields, "ops": ops,
            "segments": segments, "rows": range(ROWS), "kinds": KINDS,
            "groups": [g.upper() for g in GROUPS],
            "rules_json": json.dumps(tree, indent=2) if tree is not None else "",
            "preview": preview}


def _live_count(principal, segment) -> int | None:
    """How many people are in ``segment`` now; None when its rules cannot be evaluated."""
    try:
        return access.segment_people(principal, segment).count()
    except ValidationError:
        return None


def segments_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    rows = [(s, _live_count(principal, s)) for s in access.segments_of(principal)]
    return render(request, "audience/segments.html", {
        "rows": rows, "can_manage": principal.can(P.SEGMENTS_MANAGE)})


def _form_error(request, segment, error: str, tree) -> HttpResponse:
    return render(request, "audience/segment_form.html", _builder_context(
        request.principal, segment, error=error, tree=tree), status=422)


def _save(request, segment=None) -> HttpResponse:
    principal = request.principal
    definitions = people_access.field_definitions(principal.account_id)
    types = dict(_usable_fields(principal, definitions))
    kind = segment.kind if segment is not None else request.POST.get("kind", DYNAMIC)
    tree = None
    try:
        if kind == DYNAMIC:
            tree = tree_from_post(request.POST, types)
        name = request.POST.get("name", "")
        if segment is None:
            segment = actions.do_create_segment(principal.account, name, kind, tree,
                                                actor=principal, request=request)
        else:
            if tree is not None and tree == _shown_rules(principal, segment, definitions):
                tree = None  # the rules as shown, unchanged (masked values included)
            segment = actions.do_change_segment(segment, name=name, rule_data=tree,
                                                actor=principal, request=request)
    except ValueError as exc:
        return _form_error(request, segment, str(exc), tree)
    except ValidationError as exc:
        return _form_error(request, segment, " ".join(exc.messages), tree)
    return redirect(f"/app/segments/{segment.pk}/")


def segment_preview(request: HttpRequest) -> HttpResponse:
    """The builder's Preview button: the count and a sample of 20 for the rules as they
    stand (nothing saved), rendered through the visibility formatter."""
    principal = request.principal
    definitions = people_access.field_definitions(principal.account_id)
    tree = None
    try:
        tree = tree_from_post(request.POST, dict(_usable_fields(principal, definitions)))
        people = access.matching_people(principal, tree)
    except ValueError as exc:
        return _form_error(request, None, str(exc), tree)
    except ValidationError as exc:
        return _form_error(request, None, " ".join(exc.messages), tree)
    columns, sample = _sample(principal, people.order_by("pk")[:SAMPLE], definitions)
    return render(request, "audience/segment_form.html", _builder_context(
        principal, None, tree=tree, preview={
            "count": people.count(), "columns": columns, "rows": sample,
            "name": request.POST.get("name", "")}))


def segment_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request)
    return render(request, "audience/segment_form.html", _builder_context(request.principal))


def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = access.access_segment(request.principal, segment_id, for_write=True)
    if request.method == "POST":
        return _save(request, segment)
    definitions = people_access.field_definitions(request.principal.account_id)
    return render(request, "audience/segment_form.html", _builder_context(
        request.principal, segment,
        tree=_shown_rules(request.principal, segment, definitions)))


def _shown_rules(principal, segment, definitions):
    """A segment's rules as ``principal`` may see them (values on fields not visible to
    them in full masked)."""
    if segment.rules is None:
        return None
    return rules.masked_json(segment.rules, principal.perms, definitions)


def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    return _detail(request, access.access_segment(request.principal, segment_id))


def _detail(request, segment, *, error: str = "", status: int = 200) -> HttpResponse:
    principal = request.principal
    definitions = people_access.field_definitions(principal.account_id)
    try:
        people = access.segment_people(principal, segment)
    except ValidationError as exc:
        people, error = None, error or " ".join(exc.messages)
    columns, sample = _sample(principal, people.order_by("pk")[:SAMPLE], definitions) \
        if people is not None and principal.can(P.PEOPLE_READ) else ([], [])
    shown_rules = None if segment.rules is None else json.dumps(
        rules.masked_json(segment.rules, principal.perms, definitions), indent=2,
        ensure_ascii=False)
    return render(request, "audience/segment_detail.html", {
        "segment": segment, "count": None if people is None else people.count(),
        "columns": columns, "rows": sample,
        "rules": shown_rules, "can_manage": principal.can(P.SEGMENTS_MANAGE),
        "is_list": segment.kind == STATIC, "error": error,
        "snapshot_name": request.POST.get("name", "") if error else ""}, status=status)


def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    principal = request.principal
    segment = access.access_segment(principal, segment_id, for_write=True)
    try:
        actions.do_delete_segment(segment, actor=principal, request=request)
    except ValidationError as exc:
        return render_error_page(request, 409, "Cannot delete this segment",
                                 " ".join(exc.messages))
    return redirect("/app/segments/")


def segment_snapshot(request: HttpRequest, segment_id: int) -> HttpResponse:
    """"Save as a list": a static list of the segment's people now, then its page."""
    principal = request.principal
    segment = access.access_segment(principal, segment_id, for_write=True)
    try:
        snapshot = actions.do_snapshot_segment(segment, request.POST.get("name", ""),
                                               actor=principal, request=request)
    except ValidationError as exc:
        return _detail(request, segment, error=" ".join(exc.messages), status=422)
    return redirect(f"/app/segments/{snapshot.pk}/")


def person_subscriptions(request: HttpRequest, person_id: int) -> HttpResponse:
    """A person's subscription per topic and their consent history; members with
    ``people.write`` subscribe or unsubscribe them (recorded as method "app")."""
    from enclave.people import access as people_access

    principal = request.principal
    person = people_access.access_person(principal, person_id,
                                         for_write=request.method == "POST")
    error, message, status = "", "", 200
    if request.method == "POST":
        choice = request.POST.get("subscribe")
        try:
            if choice not in ("1", "0"):
                raise ValidationError("Choose subscribe or unsubscribe.")
            topic = access.topic_by_key(principal, request.POST.get("topic", ""))
            result = subscriptions.do_change_subscription(
                person, topic, choice == "1", method="app", actor=principal,
                request=request)
            message = SUBSCRIPTION_MESSAGES[result].format(topic=topic.name)
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 422
        except ratelimit.Limited as exc:
            error, status = ("Confirmation links were sent to this person for this topic "
                             f"too often; {exc}"), 429
    states = {row.topic_id: row for row in access.subscriptions_of(principal, person)}
    return render(request, "audience/person_subscriptions.html", {
        "person": person, "error": error, "message": message,
        "rows": [(topic, states.get(topic.pk)) for topic in access.topics_of(principal)],
        "history": access.consent_rows(principal, person),
        "can_write": principal.can(P.PEOPLE_WRITE)}, status=status)


SUBSCRIPTION_MESSAGES = {
    "subscribed": "Subscribed to {topic}.",
    "pending": "A confirmation link was sent for {topic}; they are subscribed once they "
               "follow it.",
    "unsubscribed": "Unsubscribed from {topic}.",
}


def suppressions(request: HttpRequest) -> HttpResponse:
    """The suppression list: add an address, check one, take one off. The list holds
    keyed hashes, so only counts by reason are shown; addresses typed here are never
    echoed back or logged."""
    principal = request.principal
    error, message, status = "", "", 200
    if request.method == "POST":
        action, email = request.POST.get("action"), request.POST.get("email", "").strip()
        try:
            if not email:
                raise ValidationError("Enter an email address.")
            if action == "add":
                added = subscriptions.do_suppress_address(principal.account, email,
                                                          actor=principal, request=request)
                message = ("The address is suppressed." if added
                           else "The address was already suppressed.")
            elif action == "remove":
                removed = subscriptions.do_unsuppress_address(principal.account, email,
                                                              actor=principal,
                                                              request=request)
                message = ("The address is no longer suppressed." if removed
                           else "The address was not suppressed.")
            elif action == "check":
                message = ("The address is suppressed."
                           if access.is_suppressed(principal, email)
                           else "The address is not suppressed.")
            else:
                raise ValidationError("Choose add, check or remove.")
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 422
        except ratelimit.Limited as exc:
            error, status = f"Too many look-ups. {exc}", 429
    return render(request, "audience/suppressions.html", {
        "counts": access.suppression_counts(principal), "error": error,
        "message": message}, status=status)


def topic_detail(request: HttpRequest, topic_id: int) -> HttpResponse:
    """A topic, its subscriber counts, and (``topics.manage``) its edit form; a new
    consent text starts a new consent version."""
    principal = request.principal
    topic = access.access_topic(principal, topic_id, for_write=request.method == "POST")
    error, status = "", 200
    if request.method == "POST":
        try:
            subscriptions.do_change_topic(
                topic, name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                consent_text=request.POST.get("consent_text", ""),
                double_opt_in=request.POST.get("double_opt_in") == "on", actor=principal,
                request=request)
            return redirect(f"/app/topics/{topic.pk}/")
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 422
    return render(request, "audience/topic_detail.html", {
        "topic": topic, "counts": access.topic_counts(principal, topic), "error": error,
        "can_manage": principal.can(P.TOPICS_MANAGE)}, status=status)


def topics_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    error, status = "", 200
    if request.method == "POST":
        try:
            subscriptions.do_create_topic(
                principal.account, request.POST.get("key", ""), request.POST.get("name", ""),
                consent_text=request.POST.get("consent_text", ""),
                description=request.POST.get("description", ""),
                double_opt_in=request.POST.get("double_opt_in") == "on", actor=principal,
                request=request)
            return redirect("/app/topics/")
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 422
    return render(request, "audience/topics.html", {
        "topics": list(access.topics_of(principal)), "error": error,
        "can_manage": principal.can(P.TOPICS_MANAGE)}, status=status)
