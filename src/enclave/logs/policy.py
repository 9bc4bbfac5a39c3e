"""The one redaction policy, as data, and the engine that applies it.

Four kinds of rule (``RULES`` below, plus ``STRICT_RULES`` at ``ENCLAVE_LOG_REDACTION=strict``
and an operator's ``ENCLAVE_LOG_POLICY_FILE``):

* ``{"type": "key", ...}`` — a value whose *key* is sensitive (anywhere in nested dicts
  and lists, in ``key=value`` text and in URL query strings) is redacted whole.
  Key names are normalised: camelCase and separators split into words, digits dropped
  (``X-Api-Key`` → ``x api key``, ``HTTP_AUTHORIZATION`` → ``http authorization``,
  ``new_password1`` → ``new password``). A term of 5+ letters matches anywhere in the
  joined key (``apikey`` in ``xapikey``); a shorter term (``otp``, ``ssn``, ``cvv``)
  must be a whole word, so ``footprint`` is not an OTP.
* ``{"type": "detector", ...}`` — a named value detector (regex, sometimes with a
  validator: Luhn for cards, mod-97 for IBANs) applied to every string, including
  messages and exception text.
* ``{"type": "path", "patterns": [...]}`` — URL paths that carry a secret in a segment,
  e.g. ``/app/invite/<token>``: the ``<token>`` segment is redacted wherever the path
  appears in a string (a request path, a ``next=`` value, a URL in a message, also with
  ``%2F`` for ``/``). ``<any>`` matches one segment that is kept. The same patterns render
  the nginx edge's log redaction (:mod:`enclave.server.nginx`), and a test fails when a
  URL route with a sensitive parameter (``<str:token>``) has no pattern.
* ``{"type": "query", "terms": [...], "detectors": [...]}`` — URL query parameters that
  carry personal data (search terms, email, name, phone): the value of a parameter whose
  *key* matches a term (matched like key rules), or whose value holds a listed detector's
  match (an email address under any key), is redacted whole — in the access log's query
  string and in any URL inside a string (also ``%3F``/``%26``/``%3D``-encoded ones).

Actions, from loosest to strictest: ``mask`` (keep the last 4 characters), ``hash``
(keyed pseudonym ``<name>:<10 hex>``), ``replace`` (``[REDACTED:<name>]``), ``remove``.
Loading is fail-closed: an unknown rule type, detector, action or field raises
:class:`PolicyError`, and the process refuses to start. Later levels can only tighten:
a rule that names an existing rule must use an action at least as strict.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode

from enclave.access.personal_data import log_redacted_names
from enclave.config import ConfigError

ACTIONS = ("mask", "hash", "replace", "remove")  # loosest → strictest
STRICTNESS = {name: rank for rank, name in enumerate(ACTIONS)}

# ---------------------------------------------------------------------------------------
# The policy data.
# ---------------------------------------------------------------------------------------
RULES: list[dict] = [
    # Paths whose segment is a one-time secret (a link sent by email or printed once).
    # Add a pattern with every new route that takes a token: tests/logs/test_policy.py
    # fails for a route parameter that is sensitive under the key rules and not covered.
    {"type": "path", "name": "one_time_token", "action": "replace",
     "patterns": ["/app/password/reset/<token>", "/app/invite/<token>",
                  "/app/signup/<token>", "/app/setup/<token>", "/preferences/<token>",
                  "/confirm/<token>", "/unsubscribe/<token>",
                  # Not secrets, but each names one person's message: pseudonymous.
                  "/t/o/<token>", "/t/c/<token>"]},
    # Query parameters that carry personal data: search terms, every field the personal-data
    # registry says logs may not carry (enclave.access.personal_data), and any value
    # holding an email address. tests/logs/test_policy.py checks the people fields.
    {"type": "query", "name": "personal_data", "action": "replace",
     "terms": sorted({"q", "query", "search", "term", "keyword", "username", "name",
                      "mobile", "ip", "custom"} | log_redacted_names()),
     "detectors": ["email"]},
    # Structured log fields named like a registry field that logs may not carry (names of
    # five letters or more: shorter ones such as "name" or "data" would catch ordinary
    # fields like task_name; values under them still pass every detector).
    {"type": "key", "name": "personal_data_field", "action": "replace",
     "terms": sorted(n for n in log_redacted_names() if len(n) >= 5)},
    {"type": "key", "name": "password", "action": "replace",
     "terms": ["password", "passwd", "passphrase", "pwd"]},
    {"type": "key", "name": "secret", "action": "replace",
     "terms": ["secret", "client_secret", "private_key", "signing_key", "secret_key"]},
    {"type": "key", "name": "token", "action": "replace",
     "terms": ["token", "api_key", "apikey", "access_key", "auth", "authorization",
               "credential", "signature", "sig", "jwt", "bearer"]},
    {"type": "key", "name": "session", "action": "replace",
     "terms": ["cookie", "session", "sessionid", "csrf", "xsrf"]},
    {"type": "key", "name": "mfa", "action": "replace",
     "terms": ["otp", "totp", "hotp", "mfa_code", "recovery_code", "backup_code",
               "security_answer"]},
    {"type": "key", "name": "payment", "action": "replace",
     "terms": ["card", "card_number", "cardnumber", "pan", "cvv", "cvc", "cvv2", "iban",
               "account_number", "routing_number"]},
    {"type": "key", "name": "national_id", "action": "replace",
     "terms": ["ssn", "social_security", "national_id", "passport"]},
    # Value detectors, applied in this order to every string.
    {"type": "detector", "name": "pem", "action": "replace"},
    {"type": "detector", "name": "jwt", "action": "replace"},
    {"type": "detector", "name": "bearer", "action": "replace"},
    {"type": "detector", "name": "url_credentials", "action": "replace"},
    {"type": "detector", "name": "enclave_api_key", "action": "replace"},
    {"type": "detector", "name": "cloud_access_key", "action": "replace"},
    # IBANs before cards: an IBAN's digits can pass Luhn, and a card match would cut
    # the IBAN apart (half of it left in the clear).
    {"type": "detector", "name": "iban", "action": "replace"},
    {"type": "detector", "name": "card", "action": "replace"},
    {"type": "detector", "name": "key_value", "action": "replace"},
]

# ENCLAVE_LOG_REDACTION=strict adds these (keyed pseudonyms for email addresses).
STRICT_RULES: list[dict] = [
    {"type": "detector", "name": "email", "action": "hash"},
]

_RULE_FIELDS = {
    "key": {"type", "name", "action", "terms"},
    "detector": {"type", "name", "action"},
    "path": {"type", "name", "action", "patterns"},
    "query": {"type", "name", "action", "terms", "detectors"},
}


class PolicyError(ConfigError):
    """The redaction policy is invalid. The process must not start (fail closed)."""

    def __init__(self, message: str) -> None:
        super().__init__("ENCLAVE_LOG_POLICY", message)


# ---------------------------------------------------------------------------------------
# Value detectors. Each is a regex; ``v`` (when the regex has that group) is the part that
# is redacted, the rest of the match is kept (e.g. the "Bearer " scheme, the URL host).
# ---------------------------------------------------------------------------------------
def _digits(text: str) -> str:
    compact = text.replace(" ", "").replace("-", "")  # a card match's separators
    return compact if compact.isdigit() else "".join(filter(str.isdigit, compact))


# ASCII digit → the digit sum of twice its value, as an ASCII digit.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def luhn_valid(number: str) -> bool:
    """True when the digits of ``number`` (13–19 of them) pass the Luhn check."""
    digits = _digits(number)
    if not 13 <= len(digits) <= 19:
        return False
    if digits.isascii():
        raw = digits.encode("ascii")
        total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_LUHN_DOUBLED)) - 48 * len(raw)
    else:  # other scripts' decimal digits (what ``\d`` matches)
        values = [int(d) for d in digits]
        total = sum(values[-1::-2]) + sum(d * 2 - 9 if d > 4 else d * 2
                                          for d in values[-2::-2])
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """True when ``text`` (spaces allowed) is a 15–34 character IBAN passing mod-97."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


@dataclass(frozen=True)
class Detector:
    name: str
    pattern: re.Pattern
    description: str
    validate: Callable[[re.Match], bool] | None = None
    # A cheap necessary condition (substring tests): when it is false the regex cannot
    # match, so it is not run. Keeps the common, clean message fast. (``str.islower()``
    # is true only for text without any upper-case letter: no ``[A-Z]`` can match.)
    needs: Callable[[str], bool] = lambda text: True


def _any(*parts: str) -> Callable[[str], bool]:
    if len(parts) == 1:
        (part,) = parts
        return lambda text: part in text
    return lambda text: any(p in text for p in parts)


def _auth_scheme(text: str) -> bool:
    # The bearer regex is case-insensitive, and re's IGNORECASE also folds a few non-ASCII
    # letters (ſ, ı, K) onto ASCII ones that str.lower() keeps apart: non-ASCII text is
    # always searched, ASCII text only when one of the scheme words occurs.
    if not text.isascii():
        return True
    lowered = text.lower()
    return ("bearer" in lowered or "basic" in lowered or "digest" in lowered
            or "token" in lowered)


_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12}")
_IBAN_START = re.compile(r"[A-Z]{2}\d{2}")
_CLOUD_START = re.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)")


DETECTORS: dict[str, Detector] = {d.name: d for d in (
    Detector("pem", re.compile(
        r"-----BEGIN [A-Z0-9 ]{0,40}-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}-----|\Z)"),
        "PEM blocks (private keys, certificates), including a truncated block",
        needs=_any("-----BEGIN ")),
    Detector("jwt", re.compile(
        r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        "JSON Web Tokens (two base64url JSON parts and a signature)", needs=_any("eyJ")),
    Detector("bearer", re.compile(
        r"(?i)\b(?:bearer|basic|digest|token)\s+(?P<v>[A-Za-z0-9._~+/=-]{8,})"),
        "HTTP Authorization credentials: Bearer / Basic / Digest / Token <credential>",
        needs=_auth_scheme),
    Detector("url_credentials", re.compile(
        r"(?i)\b[a-z][a-z0-9+.-]{1,20}://(?P<v>[^/\s:@'\"]*:[^/\s@'\"]*)@"),
        "user:password in a URL (https://user:pass@host)",
        needs=lambda text: "://" in text and "@" in text),
    Detector("enclave_api_key", re.compile(r"enc_(?:live|test|dev|stg)_[A-Za-z0-9_]{20,}"),
             "Enclave API keys: enc_<live|test|dev|stg>_ then 20+ of [A-Za-z0-9_]",
             needs=_any("enc_")),
    Detector("cloud_access_key", re.compile(
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
        "cloud (AWS) access key ids; their 40-char secrets are caught by key rules",
        needs=lambda text: not text.islower() and bool(_CLOUD_START.search(text))),
    Detector("key_value", re.compile(
        r"""(?P<k>[A-Za-z_][A-Za-z0-9_.\-]{0,63})["']?\s*[=:]\s*(?!\[REDACTED)"""
        r"""(?:(?P<q>["'])(?P<qv>.*?)(?P=q)|(?P<v>[^\s&#"',;}\])]+))"""),
        "key=value, key: value and 'key': 'value' text (and URL query parameters) whose "
        "key is sensitive under the key rules",
        needs=lambda text: "=" in text or ":" in text),
    # Not glued to letters, underscores or hyphens: a UUID's digit runs (Celery task ids,
    # trace ids) are not card numbers, however the Luhn check falls.
    Detector("card", re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w])"),
             "payment card numbers: 13–19 digits (spaces/dashes allowed) passing Luhn",
             lambda m: luhn_valid(m.group(0)), needs=lambda text: bool(_DIGIT_RUN.search(text))),
    Detector("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
             "IBANs passing the mod-97 check", lambda m: iban_valid(m.group(0)),
             needs=lambda text: not text.islower() and bool(_IBAN_START.search(text))),
    Detector("email", re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
             "email addresses (strict level: keyed pseudonym email:<hash10>)",
             needs=_any("@")),
)}


# The key_value pre-check: every maximal run of key characters followed (after an optional
# quote and whitespace) by "=" or ":". A key the key_value regex finds is a suffix of one of
# these runs, so when no run's letters hold a key term the regex cannot redact anything.
# It is searched in the reversed text, where it starts with "=" or ":" (a fast scan).
_KEY_RUNS_REVERSED = re.compile(r"""[=:]\s*["']?([A-Za-z0-9_.\-]+)""")


# ---------------------------------------------------------------------------------------
# Key matching.
# ---------------------------------------------------------------------------------------
_CAMEL = re.compile(r"([a-z])([A-Z])")
_NON_LETTERS = re.compile(r"[^a-z]+")


def key_words(key: str) -> list[str]:
    """``'X-Api-Key'`` → ``['x', 'api', 'key']``; ``'newPassword1'`` → ``['new', 'password']``."""
    return [w for w in _NON_LETTERS.split(_CAMEL.sub(r"\1_\2", key).lower()) if w]


@dataclass(frozen=True)
class KeyMatcher:
    long_terms: tuple[tuple[str, str], ...]  # (compact term, rule name)
    short_terms: dict[str, str]  # whole word → rule name

    def rule_for(self, key: str) -> str | None:
        words = key_words(key)
        compact = "".join(words)
        for term, rule in self.long_terms:
            if term in compact:
                return rule
        for word in words:
            rule = self.short_terms.get(word)
            if rule:
                return rule
        return None


# ---------------------------------------------------------------------------------------
# Paths and query strings.
# ---------------------------------------------------------------------------------------
PATH_TOKEN, PATH_ANY = "<token>", "<any>"
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# "/" as it appears in text: plain, JSON-escaped, percent-encoded once or twice.
_SEP = r"(?:\\?/|%(?:25)?2[Ff])"
# One segment: up to a separator (also an encoded one), query, fragment, quote or space.
_SEGMENT = r"""(?:[^/?#&%\s"'<>\\]|%(?!(?:25)?2[Ff]|3[Ff]|23|26)[0-9A-Fa-f]{2})+"""


def path_segments(pattern: object) -> list[str]:
    """``"/app/invite/<token>"`` → ``["app", "invite", "<token>"]``. Raises
    :class:`PolicyError` unless the pattern is absolute, its segments are literal words,
    ``<token>`` or ``<any>``, and at least one is ``<token>``."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise PolicyError(f"path pattern {pattern!r} must be a string starting with '/'")
    segments = pattern[1:].split("/")
    for segment in segments:
        if segment not in (PATH_TOKEN, PATH_ANY) and not _LITERAL_SEGMENT.fullmatch(segment):
            raise PolicyError(f"path pattern {pattern!r}: segment {segment!r} is not a "
                              f"literal ([A-Za-z0-9._~-]+), {PATH_TOKEN} or {PATH_ANY}")
    if PATH_TOKEN not in segments:
        raise PolicyError(f"path pattern {pattern!r} has no {PATH_TOKEN} segment")
    return segments


@dataclass(frozen=True)
class PathRedactor:
    """One path rule compiled: every ``<token>`` segment is group ``t<n>``."""

    name: str
    action: str
    patterns: tuple[tuple[str, ...], ...]  # segments of each pattern
    regex: re.Pattern
    words: tuple[str, ...]  # substrings a matching text must contain (the cheap pre-check)

    @classmethod
    def compile(cls, rule: dict) -> PathRedactor:
        name = rule["name"]
        patterns = tuple(tuple(path_segments(p)) for p in rule["patterns"])
        fresh = rf"(?!\[REDACTED|{re.escape(name)}:)"  # already redacted (idempotent)
        alternatives, words, groups = [], set(), 0
        for segments in patterns:
            parts = []
            for segment in segments:
                if segment == PATH_TOKEN:
                    parts.append(rf"{_SEP}(?P<t{groups}>{fresh}{_SEGMENT})")
                    groups += 1
                elif segment == PATH_ANY:
                    parts.append(_SEP + _SEGMENT)
                else:
                    parts.append(_SEP + re.escape(segment))
            alternatives.append("".join(parts))
            literals = segments[:segments.index(PATH_TOKEN)]
            literals = [s for s in literals if s != PATH_ANY]
            words.add(literals[-1] if literals else "")
        return cls(name, rule["action"], patterns,
                   re.compile("|".join(f"(?:{a})" for a in alternatives)),
                   tuple(sorted(words)))

    def needs(self, text: str) -> bool:
        for word in self.words:  # noqa: SIM110 — any() over a generator costs twice this
            if word in text:
                return True
        return False


# A query parameter in text: ``?key=`` / ``&key=``, or percent-encoded (once or twice)
# inside another URL's parameter (``%3Fkey%3D``, ``%26key%3D``, ``%253Fkey%253D``). Only
# the key is matched: the scan goes on inside a value that is kept, so a nested
# ``next=/x?q=...`` is seen as well. (Two regexes that start with a character class or a
# literal: an alternation at the start is slow.)
_RAW_PARAM = re.compile(r"[?&](?P<k>[A-Za-z0-9_.\-\[\]]{1,64})=")
_RAW_VALUE = re.compile(r"""[^&#\s"'<>]*""")
_ENCODED_PARAM = re.compile(
    r"%(?:25)?(?:3[Ff]|26)(?P<k>[A-Za-z0-9_.\-\[\]]{1,64})%(?:25)?3[Dd]")
_ENCODED_VALUE = re.compile(
    r"""(?:[^&#%\s"'<>]|%(?!26|23)[0-9A-Fa-f]{2}|%(?![0-9A-Fa-f]{2}))*""")


def _query_needed(text: str) -> bool:
    return ("=" in text and ("?" in text or "&" in text)) or "%3" in text or "%253" in text


# ---------------------------------------------------------------------------------------
# The compiled policy.
# ---------------------------------------------------------------------------------------
Hasher = Callable[[str], str]


_PROCESS_SALT = secrets.token_bytes(32)


def _local_hasher(value: str) -> str:
    # Only used before a keyed hasher is installed (tests of the policy alone): an unkeyed
    # digest would let anyone confirm a guess, so it is salted per process.
    return hmac.new(_PROCESS_SALT, value.encode(), hashlib.sha256).hexdigest()


@dataclass
class Policy:
    """A validated policy. ``redact`` applies it to any value (dict, list, str, ...)."""

    rules: dict[str, dict]
    matcher: KeyMatcher
    detectors: tuple[tuple[Detector, str], ...]  # (detector, action) in order
    hasher: Hasher = _local_hasher
    # Any compact key term (over the text's letters): key=value text without one cannot
    # hold a sensitive key, so the key_value regex is skipped.
    key_terms: re.Pattern = re.compile(r"(?!)")
    paths: tuple[PathRedactor, ...] = ()
    query_matcher: KeyMatcher = KeyMatcher((), {})
    query_detectors: tuple[tuple[Detector, str], ...] = ()  # (detector, query rule name)
    _key_cache: dict[str, str | None] = field(default_factory=dict, repr=False)
    _query_cache: dict[str, str | None] = field(default_factory=dict, repr=False)
    # reversed key-like run (≤ 32 characters: key names, not base64 tokens) → do its
    # letters hold a key term (the key_value pre-check)
    _run_cache: dict[str, bool] = field(default_factory=dict, repr=False)

    def key_action(self, key: str) -> tuple[str, str] | None:
        """(rule name, action) when ``key`` names a sensitive value, else None."""
        try:
            rule = self._key_cache[key]
        except KeyError:
            rule = self.matcher.rule_for(key)
            if len(self._key_cache) < 8192:
                self._key_cache[key] = rule
        return (rule, self.rules[rule]["action"]) if rule else None

    def query_action(self, key: str, value: str) -> tuple[str, str] | None:
        """(rule name, action) when query parameter ``key=value`` (decoded) carries
        personal data under the query rules: by its key, or a detector match in its
        value. Sensitive keys under the key rules are :meth:`key_action`'s business."""
        rule = self._query_rule(key) or self._detected(value, self.query_detectors)
        return (rule, self.rules[rule]["action"]) if rule else None

    def _query_rule(self, key: str) -> str | None:
        try:
            return self._query_cache[key]
        except KeyError:
            rule = self.query_matcher.rule_for(key)
            if len(self._query_cache) < 8192:
                self._query_cache[key] = rule
            return rule

    @staticmethod
    def _detected(value: str, detectors: Iterable[tuple[Detector, str]]) -> str | None:
        for detector, name in detectors:
            if detector.needs(value) and any(
                    detector.validate is None or detector.validate(m)
                    for m in detector.pattern.finditer(value)):
                return name
        return None

    def redact_query(self, query: str) -> str:
        """A raw query string with every parameter redacted: sensitive keys (key rules)
        and personal data (query rules) replace the value whole, other values (and keys)
        go through the detectors. Returned re-encoded, with ``/ [ ] : *`` left readable."""
        pairs = []
        for key, value in parse_qsl(query, keep_blank_values=True):
            found = (self.key_action(key) or self.query_action(key, value)) if value else None
            if found is not None and found[1] == "remove":
                continue
            # A key is a name, but one can be personal data too (``?bob@example.com=1``).
            key_found = self.query_action("", key)
            safe_key = self.redact_text(key) if key_found is None else \
                self.apply_action(*key_found, key) or ""
            pairs.append((safe_key, self.redact_text(value) if found is None
                          else self.apply_action(*found, value)))
        return urlencode(pairs, safe="/[]:*")

    def apply_action(self, name: str, action: str, value: str) -> str | None:
        if action == "remove":
            return None
        if action == "mask":
            return "*" * max(0, min(len(value) - 4, 12)) + value[-4:] if len(value) > 8 \
                else f"[REDACTED:{name}]"
        if action == "hash":
            return f"{name}:{self.hasher(value)[:10]}"
        return f"[REDACTED:{name}]"

    def __post_init__(self) -> None:
        # (cheap necessary condition, function of the text) in order: path rules, query
        # rules, then the detectors; the key_value detector's condition also needs a key
        # term in a key-like run of the text.
        gated: list[tuple[Callable[[str], bool], Callable[[str], str]]] = [
            (path.needs, functools.partial(path.regex.sub,
                                           functools.partial(self._substitute_path, path)))
            for path in self.paths]
        if self.query_matcher.long_terms or self.query_matcher.short_terms \
                or self.query_detectors:
            gated.append((_query_needed, self._redact_query_text))
        gated += [
            (self._key_value_needed if detector.name == "key_value" else detector.needs,
             functools.partial(detector.pattern.sub,
                               functools.partial(self._substitute, detector, action)))
            for detector, action in self.detectors]
        self._gated = tuple(gated)

    def _key_value_needed(self, text: str) -> bool:
        if "=" not in text and ":" not in text:
            return False
        cache = self._run_cache
        for run in _KEY_RUNS_REVERSED.findall(text[::-1]):
            try:
                found = cache[run]
            except KeyError:
                found = self.key_terms.search(run[::-1].lower().translate(_LETTERS_ONLY))
                found = found is not None
                if len(run) <= 32 and len(cache) < 8192:  # key names, not long tokens
                    cache[run] = found
            if found:
                return True
        return False

    def redact_text(self, text: str) -> str:
        """Run every value detector over ``text``; returns the redacted text.

        A detector's regex only runs when its cheap necessary condition holds (a literal
        it cannot match without, or a key term for key_value), so a clean message costs a
        few substring tests.
        """
        for needed, redact in self._gated:
            if needed(text):
                text = redact(text)
        return text

    def _substitute_path(self, path: PathRedactor, match: re.Match) -> str:
        whole, base = match.group(0), match.start()
        out, last = [], 0
        spans = sorted(match.span(g) for g, v in match.groupdict().items() if v is not None)
        for start, end in spans:
            out.append(whole[last:start - base])
            out.append(self.apply_action(path.name, path.action, whole[start - base:end - base])
                       or "")
            last = end - base
        out.append(whole[last:])
        return "".join(out)

    def _redact_query_text(self, text: str) -> str:
        if "=" in text and ("?" in text or "&" in text):
            text = self._scan_query(text, _RAW_PARAM, _RAW_VALUE)
        if "%3" in text or "%253" in text:
            text = self._scan_query(text, _ENCODED_PARAM, _ENCODED_VALUE)
        return text

    def _scan_query(self, text: str, params: re.Pattern, values: re.Pattern) -> str:
        # Value detectors that cannot match anywhere in the (decoded) text are not tried
        # per value. Values are decoded twice: a nested URL's parameters are encoded twice.
        plain = unquote(unquote(text)) if "%" in text else text
        detectors = [(d, n) for d, n in self.query_detectors if d.needs(plain)]
        if not detectors:  # only keys can matter: the common, clean URL costs one findall
            rule_for = self._query_rule
            for key in params.findall(text):
                if rule_for(key) is not None:
                    break
            else:
                return text
        out, pos = [], 0
        for match in params.finditer(text):
            if match.start() < pos:
                continue  # inside a value already replaced
            rule = self._query_rule(match.group("k"))
            if rule is None and not detectors:
                continue
            end = values.match(text, match.end()).end()
            value = text[match.end():end]
            if not value or value.startswith("[REDACTED"):
                continue
            if rule is None:
                rule = self._detected(unquote(unquote(value)), detectors)
                if rule is None:
                    continue  # kept: the scan goes on inside it (a nested URL)
            out += (text[pos:match.end()],
                    self.apply_action(rule, self.rules[rule]["action"], value) or "")
            pos = end
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _substitute(self, detector: Detector, action: str, match: re.Match) -> str:
        if detector.validate is not None and not detector.validate(match):
            return match.group(0)
        group = _secret_group(match)
        secret = match.group(group) if group else match.group(0)
        if detector.name == "key_value":
            found = self.key_action(match.group("k"))
            if found is None:
                return match.group(0)
            name, key_rule_action = found
            action = max(action, key_rule_action, key=STRICTNESS.__getitem__)
        else:
            name = detector.name
        replacement = self.apply_action(name, action, secret)
        replacement = "" if replacement is None else replacement
        if not group:
            return replacement
        start, end = match.span(group)
        base = match.start(0)
        whole = match.group(0)
        return whole[: start - base] + replacement + whole[end - base:]

    def redact(self, value: object, _depth: int = 0) -> object:
        """Redact a value of any shape. Dict keys decide first; strings then go through
        the detectors. Containers deeper than 20 levels are replaced whole."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            if _depth > MAX_DEPTH:
                return DEPTH_PLACEHOLDER
            return self._redact_mapping(value, _depth)
        if isinstance(value, list | tuple | set | frozenset):
            if _depth > MAX_DEPTH:
                return DEPTH_PLACEHOLDER
            return [self.redact(v, _depth + 1) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, bytes):
            return self.redact_text(value.decode("utf-8", "replace"))
        return self.redact_text(safe_str(value))

    def _redact_mapping(self, mapping: dict, depth: int) -> dict:
        out = {}
        for key, val in mapping.items():
            found = self.key_action(str(key)) if val is not None and val != "" else None
            if found is None:
                out[key] = self.redact(val, depth + 1)
                continue
            rule, action = found
            if action == "remove":
                continue
            out[key] = self.apply_action(rule, action, _as_json_text(val))
        return out


# Containers nested deeper than this are replaced whole, and so is any value too deep to
# turn into text (str()/json.dumps recurse and would raise RecursionError in the logger).
MAX_DEPTH = 20
DEPTH_PLACEHOLDER = "[REDACTED:depth]"


def safe_str(value: object) -> str:
    """``str(value)``, or the placeholder when the value is too deep (or too odd) to print."""
    try:
        return str(value)
    except RecursionError:
        return DEPTH_PLACEHOLDER


def _as_json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):  # too deep, or a circular reference
        return DEPTH_PLACEHOLDER


_SECRET_GROUPS = ("v", "qv")


def _secret_group(match: re.Match) -> str | None:
    groups = match.re.groupindex
    for name in _SECRET_GROUPS:
        if name in groups and match.group(name) is not None:
            return name
    return None


def _validate_rule(rule: object, index: int) -> dict:
    if not isinstance(rule, dict):
        raise PolicyError(f"rule {index} is not a table/dict")
    kind = rule.get("type")
    if kind not in _RULE_FIELDS:
        raise PolicyError(f"rule {index}: unknown rule type {kind!r} "
                          f"(known: {', '.join(_RULE_FIELDS)})")
    unknown = set(rule) - _RULE_FIELDS[kind]
    if unknown:
        raise PolicyError(f"rule {index}: unknown field(s) {', '.join(sorted(unknown))}")
    name = rule.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"rule {index}: 'name' must be a non-empty string")
    if rule.get("action") not in ACTIONS:
        raise PolicyError(f"rule {name!r}: unknown action {rule.get('action')!r} "
                          f"(known: {', '.join(ACTIONS)})")
    if kind == "detector" and name not in DETECTORS:
        raise PolicyError(f"rule {name!r}: unknown detector (known: {', '.join(DETECTORS)})")
    if kind in ("key", "query"):
        terms = rule.get("terms")
        if not isinstance(terms, list) or not terms or not all(
                isinstance(t, str) and key_words(t) for t in terms):
            raise PolicyError(f"rule {name!r}: 'terms' must be a non-empty list of words")
    if kind == "query":
        names = rule.get("detectors", [])
        if not isinstance(names, list) or not all(n in DETECTORS for n in names):
            raise PolicyError(f"rule {name!r}: 'detectors' must be a list of detector names "
                              f"(known: {', '.join(DETECTORS)})")
    if kind == "path":
        patterns = rule.get("patterns")
        if not isinstance(patterns, list) or not patterns:
            raise PolicyError(f"rule {name!r}: 'patterns' must be a non-empty list of paths")
        for pattern in patterns:
            path_segments(pattern)
    return dict(rule)


# Lists a later level may extend (a tighter policy has more terms, patterns, detectors).
_EXTENSIBLE = ("terms", "patterns", "detectors")


def merge(levels: Iterable[list[dict]]) -> dict[str, dict]:
    """Merge rule lists in order; a later rule may add terms, patterns or detectors, or
    tighten the action, never loosen it."""
    merged: dict[str, dict] = {}
    index = 0
    for rules in levels:
        if not isinstance(rules, list):
            raise PolicyError("a policy level must be a list of rules")
        for raw in rules:
            rule = _validate_rule(raw, index)
            index += 1
            key = rule["name"]
            old = merged.get(key)
            if old is None:
                merged[key] = rule
                continue
            if old["type"] != rule["type"]:
                raise PolicyError(f"rule {key!r}: cannot change its type")
            if STRICTNESS[rule["action"]] < STRICTNESS[old["action"]]:
                raise PolicyError(f"rule {key!r}: cannot loosen {old['action']} to "
                                  f"{rule['action']} (levels only tighten)")
            for name in _EXTENSIBLE:
                if name in old or name in rule:
                    rule[name] = list(dict.fromkeys(old.get(name, []) + rule.get(name, [])))
            merged[key] = rule
    return merged


def _key_matcher(rules: Iterable[dict]) -> KeyMatcher:
    long_terms: list[tuple[str, str]] = []
    short_terms: dict[str, str] = {}
    for rule in rules:
        for term in rule["terms"]:
            compact = "".join(key_words(term))
            if len(compact) >= 5:
                long_terms.append((compact, rule["name"]))
            else:
                short_terms.setdefault(compact, rule["name"])
    return KeyMatcher(tuple(long_terms), short_terms)


def build(levels: Iterable[list[dict]], hasher: Hasher | None = None) -> Policy:
    """Compile rule lists into a :class:`Policy`. Raises :class:`PolicyError` (fail closed)."""
    rules = merge(levels)
    of_type = {kind: [r for r in rules.values() if r["type"] == kind] for kind in _RULE_FIELDS}
    detectors = tuple((DETECTORS[r["name"]], r["action"]) for r in of_type["detector"])
    if not any(r["name"] == "key_value" for r in of_type["detector"]):
        raise PolicyError("the key_value detector may not be left out")
    return Policy(
        rules, _key_matcher(of_type["key"]), detectors, hasher or _local_hasher,
        _terms_pattern(of_type["key"]),
        paths=tuple(PathRedactor.compile(r) for r in of_type["path"]),
        query_matcher=_key_matcher(of_type["query"]),
        query_detectors=tuple((DETECTORS[name], r["name"]) for r in of_type["query"]
                              for name in r.get("detectors", ())))


_LETTERS_ONLY = {ord(c): None for c in string.digits + string.punctuation + string.whitespace}


def _terms_pattern(key_rules: list[dict]) -> re.Pattern:
    """A pre-check over the text's letters only (lowercased): does any compact key term
    occur? A sensitive key is a run of the text, so its letters — and the term they
    contain — survive; a false hit only costs running the key_value regex."""
    terms = {"".join(key_words(term)) for rule in key_rules for term in rule["terms"]}
    return re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)))


def load(level: str = "standard", policy_file: Path | None = None,
         hasher: Hasher | None = None) -> Policy:
    """The policy for a deployment: base rules, strict rules, then the operator's file."""
    if level not in ("standard", "strict"):
        raise PolicyError(f"unknown redaction level {level!r} (standard or strict)")
    levels = [RULES]
    if level == "strict":
        levels.append(STRICT_RULES)
    if policy_file is not None:
        try:
            extra = json.loads(policy_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PolicyError(f"cannot read {policy_file}: {exc}") from None
        levels.append(extra)
    return build(levels, hasher)
