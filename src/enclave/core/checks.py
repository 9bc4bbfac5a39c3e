"""System checks for core settings. Ids are stable: enclave.E1xx / enclave.W1xx.

Run ``enclave manage check --deploy --fail-level WARNING`` against production settings.
"""

from __future__ import annotations

import stat

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_debug_off(app_configs=None, **kwargs):
    if settings.DEBUG:
        return [Error("DEBUG is on.", hint="Unset ENCLAVE_DEBUG.", id="enclave.E101")]
    return []


@register(Tags.security, deploy=True)
def check_live_environment(app_configs=None, **kwargs):
    if not settings.CONFIG.is_live:
        return [Warning(
            f"ENCLAVE_ENV is '{settings.CONFIG.env}', not a live environment.",
            hint="Set ENCLAVE_ENV=production (or staging) for a deployment that holds real data.",
            id="enclave.W102",
        )]
    return []


@register(Tags.security, deploy=True)
def check_database_engine(app_configs=None, **kwargs):
    cfg = settings.CONFIG
    if cfg.is_live and cfg.is_sqlite and not cfg.allow_sqlite:
        return [Error("SQLite in a live environment.", hint="Use PostgreSQL.", id="enclave.E103")]
    return []


@register(Tags.security)
def check_secrets_dir(app_configs=None, **kwargs):
    path = settings.CONFIG.secrets_dir
    if not path.exists():
        return []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [Error(
            f"Secrets directory {path} is accessible to group/others (mode {mode:o}).",
            hint=f"chmod 700 {path}", id="enclave.E104",
        )]
    return []


@register(Tags.security, deploy=True)
def check_tls_material(app_configs=None, **kwargs):
    cfg = settings.CONFIG
    if cfg.behind_proxy:
        return []
    missing = [str(p) for p in (cfg.tls_cert, cfg.tls_key) if not p.is_file()]
    if missing:
        return [Error(f"TLS files missing: {', '.join(missing)}.",
                      hint="Set ENCLAVE_TLS_CERT/ENCLAVE_TLS_KEY or ENCLAVE_BEHIND_PROXY=1.",
                      id="enclave.E105")]
    return []


@register(Tags.security, deploy=True)
def check_https_middleware(app_configs=None, **kwargs):
    needed = "enclave.core.middleware.HttpsOnlyMiddleware"
    if needed not in settings.MIDDLEWARE:
        return [Error("HTTPS-only middleware is not installed.", id="enclave.E106")]
    return []


@register(Tags.database)
def check_database_environment(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    from enclave.core.environment import EnvironmentMismatch, verify_database_environment

    try:
        verify_database_environment()
    except EnvironmentMismatch as exc:
        return [Error(str(exc), id="enclave.E107")]
    return []
