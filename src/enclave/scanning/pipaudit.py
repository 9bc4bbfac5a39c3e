"""Auditing through pip-audit (used when no offline advisory directory is given).

pip-audit prints "No known vulnerabilities found" and exits 0 even when it could not
audit a single package (its PyPI lookup reports each as "could not be audited"). So its
exit code and banner are never trusted: every locked pin must appear in its JSON output
with a vulnerability list, or it is an unaudited finding. A timeout, a crash, or output
that is not pip-audit's JSON makes every pin unaudited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from enclave.core import clock
from enclave.scanning.audit import (
    DEFAULT_MAX_AGE_DAYS,
    AuditResult,
    Lock,
    Unaudited,
    Vulnerability,
    freshness,
    scrub,
)

PIP_AUDIT = (sys.executable, "-m", "pip_audit")
DEFAULT_TIMEOUT = 300.0
# --no-deps/--disable-pip: audit exactly the pins of the lock, without resolving or
# installing anything; the lock is already complete.
ARGS = ("--format", "json", "--no-deps", "--disable-pip", "--progress-spinner", "off")


class PipAuditFailed(Exception):
    """pip-audit did not produce a usable report. ``str()`` is a scrubbed one-line reason."""


def run_pip_audit(lock_path: Path, *, command: Sequence[str] = PIP_AUDIT,
                  extra_args: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Run pip-audit on ``lock_path`` and return its decoded JSON report.

    Exit codes 0 (nothing found) and 1 (vulnerabilities found) are both normal; only the
    JSON decides. Raises :class:`PipAuditFailed` on timeout, a failure to start, another
    exit code, or output that is not a JSON object.
    """
    argv = [*command, "-r", str(lock_path), *ARGS, *extra_args]
    try:
        # Fixed argv from our own constants and the lock path; no shell.
        proc = subprocess.run(argv, capture_output=True, text=True,  # noqa: S603 # nosec B603
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PipAuditFailed(f"pip-audit timed out after {timeout:g}s") from None
    except OSError as exc:
        raise PipAuditFailed(f"pip-audit could not start: {exc.strerror or exc}") from None
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    if proc.returncode not in (0, 1) or not isinstance(report, dict):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipAuditFailed(scrub(f"pip-audit failed (exit {proc.returncode}): {last}"))
    return report


def _vulnerabilities(name: str, version: str, vulns: list) -> list[Vulnerability]:
    return [
        Vulnerability(name, version, str(v.get("id")),
                      tuple(str(a) for a in v.get("aliases") or ()),
                      tuple(str(f) for f in v.get("fix_versions") or ()))
        for v in vulns if isinstance(v, dict)
    ]


def parse_report(report: dict, lock: Lock) -> tuple[list[Vulnerability], list[Unaudited]]:
    """Findings from pip-audit's JSON ``report`` for the pins of ``lock``.

    A dependency with a ``skip_reason``, without a ``vulns`` list, or missing from the
    report altogether is unaudited.
    """
    pins = {pin.name: pin.version for pin in lock.pins}
    vulnerabilities: list[Vulnerability] = []
    unaudited: list[Unaudited] = []
    seen: set[str] = set()
    for dep in report.get("dependencies") or []:
        if not isinstance(dep, dict) or canonicalize_name(str(dep.get("name"))) not in pins:
            continue
        name = canonicalize_name(str(dep["name"]))
        seen.add(name)
        version = str(dep.get("version") or pins[name])
        if dep.get("skip_reason") or not isinstance(dep.get("vulns"), list):
            reason = dep.get("skip_reason") or "pip-audit gave no result"
            unaudited.append(Unaudited(name, pins[name], scrub(f"pip-audit: {reason}")))
        else:
            vulnerabilities += _vulnerabilities(name, version, dep["vulns"])
    unaudited += [Unaudited(name, version, "could not be audited: missing from pip-audit's report")
                  for name, version in pins.items() if name not in seen]
    return vulnerabilities, unaudited


def _pins_file(lock: Lock, directory: Path) -> Path:
    """Write the pins alone: an unpinned line would make pip-audit refuse the whole lock,
    and it is already an unaudited finding of its own."""
    path = directory / "pins.txt"
    path.write_text("".join(f"{p.name}=={p.version}\n" for p in lock.pins), encoding="utf-8")
    return path


def audit_with_pip_audit(lock: Lock, *, max_age_days: int = DEFAULT_MAX_AGE_DAYS,
                         command: Sequence[str] = PIP_AUDIT, extra_args: Sequence[str] = (),
                         timeout: float = DEFAULT_TIMEOUT) -> AuditResult:
    """Audit ``lock`` through pip-audit's online service.

    The data date is today only if the service answered for at least one package;
    otherwise it is unknown, which is stale. Never raises for service trouble: it
    becomes unaudited findings.
    """
    try:
        with tempfile.TemporaryDirectory(prefix="enclave-pip-audit-") as tmp:
            report = run_pip_audit(_pins_file(lock, Path(tmp)), command=command,
                                   extra_args=extra_args, timeout=timeout)
        vulnerabilities, unaudited = parse_report(report, lock)
    except PipAuditFailed as exc:
        vulnerabilities = []
        unaudited = [Unaudited(p.name, p.version, f"could not be audited: {exc}")
                     for p in lock.pins]
    answered = len(lock.pins) > len(unaudited)
    data_date = clock.now().date() if answered else None
    age, stale = freshness(data_date, max_age_days)
    return AuditResult(
        source="pip-audit", requirements=lock.path, ran_at=clock.now(), data_date=data_date,
        data_age_days=age, max_age_days=max_age_days, stale=stale, pinned=len(lock.pins),
        vulnerabilities=tuple(vulnerabilities), unaudited=(*lock.unaudited, *unaudited),
    )
