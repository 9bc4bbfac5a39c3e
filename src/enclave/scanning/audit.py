"""Dependency audit: a hash-pinned requirements lock checked against advisory data.

The result is never "clean" by default. It is clean only when every locked package was
checked, none is affected by a known advisory, and the advisory data is fresh. A package
that could not be checked (not pinned, unparseable, unreadable advisory, service error)
is an *unaudited* finding; advisory data older than ``max_age_days`` (or of unknown date)
is a *stale* finding. Both make the audit incomplete, never a pass.

Two sources produce the same :class:`AuditResult`: an offline OSV directory
(:func:`audit_with_advisories`, ``source="osv-dir:<path>"``) and pip-audit
(:mod:`enclave.scanning.pipaudit`, ``source="pip-audit"``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from enclave.config import PROJECT_ROOT
from enclave.core import clock
from enclave.scanning import osv
from enclave.scanning.errors import AuditInputError

CLEAN, VULNERABLE, INCOMPLETE = "clean", "vulnerable", "incomplete"
STATUSES = (CLEAN, VULNERABLE, INCOMPLETE)
DEFAULT_MAX_AGE_DAYS = 7
NOT_PINNED = "could not be audited: not pinned"
DEFAULT_REQUIREMENTS = PROJECT_ROOT / "requirements" / "base.txt"

# pip's rule: "#" starts a comment at the start of a line or after whitespace.
_COMMENT = re.compile(r"(^|\s)#.*$")
# Per-requirement options (--hash=..., --config-settings ...) follow the requirement.
_OPTION = re.compile(r"\s+--?[A-Za-z]")
_INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def scrub(text: str, limit: int = 300) -> str:
    """One line, bounded, with URL credentials (``https://user:token@host``) removed.

    Reasons come from tools and services and are stored and printed; a private index
    URL with a token must not end up in the audit summary.
    """
    one_line = " ".join(str(text).split())
    return _URL_USERINFO.sub(r"\1***@", one_line)[:limit]


@dataclass(frozen=True)
class Pin:
    name: str  # PEP 503-normalised
    version: str
    line: int


@dataclass(frozen=True)
class Unaudited:
    package: str
    version: str  # "" when the lock names no exact version
    reason: str


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    advisory_id: str
    aliases: tuple[str, ...] = ()
    fixed_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lock:
    path: str
    pins: tuple[Pin, ...]
    unaudited: tuple[Unaudited, ...]


@dataclass(frozen=True)
class AuditResult:
    """What one audit found. ``status`` is derived, so it cannot disagree with the findings."""

    source: str
    requirements: str
    ran_at: dt.datetime
    data_date: dt.date | None
    data_age_days: int | None
    max_age_days: int
    stale: bool
    pinned: int
    vulnerabilities: tuple[Vulnerability, ...] = ()
    unaudited: tuple[Unaudited, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
    advisories: int | None = None
    # Set when the audit could not run at all (lock or advisory data unusable): one line.
    error: str | None = None

    @property
    def status(self) -> str:
        if self.vulnerabilities:
            return VULNERABLE
        if self.unaudited or self.stale or self.error:
            return INCOMPLETE
        return CLEAN

    def summary(self) -> dict:
        """JSON-safe description (stored and printed). Reasons are already scrubbed."""
        return {
            "status": self.status, "source": self.source, "requirements": self.requirements,
            "ran_at": self.ran_at.isoformat(),
            "data_date": self.data_date.isoformat() if self.data_date else None,
            "data_age_days": self.data_age_days, "max_age_days": self.max_age_days,
            "stale": self.stale, "pinned": self.pinned, "advisories": self.advisories,
            "vulnerabilities": [
                {"package": v.package, "version": v.version, "id": v.advisory_id,
                 "aliases": list(v.aliases), "fixed": list(v.fixed_versions)}
                for v in self.vulnerabilities
            ],
            "unaudited": [{"package": u.package, "version": u.version, "reason": u.reason}
                          for u in self.unaudited],
            "warnings": len(self.warnings), "warning_samples": list(self.warnings[:5]),
            "error": self.error,
        }


def failed_audit(source: str, requirements: str, reason: str, *,
                 max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> AuditResult:
    """The result of an audit that could not run: incomplete, stale, every package unaudited.

    Recorded like any other result, so control DEP-1 fails and says why instead of
    showing the previous (possibly clean) run.
    """
    reason = scrub(reason)
    return AuditResult(
        source=source, requirements=requirements, ran_at=clock.now(), data_date=None,
        data_age_days=None, max_age_days=max_age_days, stale=True, pinned=0,
        unaudited=(Unaudited("*", "", f"could not be audited: {reason}"),), error=reason,
    )


# --- the lock -----------------------------------------------------------------------


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(first line number, text)`` with comments removed and ``\\`` joined."""
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).rstrip()
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined = " ".join(p.strip() for p in parts).strip()
        parts = []
        if joined:
            yield start, joined
    if parts and (joined := " ".join(p.strip() for p in parts).strip()):
        yield start, joined


def _parse_requirement(number: int, text: str) -> Pin | Unaudited:
    """One requirement line → a pin, or the reason it cannot be audited."""
    spec_text = _OPTION.split(text, maxsplit=1)[0].strip()
    try:
        req = Requirement(spec_text)
    except InvalidRequirement:
        return Unaudited(scrub(spec_text, 80), "",
                         f"could not be audited: unparseable requirement on line {number}")
    name = canonicalize_name(req.name)
    specs = list(req.specifier)
    if req.url or len(specs) != 1 or specs[0].operator not in ("==", "===") \
            or "*" in specs[0].version:
        return Unaudited(name, "", NOT_PINNED)
    return Pin(name, specs[0].version, number)


def parse_lock_text(text: str, path: str = "<text>") -> Lock:
    """Parse a pip requirements lock. Hashes, comments and index options are ignored.

    Includes (``-r``/``-c``) and editables name packages this audit cannot see, so they
    are unaudited findings rather than silently skipped.
    """
    pins: list[Pin] = []
    unaudited: list[Unaudited] = []
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            option = line.split(maxsplit=1)[0].split("=", 1)[0]
            if option in _INCLUDE_OPTIONS:
                unaudited.append(Unaudited(scrub(line, 80), "",
                                           f"could not be audited: {option} is not followed"))
            continue
        found = _parse_requirement(number, line)
        (pins if isinstance(found, Pin) else unaudited).append(found)
    return Lock(path, tuple(pins), tuple(unaudited))


def parse_lock(path: Path) -> Lock:
    """Read and parse the lock at ``path``.

    Raises :class:`AuditInputError` (one line) if it is missing, unreadable, not UTF-8
    or names no requirement at all: an empty lock must not audit as clean.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuditInputError(f"requirements lock {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise AuditInputError(f"requirements lock {path} cannot be read: {reason}") from None
    lock = parse_lock_text(text, str(path))
    if not lock.pins and not lock.unaudited:
        raise AuditInputError(f"requirements lock {path} names no requirement")
    return lock


# --- freshness ------------------------------------------------------------------------


def source_date(advisory_dir: Path) -> dt.date | None:
    """The first YYYY-MM-DD date on a line of ``<advisory_dir>/SOURCE.md``, if any."""
    try:
        lines = (advisory_dir / "SOURCE.md").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        for match in _DATE.finditer(line):
            try:
                return dt.date.fromisoformat(match.group(1))
            except ValueError:
                continue
    return None


def freshness(data_date: dt.date | None, max_age_days: int) -> tuple[int | None, bool]:
    """Return ``(age in days, stale)`` by :func:`enclave.core.clock.now`.

    Unknown dates are stale. So are dates more than a day in the future (a day of
    slack absorbs a date written in a timezone ahead of UTC).
    """
    if data_date is None:
        return None, True
    age = (clock.now().date() - data_date).days
    return age, age > max_age_days or age < -1


# --- auditing against an OSV directory ---------------------------------------------


def _check_pin(pin: Pin, db: osv.AdvisoryDB) -> tuple[list[Vulnerability], list[Unaudited]]:
    """Vulnerabilities of one pin, and reasons it could not be fully checked."""
    try:
        version = Version(pin.version)
    except InvalidVersion:
        return [], [Unaudited(pin.name, pin.version,
                              "could not be audited: pinned version is not PEP 440")]
    found: dict[str, Vulnerability] = {}
    unclear: list[osv.Advisory] = []
    for advisory, entry in db.by_package.get(pin.name, ()):
        if osv.is_affected(version, entry):
            previous = found.get(advisory.id)
            fixed = set(osv.fixed_versions(version, entry))
            fixed |= set(previous.fixed_versions) if previous else set()
            found[advisory.id] = Vulnerability(pin.name, pin.version, advisory.id,
                                               advisory.aliases,
                                               tuple(sorted(fixed, key=Version)))
        elif entry.unparsed_bounds:
            unclear.append(advisory)
    unaudited = [
        Unaudited(pin.name, pin.version, f"could not be audited: advisory {a.id} has "
                                         "version bounds that are not PEP 440")
        for a in unclear if a.id not in found
    ]
    if pin.name in db.unreadable_packages:
        unaudited.append(Unaudited(pin.name, pin.version,
                                   "could not be audited: an advisory file is unreadable"))
    return list(found.values()), unaudited


def audit_with_advisories(lock: Lock, advisory_dir: Path, *,
                          max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> AuditResult:
    """Audit ``lock`` against an offline OSV directory.

    The data date is the date in ``SOURCE.md``, else the newest ``modified`` among the
    advisories. A directory without advisories leaves every pin unaudited. Raises
    :class:`AuditInputError` if the directory is missing or unreadable.
    """
    db = osv.load_advisory_dir(advisory_dir)
    vulnerabilities: list[Vulnerability] = []
    unaudited = list(lock.unaudited)
    for pin in lock.pins:
        if db.loaded == 0:  # An empty (or wrong) directory proves nothing about any pin.
            unaudited.append(Unaudited(pin.name, pin.version,
                                       "could not be audited: no advisory in the directory"))
            continue
        found, unclear = _check_pin(pin, db)
        vulnerabilities += found
        unaudited += unclear
    data_date = source_date(advisory_dir) or db.newest_modified
    age, stale = freshness(data_date, max_age_days)
    return AuditResult(
        source=f"osv-dir:{advisory_dir.resolve()}", requirements=lock.path, ran_at=clock.now(),
        data_date=data_date, data_age_days=age, max_age_days=max_age_days, stale=stale,
        pinned=len(lock.pins), vulnerabilities=tuple(vulnerabilities),
        unaudited=tuple(unaudited), warnings=tuple(db.warnings), advisories=db.loaded,
    )
