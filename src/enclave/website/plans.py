"""Pricing plans: defaults here, overridable by a TOML file (ENCLAVE_PLANS_FILE).

The file holds one ``[[plan]]`` table per plan::

    [[plan]]
    name = "Team"            # required
    price = "$49"            # required
    period = "per month"     # optional
    contacts = "10,000"      # optional
    features = ["Hosted by us", "Email support"]   # optional list of strings
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from enclave.config import ConfigError

SETTING = "ENCLAVE_PLANS_FILE"


@dataclass(frozen=True)
class Plan:
    name: str
    price: str
    period: str
    contacts: str
    features: tuple[str, ...]


DEFAULT_PLANS = (
    Plan("Self-hosted", "Free", "forever", "Unlimited",
         ("Every security control", "Your own servers", "Community support")),
    Plan("Team", "$49", "per month", "10,000",
         ("Hosted by us", "Daily encrypted backups", "Email support")),
    Plan("Business", "$199", "per month", "100,000",
         ("Everything in Team", "Custom roles", "Priority email support")),
)


def load_plans() -> tuple[Plan, ...]:
    """Plans from ENCLAVE_PLANS_FILE, or the defaults when it is not set.

    Raises :class:`ConfigError` naming the file and what is wrong with it (unreadable,
    not UTF-8, not TOML, no ``[[plan]]`` tables, a missing or mistyped field).
    """
    path = settings.CONFIG.plans_file
    if path is None:
        return DEFAULT_PLANS
    data = _read_toml(path)
    tables = data.get("plan")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(SETTING, f"{path} has no [[plan]] tables")
    return tuple(_plan(path, number, table) for number, table in enumerate(tables, start=1))


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(SETTING, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(SETTING, f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(SETTING, f"{path} is not valid TOML: {exc}") from None


def _plan(path: Path, number: int, table: object) -> Plan:
    where = f"{path}: plan {number}"
    if not isinstance(table, dict):
        raise ConfigError(SETTING, f"{where} is not a table")

    def text(key: str, *, required: bool) -> str:
        value = table.get(key)
        if value is None:
            if required:
                raise ConfigError(SETTING, f"{where} has no {key!r}")
            return ""
        # bool is an int subclass; `contacts = true` is a mistake, not a number.
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(SETTING, f"{where}: {key!r} must be text")
        return str(value)

    features = table.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ConfigError(SETTING, f"{where}: 'features' must be a list of strings")
    return Plan(text("name", required=True), text("price", required=True),
                text("period", required=False), text("contacts", required=False),
                tuple(features))
