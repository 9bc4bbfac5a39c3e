"""Pricing plans: defaults here, overridable by a TOML file (ENCLAVE_PLANS_FILE).

The file holds one ``[[plan]]`` table per plan::

    [[plan]]
    name = "Team"            # required
    price = "$49"            # required
    period = "per month"     # optional
    contacts = "10,000"      # optional
    features = ["Hosted by us", "Email support"]   # optional list of strings
    key = "team"             # optional: a stable id (default: the name, lower-cased)
    stripe_price = "price_1Q…"   # optional: the Stripe price Checkout sells (billing on)
    former_prices = ["price_0P…"] # optional: earlier prices subscribers may still be on

    [plan.limits]            # optional: what an account on the plan may hold or send;
    people = 10000           # a limit left out is unlimited (enclave.billing.entitlements)
    monthly_sends = 100000
    members = 5
    flows = 20

With billing on (``ENCLAVE_BILLING=stripe``) an account without a paid subscription is on
the first plan without a ``stripe_price``: the free plan.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from enclave.config import ConfigError

SETTING = "ENCLAVE_PLANS_FILE"
log = logging.getLogger(__name__)
LIMIT_NAMES = ("people", "monthly_sends", "members", "flows")
_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\Z")
_PRICE = re.compile(r"[A-Za-z0-9_-]{1,100}\Z")


@dataclass(frozen=True)
class Limits:
    """What an account on a plan may hold or send; ``None`` is unlimited."""

    people: int | None = None
    monthly_sends: int | None = None
    members: int | None = None
    flows: int | None = None

    def of(self, name: str) -> int | None:
        return getattr(self, name)


@dataclass(frozen=True)
class Plan:
    name: str
    price: str
    period: str
    contacts: str
    features: tuple[str, ...]
    key: str = ""
    stripe_price: str = ""
    limits: Limits = field(default_factory=Limits)
    former_prices: tuple[str, ...] = ()

    def sells(self, price_id: str) -> bool:
        """Whether a subscription to ``price_id`` is on this plan."""
        return bool(price_id) and (price_id == self.stripe_price
                                   or price_id in self.former_prices)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", slug(self.name))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "plan"


DEFAULT_PLANS = (
    Plan("Self-hosted", "Free", "forever", "Unlimited",
         ("Every security control", "Your own servers", "Community support")),
    Plan("Team", "$49", "per month", "10,000",
         ("Hosted by us", "Daily encrypted backups", "Email support"),
         limits=Limits(people=10_000, monthly_sends=100_000, members=5, flows=20)),
    Plan("Business", "$199", "per month", "100,000",
         ("Everything in Team", "Custom roles", "Priority email support"),
         limits=Limits(people=100_000, monthly_sends=1_000_000, members=25, flows=200)),
)


def load_plans() -> tuple[Plan, ...]:
    """Plans from ENCLAVE_PLANS_FILE, or the defaults when it is not set.

    Raises :class:`ConfigError` naming the file and what is wrong with it (unreadable,
    not UTF-8, not TOML, no ``[[plan]]`` tables, a missing or mistyped field).
    """
    path = settings.CONFIG.plans_file
    if path is None:
        return DEFAULT_PLANS
    cached = _CACHE.get(path)
    try:
        stat = path.stat()
    except OSError as exc:
        if cached is not None:
            log.error("plans file unreadable; the plans read before stay in force",
                      extra={"path": str(path)})
            return cached[1]
        raise ConfigError(SETTING, f"cannot read {path}: {exc.strerror or exc}") from None
    stamp = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_size)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        plans = _parse(path)
    except ConfigError:
        if cached is None:
            raise
        # Edited into something unreadable while running: the plans read last stay in
        # force (limits keep working); the error is logged, and a restart refuses it.
        log.error("plans file unreadable; the plans read before stay in force",
                  extra={"path": str(path)})
        return cached[1]
    _CACHE[path] = (stamp, plans)
    return plans


_CACHE: dict[Path, tuple[tuple[int, ...], tuple[Plan, ...]]] = {}


def _parse(path: Path) -> tuple[Plan, ...]:
    data = _read_toml(path)
    tables = data.get("plan")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(SETTING, f"{path} has no [[plan]] tables")
    plans = tuple(_plan(path, number, table) for number, table in enumerate(tables, start=1))
    keys = [p.key for p in plans]
    if len(keys) != len(set(keys)):
        raise ConfigError(SETTING, f"{path}: two plans have the same 'key'")
    prices = [price for p in plans for price in (p.stripe_price, *p.former_prices) if price]
    if len(prices) != len(set(prices)):
        raise ConfigError(SETTING, f"{path}: two plans have the same 'stripe_price'")
    return plans


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
    name = text("name", required=True)
    key = text("key", required=False) or slug(name)
    if not _KEY.match(key):
        raise ConfigError(SETTING, f"{where}: 'key' must be lower-case letters, digits and "
                                   f"hyphens (at most 40)")
    price = text("stripe_price", required=False)
    if price and not _PRICE.match(price):
        raise ConfigError(SETTING, f"{where}: 'stripe_price' must be a Stripe price id")
    former = table.get("former_prices", [])
    if not isinstance(former, list) or not all(
            isinstance(f, str) and _PRICE.match(f) for f in former):
        raise ConfigError(SETTING, f"{where}: 'former_prices' must be a list of Stripe "
                                   f"price ids")
    return Plan(name, text("price", required=True),
                text("period", required=False), text("contacts", required=False),
                tuple(features), key=key, stripe_price=price, limits=_limits(where, table),
                former_prices=tuple(former))


def _limits(where: str, table: dict) -> Limits:
    limits = table.get("limits", {})
    if not isinstance(limits, dict):
        raise ConfigError(SETTING, f"{where}: 'limits' must be a table")
    unknown = sorted(set(limits) - set(LIMIT_NAMES))
    if unknown:
        raise ConfigError(SETTING, f"{where}: unknown limit {unknown[0]!r} (known: "
                                   f"{', '.join(LIMIT_NAMES)})")
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**12:
            raise ConfigError(SETTING, f"{where}: limit {name!r} must be a whole number "
                                       f"of at least 0")
    return Limits(**limits)
