"""gunicorn configuration for the embedded plain-HTTP listener: redirects and refusals only.

The same Django application answers, and HttpsOnlyMiddleware turns every request into a
301 (pages) or a problem+json refusal (API) before any view runs.
"""

from enclave import config as _config
from enclave.logs.pipeline import configure_app_process as _configure_app_process
from enclave.logs.pipeline import logging_dict as _logging_dict
from enclave.server.binding import bind_addresses

_cfg = _config.load()
bind = bind_addresses(_cfg.http_port)
worker_class = "gthread"
workers = 1
threads = 4
timeout = 30
graceful_timeout = 5
accesslog = "-"
# The path (%(U)s), which the redacting filter rids of one-time tokens; never the request
# line %(r)s, the query string %(q)s or the Referer %(f)s (search terms, next= links):
# tests/server/test_gunicorn.py.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms http'
proc_name = "enclave-http"
forwarded_allow_ips = ""
# No runtime control socket: two embedded instances would share its default path.
control_socket_disable = True
# The same redacted JSON logging as Django and Celery (docs/logging.md); printed output of
# the server processes goes through the redaction policy too.
logconfig_dict = _logging_dict(_cfg)
_configure_app_process()
