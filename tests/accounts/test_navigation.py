"""The web app's one navigation (access.navigation): every item opens a registered page
that asks exactly its permission, and each role sees exactly the areas it may open."""

from __future__ import annotations

import re

import pytest
from django.urls import resolve

from enclave.access import endpoints
from enclave.access.navigation import AREAS
from enclave.access.permissions import ROLE_PERMISSIONS
from tests.people.world import ROLES, World


@pytest.fixture
def world(db) -> World:
    return World()


class TestAreas:
    @pytest.mark.parametrize("area", AREAS, ids=lambda a: a.label)
    def test_each_area_opens_its_registered_page_with_its_permission(self, area):
        assert resolve(area.path).url_name == area.endpoint
        entry = endpoints.lookup(area.endpoint, "GET")
        assert entry is not None
        assert entry.permission == area.permission


def _menu(html: str) -> list[str]:
    nav = re.search(r'<nav class="app-nav" aria-label="App">(.*?)</nav>', html, re.S)
    return re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav[1]) if nav else []


@pytest.mark.django_db
class TestMenuByRole:
    @pytest.mark.parametrize("role", ROLES)
    def test_every_app_page_shows_the_areas_the_role_may_open(self, world, role):
        expected = [a.label for a in AREAS
                    if a.permission is None or a.permission in ROLE_PERMISSIONS[role]]
        client = world.client(role)
        for path in ("/app/", "/app/people/", "/app/topics/"):
            assert _menu(client.get(path).text) == expected, path

    def test_the_current_area_is_marked(self, world):
        html = world.client("owner").get("/app/segments/").text
        assert '<a href="/app/segments/" aria-current="page">Segments</a>' in html

    def test_public_pages_show_no_app_menu(self, world):
        assert _menu(world.client("owner").get("/pricing").text) == []
