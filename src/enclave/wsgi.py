"""WSGI entry point. Refuses to serve a database stamped for another environment."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enclave.settings")
application = get_wsgi_application()

from enclave.core.environment import verify_database_environment  # noqa: E402

verify_database_environment()
