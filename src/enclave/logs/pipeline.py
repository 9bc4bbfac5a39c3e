"""The logging pipeline: structured JSON records, redacted once, written everywhere.

Every record — structlog or stdlib (Django, gunicorn, Celery, warnings) — becomes one JSON
line ``{"ts", "level", "logger", "kind", "event", ...}``, where ``kind`` is ``access``,
``security``, ``task`` or ``app``. Redaction (:mod:`enclave.logs.policy`) is applied

* by :func:`redact_processor` in structlog's chain (it marks the event as redacted), and
* by :class:`RedactingFilter`, installed on *every* handler, which redacts stdlib records
  (message, arguments, exception and stack text) and checks structlog's mark.

Handlers: the console (stderr, JSON), the encrypted store (:class:`StoreHandler`) and,
with ``ENCLAVE_LOG_SYSLOG=host:port``, the operator's aggregator (syslog over UDP). The
app processes (gunicorn, the Celery worker) also get a redacting ``sys.stdout``/``stderr``
(:func:`install_std_streams`), so anything printed is covered too.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
import threading
import time
import traceback
import weakref
from pathlib import Path

import structlog

from enclave.config import Config
from enclave.core import clock
from enclave.logs import policy as policy_module

# Loggers that are configured explicitly (all with the same redacting handlers).
LOGGERS = ("django", "django.request", "django.security", "django.server", "gunicorn.error",
           "gunicorn.access", "celery", "celery.task", "py.warnings", "enclave")
ACCESS_LOGGER = "enclave.access"
SECURITY_LOGGER = "enclave.security"

_REDACTED = object()  # structlog's mark: "this event dict went through the policy"
# Fields the pipeline writes itself (clock, level, logger name, ids): not redacted.
_OWN_KEYS = frozenset({"ts", "level", "logger", "kind", "pid", "trace_id", "duration_ms",
                       "status", "task_id"})
_FILTERED_KEYS = _OWN_KEYS | {"event", "exception"}
_FILTERED_AND_PRIVATE = _FILTERED_KEYS | {"_record", "_from_structlog", "_redacted"}
_SCALARS = (int, float)  # and bool, a subclass of int: never redacted

_policy: policy_module.Policy | None = None
_policy_lock = threading.Lock()


def _keyed_hasher(value: str) -> str:
    from enclave.logs.services import get_log_keys

    keys = get_log_keys()
    if keys.available():
        return keys.mac(("pseudonym|" + value).encode()).partition(":")[2]
    return policy_module._local_hasher(value)


def load_policy(cfg: Config) -> policy_module.Policy:
    """Build (fail closed) and install the process-wide policy from configuration."""
    global _policy
    built = policy_module.load(cfg.log_redaction, cfg.log_policy_file, _keyed_hasher)
    with _policy_lock:
        _policy = built
    return built


def get_policy() -> policy_module.Policy:
    global _policy
    if _policy is None:
        with _policy_lock:
            if _policy is None:
                _policy = policy_module.load(hasher=_keyed_hasher)
    return _policy


# ---------------------------------------------------------------------------------------
# structlog processors
# ---------------------------------------------------------------------------------------
def kind_of(logger_name: str) -> str:
    if logger_name in (ACCESS_LOGGER, "gunicorn.access"):
        return "access"
    if logger_name.startswith((SECURITY_LOGGER, "django.security")):
        return "security"
    if logger_name.startswith(("celery", "enclave.task")):
        return "task"
    return "app"


def add_meta(logger, method_name: str, event_dict: dict) -> dict:
    """ts (from the one clock), level, logger, kind and pid."""
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None) or "app"
    event_dict.setdefault("ts", clock.now().isoformat())
    event_dict.setdefault("level", "warning" if method_name == "warn" else method_name)
    event_dict.setdefault("logger", name)
    event_dict.setdefault("kind", kind_of(name))
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def add_redacted_exception(logger, method_name: str, event_dict: dict) -> dict:
    """Foreign records: the filter left the redacted exception/stack text on the record."""
    record = event_dict.get("_record")
    text = record.__dict__.get("enclave_exception") if record is not None else None
    if text:
        event_dict["exception"] = text
    event_dict.pop("exc_info", None)
    event_dict.pop("stack_info", None)
    return event_dict


def redact_processor(logger, method_name: str, event_dict: dict) -> dict:
    """Redact every value except the pipeline's own fields; mark the dict as redacted.

    For stdlib records the filter already redacted the message and exception text, so
    only the other fields (context variables) are redacted here.
    """
    if event_dict.get("_redacted") is _REDACTED:
        return event_dict
    record = event_dict.get("_record")
    if getattr(record, "enclave_redacted", False):
        if event_dict.keys() <= _FILTERED_AND_PRIVATE:  # nothing left to redact
            event_dict["_redacted"] = _REDACTED
            return event_dict
        done = _FILTERED_KEYS
    else:
        done = _OWN_KEYS
    pol = get_policy()
    removed = []
    # In place (structlog hands every processor its own copy of the event dict): values
    # are replaced while iterating, removed keys are deleted afterwards.
    for key, value in event_dict.items():
        if key in done or key[:1] == "_" or value is None or isinstance(value, _SCALARS):
            continue
        found = pol.key_action(key) if key not in ("event", "exception") else None
        if found is None:
            event_dict[key] = pol.redact(value)
        elif found[1] != "remove":
            event_dict[key] = pol.apply_action(found[0], found[1],
                                                 policy_module.safe_str(value))
        else:
            removed.append(key)
    for key in removed:
        del event_dict[key]
    event_dict["_redacted"] = _REDACTED
    return event_dict


def drop_private(logger, method_name: str, event_dict: dict) -> dict:
    for key in ("_redacted", "_record", "_from_structlog"):
        event_dict.pop(key, None)
    return event_dict


def _shared_chain() -> list:
    return [structlog.contextvars.merge_contextvars, add_meta]


def configure_structlog() -> None:
    """structlog → stdlib logging (so every record meets the same handlers and filter)."""
    structlog.configure(
        processors=[
            *_shared_chain(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_processor,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def json_formatter() -> logging.Formatter:
    """The one formatter: a JSON object per line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_chain(), add_redacted_exception],
        processors=[redact_processor, drop_private,
                    structlog.processors.JSONRenderer(default=str)],
    )


# ---------------------------------------------------------------------------------------
# The filter installed on every handler
# ---------------------------------------------------------------------------------------
class RedactingFilter(logging.Filter):
    """Redacts a stdlib record in place (message, args, exception, stack). Never drops."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if attrs.get("enclave_redacted", False):
            return True
        msg = record.msg
        if isinstance(msg, dict) and msg.get("_redacted") is _REDACTED:
            record.enclave_redacted = True
            return True
        pol = get_policy()
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — a bad %-format must not leak raw args either.
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = pol.redact(msg) if isinstance(msg, dict) else pol.redact_text(message)
        record.args = ()
        parts = []
        if record.exc_info:
            parts.append(self._formatter.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        if parts:
            record.enclave_exception = pol.redact_text("\n".join(parts))
        if "request" in attrs:  # Django attaches the request; its repr holds headers.
            record.request = None
        record.enclave_redacted = True
        return True


def has_redaction(handler: logging.Handler) -> bool:
    return any(isinstance(f, RedactingFilter) for f in handler.filters)


# ---------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------
class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so redirection and capture work)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_store_handlers: weakref.WeakSet = weakref.WeakSet()


class StoreHandler(logging.Handler):
    """Buffers formatted (redacted) lines and appends them to the encrypted store.

    A frame is written when 64 records are pending, when the oldest pending record is a
    second old (checked on each record), on ERROR and above, at the end of every request
    and Celery task (:func:`flush_stores`), and at process exit. Until the keyring is
    usable in this process (before Django is ready) records wait in memory (bounded).
    """

    MAX_PENDING = 10_000

    def __init__(self, directory: str, roll_seconds: int = 3600, max_bytes: int = 8 << 20,
                 batch_records: int = 64, batch_seconds: float = 1.0, keys=None) -> None:
        super().__init__()
        from enclave.logs.services import get_log_keys
        from enclave.logs.store import LogStore

        self.store = LogStore(Path(directory), keys or get_log_keys(),
                              roll_seconds=roll_seconds, max_bytes=max_bytes)
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.pending: list[str] = []
        self.dropped = 0
        self.last_error: str | None = None
        self._oldest = 0.0
        self._flushing = False
        _store_handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 — logging never raises into the application.
            self.handleError(record)
            return
        now = time.monotonic()
        if not self.pending:
            self._oldest = now
        self.pending.append(line)
        if len(self.pending) > self.MAX_PENDING:
            del self.pending[0]
            self.dropped += 1
        if (len(self.pending) >= self.batch_records or record.levelno >= logging.ERROR
                or now - self._oldest >= self.batch_seconds):
            self._write()

    def flush(self) -> None:
        with self.lock:
            self._write()

    def _write(self) -> None:
        if not self.pending or self._flushing or not self.store.keys.available():
            return
        self._flushing = True  # records logged while writing (the keyring) wait
        batch, self.pending = self.pending, []
        try:
            self.store.append(batch)
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 — keep the records; try again next time.
            self.pending[:0] = batch[-self.MAX_PENDING:]
            self.last_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._flushing = False

    def reset_after_fork(self) -> None:
        # The parent writes what it had pending; the child must not write it twice.
        self.pending = []
        self.store._tail = None
        self.store._header = None
        self.store._head_seen = None


def flush_stores() -> None:
    """Write every store handler's pending records now (end of a request or task)."""
    for handler in list(_store_handlers):
        handler.flush()


def _after_fork_in_child() -> None:
    for handler in list(_store_handlers):
        handler.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class JsonSysLogHandler(logging.handlers.SysLogHandler):
    """Syslog (UDP) to the operator's aggregator; the same redacted JSON line."""

    append_nul = False


# ---------------------------------------------------------------------------------------
# stdout / stderr of the app processes
# ---------------------------------------------------------------------------------------
class RedactingStream(io.TextIOBase):
    """A text stream that redacts what passes through it, line by line.

    Text is held until a newline (so ``print(a, b)``'s separate writes are seen whole);
    an open PEM block is held until its END line (64 KiB at most).
    """

    HOLD_LIMIT = 64 * 1024

    def __init__(self, inner) -> None:
        self.inner = inner
        self._buffer = ""
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            cut = self._buffer.rfind("\n")
            if cut < 0 and len(self._buffer) < self.HOLD_LIMIT:
                return len(text)
            if cut < 0:
                cut = len(self._buffer) - 1
            ready = self._buffer[:cut + 1]
            if _open_pem(ready) and len(self._buffer) < self.HOLD_LIMIT:
                return len(text)
            self._buffer = self._buffer[cut + 1:]
            self.inner.write(get_policy().redact_text(ready))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._buffer:
                pending, self._buffer = self._buffer, ""
                self.inner.write(get_policy().redact_text(pending))
            self.inner.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    @property
    def buffer(self):
        # Binary writes bypass text redaction; nothing in Enclave writes bytes to stdout.
        return self.inner.buffer

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _open_pem(text: str) -> bool:
    begin = text.rfind("-----BEGIN ")
    return begin >= 0 and "-----END " not in text[begin:]


def install_std_streams() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` of this process (idempotent)."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


def configure_app_process() -> None:
    """For gunicorn and the Celery worker: redact stdout/stderr, route warnings to logging."""
    install_std_streams()
    logging.captureWarnings(True)


def uninstall_std_streams() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, RedactingStream):
            stream.flush()
            setattr(sys, name, stream.inner)


def format_exception_text(exc: BaseException) -> str:
    """Redacted traceback text of ``exc`` (for places that print errors themselves)."""
    return get_policy().redact_text("".join(traceback.format_exception(exc)))


# ---------------------------------------------------------------------------------------
# The dictConfig for Django (settings.LOGGING), gunicorn (logconfig_dict) and Celery.
# ---------------------------------------------------------------------------------------
def logging_dict(cfg: Config, *, store: bool = True) -> dict:
    """The whole logging configuration. Builds the policy first: a bad policy raises
    :class:`~enclave.logs.policy.PolicyError` and the process refuses to start."""
    load_policy(cfg)
    configure_structlog()
    handlers: dict[str, dict] = {
        "console": {"()": "enclave.logs.pipeline.StderrHandler", "formatter": "json",
                    "filters": ["redact"]},
    }
    if store:
        handlers["store"] = {
            "()": "enclave.logs.pipeline.StoreHandler", "formatter": "json",
            "filters": ["redact"], "directory": str(cfg.var_dir / "logs"),
        }
    if cfg.log_syslog:
        host, _, port = cfg.log_syslog.rpartition(":")
        handlers["syslog"] = {
            "()": "enclave.logs.pipeline.JsonSysLogHandler", "formatter": "json",
            "filters": ["redact"], "address": (host.strip("[]"), int(port)),
        }
    names = list(handlers)
    loggers = {name: {"handlers": names, "level": "INFO", "propagate": False}
               for name in LOGGERS}
    loggers["django.security.DisallowedHost"] = {"handlers": names, "level": "WARNING",
                                                 "propagate": False}
    # The Stripe SDK logs every request and response at INFO (billing logs its own
    # failures); its warnings still reach the log.
    loggers["stripe"] = {"handlers": names, "level": "WARNING", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "enclave.logs.pipeline.RedactingFilter"}},
        "formatters": {"json": {"()": "enclave.logs.pipeline.json_formatter"}},
        "handlers": handlers,
        "root": {"handlers": names, "level": "INFO"},
        "loggers": loggers,
    }


def get_logger(name: str = "enclave"):
    return structlog.get_logger(name)
