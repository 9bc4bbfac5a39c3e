"""The controls registry: every promise on the security page, with a check that proves it.

Each app declares its controls in ``<app>/controls.py`` with :func:`control`. A check takes
a :class:`Probe` (where the running deployment answers) and returns :class:`Outcome`.
``enclave security report`` and the scheduled job run them all through :func:`run_all`;
``/security`` renders the stored results with the public wording only.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings

from enclave.core import clock

PASS, FAIL, NOT_APPLICABLE = "pass", "fail", "n/a"


@dataclass(frozen=True)
class Probe:
    """Where to reach the running deployment. Defaults come from configuration."""

    https_url: str
    http_url: str | None
    host: str
    ca_file: str | None

    @classmethod
    def from_settings(cls, https_url: str | None = None, http_url: str | None = None) -> Probe:
        cfg = settings.CONFIG
        if https_url is None:
            https_url = cfg.public_url if cfg.behind_proxy else f"https://127.0.0.1:{cfg.https_port}"
        if http_url is None and not cfg.behind_proxy:
            http_url = f"http://127.0.0.1:{cfg.http_port}"
        elif http_url is None:
            http_url = "http://" + (urlsplit(cfg.public_url).hostname or "localhost")
        ca = str(cfg.tls_ca) if cfg.tls_ca.is_file() else None
        return cls(https_url=https_url.rstrip("/"), http_url=http_url, host=cfg.public_host,
                   ca_file=ca)


@dataclass(frozen=True)
class Outcome:
    status: str
    evidence: str


def passed(evidence: str) -> Outcome:
    return Outcome(PASS, evidence)


def failed(evidence: str) -> Outcome:
    return Outcome(FAIL, evidence)


def not_applicable(evidence: str) -> Outcome:
    return Outcome(NOT_APPLICABLE, evidence)


@dataclass(frozen=True)
class Control:
    id: str
    claim: str  # internal one-liner, printed by the CLI
    public: str  # wording for /security (no internal detail)
    check: Callable[[Probe], Outcome] = field(compare=False)


@dataclass(frozen=True)
class Result:
    control_id: str
    claim: str
    public: str
    status: str
    evidence: str
    checked_at: dt.datetime

    def as_dict(self) -> dict:
        return {"id": self.control_id, "claim": self.claim, "status": self.status,
                "evidence": self.evidence, "checked_at": self.checked_at.isoformat()}


_REGISTRY: dict[str, Control] = {}


def control(control_id: str, *, claim: str, public: str):
    """Decorator registering a check function as a control. Ids are unique."""

    def register(func: Callable[[Probe], Outcome]) -> Callable[[Probe], Outcome]:
        if control_id in _REGISTRY and _REGISTRY[control_id].check is not func:
            raise ValueError(f"duplicate control id {control_id}")
        _REGISTRY[control_id] = Control(control_id, claim, public, func)
        return func

    return register


def registry() -> dict[str, Control]:
    """All controls of all installed apps, in id order."""
    for app in apps.get_app_configs():
        if app.name.startswith("enclave."):
            try:
                importlib.import_module(f"{app.name}.controls")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app.name}.controls":
                    raise
    return dict(sorted(_REGISTRY.items()))


def run_one(ctrl: Control, probe: Probe) -> Result:
    """Run one check. A check that raises fails with the error as evidence (never a pass)."""
    try:
        outcome = ctrl.check(probe)
    except Exception as exc:  # noqa: BLE001 — any crash is reported as a failed control.
        outcome = failed(f"check crashed: {type(exc).__name__}: {exc}")
    if outcome.status not in (PASS, FAIL, NOT_APPLICABLE):
        outcome = failed(f"check returned unknown status {outcome.status!r}")
    return Result(ctrl.id, ctrl.claim, ctrl.public, outcome.status, outcome.evidence, clock.now())


def run_all(probe: Probe | None = None, only: set[str] | None = None) -> list[Result]:
    probe = probe or Probe.from_settings()
    return [run_one(c, probe) for c in registry().values() if only is None or c.id in only]


@control(
    "ENV-1",
    claim="Database stamped for this environment; live environments run no debug or test data",
    public="Production is sandboxed from test environments",
)
def check_environment_sandbox(probe: Probe) -> Outcome:
    from enclave.core.environment import current_stamp

    env = settings.CONFIG.env
    stamp = current_stamp()
    if stamp is None:
        return failed("the database has no environment stamp (not migrated?)")
    if stamp.environment != env:
        return failed(f"process environment '{env}' but database stamped '{stamp.environment}'")
    if settings.CONFIG.is_live:
        name = str(settings.DATABASES["default"].get("NAME", ""))
        if settings.DEBUG:
            return failed(f"DEBUG is on in {env}")
        if name.rsplit("/", 1)[-1].startswith("test"):
            return failed(f"{env} is using a test database ({name})")
    return passed(f"database stamped '{stamp.environment}' matches ENCLAVE_ENV; "
                  f"debug {'on' if settings.DEBUG else 'off'}")
