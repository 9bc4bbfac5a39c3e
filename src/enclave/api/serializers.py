"""Request and response shapes of the API.

Request serializers check the *shape* only (types, lengths, unknown fields → 422); the
domain rules stay in the actions (``people.actions.clean_person_data`` etc.). Response
serializers exist for the OpenAPI schema: the views build their JSON with the visibility
formatter (``enclave.api.render``), never with a ModelSerializer, so no field can reach a
response without passing through it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from enclave.messaging.models import OUTBOX_STATES
from enclave.people.actions import DOT_ATOM, TAG_MAX, TEXT_LIMITS
from enclave.people.models import CONSENT_CHOICES, FIELD_TYPES, PD_CLASSES
from enclave.people.values import custom_value_schema

TAGS_MAX_PER_REQUEST = 100
# Text with a visible character (and no NUL).
# Whitespace spelled out (what Python's ``str.isspace`` calls whitespace): ``\s`` means
# different sets to Python and to the JSON-Schema tools that read the OpenAPI document
# (a schemathesis run found "\x1f" accepted by the schema and refused by us).
WHITESPACE = (r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028"
              r"\u2029\u202f\u205f\u3000")
NOT_BLANK = rf"^[^\u0000]*[^{WHITESPACE}\u0000][^\u0000]*$"


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare (422 ``Unknown field.``), never ignores them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text only, as sent: DRF's CharField would turn ``5`` or ``true`` into ``"5"`` /
    ``"True"`` and strip whitespace before checking ``max_length``; the schema says string
    and counts characters as sent, so this field does too (the actions strip)."""

    default_error_messages = {"invalid": "Send a string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false`` only: DRF's BooleanField would also take 0/1, "true", "yes"…,
    which the schema (type boolean) does not allow."""

    default_error_messages = {"invalid": "Send true or false (a JSON boolean)."}

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid")
        return None  # unreachable: fail() raises


@extend_schema_field({"type": ["string", "number", "boolean"]})  # + null: allow_null
class ScalarField(serializers.Field):
    """A custom-field value: string, number, boolean or null (null clears it)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, dict | list):
            raise serializers.ValidationError("Send a string, number, boolean or null.")
        return data

    def to_representation(self, value):
        return value


def _text(name: str) -> serializers.CharField:
    return StrictCharField(required=False, allow_blank=True, max_length=TEXT_LIMITS[name])


class PersonWriteSerializer(StrictSerializer):
    """Fields of a person to set. Omitted fields are left as they are; ``""`` clears."""

    email = _text("email")
    first_name = _text("first_name")
    last_name = _text("last_name")
    phone = _text("phone")
    company = _text("company")
    address = _text("address")
    external_id = _text("external_id")
    country = StrictCharField(required=False, allow_blank=True, max_length=2)
    time_zone = StrictCharField(required=False, allow_blank=True, max_length=64)
    ip = StrictCharField(required=False, allow_blank=True, max_length=45,
                               help_text="IPv4 or IPv6 address; empty clears it.")
    consent = serializers.ChoiceField(choices=CONSENT_CHOICES, required=False)
    custom = serializers.DictField(child=ScalarField(), required=False,
                                   help_text="Custom field values by key (see /fields).")
    tags = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX), required=False,
        max_length=TAGS_MAX_PER_REQUEST,
        help_text="Replaces the person's tags (use /people/{id}/tags to add or remove).")


class TagsSerializer(StrictSerializer):
    tags = serializers.ListField(child=StrictCharField(max_length=TAG_MAX),
                                 min_length=1, max_length=TAGS_MAX_PER_REQUEST)


class FieldDefinitionWriteSerializer(StrictSerializer):
    key = serializers.RegexField(r"^[a-z][a-z0-9_]{0,39}\Z", max_length=40,
                                 help_text="1–40 lower-case letters, digits and underscores.")
    label = StrictCharField(max_length=80, required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=FIELD_TYPES)
    options = serializers.ListField(
        child=StrictCharField(max_length=100, validators=[RegexValidator(
            NOT_BLANK, "An option needs a visible character.")]),
        required=False, max_length=100)
    pd_class = serializers.ChoiceField(choices=PD_CLASSES, required=False,
                                       default="personal")
    encrypt_at_rest = StrictBooleanField(required=False, default=False)


class PersonUpsertSerializer(PersonWriteSerializer):
    """A person write that names who to match: a non-blank external_id, else an email."""


# --- response shapes (schema only) ---

class PersonSerializer(serializers.Serializer):
    """A person as the key may see them: masked values are masked text; hidden fields
    are left out; ``masked`` names the fields whose value is masked."""

    id = serializers.IntegerField()
    email = serializers.CharField(required=False)
    first_name = serializers.CharField(required=False)
    last_name = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    address = serializers.CharField(required=False)
    ip = serializers.CharField(required=False)
    company = serializers.CharField(required=False)
    country = serializers.CharField(required=False)
    time_zone = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)
    consent = serializers.CharField(required=False)
    created_at = serializers.CharField(required=False)
    updated_at = serializers.CharField(required=False)
    archived_at = serializers.DateTimeField(allow_null=True)
    custom = serializers.DictField(child=ScalarField())
    tags = serializers.ListField(child=serializers.CharField())
    masked = serializers.ListField(child=serializers.CharField())


class PersonPageSerializer(serializers.Serializer):
    results = PersonSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class TagListSerializer(serializers.Serializer):
    tags = serializers.ListField(child=serializers.CharField())


class TagCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    people = serializers.IntegerField()


class TagPageSerializer(serializers.Serializer):
    results = TagCountSerializer(many=True)


class FieldDefinitionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(choices=FIELD_TYPES)
    options = serializers.ListField(child=serializers.CharField())
    pd_class = serializers.ChoiceField(choices=PD_CLASSES)
    encrypt_at_rest = serializers.BooleanField()
    visibility = serializers.ChoiceField(
        choices=["visible", "masked", "hidden"],
        help_text="How this key sees the field's values.")


class FieldListSerializer(serializers.Serializer):
    results = FieldDefinitionSerializer(many=True)


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The membership id.")
    email = serializers.EmailField()
    role = serializers.CharField()
    joined_at = serializers.DateTimeField()


class MemberListSerializer(serializers.Serializer):
    results = MemberSerializer(many=True)


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    event = serializers.CharField(help_text="Event name, e.g. person_created.")
    description = serializers.CharField()
    actor = serializers.CharField(allow_null=True, help_text="Member email; null = system.")
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target_label = serializers.CharField(
        allow_null=True, help_text="A person's email as the key may see it (masked or null).")
    ip = serializers.CharField(allow_null=True)
    trace_id = serializers.CharField()
    scrubbed = serializers.BooleanField()
    extra = serializers.DictField()


class AuditPageSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class AccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    require_mfa = serializers.BooleanField()
    idle_timeout_minutes = serializers.IntegerField()
    permissions = serializers.ListField(
        child=serializers.CharField(),
        help_text="The permissions this key holds (creator ∩ role ceiling ∩ scopes).")


# --- custom field values: the account's document (GET /api/v1/openapi.json with a key)
# names them with their types (enclave.people.values, which also checks what a key sends)
def custom_values_schema(definitions) -> dict:
    """The ``custom`` object of a person write body for these field definitions."""
    return {"type": "object", "additionalProperties": False,
            "properties": {d.key: custom_value_schema(d) for d in definitions},
            "description": "Custom field values by key: this account's fields that the "
                           "key may set. Any other key is a 422."}


# --- segments (enclave.api.segments); the rule tree's schema is audience.schema's ---

class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only (5 or 5.0): DRF's IntegerField would also take "5" and true."""

    default_error_messages = {"invalid": "Send a whole number (a JSON integer)."}

    def to_internal_value(self, data):
        # JSON has one number type: 5.0 is the integer 5 (JSON Schema agrees).
        if type(data) is float and data.is_integer() and abs(data) < 2**63:
            data = int(data)
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object"})  # replaced by SegmentRule (api.schema)
class RuleTreeField(serializers.Field):
    """A segment's rule tree, checked by ``audience.rules`` in the action."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


def _segment_name(required: bool) -> serializers.CharField:
    return StrictCharField(max_length=100, required=required, validators=[
        RegexValidator(NOT_BLANK, "A name needs a visible character.")])


class SegmentCreateSerializer(StrictSerializer):
    name = _segment_name(True)
    kind = serializers.ChoiceField(choices=["dynamic", "static"],
                                   help_text="dynamic: people match its rules; static: a "
                                             "list people are added to.")
    rules = RuleTreeField(required=False, allow_null=True,
                          help_text="A dynamic segment's rule tree (a static list has none).")


class SegmentChangeSerializer(StrictSerializer):
    name = _segment_name(False)
    rules = RuleTreeField(required=False, help_text="Replaces a dynamic segment's rules.")


class SegmentSnapshotSerializer(StrictSerializer):
    name = _segment_name(True)


class SegmentPreviewBodySerializer(StrictSerializer):
    rules = RuleTreeField()


class SegmentPeopleSerializer(StrictSerializer):
    people = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
        max_length=1000, help_text="Person ids of this account (at most 1,000).")


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["dynamic", "static"])
    rules = RuleTreeField(allow_null=True, help_text="The rule tree; values of conditions "
                          "on fields this key does not see in full are masked.")
    time_dependent = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    refreshed_at = serializers.DateTimeField(
        allow_null=True, help_text="Membership rows (and entry/exit history) are up to date "
                                   "with changes until then; counts are always live.")


class SegmentListSerializer(serializers.Serializer):
    results = SegmentSerializer(many=True)


class SegmentCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class SegmentPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = PersonSerializer(many=True, help_text="Up to 20 matching people, as this key "
                                                   "may see them.")


class SegmentPeopleResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="How many people were added (not already "
                                                 "members) or removed (were members).")


# --- topics, subscriptions, consent, suppression (enclave.api.topics) ---

class TopicWriteSerializer(StrictSerializer):
    key = serializers.RegexField(r"^[a-z][a-z0-9_-]{0,39}\Z", max_length=40,
                                 help_text="1–40 lower-case letters, digits, - and _.")
    name = StrictCharField(max_length=100, validators=[
        RegexValidator(NOT_BLANK, "A name needs a visible character.")])
    description = StrictCharField(max_length=300, required=False, allow_blank=True)
    consent_text = StrictCharField(max_length=1000, validators=[
        RegexValidator(NOT_BLANK, "The consent text needs a visible character.")],
        help_text="What a subscriber agrees to; changing it starts a new consent version.")
    double_opt_in = StrictBooleanField(required=False, default=True)


class TopicChangeSerializer(StrictSerializer):
    name = StrictCharField(max_length=100, required=False, validators=[
        RegexValidator(NOT_BLANK, "A name needs a visible character.")])
    description = StrictCharField(max_length=300, required=False, allow_blank=True)
    consent_text = StrictCharField(max_length=1000, required=False, validators=[
        RegexValidator(NOT_BLANK, "The consent text needs a visible character.")])
    double_opt_in = StrictBooleanField(required=False)


class TopicSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    consent_text = serializers.CharField()
    consent_version = serializers.IntegerField()
    double_opt_in = serializers.BooleanField()
    form_url = serializers.CharField(help_text="The topic's public subscribe form.")


class TopicListSerializer(serializers.Serializer):
    results = TopicSerializer(many=True)


class SubscriptionWriteSerializer(StrictSerializer):
    topic = StrictCharField(max_length=40, help_text="The topic's key.")
    subscribed = StrictBooleanField()
    method = serializers.ChoiceField(choices=["api", "import", "complaint"], required=False,
                                     default="api")


class SubscriptionSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="The topic's key.")
    status = serializers.ChoiceField(choices=["subscribed", "unsubscribed", "pending"])
    changed_at = serializers.DateTimeField()


class SubscriptionListSerializer(serializers.Serializer):
    results = SubscriptionSerializer(many=True)


class ConsentRecordSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    topic = serializers.CharField(allow_null=True, help_text="null: every topic.")
    status = serializers.CharField()
    method = serializers.CharField()
    consent_version = serializers.IntegerField(allow_null=True)
    ip = serializers.CharField(allow_null=True, help_text="As this key may see it.")


class ConsentListSerializer(serializers.Serializer):
    results = ConsentRecordSerializer(many=True)


def _address() -> StrictCharField:
    """An email address, as the people API accepts and documents them (the pattern)."""
    from enclave.people.actions import EMAIL_PATTERN

    return StrictCharField(max_length=254, validators=[
        RegexValidator(EMAIL_PATTERN, "Enter a valid email address.")])


class SuppressionWriteSerializer(StrictSerializer):
    email = _address()
    reason = serializers.ChoiceField(choices=["manual", "complaint", "bounce"],
                                     required=False, default="manual")


class SuppressionAddressSerializer(StrictSerializer):
    email = _address()


class SuppressionResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="Whether the list changed.")


class SuppressionCheckResultSerializer(serializers.Serializer):
    suppressed = serializers.BooleanField()


# --- email templates (enclave.api.templates) ---

def _template_fields(required: bool) -> dict:
    from enclave.messaging import rendering

    return {
        "name": StrictCharField(max_length=100, required=required, validators=[
            RegexValidator(NOT_BLANK, "A name needs a visible character.")]),
        "kind": serializers.ChoiceField(
            choices=["mjml", "html"], required=required,
            help_text="mjml: compiled to HTML when saved; html: used as written. Either "
                      "way the CSS is inlined when saved."),
        "subject": StrictCharField(
            max_length=rendering.MAX_SUBJECT, required=required,
            help_text="One line; may use Liquid merge fields."),
        "source": StrictCharField(
            max_length=rendering.MAX_SOURCE, required=required,
            help_text="MJML or HTML with Liquid merge fields: person.<field>, "
                      "person.custom.<key>, account.name, unsubscribe_url, "
                      "preferences_url, data.<key> (a transactional send's "
                      "variables). Refused (422, naming the field) unless it "
                      "compiles, uses only those fields and renders within the "
                      "sandbox's limits."),
    }


class TemplateWriteSerializer(StrictSerializer):
    def get_fields(self):
        return _template_fields(True)


class TemplateChangeSerializer(StrictSerializer):
    def get_fields(self):
        return _template_fields(False)


class TemplateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["mjml", "html"])
    subject = serializers.CharField()
    source = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TemplateListSerializer(serializers.Serializer):
    results = TemplateSerializer(many=True)


class TemplatePreviewBodySerializer(StrictSerializer):
    person = StrictIntegerField(
        min_value=1, max_value=2**63 - 1, required=False,
        help_text="Render for this person of the account, their fields as this key may "
                  "see them (without people:read: all empty, for any id). Without it: a "
                  "sample person.")


class TemplatePreviewSerializer(serializers.Serializer):
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField(help_text="The plain-text part, made from the HTML.")


# --- sender domains (enclave.api.templates) ---

class SenderDomainWriteSerializer(StrictSerializer):
    domain = StrictCharField(max_length=253, help_text="The domain mail is sent from; "
                             "international names are stored in their ASCII (IDNA) form.")


class DnsRecordSerializer(serializers.Serializer):
    type = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField()
    purpose = serializers.CharField()
    required = serializers.BooleanField(help_text="Needed for verification (DKIM); the "
                                                  "others are advice (SPF, DMARC).")


class DkimKeySerializer(serializers.Serializer):
    selector = serializers.CharField()
    state = serializers.ChoiceField(choices=["pending", "active"])
    created_at = serializers.DateTimeField()


class SenderDomainSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    domain = serializers.CharField()
    state = serializers.ChoiceField(choices=["unverified", "verified", "unknown"],
                                    help_text="unknown: DNS could not be asked.")
    check_detail = serializers.CharField(help_text="What the last check found.")
    checked_at = serializers.DateTimeField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    max_per_second = serializers.IntegerField(
        allow_null=True, help_text="The throttle: at most this many messages a second "
                                   "from the domain, across every worker (null: none).")
    keys = DkimKeySerializer(many=True)
    records = DnsRecordSerializer(many=True, help_text="What to publish in DNS.")


class SenderDomainListSerializer(serializers.Serializer):
    results = SenderDomainSerializer(many=True)


class SenderDomainThrottleSerializer(StrictSerializer):
    max_per_second = StrictIntegerField(
        min_value=1, max_value=10_000, allow_null=True,
        help_text="At most this many messages a second from the domain; null lifts it.")


# --- broadcasts (enclave.api.broadcasts) ---

_HAS_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)


def _id_field(help_text: str) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=2**63 - 1, help_text=help_text)


class _MailWriteSerializer(StrictSerializer):
    """What a broadcast and a transactional message both name: template and From."""

    template = _id_field("The email template's id.")
    sender = _id_field("The sender domain's id (it must be verified before sending).")
    from_local = serializers.RegexField(
        rf"^({DOT_ATOM})\Z", max_length=64,
        help_text="The part of the From address before the @.")
    from_name = StrictCharField(max_length=100, required=False, allow_blank=True,
                                validators=[RegexValidator(
                                    r"^(?!.*([\x00-\x1f\x7f<>@]|=\?)).+\Z",
                                    "One line, no control characters, no \"=?\", \"<\", "
                                    "\">\" or \"@\".")])


class BroadcastWriteSerializer(_MailWriteSerializer):
    name = StrictCharField(max_length=100, validators=[
        RegexValidator(NOT_BLANK, "A name needs a visible character.")])
    topics = serializers.ListField(child=_id_field("A topic's id."), min_length=1,
                                   max_length=20, help_text="Its subscribers receive it.")
    segments = serializers.ListField(child=_id_field("A segment's id."), required=False,
                                     max_length=20,
                                     help_text="Only subscribers in one of these.")
    track_opens = StrictBooleanField(required=False, default=False,
                                     help_text="Add an open pixel (off by default).")
    track_clicks = StrictBooleanField(
        required=False, default=False,
        help_text="Send the template's literal https links through a click redirect (off "
                  "by default; personalised links are never rewritten).")


class BroadcastProgressSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Of the queued, how many wait for their "
                                                 "recipient's local time (or a throttled "
                                                 "domain's next slot)")
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    deferred = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    bounced = serializers.IntegerField(help_text="Sent, then reported bounced by the email "
                                                 "provider (its delivery webhooks)")
    opened = serializers.IntegerField(help_text="Recipients whose open was tracked (an "
                                                "over-count: some clients load every image)")
    clicked = serializers.IntegerField(help_text="Recipients who clicked a tracked link")


class BroadcastSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=["draft", "scheduled", "queued", "paused",
                                             "sent", "cancelled"])
    template = serializers.IntegerField()
    sender = serializers.IntegerField()
    from_address = serializers.CharField()
    from_name = serializers.CharField()
    topics = serializers.ListField(child=serializers.IntegerField())
    segments = serializers.ListField(child=serializers.IntegerField())
    recipients = serializers.IntegerField(allow_null=True,
                                          help_text="How many were queued (null: a draft).")
    send_at = serializers.DateTimeField(allow_null=True,
                                        help_text="When a scheduled broadcast starts (its "
                                                  "recipients are snapshotted then).")
    local_time = serializers.DateTimeField(
        allow_null=True, help_text="Sent at each recipient's local time: this date and "
                                   "time on their clock (people without a time zone: at "
                                   "this moment, in this offset); null otherwise.")
    problem = serializers.CharField(help_text="Why it was not sent at its scheduled time "
                                              "(it went back to a draft); empty otherwise.")
    queued_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    track_opens = serializers.BooleanField()
    track_clicks = serializers.BooleanField()
    progress = BroadcastProgressSerializer()


class BroadcastListSerializer(serializers.Serializer):
    results = BroadcastSerializer(many=True)


class _OffsetKeptDateTimeField(serializers.DateTimeField):
    """A time kept in the UTC offset it was sent with (DRF converts to the server's
    zone): a local-time broadcast's wall-clock time is read in that offset."""

    def enforce_timezone(self, value):
        return value if value.tzinfo is not None else super().enforce_timezone(value)


class BroadcastScheduleSerializer(StrictSerializer):
    send_at = _OffsetKeptDateTimeField(
        help_text="When to send: RFC 3339 with its UTC offset, in the coming year.")
    local_time = StrictBooleanField(
        required=False, default=False,
        help_text="Send when each recipient's clock shows send_at's date and time (as "
                  "written, in their time zone; people without one at send_at). Its "
                  "recipients are snapshotted when that time first comes anywhere "
                  "(UTC+14), which must still be ahead.")

    def to_internal_value(self, data):
        # DRF would read a time without an offset in the server's zone: refuse it.
        raw = data.get("send_at") if isinstance(data, dict) else None
        if isinstance(raw, str) and not _HAS_OFFSET.search(raw.strip()):
            raise serializers.ValidationError({"send_at": ["A time with its UTC offset "
                                                           "(Z or +hh:mm)."]})
        return super().to_internal_value(data)


class MessageRecipientSerializer(StrictSerializer):
    person = StrictIntegerField(min_value=1, max_value=2**63 - 1, required=False,
                                help_text="One of the account's people (their fields fill "
                                          "the template; erasing them erases the message).")
    email = StrictCharField(max_length=254, required=False,
                            help_text="An address; sent as to the person who has it when "
                                      "there is one.")

    def validate(self, attrs):
        if ("person" in attrs) == ("email" in attrs):
            raise serializers.ValidationError("Give either person or email.")
        return attrs


class MessageWriteSerializer(_MailWriteSerializer):
    to = MessageRecipientSerializer()
    data = serializers.DictField(
        required=False, help_text="Template variables, read as data.<key> (a JSON object, "
                                  "at most 16 KB and 8 levels deep).")


class MessageSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The message's id (GET /api/v1/messages/{id}).")
    state = serializers.ChoiceField(choices=OUTBOX_STATES)
    template = serializers.IntegerField()
    sender = serializers.IntegerField()
    person = serializers.IntegerField(allow_null=True,
                                      help_text="The person it goes to (null for an "
                                                "address that is nobody's); told only to "
                                                "a key with people:read, else null.")
    attempts = serializers.IntegerField()
    detail = serializers.CharField(help_text="The last outcome: a reply code, or why it "
                                             "was skipped or failed.")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


# --- outgoing webhooks (enclave.api.webhooks) ---

def _event_types_field(**kwargs) -> serializers.ListField:
    from enclave.webhooks.events import TYPES

    return serializers.ListField(
        child=serializers.ChoiceField(choices=list(TYPES)), min_length=1,
        max_length=len(TYPES),
        help_text="What the endpoint receives: " + "; ".join(
            f"{k} — {v}" for k, v in TYPES.items()) + ".", **kwargs)


def _ceiling_field() -> serializers.ChoiceField:
    from enclave.access.scopes import CEILINGS

    return serializers.ChoiceField(
        choices=list(CEILINGS), required=False,
        help_text="Payloads show people's data as this role sees it (never more than "
                  "the caller may see; default: the largest role within the caller's "
                  "permissions).")


class WebhookWriteSerializer(StrictSerializer):
    url = StrictCharField(max_length=2048, help_text="https only; an address that is not "
                          "public on the internet is refused when saved and when called.")
    event_types = _event_types_field()
    role_ceiling = _ceiling_field()
    description = StrictCharField(max_length=200, required=False, allow_blank=True)


class WebhookChangeSerializer(StrictSerializer):
    url = StrictCharField(max_length=2048, required=False)
    event_types = _event_types_field(required=False)
    role_ceiling = _ceiling_field()
    description = StrictCharField(max_length=200, required=False, allow_blank=True)
    enabled = StrictBooleanField(required=False, help_text="false disables the endpoint; "
                                 "true enables it again (its failed deliveries can be "
                                 "replayed).")


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    host = serializers.CharField(help_text="The URL's host (the URL itself is never shown "
                                           "again: it may carry the receiver's token).")
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    role_ceiling = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "disabled"])
    disabled_reason = serializers.CharField()
    secret_rotation_overlap_until = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret signs too.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="The signing secret (whsec_…), shown only "
                                             "now: verify requests with any Standard "
                                             "Webhooks library.")


class WebhookListSerializer(serializers.Serializer):
    results = WebhookSerializer(many=True)


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_type = serializers.CharField()
    webhook_id = serializers.CharField(help_text="The webhook-id header: the same on every "
                                                 "attempt and replay.")
    state = serializers.ChoiceField(choices=["pending", "delivered", "failed"])
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status = serializers.IntegerField(allow_null=True, help_text="The receiver's "
                                           "HTTP status (null: no answer).")
    last_detail = serializers.CharField(help_text="Status, time taken and response size, "
                                                  "or why no answer came.")


class WebhookDeliveryPageSerializer(serializers.Serializer):
    results = WebhookDeliverySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
