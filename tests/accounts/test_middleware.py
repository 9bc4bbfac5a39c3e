"""The endpoint registry's web enforcement (accounts.middleware.EndpointMiddleware)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import clear_url_caches, path
from django.views.generic import RedirectView

import enclave.urls


@pytest.fixture
def project_route_without_entry(monkeypatch):
    """The project's own URLconf gains a route to a third-party view that has no entry
    in access/endpoints.py (as a careless change might add one)."""
    route = path("unlisted/", RedirectView.as_view(url="/app/people/"), name="unlisted")
    monkeypatch.setattr(enclave.urls, "urlpatterns", [*enclave.urls.urlpatterns, route])
    clear_url_caches()
    yield "/unlisted/"
    monkeypatch.undo()
    clear_url_caches()


class TestUnlistedRoutes:
    def test_a_third_party_view_on_a_project_route_without_an_entry_is_refused(
            self, client, project_route_without_entry):
        with pytest.raises(ImproperlyConfigured, match=r"no entry in access\.endpoints"):
            client.get(project_route_without_entry)
