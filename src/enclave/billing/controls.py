"""PCI-1: card payments go only through Stripe — no card number ever reaches Enclave.

Checked, not asserted: the CSP keeps ``form-action`` and ``connect-src`` to our own
origin (Checkout and the portal are Stripe's pages, reached by navigation); no page
template has a card field; and a sample of every stored text column (the newest rows of
each table the personal-data registry lists) and of the log store's recent records holds
no card number (13–19 digits with a card brand's prefix, passing the Luhn check). The
evidence names where one was found, never the number.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from enclave.core.controls import Outcome, Probe, control, failed, passed

SAMPLE_ROWS = 200  # newest rows read per table
LOG_DAYS, LOG_RECORDS = 7, 20_000
# An input a card number, expiry or code would be typed into.
CARD_FIELD = re.compile(
    r"""<input[^>]*(?:autocomplete\s*=\s*["']?cc-|name\s*=\s*["']?(?:card[_-]?(?:number|no|num)"""
    r"""|cardnumber|cc[_-]?(?:number|num)|cvc|cvv|csc)\b)""", re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?!\w)")
# Card brands' number prefixes and lengths (Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay, Maestro): a 13-digit millisecond timestamp is none of them.
_BRANDS = re.compile(r"4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]|[3-6]\d|7[01])\d{13}"
                     r"|2720\d{12}|3[47]\d{13}|6(?:011|5\d\d)\d{12,15}|35\d{14,17}"
                     r"|3(?:0[0-5]|[689]\d)\d{11,16}|62\d{14,17}|(?:50|5[6-8]|6\d)\d{10,17}")
TEMPLATE_ROOT = Path(__file__).resolve().parent.parent  # every app's templates


def has_card_number(text: str) -> bool:
    from enclave.logs.policy import luhn_valid

    for match in _DIGITS.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if _BRANDS.fullmatch(digits) and luhn_valid(digits):
            return True
    return False


def _csp_problems() -> list[str]:
    from enclave.core.headers import csp_value

    directives = dict(part.strip().split(" ", 1) for part in csp_value("n").split(";")
                      if " " in part.strip())
    return [f"CSP {name} is {directives.get(name)!r}, not 'self'"
            for name in ("form-action", "connect-src") if directives.get(name) != "'self'"]


def card_fields(root: Path | None = None) -> list[str]:
    root = root or TEMPLATE_ROOT
    return sorted(str(path.relative_to(root)) for path in root.glob("*/templates/**/*.html")
                  if CARD_FIELD.search(path.read_text(encoding="utf-8", errors="replace")))


def _text_columns():
    from django.apps import apps
    from django.db import models

    from enclave.access import personal_data

    for entry in personal_data.MODELS:
        model = apps.get_model(entry.label)
        fields = [f for f in model._meta.concrete_fields
                  if isinstance(f, models.CharField | models.TextField | models.JSONField)
                  and entry.fields.get(f.name, personal_data.Field()).cls != personal_data.SECRET
                  and not f.name.startswith("sealed_")]
        if fields:
            yield model, fields


def stored_card_columns(rows: int = SAMPLE_ROWS) -> tuple[list[str], int]:
    """The ``table.column``s whose sampled values hold a card number, and how many
    values were read."""
    import json

    found, read = set(), 0
    for model, fields in _text_columns():
        names = [f.attname for f in fields]
        for values in model._base_manager.order_by("-pk").values_list(*names)[:rows]:
            for name, value in zip(names, values, strict=True):
                if value in (None, ""):
                    continue
                read += 1
                text = value if isinstance(value, str) else json.dumps(value)
                if has_card_number(text):
                    found.add(f"{model._meta.db_table}.{name}")
    return sorted(found), read


def logged_cards() -> tuple[int, int]:
    """(records holding a card number, records read) of the log store's last days."""
    import json

    from enclave.core import clock
    from enclave.logs.store import default_store

    store, hits, read = default_store(), 0, 0
    for record in store.records(since=clock.now() - dt.timedelta(days=LOG_DAYS)):
        read += 1
        if has_card_number(json.dumps(record)):
            hits += 1
        if read >= LOG_RECORDS:
            break
    return hits, read


@control("PCI-1", claim="No card data reaches Enclave: CSP form-action and connect-src "
         "'self', no card field in any template, no card number in sampled stored text "
         "or recent logs",
         public="Card payments are handled only by Stripe; card numbers never reach our "
                "servers")
def check_no_card_data(probe: Probe) -> Outcome:
    problems = _csp_problems()
    fields = card_fields()
    if fields:
        problems.append(f"card fields in {', '.join(fields)}")
    columns, read = stored_card_columns()
    if columns:
        problems.append(f"card numbers stored in {', '.join(columns)}")
    try:
        hits, records = logged_cards()
    except Exception as exc:  # noqa: BLE001 — an unreadable store is said, not hidden
        return failed(f"log store unreadable ({type(exc).__name__}); " + "; ".join(problems))
    if hits:
        problems.append(f"{hits} log record(s) hold a card number")
    if problems:
        return failed("; ".join(problems))
    return passed(f"CSP form-action and connect-src 'self'; no card field in any template; "
                  f"{read} stored values and {records} log records of the last {LOG_DAYS} "
                  f"days sampled: no card number")
