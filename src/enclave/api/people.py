"""People under /api/v1/people: list/search, get, create, update, upsert, archive, erase
and tags. Thin edges: parse, call ``people.access`` / ``people.actions`` with the key's
context, render through ``enclave.api.render`` (the visibility formatter)."""

from __future__ import annotations

import contextlib
import re

from django.db import transaction
from django.db.models import Count
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from enclave.access.permissions import Permission
from enclave.access.principal import authorize
from enclave.api import render
from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.api.errors import FieldNotQueryable, InvalidQuery
from enclave.core.prepared import Prepared, run_together
from enclave.people import access, actions, values, visibility
from enclave.people import views as people_views
from enclave.people.models import FieldDefinition, Person, PersonTag, Tag

# The web list's own parameters that mean nothing here (the API pages by cursor, in id
# order, and always returns every field the key may see).
_WEB_ONLY = frozenset({"sort", "after", "cols", "col"})
SEARCH_PARAMS = (frozenset(people_views.LIST_PARAMS) - _WEB_ONLY) | frozenset(
    visibility.FIELD_CLASSES)
LIST_QUERY = SEARCH_PARAMS | {"limit", "cursor"}

_LIST_PARAMETERS = [
    OpenApiParameter("q", str, description="Text matched (case-insensitive prefix) against "
                     "every searchable field visible to the key."),
    OpenApiParameter("tag", str, description="Only people with this tag."),
    OpenApiParameter("limit", int, description="Page size, 1–200 (default 50)."),
    OpenApiParameter("cursor", str, description="next_cursor of the previous page."),
    OpenApiParameter("archived", str, enum=["0", "1"],
                     description="1 includes archived people."),
    *[OpenApiParameter(f, str, description=f"Exact match (case-insensitive) on {f}; the "
                       "field must be visible to the key, else 422.")
      for f in visibility.QUERYABLE],
]


# --- GET /people/{id}: the hottest read: three lean prepared queries, one round trip --
# The same reads as access.access_person (tenant filter in the same query: another
# account's person is a 404 like a missing one), access.field_definitions and
# render.tags_of, compiled once per connection and sent together (enclave.core.prepared).
_PERSON_COLUMNS = [f.attname for f in Person._meta.concrete_fields]
_DEFINITION_COLUMNS = [f.attname for f in FieldDefinition._meta.concrete_fields]
_PERSON = Prepared(
    "api_person",
    lambda account, person: Person.objects.filter(account_id=account, pk=person)
    .values_list(*_PERSON_COLUMNS)[:1],
    account=-918_273_645, person=-918_273_646)
_DEFINITIONS = Prepared(
    "api_field_definitions",
    lambda account: FieldDefinition.objects.filter(account_id=account).order_by("key")
    .values_list(*_DEFINITION_COLUMNS),
    account=-918_273_647)
_TAGS = Prepared(
    "api_person_tags",
    lambda account, person: PersonTag.objects.filter(person_id=person,
                                                     tag__account_id=account)
    .values_list("tag__name"),
    account=-918_273_648, person=-918_273_649)


def _get_person(ctx, person_id) -> dict:
    """``GET /people/{id}``: the person of the key's account, or Http404."""
    authorize(ctx, Permission.PEOPLE_READ)
    alias, account, person_id = Person.objects.db, ctx.account_id, int(person_id)
    people, definitions, tags = run_together(
        alias, (_PERSON, {"account": account, "person": person_id}),
        (_DEFINITIONS, {"account": account}),
        (_TAGS, {"account": account, "person": person_id}))
    if not people:
        raise Http404("No such person.")
    person = Person.from_db(alias, _PERSON_COLUMNS, people[0])
    definitions = [FieldDefinition.from_db(alias, _DEFINITION_COLUMNS, row)
                   for row in definitions]
    return render.person_json(person, ctx.perms, definitions, [name for (name,) in tags])


def _people_person(person, ctx, definitions=None) -> dict:
    definitions = access.field_definitions(ctx.account_id) if definitions is None \
        else definitions
    return render.person_json(person, ctx.perms, definitions,
                              render.tags_of([person])[person.pk])


class _PersonWriting(ApiView):
    def person_data(self) -> dict:
        """The body as the action's data dict; fields the key cannot see are refused."""
        serializer = s.PersonWriteSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        validated = dict(serializer.validated_data)
        data = {k: v for k, v in validated.items() if k not in ("custom", "tags")}
        data.update({f"custom.{k}": v for k, v in validated.get("custom", {}).items()})
        if "tags" in validated:
            data["tags"] = validated["tags"]
        definitions = access.field_definitions(self.principal.account_id)
        errors = {}
        for key in data:
            try:
                level = visibility.field_level(self.principal.perms, key, definitions)
            except KeyError:
                continue  # "tags" and unknown custom keys: the action reports those
            if level != visibility.VISIBLE:
                errors[key] = [f"This field is {level} for this key; it cannot be set."]
        email = data.get("email")
        if email is not None and email.strip() and not re.fullmatch(actions.EMAIL_PATTERN,
                                                                    email):
            errors["email"] = ["Enter a valid email address."]
        errors.update(values.custom_value_errors(validated.get("custom", {}), definitions))
        if errors:
            raise exceptions.ValidationError(errors)
        return data


class PeopleView(_PersonWriting):
    """The account's people: list/search (cursor pages) and create."""

    query_params = {"GET": LIST_QUERY}

    def allowed_query(self, request) -> frozenset[str]:
        # custom.<key> filters are checked against the account's fields by
        # filtered_people (unknown → 400, masked → 422).
        custom = {k for k in request.query_params if k.startswith("custom.")}
        return super().allowed_query(request) | custom

    @extend_schema(operation_id="people_list", parameters=_LIST_PARAMETERS,
                   responses=s.PersonPageSerializer,
                   summary="List and search people (cursor pagination, id order)")
    def get(self, request):
        ctx = self.principal
        params = {k: v for k, v in request.query_params.items()
                  if k in SEARCH_PARAMS or k.startswith("custom.")}
        if params.get("archived", "0") not in ("0", "1"):
            raise InvalidQuery("archived must be 0 or 1.")
        limit = render.page_limit(request.query_params.get("limit"))
        definitions = access.field_definitions(ctx.account_id)
        try:
            rows = people_views.filtered_people(ctx, params, definitions)
        except people_views.BadQuery as exc:
            raise InvalidQuery(str(exc)) from None
        except visibility.FieldNotQueryable as exc:
            raise FieldNotQueryable(str(exc)) from None
        if request.query_params.get("cursor"):  # empty: the first page, as the schema says
            rows = rows.filter(pk__gt=render.decode_cursor(request.query_params["cursor"]))
        page = list(rows.order_by("pk")[:limit + 1])
        more = len(page) > limit
        page = page[:limit]
        tags = render.tags_of(page)
        return Response({
            "results": [render.person_json(p, ctx.perms, definitions, tags[p.pk])
                        for p in page],
            "next_cursor": render.encode_cursor(page[-1].pk) if more else None,
        })

    @extend_schema(operation_id="people_create", request=s.PersonWriteSerializer,
                   responses={201: s.PersonSerializer}, summary="Create a person")
    def post(self, request):
        person = actions.do_create_person(self.principal.account, self.person_data(),
                                          actor=self.principal, request=request._request)
        return Response(_people_person(person, self.principal), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/people/{person.pk}"})


class PeopleUpsertView(_PersonWriting):
    """Create or update by external_id, else email (201 created, 200 updated)."""

    @extend_schema(
        operation_id="people_upsert", request=s.PersonUpsertSerializer,
        responses={200: OpenApiResponse(s.PersonSerializer, "Updated an existing person"),
                   201: OpenApiResponse(s.PersonSerializer, "Created a new person")},
        summary="Create or update the person with this external_id (else this email)")
    def post(self, request):
        data = self.person_data()
        if not str(data.get("external_id", "")).strip() and not str(
                data.get("email", "")).strip():
            raise exceptions.ValidationError(
                {"external_id": ["Send external_id or email to match on."]})
        person, created = actions.do_upsert_person(self.principal.account, data,
                                                   actor=self.principal,
                                                   request=request._request)
        return Response(_people_person(person, self.principal),
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PersonView(_PersonWriting):
    """One person: get, change some fields, or erase."""

    @extend_schema(operation_id="people_get", responses=s.PersonSerializer,
                   summary="Get a person")
    def get(self, request, person_id: int):
        return Response(_get_person(self.principal, person_id))

    @extend_schema(operation_id="people_update", request=s.PersonWriteSerializer,
                   responses=s.PersonSerializer,
                   summary="Change some fields of a person (omitted fields are kept)")
    def patch(self, request, person_id: int):
        person = access.access_person(self.principal, person_id, for_write=True)
        person = actions.do_update_person(person, self.person_data(), actor=self.principal,
                                          request=request._request)
        return Response(_people_person(person, self.principal))

    @extend_schema(operation_id="people_erase", request=None,
                   responses={204: OpenApiResponse(description="Erased")},
                   summary="Erase a person and scrub them from the audit log")
    def delete(self, request, person_id: int):
        person = access.access_person(self.principal, person_id, for_write=True)
        actions.do_erase_person(person, actor=self.principal, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonArchiveView(ApiView):
    """Archive a person: hidden from lists, data kept."""

    @extend_schema(operation_id="people_archive", request=None, responses=s.PersonSerializer,
                   summary="Archive a person (hidden from lists; data kept)")
    def post(self, request, person_id: int):
        person = access.access_person(self.principal, person_id, for_write=True)
        person = actions.do_archive_person(person, actor=self.principal,
                                           request=request._request)
        return Response(_people_person(person, self.principal))


@contextlib.contextmanager
def _tags_locked(person):
    """Add/remove is read-modify-write of the tag list: hold the person's row lock from
    the read to the action's write (which locks the same row again), so two concurrent
    requests cannot lose each other's tag. The request owns this transaction."""
    with transaction.atomic():
        Person.objects.select_for_update().filter(pk=person.pk).exists()
        yield


def _tag_names(person) -> list[str]:
    return sorted(PersonTag.objects.filter(person=person).values_list("tag__name", flat=True))


class PersonTagsView(ApiView):
    """A person's tags: list, or add some."""

    @extend_schema(operation_id="people_tags_list", responses=s.TagListSerializer,
                   summary="A person's tags")
    def get(self, request, person_id: int):
        return Response({"tags": _tag_names(access.access_person(self.principal, person_id))})

    @extend_schema(operation_id="people_tags_add", request=s.TagsSerializer,
                   responses=s.TagListSerializer, summary="Add tags to a person")
    def post(self, request, person_id: int):
        person = access.access_person(self.principal, person_id, for_write=True)
        serializer = s.TagsSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        with _tags_locked(person):
            wanted = sorted(set(_tag_names(person)) | set(serializer.validated_data["tags"]))
            actions.do_update_person(person, {"tags": wanted}, actor=self.principal,
                                     request=request._request)
        return Response({"tags": _tag_names(person)})


class PersonTagView(ApiView):
    """Remove one tag from a person."""

    @extend_schema(operation_id="people_tags_remove", request=None,
                   responses={200: s.TagListSerializer}, summary="Remove one tag from a person")
    def delete(self, request, person_id: int, tag: str):
        person = access.access_person(self.principal, person_id, for_write=True)
        name = " ".join(tag.split())
        with _tags_locked(person):
            current = _tag_names(person)
            if name not in current:
                raise exceptions.NotFound("This person does not have that tag.")
            actions.do_update_person(person, {"tags": [t for t in current if t != name]},
                                     actor=self.principal, request=request._request)
        return Response({"tags": _tag_names(person)})


class TagsView(ApiView):
    """The account's tags and how many people carry each."""

    @extend_schema(operation_id="tags_list", responses=s.TagPageSerializer,
                   summary="The account's tags with how many people carry each")
    def get(self, request):
        rows = (Tag.objects.filter(account_id=self.principal.account_id)
                .annotate(people=Count("person_tags")).order_by("name"))
        return Response({"results": [{"name": t.name, "people": t.people} for t in rows]})
