"""POL-1: the security policies are data — present, approved, reviewed every 12 months."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import pytest
from django.conf import settings as django_settings

from enclave.compliance import policies
from enclave.config import PROJECT_ROOT
from enclave.core import clock
from enclave.core.controls import FAIL, PASS, Probe, registry

SHIPPED = PROJECT_ROOT / "docs" / "policies"


def _check():
    return registry()["POL-1"].check(Probe.from_settings())


@pytest.fixture
def policy_dir(tmp_path, settings):
    """A copy of the shipped policies, configured as the deployment's."""
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED, target)
    settings.CONFIG = dataclasses.replace(django_settings.CONFIG, policies_dir=target)
    return target


def _set(path, **fields) -> None:
    text = path.read_text(encoding="utf-8")
    for name, value in fields.items():
        lines = [f"{name} = {value}" if line.startswith(f"{name} = ") else line
                 for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")


class TestShippedPolicies:
    @pytest.mark.parametrize("key", policies.REQUIRED)
    def test_every_required_policy_is_shipped_with_valid_front_matter(self, key):
        policy = policies.read(SHIPPED / f"{key}.md")
        assert policy.review_by - policy.approved_on <= policies.MAX_REVIEW_INTERVAL

    def test_control_passes_on_the_shipped_policies(self):
        outcome = _check()
        assert outcome.status == PASS, outcome.evidence
        assert "8 policies approved" in outcome.evidence


class TestPol1:
    def test_missing_policy_fails_naming_it(self, policy_dir):
        (policy_dir / "vendors.md").unlink()
        outcome = _check()
        assert (outcome.status, outcome.evidence) == (FAIL, "vendors: missing")

    def test_policy_not_reviewed_for_over_a_year_fails(self, policy_dir):
        with clock.travel(dt.timedelta(days=400)):
            outcome = _check()
        assert outcome.status == FAIL
        assert "backup: last reviewed 2026-12-08, over 12 months ago" in outcome.evidence

    def test_review_date_passed_fails(self, policy_dir):
        today = clock.now().date()
        _set(policy_dir / "logging.md", approved_on=today - dt.timedelta(days=40),
             review_by=today - dt.timedelta(days=1))
        outcome = _check()
        assert outcome.evidence == f"logging: review was due by {today - dt.timedelta(days=1)}"

    def test_next_review_over_a_year_ahead_fails(self, policy_dir):
        today = clock.now().date()
        _set(policy_dir / "backup.md", approved_on=today, review_by=today.replace(
            year=today.year + 2))
        assert "next review" in _check().evidence

    def test_front_matter_without_approval_fails(self, policy_dir):
        path = policy_dir / "access-control.md"
        path.write_text(path.read_text().replace('approved_by = "Enclave maintainers"\n', ""))
        assert _check().evidence == "access-control.md: front matter lacks approved_by"

    @pytest.mark.parametrize(("content", "why"), [
        ("# No front matter\n", "no +++ front matter"),
        ("+++\ntitle = \n+++\n", "front matter is not TOML"),
        ('+++\ntitle = "T"\nowner = "O"\nversion = "1"\napproved_by = "A"\n'
         'approved_on = "yesterday"\nreview_by = 2027-01-01\n+++\n',
         "approved_on must be a date"),
    ])
    def test_unreadable_policy_fails_saying_why(self, policy_dir, content, why):
        (policy_dir / "backup.md").write_text(content)
        outcome = _check()
        assert outcome.status == FAIL
        assert why in outcome.evidence
