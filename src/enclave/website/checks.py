"""System checks for the public website. Ids: enclave.E2xx."""

from __future__ import annotations

from django.core.checks import Error, register

from enclave.config import ConfigError


@register()
def check_plans_file(app_configs=None, **kwargs):
    """A broken ENCLAVE_PLANS_FILE stops `enclave serve` instead of breaking /pricing."""
    from enclave.website.plans import load_plans

    try:
        load_plans()
    except ConfigError as exc:
        return [Error(str(exc), id="enclave.E201")]
    return []
