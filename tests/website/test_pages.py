"""Landing, pricing and /security as a visitor's browser receives them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils.html import escape

from enclave.core.controls import registry
from enclave.core.models import ControlResult
from enclave.website.plans import DEFAULT_PLANS
from tests.website.pages import table_rows

CHECKED_AT = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
EVIDENCE_MARKER = "EVIDENCE-MARKER-7f3a9c internal host db-1.internal:5432"


def store_result(control_id: str, status: str, evidence: str = "ok") -> None:
    ControlResult.objects.update_or_create(
        control_id=control_id,
        defaults={"status": status, "evidence": evidence, "public_summary": "summary",
                  "checked_at": CHECKED_AT},
    )


class TestLandingPage:
    def test_landing_page_shows_the_headline(self, client):
        response = client.get("/")
        assert response.status_code == 200
        assert b"<h1" in response.content
        assert "security that is built in" in response.text

    def test_landing_page_links_to_pricing_and_the_security_report(self, client):
        response = client.get("/")
        assert 'href="/pricing"' in response.text
        assert 'href="/security"' in response.text

    def test_landing_page_refuses_post(self, client):
        response = client.post("/")
        assert response.status_code == 405


class TestPricingPage:
    def test_pricing_page_lists_the_default_plans(self, client):
        response = client.get("/pricing")
        assert response.status_code == 200
        for plan in DEFAULT_PLANS:
            assert escape(plan.name) in response.text
            assert escape(plan.price) in response.text
            for feature in plan.features:
                assert escape(feature) in response.text

    def test_pricing_page_lists_plans_from_the_plans_file(self, client, plans_file):
        plans_file.write_text(
            '[[plan]]\nname = "Agency"\nprice = "$999"\nfeatures = ["White label"]\n',
            encoding="utf-8",
        )
        response = client.get("/pricing")
        assert response.status_code == 200
        assert "Agency" in response.text
        assert "White label" in response.text
        assert "Business" not in response.text

    def test_plan_names_from_the_file_are_escaped(self, client, plans_file):
        plans_file.write_text('[[plan]]\nname = "<b>Bold</b>"\nprice = "1"\n', encoding="utf-8")
        response = client.get("/pricing")
        assert "<b>Bold</b>" not in response.text
        assert "&lt;b&gt;Bold&lt;/b&gt;" in response.text

    def test_broken_plans_file_gives_a_server_error_page_without_internals(
        self, client, plans_file,
    ):
        plans_file.write_text("not toml at all [", encoding="utf-8")
        client.raise_request_exception = False
        response = client.get("/pricing")
        assert response.status_code == 500
        assert "Server error" in response.text
        assert str(plans_file) not in response.text
        assert "Traceback" not in response.text

    def test_broken_plans_file_is_logged_naming_the_setting_and_file(
        self, client, plans_file, capsys,
    ):
        plans_file.write_text("not toml at all [", encoding="utf-8")
        client.raise_request_exception = False
        client.get("/pricing")
        logged = capsys.readouterr().err
        assert "ENCLAVE_PLANS_FILE: " in logged
        assert "plans.toml is not valid TOML" in logged


@pytest.mark.django_db
class TestSecurityPage:
    def test_every_registered_control_is_listed_with_its_public_wording(
        self, client, test_control,
    ):
        rows = table_rows(client.get("/security").text)
        for ctrl in registry().values():
            assert rows[ctrl.id][1] == " ".join(ctrl.public.split())

    def test_control_never_checked_reads_not_checked_yet(self, client, test_control):
        rows = table_rows(client.get("/security").text)
        assert rows[test_control.id][2:] == ["Not checked yet", "—"]

    def test_stored_result_shows_status_and_check_time(self, client, test_control):
        store_result(test_control.id, "fail")
        rows = table_rows(client.get("/security").text)
        assert rows[test_control.id][2:] == ["Failing", "2026-03-04 05:06"]

    def test_passing_result_reads_passing(self, client, test_control):
        store_result(test_control.id, "pass")
        rows = table_rows(client.get("/security").text)
        assert rows[test_control.id][2] == "Passing"

    def test_unknown_stored_status_reads_as_failing(self, client, test_control):
        store_result(test_control.id, "weird")
        rows = table_rows(client.get("/security").text)
        assert rows[test_control.id][2] == "Failing"

    def test_internal_evidence_is_never_shown(self, client, test_control):
        statuses = ("fail", "pass", "n/a")
        for number, ctrl_id in enumerate(registry()):
            store_result(ctrl_id, statuses[number % 3], evidence=EVIDENCE_MARKER)
        text = client.get("/security").text
        # Positive control: the stored results are on the page (statuses, not evidence).
        shown = {"fail": "Failing", "pass": "Passing", "n/a": "Not applicable"}
        rows = table_rows(text)
        assert {c: rows[c][2] for c in registry()} == {
            c: shown[statuses[n % 3]] for n, c in enumerate(registry())}
        assert "EVIDENCE-MARKER" not in text
        assert "db-1.internal" not in text

    def test_internal_claim_wording_is_never_shown(self, client, test_control):
        text = client.get("/security").text
        assert "Test promise shown to visitors" in text  # the control's public wording
        assert "secret-path" not in text

    def test_summary_says_all_pass_when_every_control_passes(self, client, test_control):
        for ctrl_id in registry():
            store_result(ctrl_id, "pass")
        text = client.get("/security").text
        assert f"All {len(registry())} controls pass." in text
        assert "Last checked" in text

    def test_summary_flags_attention_when_one_control_fails(self, client, test_control):
        for ctrl_id in registry():
            store_result(ctrl_id, "pass")
        store_result(test_control.id, "fail")
        assert f"1 of {len(registry())} controls failing." in client.get("/security").text

    def test_summary_counts_controls_not_checked_yet(self, client, test_control):
        for ctrl_id in registry():
            if ctrl_id != test_control.id:
                store_result(ctrl_id, "pass")
        text = client.get("/security").text
        assert "1 not checked yet." in text
        assert "controls pass" not in text

    def test_page_says_not_checked_yet_before_the_first_run(self, client, test_control):
        assert "Not checked yet; the first check runs" in client.get("/security").text


@pytest.mark.django_db
class TestPageMarkup:
    """Accessibility and CSP hygiene that every public page shares."""

    PAGES = ("/", "/pricing", "/security", "/problems/not-found", "/no-such-page")
    STATUS = {"/no-such-page": 404}  # the others: 200

    def page(self, client, path) -> str:
        response = client.get(path)
        assert response.status_code == self.STATUS.get(path, 200)
        return response.text

    @pytest.mark.parametrize("path", PAGES)
    def test_page_declares_english_and_has_exactly_one_h1(self, client, path):
        text = self.page(client, path)
        assert '<html lang="en">' in text
        assert len(re.findall(r"<h1[ >]", text)) == 1

    @pytest.mark.parametrize("path", PAGES)
    def test_page_has_no_inline_script_or_style(self, client, path):
        text = self.page(client, path).lower()
        assert "<script" not in text
        assert "<style" not in text
        assert " style=" not in text
        assert re.search(r" on[a-z]+=", text) is None

    @pytest.mark.parametrize("path", PAGES)
    def test_page_starts_with_a_skip_link_to_main(self, client, path):
        text = client.get(path).text
        assert '<a class="skip" href="#main">' in text
        assert '<main id="main"' in text

    def test_current_section_is_marked_in_the_navigation(self, client):
        text = client.get("/pricing").text
        assert 'href="/pricing" aria-current="page"' in text
        assert 'href="/security" aria-current' not in text
