"""Django's exception reporter filter, driven by the same redaction policy.

Used for error pages in DEBUG and for any reporter (e-mail, Sentry-like) that formats a
request: sensitive POST fields, headers/META and frame variables are replaced, and every
other string goes through the value detectors.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

from enclave.logs.pipeline import get_policy


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    cleansed_substitute = "[REDACTED]"
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|AUTH|COOKIE|SESSION|CSRF|OTP|CARD|IBAN|DSN",
        flags=re.IGNORECASE)

    def is_active(self, request) -> bool:
        return True  # also in DEBUG: a debug page is still a place secrets leak from

    def cleanse_setting(self, key, value):
        if isinstance(key, str) and get_policy().key_action(key):
            return self.cleansed_substitute
        if key == "QUERY_STRING" and isinstance(value, str):
            return get_policy().redact_query(value)  # parameter by parameter, as logged
        value = super().cleanse_setting(key, value)
        return get_policy().redact(value) if isinstance(value, str | list | dict) else value

    def get_post_parameters(self, request):
        params = super().get_post_parameters(request)
        if not params:
            return params
        cleansed = params.copy()
        policy = get_policy()
        for key in cleansed:
            if policy.key_action(key):
                cleansed[key] = self.cleansed_substitute
            elif hasattr(cleansed, "setlist"):
                cleansed.setlist(key, [policy.redact_text(v) for v in params.getlist(key)])
            else:
                cleansed[key] = policy.redact(cleansed[key])
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        policy = get_policy()
        out = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if policy.key_action(name):
                value = self.cleansed_substitute
            elif isinstance(value, str):
                value = policy.redact_text(value)
            out.append((name, value))
        return out
