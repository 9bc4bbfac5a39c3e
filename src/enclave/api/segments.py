"""Segments under /api/v1/segments: list, create, get, change, delete, count, members
(cursor pages; add to and remove from static lists), snapshot (a static list of the
members now) and preview of an unsaved rule tree.
Thin edges over ``audience.access`` / ``audience.actions``; people are rendered through
``enclave.api.render`` (the visibility formatter), rules with masked values
(``audience.rules.masked_json``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from enclave.api import render
from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.audience import access, actions, rules
from enclave.people import access as people_access

PREVIEW_SAMPLE = 20
_PAGE = [OpenApiParameter("limit", int, description="Page size, 1–200 (default 50)."),
         OpenApiParameter("cursor", str, description="next_cursor of the previous page.")]


def segment_json(segment, principal, definitions=None) -> dict:
    definitions = people_access.field_definitions(principal.account_id) \
        if definitions is None else definitions
    return {
        "id": segment.pk, "name": segment.name, "kind": segment.kind,
        "rules": None if segment.rules is None else rules.masked_json(
            segment.rules, principal.perms, definitions),
        "time_dependent": segment.time_dependent,
        "created_at": segment.created_at.isoformat(),
        "updated_at": segment.updated_at.isoformat(),
        "refreshed_at": segment.refreshed_at.isoformat() if segment.refreshed_at else None,
    }


def _people_json(people, principal) -> list[dict]:
    definitions = people_access.field_definitions(principal.account_id)
    tags = render.tags_of(people)
    return [render.person_json(p, principal.perms, definitions, tags[p.pk]) for p in people]


class SegmentsView(ApiView):
    """The account's segments: list, or create one."""

    @extend_schema(operation_id="segments_list", responses=s.SegmentListSerializer,
                   summary="The account's segments and lists, by name")
    def get(self, request):
        definitions = people_access.field_definitions(self.principal.account_id)
        return Response({"results": [segment_json(x, self.principal, definitions)
                                     for x in access.segments_of(self.principal)]})

    @extend_schema(operation_id="segments_create", request=s.SegmentCreateSerializer,
                   responses={201: s.SegmentSerializer},
                   summary="Create a dynamic segment (rules) or a static list")
    def post(self, request):
        data = self.validated(s.SegmentCreateSerializer)
        segment = actions.do_create_segment(
            self.principal.account, data["name"], data["kind"], data.get("rules"),
            actor=self.principal, request=request._request)
        return Response(segment_json(segment, self.principal), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/segments/{segment.pk}"})


class SegmentView(ApiView):
    """One segment: get, change its name or rules, delete."""

    @extend_schema(operation_id="segments_get", responses=s.SegmentSerializer,
                   summary="Get a segment")
    def get(self, request, segment_id: int):
        return Response(segment_json(access.access_segment(self.principal, segment_id),
                                     self.principal))

    @extend_schema(operation_id="segments_update", request=s.SegmentChangeSerializer,
                   responses=s.SegmentSerializer,
                   summary="Rename a segment or replace a dynamic segment's rules")
    def patch(self, request, segment_id: int):
        segment = access.access_segment(self.principal, segment_id, for_write=True)
        data = self.validated(s.SegmentChangeSerializer)
        segment = actions.do_change_segment(segment, name=data.get("name"),
                                            rule_data=data.get("rules"), actor=self.principal,
                                            request=request._request)
        return Response(segment_json(segment, self.principal))

    @extend_schema(operation_id="segments_delete", request=None,
                   responses={204: OpenApiResponse(description="Deleted")},
                   summary="Delete a segment (409 while other segments refer to it)")
    def delete(self, request, segment_id: int):
        segment = access.access_segment(self.principal, segment_id, for_write=True)
        actions.do_delete_segment(segment, actor=self.principal, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentCountView(ApiView):
    """How many people are in a segment now (evaluated live)."""

    @extend_schema(operation_id="segments_count", responses=s.SegmentCountSerializer,
                   summary="How many people are in the segment now")
    def get(self, request, segment_id: int):
        segment = access.access_segment(self.principal, segment_id)
        return Response({"count": access.segment_people(self.principal, segment).count()})


class SegmentMembersView(ApiView):
    """The people in a segment now (cursor pages in id order); add people to a list."""

    query_params = {"GET": frozenset({"limit", "cursor"})}

    @extend_schema(operation_id="segments_members", parameters=_PAGE,
                   responses=s.PersonPageSerializer,
                   summary="The people in the segment now (cursor pagination, id order)")
    def get(self, request, segment_id: int):
        segment = access.access_segment(self.principal, segment_id)
        limit = render.page_limit(request.query_params.get("limit"))
        people = access.segment_people(self.principal, segment)
        if request.query_params.get("cursor"):  # empty: the first page, as the schema says
            people = people.filter(pk__gt=render.decode_cursor(request.query_params["cursor"]))
        page = list(people.order_by("pk")[:limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response({"results": _people_json(page, self.principal),
                         "next_cursor": render.encode_cursor(page[-1].pk) if more else None})

    @extend_schema(operation_id="segments_members_add", request=s.SegmentPeopleSerializer,
                   responses=s.SegmentPeopleResultSerializer,
                   summary="Add people to a static list (409 for a dynamic segment)")
    def post(self, request, segment_id: int):
        segment = access.access_segment(self.principal, segment_id, for_write=True)
        data = self.validated(s.SegmentPeopleSerializer)
        changed = actions.do_add_segment_people(segment, data["people"], actor=self.principal,
                                                request=request._request)
        return Response({"changed": changed})


class SegmentMemberView(ApiView):
    """Remove one person from a static list."""

    @extend_schema(operation_id="segments_members_remove", request=None,
                   responses={204: OpenApiResponse(description="Removed")},
                   summary="Remove a person from a static list")
    def delete(self, request, segment_id: int, person_id: int):
        segment = access.access_segment(self.principal, segment_id, for_write=True)
        if not actions.do_remove_segment_people(segment, [person_id], actor=self.principal,
                                                request=request._request):
            raise exceptions.NotFound("This person is not in the list.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentSnapshotView(ApiView):
    """A new static list holding the segment's people now."""

    @extend_schema(operation_id="segments_snapshot", request=s.SegmentSnapshotSerializer,
                   responses={201: s.SegmentSerializer},
                   summary="Make a static list of the people in the segment now")
    def post(self, request, segment_id: int):
        segment = access.access_segment(self.principal, segment_id, for_write=True)
        data = self.validated(s.SegmentSnapshotSerializer)
        snapshot = actions.do_snapshot_segment(segment, data["name"], actor=self.principal,
                                               request=request._request)
        return Response(segment_json(snapshot, self.principal),
                        status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/segments/{snapshot.pk}"})


class SegmentPreviewView(ApiView):
    """Count and a sample of the people an (unsaved) rule tree matches."""

    @extend_schema(operation_id="segments_preview", request=s.SegmentPreviewBodySerializer,
                   responses=s.SegmentPreviewSerializer,
                   summary="Count and a sample of 20 people a rule tree matches now")
    def post(self, request):
        data = self.validated(s.SegmentPreviewBodySerializer)
        people = access.matching_people(self.principal, data["rules"])
        sample = list(people.order_by("pk")[:PREVIEW_SAMPLE])
        return Response({"count": people.count(),
                         "sample": _people_json(sample, self.principal)})
