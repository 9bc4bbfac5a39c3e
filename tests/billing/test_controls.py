"""PCI-1: card numbers never reach Enclave — checked on the running deployment."""

from __future__ import annotations

import pytest

from enclave.billing import controls
from enclave.core.controls import FAIL, PASS, Probe, registry
from enclave.people.models import Person

# Card-brand test numbers (Luhn-valid), the forms people type them in.
VISA = "4242 4242 4242 4242"
AMEX = "378282246310005"


def _check():
    return registry()["PCI-1"].check(Probe.from_settings())


@pytest.mark.django_db
class TestPci1:
    def test_passes_on_a_deployment_without_card_data(self):
        outcome = _check()
        assert outcome.status == PASS, outcome.evidence
        assert "no card number" in outcome.evidence

    def test_card_number_in_a_persons_field_fails_naming_the_column_not_the_number(self):
        from enclave.accounts.models import Account

        account = Account.objects.create(name="Shop")
        Person.objects.create(account=account, email="buyer@example.com",
                              company=f"card {VISA}")
        outcome = _check()
        assert outcome.status == FAIL
        assert "people_person.company" in outcome.evidence
        assert "4242" not in outcome.evidence

    def test_card_number_in_json_properties_fails(self):
        from enclave.accounts.models import Account
        from enclave.core import clock
        from enclave.events.models import Event

        account = Account.objects.create(name="Shop")
        Event.objects.create(account=account, type="track", name="Paid",
                             properties={"card": AMEX}, occurred_at=clock.now(),
                             received_at=clock.now())
        assert _check().status == FAIL

    def test_card_field_in_a_template_fails(self, tmp_path, monkeypatch):
        page = tmp_path / "shop" / "templates" / "shop" / "pay.html"
        page.parent.mkdir(parents=True)
        page.write_text('<form><input name="card_number" autocomplete="cc-number"></form>')
        monkeypatch.setattr(controls, "TEMPLATE_ROOT", tmp_path)
        outcome = _check()
        assert outcome.status == FAIL
        assert "card fields in shop/templates/shop/pay.html" in outcome.evidence

    def test_csp_allowing_forms_to_post_elsewhere_fails(self, monkeypatch):
        from enclave.core import headers

        real = headers.csp_value
        monkeypatch.setattr(headers, "csp_value", lambda nonce: real(nonce).replace(
            "form-action 'self'", "form-action 'self' https://pay.example"))
        outcome = _check()
        assert outcome.status == FAIL
        assert "form-action" in outcome.evidence


class TestCardNumbers:
    @pytest.mark.parametrize("text", [VISA, AMEX, "5555-5555-5555-4444", "n=4000056655665556"])
    def test_card_numbers_are_found(self, text):
        assert controls.has_card_number(text)

    @pytest.mark.parametrize("text", [
        "1733650000000",  # a millisecond timestamp
        "4242 4242 4242 4241",  # fails Luhn
        "+44 20 7946 0123",  # a phone number
        "order-4242424242424242",  # glued to a word: an id, not a card
        "9999999999999995",  # Luhn-valid, but no card brand's prefix
    ])
    def test_other_digit_runs_are_not_card_numbers(self, text):
        assert not controls.has_card_number(text)
