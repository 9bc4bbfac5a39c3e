"""Offline OSV advisories: load a directory of OSV YAML/JSON files and match versions.

Only the parts of the OSV schema that decide "is this PyPI version affected" are read:
``id``, ``aliases``, ``modified``, ``withdrawn`` and ``affected[]`` with its
``package.{ecosystem,name}``, ``ranges[]`` (``ECOSYSTEM``/``SEMVER``; ``GIT`` ranges name
commits, not releases, and are ignored) and explicit ``versions[]``.

Version strings that PEP 440 cannot parse are skipped and counted as warnings. A skipped
*range bound* is also remembered on the advisory, so the audit can report that advisory's
package as not fully evaluated instead of silently calling it safe.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from enclave.scanning.errors import AuditInputError

ECOSYSTEM = "PyPI"
VERSION_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})
ADVISORY_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
# BaseLoader builds only str/list/dict: no object construction, and versions such as
# 1.10 or dates stay the exact strings the advisory wrote (SafeLoader would make 1.1).
_YAML_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class AdvisoryError(AuditInputError):
    """The advisory directory cannot be used at all. ``str()`` is one line."""


@dataclass(frozen=True)
class Event:
    """One range event. ``bound`` is ``None`` for ``introduced: "0"`` (the very start)."""

    kind: str  # introduced | fixed | last_affected
    bound: Version | None

    def sort_key(self) -> tuple[int, Version | None]:
        return (0, None) if self.bound is None else (1, self.bound)


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry for one package."""

    package: str  # PEP 503-normalised
    ranges: tuple[tuple[Event, ...], ...]
    versions: frozenset[Version]
    unparsed_bounds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    modified: dt.date | None
    withdrawn: bool
    affected: tuple[Affected, ...]


@dataclass
class AdvisoryDB:
    """Advisories indexed by normalised package name, plus what could not be read."""

    root: Path
    by_package: dict[str, list[tuple[Advisory, Affected]]] = field(default_factory=dict)
    loaded: int = 0
    withdrawn: int = 0
    warnings: list[str] = field(default_factory=list)
    unreadable_packages: set[str] = field(default_factory=set)
    newest_modified: dt.date | None = None

    def add(self, advisory: Advisory) -> None:
        if advisory.withdrawn:
            self.withdrawn += 1
            return
        self.loaded += 1
        if advisory.modified and (self.newest_modified is None
                                  or advisory.modified > self.newest_modified):
            self.newest_modified = advisory.modified
        for entry in advisory.affected:
            self.by_package.setdefault(entry.package, []).append((advisory, entry))


def range_affects(version: Version, events: tuple[Event, ...]) -> bool:
    """OSV range evaluation: walk the events in version order, toggling "affected".

    ``introduced`` opens (inclusive), ``fixed`` closes (exclusive), ``last_affected``
    closes after its version (inclusive). Several introduced/fixed pairs in one range
    describe several disjoint intervals.
    """
    affected = False
    for event in sorted(events, key=Event.sort_key):
        if event.kind == "introduced":
            affected = affected or event.bound is None or version >= event.bound
        elif _closes(event, version):
            affected = False
    return affected


def _closes(event: Event, version: Version) -> bool:
    """Whether a ``fixed`` (exclusive) or ``last_affected`` (inclusive) event lies at or
    below ``version``, ending the interval it belongs to."""
    if event.kind == "fixed":
        return version >= event.bound
    return event.kind == "last_affected" and version > event.bound


def is_affected(version: Version, entry: Affected) -> bool:
    """True if ``version`` is in any range of ``entry`` or in its explicit version list."""
    return version in entry.versions or any(range_affects(version, r) for r in entry.ranges)


def fixed_versions(version: Version, entry: Affected) -> tuple[str, ...]:
    """Versions named as ``fixed`` that are newer than ``version`` and not affected themselves.

    Ascending, so the first one is the smallest upgrade that leaves this advisory.
    """
    fixes = {
        e.bound for r in entry.ranges for e in r
        if e.kind == "fixed" and e.bound is not None and e.bound > version
    }
    return tuple(str(v) for v in sorted(fixes) if not is_affected(v, entry))


def _version(raw: object, warnings: list[str], where: str) -> Version | None:
    try:
        return Version(str(raw))
    except InvalidVersion:
        warnings.append(f"{where}: invalid version {str(raw)[:60]!r} skipped")
        return None


def _events(raw_events: list, warnings: list[str], where: str) -> tuple[list[Event], list[str]]:
    events, unparsed = [], []
    for raw in raw_events or []:
        for kind, value in (raw or {}).items():
            if kind not in ("introduced", "fixed", "last_affected"):
                continue  # "limit" only bounds GIT ranges; nothing to compare here.
            if kind == "introduced" and str(value) == "0":
                events.append(Event(kind, None))
                continue
            bound = _version(value, warnings, where)
            if bound is None:
                unparsed.append(f"{kind} {str(value)[:60]}")
            else:
                events.append(Event(kind, bound))
    return events, unparsed


def _affected(raw: dict, warnings: list[str], advisory_id: str) -> Affected | None:
    package = raw.get("package") or {}
    if package.get("ecosystem") != ECOSYSTEM or not package.get("name"):
        return None
    where = f"{advisory_id} ({package['name']})"
    ranges, unparsed = [], []
    for rng in raw.get("ranges") or []:
        if rng.get("type") not in VERSION_RANGE_TYPES:
            continue
        events, bad = _events(rng.get("events"), warnings, where)
        ranges.append(tuple(events))
        unparsed += bad
    versions = (_version(v, warnings, where) for v in raw.get("versions") or [])
    return Affected(canonicalize_name(package["name"]), tuple(ranges),
                    frozenset(v for v in versions if v is not None), tuple(unparsed))


def _date(raw: object) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(str(raw)).date()
    except ValueError:
        return None


def parse_advisory(data: object, warnings: list[str]) -> Advisory:
    """Build an :class:`Advisory` from one decoded OSV document.

    Raises ``ValueError`` if the document is not an OSV mapping with an id.
    """
    if not isinstance(data, dict) or not data.get("id"):
        raise ValueError("not an OSV advisory (no id)")
    entries = (_affected(a, warnings, data["id"]) for a in data.get("affected") or []
               if isinstance(a, dict))
    return Advisory(
        id=str(data["id"]), aliases=tuple(str(a) for a in data.get("aliases") or []),
        modified=_date(data.get("modified")), withdrawn=bool(data.get("withdrawn")),
        affected=tuple(e for e in entries if e is not None),
    )


def _decode(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    # BaseLoader constructs no objects (see _YAML_LOADER); scanners cannot tell.
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 # nosec B506


def _advisory_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.suffix in ADVISORY_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def load_advisory_dir(root: Path) -> AdvisoryDB:
    """Load every advisory under ``root``.

    A file that cannot be decoded is a warning, and the package named by its directory
    (``vulns/<package>/...``) is remembered as not fully audited. A directory without any
    advisory loads as empty (``loaded == 0``); the audit must not call that clean.
    Raises :class:`AdvisoryError` when ``root`` is not a readable directory.
    """
    if not root.is_dir():
        raise AdvisoryError(f"advisory directory {root} does not exist or is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        # rglob() would silently list nothing; say why instead.
        raise AdvisoryError(f"advisory directory {root} cannot be read: permission denied")
    db = AdvisoryDB(root=root)
    try:
        paths = _advisory_files(root)
    except OSError as exc:
        raise AdvisoryError(f"advisory directory {root} cannot be read: {exc.strerror}") from None
    for path in paths:
        try:
            db.add(parse_advisory(_decode(path), db.warnings))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            db.warnings.append(f"{path.relative_to(root)}: unreadable advisory skipped "
                               f"({type(exc).__name__})")
            db.unreadable_packages.add(canonicalize_name(path.parent.name))
    return db
