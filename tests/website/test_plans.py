"""Pricing plans: the defaults, a TOML override, and clear errors for a broken file."""

from __future__ import annotations

import pytest

from enclave.config import ConfigError
from enclave.website.plans import DEFAULT_PLANS, Limits, Plan, load_plans

AGENCY = """
[[plan]]
name = "Agency"
price = "$999"
period = "per year"
contacts = 250000
features = ["White label", "Audit export"]

[[plan]]
name = "Starter"
price = "$9"
"""


class TestLoadPlans:
    def test_defaults_are_used_when_no_file_is_configured(self):
        assert load_plans() == DEFAULT_PLANS

    def test_plans_are_read_from_the_configured_file(self, plans_file):
        plans_file.write_text(AGENCY, encoding="utf-8")
        assert load_plans() == (
            Plan("Agency", "$999", "per year", "250000", ("White label", "Audit export")),
            Plan("Starter", "$9", "", "", ()),
        )

    def test_missing_file_error_names_the_setting_and_the_path(self, plans_file):
        with pytest.raises(ConfigError, match="ENCLAVE_PLANS_FILE") as excinfo:
            load_plans()
        assert str(plans_file) in str(excinfo.value)
        assert "cannot read" in str(excinfo.value)

    def test_invalid_toml_is_reported_as_not_valid_toml(self, plans_file):
        plans_file.write_text("[[plan]\nname = ", encoding="utf-8")
        with pytest.raises(ConfigError, match="is not valid TOML"):
            load_plans()

    def test_binary_file_is_reported_as_not_utf8(self, plans_file):
        plans_file.write_bytes(b"\xff\xfe[[plan]]")
        with pytest.raises(ConfigError, match="is not UTF-8 text"):
            load_plans()

    def test_file_without_plan_tables_is_refused(self, plans_file):
        plans_file.write_text('title = "prices"\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"has no \[\[plan\]\] tables"):
            load_plans()

    def test_plan_without_price_names_the_plan_and_the_field(self, plans_file):
        plans_file.write_text(AGENCY + '\n[[plan]]\nname = "Broken"\n', encoding="utf-8")
        with pytest.raises(ConfigError, match="plan 3 has no 'price'"):
            load_plans()

    def test_features_given_as_text_are_refused(self, plans_file):
        plans_file.write_text('[[plan]]\nname = "A"\nprice = "1"\nfeatures = "fast"\n',
                              encoding="utf-8")
        with pytest.raises(ConfigError, match="'features' must be a list of strings"):
            load_plans()

    def test_boolean_contacts_are_refused(self, plans_file):
        plans_file.write_text('[[plan]]\nname = "A"\nprice = "1"\ncontacts = true\n',
                              encoding="utf-8")
        with pytest.raises(ConfigError, match="'contacts' must be text"):
            load_plans()

    def test_key_stripe_price_and_limits_are_read(self, plans_file):
        plans_file.write_text('[[plan]]\nname = "Team Plus"\nprice = "$49"\n'
                              'stripe_price = "price_123"\n[plan.limits]\npeople = 10\n'
                              'members = 3\n', encoding="utf-8")
        (plan,) = load_plans()
        assert (plan.key, plan.stripe_price, plan.limits) == (
            "team-plus", "price_123", Limits(people=10, members=3))

    def test_unknown_limit_is_refused_naming_the_known_ones(self, plans_file):
        plans_file.write_text('[[plan]]\nname = "A"\nprice = "1"\n[plan.limits]\n'
                              'contacts = 5\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"unknown limit 'contacts'.*people"):
            load_plans()

    @pytest.mark.parametrize("value", ["-1", "true", '"ten"', "1.5"])
    def test_limit_that_is_not_a_whole_number_is_refused(self, plans_file, value):
        plans_file.write_text(f'[[plan]]\nname = "A"\nprice = "1"\n[plan.limits]\n'
                              f'people = {value}\n', encoding="utf-8")
        with pytest.raises(ConfigError, match="limit 'people' must be a whole number"):
            load_plans()

    def test_two_plans_selling_the_same_price_are_refused(self, plans_file):
        plans_file.write_text('[[plan]]\nname = "A"\nprice = "1"\nstripe_price = "p_1"\n'
                              '[[plan]]\nname = "B"\nprice = "2"\nstripe_price = "p_1"\n',
                              encoding="utf-8")
        with pytest.raises(ConfigError, match="two plans have the same 'stripe_price'"):
            load_plans()


class TestPlansSystemCheck:
    def test_broken_plans_file_fails_system_check_e201(self, settings, tmp_path):
        import dataclasses

        from enclave.website.checks import check_plans_file

        broken = tmp_path / "plans.toml"
        broken.write_text("[[plan]]\nname = 'x'\n")
        settings.CONFIG = dataclasses.replace(settings.CONFIG, plans_file=broken)
        assert [e.id for e in check_plans_file()] == ["enclave.E201"]

    def test_default_plans_pass_system_check(self):
        from enclave.website.checks import check_plans_file

        assert check_plans_file() == []
