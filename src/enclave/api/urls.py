"""Routes under /api/. Every route under /api/v1/ has an entry (per method) in
``enclave.access.endpoints`` — the generated tests fail otherwise."""

from django.conf import settings
from django.urls import path, register_converter

from enclave.api import (
    account,
    broadcasts,
    messages,
    people,
    segments,
    templates,
    topics,
    views,
    webhooks,
)
from enclave.api import apikeys as apikeys_api
from enclave.api import events as events_api
from enclave.api.tracking import SpecIngestView
from enclave.events import spec


class IdConverter:
    """Database ids: 1–18 digits (fits a 64-bit integer; longer is simply not found)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


register_converter(IdConverter, "id")

urlpatterns = [
    path("docs", views.docs, name="api-docs"),
    path("v1/health", views.HealthView.as_view(), name="api-health"),
    path("v1/openapi.json", views.OpenApiView.as_view(), name="api-openapi"),
    path("v1/people", people.PeopleView.as_view(), name="api-people"),
    path("v1/people/upsert", people.PeopleUpsertView.as_view(), name="api-people-upsert"),
    path("v1/people/<id:person_id>", people.PersonView.as_view(), name="api-person"),
    path("v1/people/<id:person_id>/archive", people.PersonArchiveView.as_view(),
         name="api-person-archive"),
    path("v1/people/<id:person_id>/tags", people.PersonTagsView.as_view(),
         name="api-person-tags"),
    path("v1/people/<id:person_id>/tags/<str:tag>", people.PersonTagView.as_view(),
         name="api-person-tag"),
    path("v1/tags", people.TagsView.as_view(), name="api-tags"),
    path("v1/fields", account.FieldsView.as_view(), name="api-fields"),
    path("v1/members", account.MembersView.as_view(), name="api-members"),
    path("v1/members/<id:membership_id>", account.MemberView.as_view(), name="api-member"),
    path("v1/audit", account.AuditView.as_view(), name="api-audit"),
    path("v1/account", account.AccountView.as_view(), name="api-account"),
    # API keys (enclave.api.apikeys)
    path("v1/api-keys", apikeys_api.ApiKeysView.as_view(), name="api-keys"),
    path("v1/api-keys/<str:public_id>/revoke", apikeys_api.ApiKeyRevokeView.as_view(),
         name="api-key-revoke"),
    # Segments (enclave.api.segments)
    path("v1/segments", segments.SegmentsView.as_view(), name="api-segments"),
    path("v1/segments/preview", segments.SegmentPreviewView.as_view(),
         name="api-segments-preview"),
    path("v1/segments/<id:segment_id>", segments.SegmentView.as_view(), name="api-segment"),
    path("v1/segments/<id:segment_id>/count", segments.SegmentCountView.as_view(),
         name="api-segment-count"),
    path("v1/segments/<id:segment_id>/members", segments.SegmentMembersView.as_view(),
         name="api-segment-members"),
    path("v1/segments/<id:segment_id>/snapshot", segments.SegmentSnapshotView.as_view(),
         name="api-segment-snapshot"),
    path("v1/segments/<id:segment_id>/members/<id:person_id>",
         segments.SegmentMemberView.as_view(), name="api-segment-member"),
    # Topics, subscriptions, consent, suppression (enclave.api.topics)
    path("v1/topics", topics.TopicsView.as_view(), name="api-topics"),
    path("v1/topics/<id:topic_id>", topics.TopicView.as_view(), name="api-topic"),
    path("v1/people/<id:person_id>/subscriptions", topics.PersonSubscriptionsView.as_view(),
         name="api-person-subscriptions"),
    path("v1/people/<id:person_id>/consent", topics.PersonConsentView.as_view(),
         name="api-person-consent"),
    path("v1/suppressions", topics.SuppressionsView.as_view(), name="api-suppressions"),
    path("v1/suppressions/check", topics.SuppressionCheckView.as_view(),
         name="api-suppressions-check"),
    path("v1/suppressions/remove", topics.SuppressionRemoveView.as_view(),
         name="api-suppressions-remove"),
    # Email templates and sender domains (enclave.api.templates)
    path("v1/templates", templates.TemplatesView.as_view(), name="api-templates"),
    path("v1/templates/<id:template_id>", templates.TemplateView.as_view(),
         name="api-template"),
    path("v1/templates/<id:template_id>/preview", templates.TemplatePreviewView.as_view(),
         name="api-template-preview"),
    path("v1/sender-domains", templates.SenderDomainsView.as_view(),
         name="api-sender-domains"),
    path("v1/sender-domains/<id:domain_id>", templates.SenderDomainView.as_view(),
         name="api-sender-domain"),
    path("v1/sender-domains/<id:domain_id>/check", templates.SenderDomainCheckView.as_view(),
         name="api-sender-domain-check"),
    path("v1/sender-domains/<id:domain_id>/rotate",
         templates.SenderDomainRotateView.as_view(), name="api-sender-domain-rotate"),
    path("v1/sender-domains/<id:domain_id>/throttle",
         templates.SenderDomainThrottleView.as_view(), name="api-sender-domain-throttle"),
    # Outgoing webhooks (enclave.api.webhooks)
    path("v1/webhooks", webhooks.WebhooksView.as_view(), name="api-webhooks"),
    path("v1/webhooks/<id:webhook_id>", webhooks.WebhookView.as_view(), name="api-webhook"),
    path("v1/webhooks/<id:webhook_id>/rotate-secret", webhooks.WebhookRotateView.as_view(),
         name="api-webhook-rotate"),
    path("v1/webhooks/<id:webhook_id>/deliveries", webhooks.WebhookDeliveriesView.as_view(),
         name="api-webhook-deliveries"),
    path("v1/webhooks/<id:webhook_id>/deliveries/<id:delivery_id>/replay",
         webhooks.WebhookReplayView.as_view(), name="api-webhook-replay"),
    # Transactional messages (enclave.api.messages)
    path("v1/messages", messages.MessagesView.as_view(), name="api-messages"),
    path("v1/messages/<str:message_id>", messages.MessageView.as_view(),
         name="api-message"),
    # Broadcasts (enclave.api.broadcasts)
    path("v1/broadcasts", broadcasts.BroadcastsView.as_view(), name="api-broadcasts"),
    path("v1/broadcasts/<id:broadcast_id>", broadcasts.BroadcastView.as_view(),
         name="api-broadcast"),
    path("v1/broadcasts/<id:broadcast_id>/queue", broadcasts.BroadcastQueueView.as_view(),
         name="api-broadcast-queue"),
    path("v1/broadcasts/<id:broadcast_id>/cancel",
         broadcasts.BroadcastCancelView.as_view(), name="api-broadcast-cancel"),
    path("v1/broadcasts/<id:broadcast_id>/schedule",
         broadcasts.BroadcastScheduleView.as_view(), name="api-broadcast-schedule"),
    path("v1/broadcasts/<id:broadcast_id>/pause",
         broadcasts.BroadcastPauseView.as_view(), name="api-broadcast-pause"),
    path("v1/broadcasts/<id:broadcast_id>/resume",
         broadcasts.BroadcastResumeView.as_view(), name="api-broadcast-resume"),
    # Events ingest (enclave.api.events)
    path("v1/events", events_api.IngestView.as_view(), name="api-events"),
    # The tracking spec's HTTP API for Segment / RudderStack SDKs (enclave.api.tracking)
    *[path(f"ingest/v1/{call}", SpecIngestView.as_view(call=call),
           name=f"api-ingest-{call}") for call in ("batch", *spec.CALLS)],
]

if settings.ENCLAVE_API_BENCH_VIEW:  # benchmarks/bench_api.py only; never in live envs
    urlpatterns.append(path("bench/people/<id:person_id>", views.bench_bare_person,
                            name="api-bench-person"))
