"""Account forms: parsing and length limits only; rules live in actions."""

from __future__ import annotations

from django import forms

from enclave.accounts.models import IDLE_TIMEOUT_MAX, IDLE_TIMEOUT_MIN, ROLES
from enclave.identity.forms import MAX_EMAIL, CanonicalEmailField


class InviteForm(forms.Form):
    email = CanonicalEmailField(max_length=MAX_EMAIL, label="Email",
                                widget=forms.EmailInput(attrs={"maxlength": MAX_EMAIL}))
    role = forms.ChoiceField(choices=[(r, r.capitalize()) for r in ROLES], initial="user")


class AccountSecurityForm(forms.Form):
    idle_timeout_minutes = forms.IntegerField(
        label="Sign members out after this many idle minutes", min_value=IDLE_TIMEOUT_MIN,
        max_value=IDLE_TIMEOUT_MAX, help_text="Between 5 minutes and 12 hours (720).")
    require_mfa = forms.BooleanField(label="Require MFA for every member", required=False)
