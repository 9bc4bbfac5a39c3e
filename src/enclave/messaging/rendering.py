"""Compiling and personalising email templates, in a sandbox.

A template is compiled once, when it is saved (:func:`compile_template`): its Liquid is
parsed (syntax errors name the line), every merge field it reads is checked against what
a template may see (:func:`allowed_fields`), MJML becomes HTML (``mrml``, includes
refused), the CSS is inlined (``css-inline``, remote stylesheets never fetched), and the
result is rendered once with a sample person, so a template that breaks a limit is
refused when it is saved rather than when it is sent.

Personalising (:func:`render`) runs the compiled HTML and the subject through Liquid with
limits set (:class:`Sandbox`): loop iterations, output size, the size of what a template
may assign, nesting depth and wall-clock time; no ``include`` / ``render`` (no file or
template loading) and no ``safe`` filter (every value is HTML-escaped in the body). The
context holds only plain values: the person's fields as the caller may see them
(:func:`person_context` goes through the one visibility formatter, so a preview by a
role that sees masked values shows masked values — the template can never read more
than its viewer), the account's name and the person's own links. The plain-text part is
made from the rendered HTML (:mod:`enclave.messaging.text`).

Errors are :class:`TemplateError` with the field (``subject`` or ``source``) and one
clear line; nothing from Liquid's internals or the person's data goes into it.
"""

from __future__ import annotations

import contextvars
import functools
import time
from dataclasses import dataclass

import css_inline
import mrml
from liquid import BoundTemplate, Environment, RenderContext
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    UnknownFilterError,
)

from enclave.messaging import text
from enclave.messaging.models import HTML, KINDS, MJML

MAX_SOURCE = 256_000  # characters of MJML or HTML
MAX_SUBJECT = 255
LOOP_LIMIT = 10_000  # iterations, nested loops multiplied
OUTPUT_LIMIT = 2_000_000  # characters of rendered HTML
NAMESPACE_LIMIT = 100_000  # what a template may hold in assigned variables
RENDER_SECONDS = 1.0
LINKS = ("unsubscribe_url", "preferences_url")
SAMPLE = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
          "company": "Analytical Engines Ltd", "country": "GB"}

_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("liquid_deadline",
                                                                  default=0.0)


class TemplateError(ValueError):
    """A template that cannot be compiled or rendered: ``field`` and one clear line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class RenderTimeout(LiquidError):
    pass


class _Context(RenderContext):
    def raise_for_loop_limit(self, length: int = 1) -> None:
        # Called as each loop starts (inner loops once per outer iteration): the clock
        # is checked there, since loops are the only way a short template runs long.
        super().raise_for_loop_limit(length)
        deadline = _DEADLINE.get()
        if deadline and time.monotonic() > deadline:
            raise RenderTimeout("the template took too long to render", token=None)


class _Template(BoundTemplate):
    context_class = _Context


class Sandbox(Environment):
    """Liquid with its limits set and every way out removed."""

    template_class = _Template
    loop_iteration_limit = LOOP_LIMIT
    output_stream_limit = OUTPUT_LIMIT
    local_namespace_limit = NAMESPACE_LIMIT
    context_depth_limit = 10
    block_nesting_limit = 30

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in ("include", "render"):  # would load other templates
            self.tags.pop(tag, None)
        self.filters.pop("safe", None)  # would let a value skip HTML escaping


_HTML_ENV = Sandbox(autoescape=True)
_TEXT_ENV = Sandbox(autoescape=False)


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def _first_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return (str(message).splitlines() or ["invalid template"])[0].strip()


def _located(exc: LiquidError, source: str) -> str:
    token = getattr(exc, "token", None)
    start = getattr(token, "start_index", None)
    where = "" if start is None else f" (line {source.count(chr(10), 0, start) + 1})"
    return f"{_first_line(exc)}{where}"


@functools.lru_cache(maxsize=64)
def _cached(autoescape: bool, source: str) -> BoundTemplate:
    # Sending renders the same template for every recipient: parse it once per process.
    return (_HTML_ENV if autoescape else _TEXT_ENV).from_string(source)


def _parse(env: Environment, source: str, field: str) -> BoundTemplate:
    try:
        return _cached(env.autoescape, source)
    except LiquidError as exc:
        raise TemplateError(field, f"Liquid: {_located(exc, source)}") from None
    except RecursionError:
        raise TemplateError(field, "Liquid: the template is nested too deeply") from None


def allowed_fields(definitions=()) -> frozenset[str]:
    """The merge fields a template may read: ``person.<built-in field>``,
    ``person.custom.<key>`` for the account's custom fields, ``account.name`` and the
    person's own links."""
    from enclave.people import visibility

    return frozenset({f"person.{f}" for f in visibility.FIELD_LABELS}
                     | {f"person.custom.{d.key}" for d in definitions}
                     | {"account.name", *LINKS})


def _check_fields(parsed: BoundTemplate, field: str, allowed: frozenset[str]) -> None:
    # Static analysis: every path the template reads from outside itself. A path whose
    # part is computed (``person[key]``) can only reach keys the context holds, which
    # are the allowed ones; the literal prefix is still checked.
    for segments in parsed.global_variable_segments():
        literal = []
        for part in segments:
            if not isinstance(part, str):
                break
            literal.append(part)
        path = ".".join(literal)
        if not path or not any(a == path or a.startswith(path + ".") for a in allowed):
            shown = path or "a computed name"
            raise TemplateError(field, f"Unknown merge field {shown}; templates may use "
                                       "person.<field>, person.custom.<key>, account.name, "
                                       "unsubscribe_url and preferences_url.")


def _to_html(kind: str, source: str) -> str:
    if kind == MJML:
        try:
            options = mrml.ParserOptions(include_loader=mrml.noop_loader())
            source = mrml.to_html(source, parser_options=options).content
        except (OSError, ValueError) as exc:
            raise TemplateError("source", f"MJML: {_first_line(exc)}") from None
    try:
        return css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True,
                                     keep_at_rules=True).inline(source)
    except ValueError as exc:
        raise TemplateError("source", f"CSS: {_first_line(exc)}") from None


def compile_template(kind: str, subject: str, source: str, definitions=()) -> str:
    """The HTML to store for ``source``; :class:`TemplateError` when it is not a usable
    template (see the module docstring for every check)."""
    if kind not in KINDS:
        raise TemplateError("kind", f"Choose {MJML} or {HTML}.")
    subject, source = str(subject or ""), str(source or "")
    if not subject.strip():
        raise TemplateError("subject", "Give the email a subject.")
    if len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
        raise TemplateError("subject", f"At most {MAX_SUBJECT} characters on one line.")
    if not source.strip():
        raise TemplateError("source", "The template is empty.")
    if len(source) > MAX_SOURCE or "\x00" in source:
        raise TemplateError("source", f"At most {MAX_SOURCE:,} characters, no NUL.")
    allowed = allowed_fields(definitions)
    _check_fields(_parse(_TEXT_ENV, subject, "subject"), "subject", allowed)
    _check_fields(_parse(_HTML_ENV, source, "source"), "source", allowed)
    compiled = _to_html(kind, source)
    # The compiler only moves the Liquid around; parse what will actually run.
    _parse(_HTML_ENV, compiled, "source")
    render(subject, compiled, sample_context(definitions))  # limits, at save time
    return compiled


def sample_context(definitions=()) -> dict:
    person = {f: SAMPLE.get(f, "") for f in _person_fields()}
    person["custom"] = {d.key: "" for d in definitions}
    return {"person": person, "account": {"name": "Your company"},
            "unsubscribe_url": "https://example.com/unsubscribe",
            "preferences_url": "https://example.com/preferences"}


def _person_fields():
    from enclave.people import visibility

    return visibility.FIELD_LABELS


def person_context(person, perms, definitions=()) -> dict:
    """The ``person`` a template sees: every allowed field as THE formatter shows it to
    ``perms`` (hidden → empty, masked → the mask)."""
    from enclave.people import visibility

    shown = {f: visibility.display(person, f, perms, definitions) for f in _person_fields()}
    custom = {d.key: visibility.display(person, f"custom.{d.key}", perms, definitions)
              for d in definitions}
    return {**{f: s.text for f, s in shown.items()},
            "custom": {k: s.text for k, s in custom.items()}}


# Rendering errors are told by kind, never by Liquid's message: that may quote a value,
# and values are people's data.
_RUNTIME = (
    (LoopIterationLimitError, f"loops would run more than {LOOP_LIMIT:,} times"),
    (OutputStreamLimitError, f"the email would be longer than {OUTPUT_LIMIT:,} characters"),
    (LocalNamespaceLimitError, "assigned and captured values are too large"),
    (ContextDepthError, "the template is nested too deeply"),
    (RenderTimeout, f"the template takes longer than {RENDER_SECONDS:g} s to render"),
)


def _runtime_message(exc: LiquidError, source: str) -> str:
    for kind, message in _RUNTIME:
        if isinstance(exc, kind):
            return f"Liquid: {message}"
    token = getattr(exc, "token", None)
    start = getattr(token, "start_index", None)
    where = "" if start is None else f" on line {source.count(chr(10), 0, start) + 1}"
    if isinstance(exc, UnknownFilterError):  # names the filter, never a value
        return f"Liquid: {_first_line(exc)}{where}"
    return f"Liquid: a tag or filter{where} cannot use the value it was given"


def _run(parsed: BoundTemplate, context: dict, field: str, source: str) -> str:
    token = _DEADLINE.set(time.monotonic() + RENDER_SECONDS)
    try:
        return parsed.render(**context)
    except LiquidError as exc:
        raise TemplateError(field, _runtime_message(exc, source)) from None
    except RecursionError:
        raise TemplateError(field, "Liquid: the template is nested too deeply") from None
    finally:
        _DEADLINE.reset(token)


def render(subject: str, compiled: str, context: dict) -> Rendered:
    """Subject, HTML and plain text for one recipient (``context``: see
    :func:`sample_context` / :func:`person_context`)."""
    subject_out = _run(_parse(_TEXT_ENV, subject, "subject"), context, "subject", subject)
    html = _run(_parse(_HTML_ENV, compiled, "source"), context, "source", compiled)
    return Rendered(" ".join(subject_out.split())[:998], html, text.from_html(html))
