"""Keyring system checks (``enclave.E6xx``). ``enclave serve`` runs checks before it starts,
so an unsafe KEK location or missing live KEK stops it with one line per problem."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from enclave.keys import services
from enclave.keys.errors import KekConfigError


@checks.register(checks.Tags.security)
def check_file_kek(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """enclave.E601: file KEKs must be outside data and code, private, and present when live."""
    cfg = settings.CONFIG
    if cfg.kek_provider != "file":
        return []
    provider = services.FileKekProvider(cfg.secrets_dir, data_dir=cfg.data_dir,
                                        create=not cfg.is_live, env=cfg.env)
    try:
        services.check_secret_location(cfg.secrets_dir / "kek-1.key", data_dir=cfg.data_dir,
                                       what="KEK file")
        for path in provider.kek_files():
            services.check_secret_permissions(path, what="KEK file")
        if cfg.is_live and not provider.kek_files():
            provider.current_kek_id()  # raises the "never created implicitly" error
    except KekConfigError as exc:
        return [checks.Error(str(exc), id="enclave.E601")]
    return []
