"""Identity forms: parsing and length limits only; rules live in actions and validators."""

from __future__ import annotations

from django import forms

from enclave.core.validation import canonical_email

MAX_EMAIL = 254
MAX_PASSWORD = 1024


class CanonicalEmailField(forms.EmailField):
    """An address in canonical form (``core.validation.canonical_email``), validated after
    canonicalizing: "ＪＡＮＥ@example.com" (fullwidth) is "jane@example.com"."""

    def to_python(self, value):
        value = super().to_python(value)
        return canonical_email(value) if value else value


def email_field(**kwargs) -> forms.EmailField:
    return CanonicalEmailField(max_length=MAX_EMAIL, widget=forms.EmailInput(
        attrs={"autocomplete": "username", "maxlength": MAX_EMAIL}), **kwargs)


def password_field(label: str = "Password", autocomplete: str = "current-password",
                   help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label, strip=False, max_length=MAX_PASSWORD, help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete, "maxlength": MAX_PASSWORD}))


CHOOSING_HINT = ("At least 12 characters; spaces and any characters are welcome. Not a "
                 "common password and not built from your email or account name.")


class OwnerForm(forms.Form):
    """First-owner set-up (its template renders the inputs by hand)."""

    email = CanonicalEmailField(max_length=MAX_EMAIL)
    password = forms.CharField(widget=forms.PasswordInput, strip=False, max_length=MAX_PASSWORD)


class LoginForm(forms.Form):
    email = email_field()
    password = password_field()


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Authentication code", max_length=64,
        help_text="The 6-digit code from your authenticator app, or a recovery code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "maxlength": 64}))


class EmailForm(forms.Form):
    email = email_field()


class SignupCompleteForm(forms.Form):
    account_name = forms.CharField(label="Account name", max_length=100,
                                   help_text="Your company or team; you can rename it later.")
    password = password_field("Choose a password", "new-password", CHOOSING_HINT)


class NewPasswordForm(forms.Form):
    new_password = password_field("New password", "new-password", CHOOSING_HINT)


class PasswordChangeForm(forms.Form):
    current_password = password_field("Current password")
    new_password = password_field("New password", "new-password", CHOOSING_HINT)


class ReauthForm(forms.Form):
    password = password_field()
    code = forms.CharField(label="Authentication code", max_length=64, required=False,
                           help_text="Only if you use an authenticator app.",
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "maxlength": 64}))


class AcceptInvitationForm(forms.Form):
    password = password_field("Choose a password", "new-password", CHOOSING_HINT)
