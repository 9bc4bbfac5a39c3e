"""Environment identity: the database is stamped with ENCLAVE_ENV at first migrate.

A process refuses to run against a database stamped for another environment. That makes
"production is sandboxed from test environments" a property of the code, not a habit.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import DatabaseError, transaction

from enclave.core import audit
from enclave.core.errors import EnvironmentMismatch
from enclave.core.models import AuditEventType, DeploymentStamp

__all__ = ["EnvironmentMismatch", "do_stamp_environment", "verify_database_environment"]


def current_stamp() -> DeploymentStamp | None:
    try:
        return DeploymentStamp.objects.order_by("id").first()
    except DatabaseError:
        return None  # not migrated yet


def do_stamp_environment(*, actor=None) -> DeploymentStamp:
    """Stamp the database with this process's environment if it has no stamp yet."""
    with transaction.atomic():
        stamp = DeploymentStamp.objects.select_for_update().order_by("id").first()
        if stamp is not None:
            return stamp
        stamp = DeploymentStamp.objects.create(
            environment=settings.ENCLAVE_ENV, instance_id=secrets.token_hex(8)
        )
        audit.record(AuditEventType.ENVIRONMENT_STAMPED, actor=actor, target_type="deployment",
                     target_id=stamp.instance_id, extra={"environment": stamp.environment})
        return stamp


def stamp_after_migrate(sender, using="default", **kwargs) -> None:
    if using == "default":
        do_stamp_environment()
        verify_database_environment()


def verify_database_environment() -> DeploymentStamp | None:
    """Raise :class:`EnvironmentMismatch` if the database is stamped for another environment.

    Returns the stamp, or None when the database is not migrated yet.
    """
    stamp = current_stamp()
    if stamp is not None and stamp.environment != settings.ENCLAVE_ENV:
        raise EnvironmentMismatch(
            f"ENCLAVE_ENV: this process is '{settings.ENCLAVE_ENV}' but the database is "
            f"stamped '{stamp.environment}'; refusing to start"
        )
    return stamp
