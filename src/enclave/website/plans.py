"""Pricing plans: defaults here, overridable by a TOML file (ENCLAVE_PLANS_FILE)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from django.conf import settings

from enclave.config import ConfigError


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
         ("Everything in Team", "Custom roles", "Priority incident response")),
)


def load_plans() -> tuple[Plan, ...]:
    """Plans from ENCLAVE_PLANS_FILE (``[[plan]]`` tables) or the defaults."""
    path = settings.CONFIG.plans_file
    if path is None:
        return DEFAULT_PLANS
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return tuple(
            Plan(str(p["name"]), str(p["price"]), str(p.get("period", "")),
                 str(p.get("contacts", "")), tuple(str(f) for f in p.get("features", ())))
            for p in data["plan"]
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ConfigError("ENCLAVE_PLANS_FILE", f"cannot read plans from {path}: {exc}") from None
