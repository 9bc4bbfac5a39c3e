"""gunicorn configuration for the embedded HTTPS listener (``enclave serve``).

Read by gunicorn via ``-c python:enclave.server.gunicorn_https``. Values come from
:mod:`enclave.config`; the SSL context is Enclave's, not gunicorn's default.
"""

from enclave import config as _config
from enclave.logs.pipeline import configure_app_process as _configure_app_process
from enclave.logs.pipeline import logging_dict as _logging_dict
from enclave.server import tls as _tls
from enclave.server.binding import bind_addresses

_cfg = _config.load()
bind = bind_addresses(_cfg.https_port)
certfile = str(_cfg.tls_cert)
keyfile = str(_cfg.tls_key)
worker_class = "gthread"
workers = 2
threads = 4
timeout = 60
graceful_timeout = 10
accesslog = "-"
# The path (%(U)s), which the redacting filter rids of one-time tokens; never the request
# line %(r)s, the query string %(q)s or the Referer %(f)s (search terms, next= links):
# tests/server/test_gunicorn.py.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
proc_name = "enclave-https"
limit_request_field_size = 8190
forwarded_allow_ips = ""
# No runtime control socket: two embedded instances would share its default path.
control_socket_disable = True
# The same redacted JSON logging as Django and Celery (docs/logging.md); printed output of
# the server processes goes through the redaction policy too.
logconfig_dict = _logging_dict(_cfg)
_configure_app_process()
_context = None


def ssl_context(conf, default_ssl_context_factory):
    """One context per worker process with Enclave's policy (gunicorn calls this per socket)."""
    global _context
    if _context is None:
        _context = _tls.server_context(conf.certfile, conf.keyfile)
    return _context
