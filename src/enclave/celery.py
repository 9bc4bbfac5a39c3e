"""``celery -A enclave`` looks for ``enclave.celery.app``: the one Celery application, which
lives in ``enclave.core.jobs``."""

from enclave.core.jobs import app

__all__ = ["app"]
