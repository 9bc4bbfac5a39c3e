"""Topics, a person's subscriptions and consent history, and the suppression list under
/api/v1/. Thin edges over ``audience.access`` / ``audience.subscriptions``."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.audience import access, subscriptions
from enclave.people import access as people_access


def topic_json(topic) -> dict:
    return {"id": topic.pk, "key": topic.key, "name": topic.name,
            "description": topic.description, "consent_text": topic.consent_text,
            "consent_version": topic.consent_version, "double_opt_in": topic.double_opt_in,
            "form_url": f"{settings.CONFIG.public_url}/subscribe/{topic.public_id}"}


class TopicsView(ApiView):
    """The account's topics: list, or create one."""

    @extend_schema(operation_id="topics_list", responses=s.TopicListSerializer,
                   summary="The account's subscription topics")
    def get(self, request):
        return Response({"results": [topic_json(t) for t in access.topics_of(self.principal)]})

    @extend_schema(operation_id="topics_create", request=s.TopicWriteSerializer,
                   responses={201: s.TopicSerializer}, summary="Create a topic")
    def post(self, request):
        data = self.validated(s.TopicWriteSerializer)
        topic = subscriptions.do_create_topic(
            self.principal.account, data["key"], data["name"],
            consent_text=data["consent_text"], description=data.get("description", ""),
            double_opt_in=data["double_opt_in"], actor=self.principal,
            request=request._request)
        return Response(topic_json(topic), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/topics/{topic.pk}"})


class TopicView(ApiView):
    """One topic: get, or change it (a new consent text starts a new version)."""

    @extend_schema(operation_id="topics_get", responses=s.TopicSerializer,
                   summary="Get a topic")
    def get(self, request, topic_id: int):
        return Response(topic_json(access.access_topic(self.principal, topic_id)))

    @extend_schema(operation_id="topics_update", request=s.TopicChangeSerializer,
                   responses=s.TopicSerializer, summary="Change a topic")
    def patch(self, request, topic_id: int):
        topic = access.access_topic(self.principal, topic_id, for_write=True)
        data = self.validated(s.TopicChangeSerializer)
        topic = subscriptions.do_change_topic(topic, actor=self.principal,
                                              request=request._request, **data)
        return Response(topic_json(topic))


def _subscriptions(principal, person) -> dict:
    return {"results": [{"topic": row.topic.key, "status": row.status,
                         "changed_at": row.changed_at.isoformat()}
                        for row in access.subscriptions_of(principal, person)]}


class PersonSubscriptionsView(ApiView):
    """A person's subscriptions: list, or subscribe / unsubscribe them to a topic."""

    @extend_schema(operation_id="people_subscriptions", responses=s.SubscriptionListSerializer,
                   summary="A person's subscriptions")
    def get(self, request, person_id: int):
        person = people_access.access_person(self.principal, person_id)
        return Response(_subscriptions(self.principal, person))

    @extend_schema(operation_id="people_subscriptions_change",
                   request=s.SubscriptionWriteSerializer,
                   responses=s.SubscriptionListSerializer,
                   summary="Subscribe or unsubscribe a person (double opt-in topics: "
                           "pending until they confirm by the mailed link)")
    def post(self, request, person_id: int):
        person = people_access.access_person(self.principal, person_id, for_write=True)
        data = self.validated(s.SubscriptionWriteSerializer)
        topic = access.topic_by_key(self.principal, data["topic"])
        subscriptions.do_change_subscription(person, topic, data["subscribed"],
                                             method=data["method"], actor=self.principal,
                                             request=request._request)
        return Response(_subscriptions(self.principal, person))


class PersonConsentView(ApiView):
    """A person's consent history (the address each change came from as the key may
    see it)."""

    @extend_schema(operation_id="people_consent", responses=s.ConsentListSerializer,
                   summary="A person's consent history, oldest first")
    def get(self, request, person_id: int):
        person = people_access.access_person(self.principal, person_id)
        return Response({"results": [{**row, "at": row["at"].isoformat()}
                                     for row in access.consent_rows(self.principal, person)]})


class SuppressionsView(ApiView):
    """Add an address to the suppression list."""

    @extend_schema(operation_id="suppressions_add", request=s.SuppressionWriteSerializer,
                   responses=s.SuppressionResultSerializer,
                   summary="Never email this address again (kept only as a keyed hash)")
    def post(self, request):
        data = self.validated(s.SuppressionWriteSerializer)
        changed = subscriptions.do_suppress_address(
            self.principal.account, data["email"], reason=data["reason"],
            actor=self.principal, request=request._request)
        return Response({"changed": changed})


class SuppressionCheckView(ApiView):
    """Whether an address is on the suppression list."""

    @extend_schema(operation_id="suppressions_check", request=s.SuppressionAddressSerializer,
                   responses=s.SuppressionCheckResultSerializer,
                   summary="Is this address suppressed?")
    def post(self, request):
        data = self.validated(s.SuppressionAddressSerializer)
        return Response({"suppressed": access.is_suppressed(self.principal, data["email"])})


class SuppressionRemoveView(ApiView):
    """Take an address off the suppression list (not one an erasure put there: 409)."""

    @extend_schema(operation_id="suppressions_remove", request=s.SuppressionAddressSerializer,
                   responses=s.SuppressionResultSerializer,
                   summary="Take an address off the suppression list")
    def post(self, request):
        data = self.validated(s.SuppressionAddressSerializer)
        changed = subscriptions.do_unsuppress_address(
            self.principal.account, data["email"], actor=self.principal,
            request=request._request)
        return Response({"changed": changed})
