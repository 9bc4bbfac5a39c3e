"""The security policies as data: one Markdown document per policy in the policies
directory (``ENCLAVE_POLICIES_DIR``; by default the project's own, ``docs/policies``),
each opening with TOML front matter between ``+++`` lines::

    +++
    title = "Incident response policy"
    owner = "Security lead"
    version = "1.2"
    approved_by = "A. Maintainer"
    approved_on = 2026-12-08      # the last review that approved this version
    review_by = 2027-12-08        # the next review, at most 12 months later
    +++

:data:`REQUIRED` names the policies a deployment must hold (the file name without
``.md``). POL-1 (``compliance.controls``) fails when one is missing, unreadable, not
approved, or not reviewed within 12 months.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

REQUIRED = ("information-security", "access-control", "incident-response", "backup",
            "logging", "vulnerability-management", "vendors", "acceptable-use")
FIELDS = ("title", "owner", "version", "approved_by", "approved_on", "review_by")
MAX_REVIEW_INTERVAL = dt.timedelta(days=366)


@dataclass(frozen=True)
class Policy:
    key: str
    title: str
    owner: str
    version: str
    approved_by: str
    approved_on: dt.date
    review_by: dt.date


class PolicyError(ValueError):
    """A policy document that cannot be read as one. ``str()`` names what is wrong."""


def directory() -> Path:
    return settings.CONFIG.policies_dir


def read(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise PolicyError(f"{path.name}: cannot be read as UTF-8 text") from None
    lines = text.removeprefix("\ufeff").splitlines()
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "+++"), None)
    if not lines or lines[0].strip() != "+++" or end is None:
        raise PolicyError(f"{path.name}: no +++ front matter")
    matter = "\n".join(lines[1:end])
    try:
        data = tomllib.loads(matter)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path.name}: front matter is not TOML ({exc})") from None
    missing = [f for f in FIELDS if f not in data]
    if missing:
        raise PolicyError(f"{path.name}: front matter lacks {', '.join(missing)}")
    for name in ("approved_on", "review_by"):
        if not isinstance(data[name], dt.date) or isinstance(data[name], dt.datetime):
            raise PolicyError(f"{path.name}: {name} must be a date (YYYY-MM-DD)")
    for name in ("title", "owner", "version", "approved_by"):
        if not isinstance(data[name], str) or not data[name].strip():
            raise PolicyError(f"{path.name}: {name} must be text")
    return Policy(path.stem, data["title"], data["owner"], data["version"],
                  data["approved_by"], data["approved_on"], data["review_by"])


def problems(today: dt.date) -> tuple[list[str], list[Policy]]:
    """What is wrong with the required policies on ``today``, and the ones read."""
    found, wrong = [], []
    for key in REQUIRED:
        path = directory() / f"{key}.md"
        if not path.is_file():
            wrong.append(f"{key}: missing")
            continue
        try:
            policy = read(path)
        except PolicyError as exc:
            wrong.append(str(exc))
            continue
        found.append(policy)
        if policy.approved_on > today:
            wrong.append(f"{key}: approved in the future ({policy.approved_on})")
        elif today - policy.approved_on > MAX_REVIEW_INTERVAL:
            wrong.append(f"{key}: last reviewed {policy.approved_on}, over 12 months ago")
        elif policy.review_by < today:
            wrong.append(f"{key}: review was due by {policy.review_by}")
        elif policy.review_by - policy.approved_on > MAX_REVIEW_INTERVAL:
            wrong.append(f"{key}: next review {policy.review_by} is over 12 months after "
                         f"the last")
    return wrong, found
