"""The one canonical form of an email address, and address validation."""

from __future__ import annotations

import sys

import pytest
from django.core.exceptions import ValidationError

from enclave.core.validation import canonical_email, clean_email


class TestCanonicalEmail:
    @pytest.mark.parametrize(("typed", "canonical"), [
        ("ALICE@EXAMPLE.COM", "alice@example.com"),
        ("  Alice@Example.com  ", "alice@example.com"),
        ("ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ", "alice@example.com"),  # fullwidth
        ("STRAßE@example.com", "strasse@example.com"),
        ("STRAẞE@example.com", "strasse@example.com"),  # capital sharp s
        ("ſtrasse@example.com", "strasse@example.com"),  # long s
        ("\u212aelvin@example.com", "kelvin@example.com"),  # Kelvin sign
        ("ﬁnance@example.com", "finance@example.com"),  # ligature
        ("jane@ÉXAMPLE.com", "jane@éxample.com"),
        ("jane@E\u0301XAMPLE.com", "jane@éxample.com"),  # combining accent composed
    ])
    def test_variants_fold_to_one_form(self, typed, canonical):
        assert canonical_email(typed) == canonical

    @pytest.mark.parametrize(("a", "b"), [
        ("alice@example.com", "ALİCE@example.com"),  # dotted capital I: i + combining dot
        ("alice@example.com", "alıce@example.com"),  # dotless i
        ("jane@example.com", "jаne@example.com"),  # Cyrillic а
    ])
    def test_different_letters_stay_different(self, a, b):
        assert canonical_email(a) != canonical_email(b)

    def test_canonical_form_is_stable_for_every_code_point(self):
        unstable = [hex(cp) for cp in range(sys.maxunicode + 1)
                    if not 0xD800 <= cp <= 0xDFFF
                    and canonical_email(canonical_email(chr(cp))) != canonical_email(chr(cp))]
        assert unstable == []


class TestCleanEmail:
    def test_fullwidth_address_is_valid_once_canonical(self):
        assert clean_email("ＪＡＮＥ@example.com") == "jane@example.com"

    def test_address_with_a_combining_mark_in_the_local_part_is_refused(self):
        with pytest.raises(ValidationError, match="Enter a valid email address"):
            clean_email("ALİCE@example.com")

    def test_overlong_address_is_refused(self):
        with pytest.raises(ValidationError, match="at most 254 characters"):
            clean_email("a" * 250 + "@example.com")
