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
import re
import secrets
import time
from collections.abc import Mapping, Sized
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
from liquid.utils.chain_map import ReadOnlyChainMap

from enclave.messaging import isolation, text
from enclave.messaging.models import HTML, KINDS, MJML

# Characters of MJML or HTML. Gmail clips a message past ~100 KB; and at the worst JSON
# encoding (12 bytes a character) a source this long still fits the default request body
# limit, so the API's schema never calls valid a body the server must refuse.
MAX_SOURCE = 100_000
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
        super().__init__(field, message)  # both, so it can be rebuilt from its args
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message


class RenderTimeout(LiquidError):
    pass


class SandboxLimit(LiquidError):
    """A filter's input or result is past the sandbox's size limits."""


MAX_INT_BITS = 1024  # numbers beyond ~308 digits are no email's business
MAX_ITEMS = 100_000  # list items a filter may take or make


def _check_value(value) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SandboxLimit("a number is too large", token=None)
    if isinstance(value, str):
        if len(value) > OUTPUT_LIMIT:
            raise SandboxLimit("a text is too long", token=None)
    elif isinstance(value, Sized) and not isinstance(value, Mapping):
        # Lists, tuples and ranges: their length, and the text their items hold.
        if len(value) > MAX_ITEMS:
            raise SandboxLimit("a list is too long", token=None)
        if sum(len(v) for v in value if isinstance(v, str)) > OUTPUT_LIMIT:
            raise SandboxLimit("a list holds too much text", token=None)


_DATE_WIDTH = re.compile(r"%[-_0^#]*\d")


def _check_date(value, args) -> None:
    # ``date`` reads the server's clock for "now"/"today", and a width in its format
    # (%500000000Y) makes the C library pad a field to any size.
    if isinstance(value, str) and value.strip().lower() in ("now", "today"):
        raise SandboxLimit("the server's clock is not available", token=None)
    if any(isinstance(a, str) and (_DATE_WIDTH.search(a) or len(a) > 200) for a in args):
        raise SandboxLimit("a date format may not set widths", token=None)


def _check_deadline() -> None:
    deadline = _DEADLINE.get()
    if deadline and time.monotonic() > deadline:
        raise RenderTimeout("the template took too long to render", token=None)


_MULTIPLYING = frozenset({"replace", "replace_first", "replace_last"})


def _guarded(name: str, func):
    """Filter ``func`` with the clock checked and sizes bounded before and after; the
    worst-case result must fit the output limit before it is computed (a replace can
    multiply its input by its argument's length; other filters add)."""

    def guarded(value, *args, **kwargs):
        _check_deadline()
        if name == "date":
            _check_date(value, args)
        _check_value(value)
        for arg in args:
            _check_value(arg)
        size = len(value) if isinstance(value, str) else 0
        texts = [len(a) for a in args if isinstance(a, str)]
        worst = size * max([1, *texts]) if name in _MULTIPLYING else size + sum(texts)
        if worst > OUTPUT_LIMIT:
            raise SandboxLimit("a filter's result could be too long", token=None)
        result = func(value, *args, **kwargs)
        _check_value(result)
        return result

    return guarded


class _Context(RenderContext):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Without Liquid's built-in ``now`` / ``today``: the server's clock is nothing a
        # template needs, and nothing outside the context is reachable.
        self.scope = ReadOnlyChainMap(self.locals, self.globals, self.counters)

    def filter(self, name, token):
        return _guarded(name, super().filter(name, token))

    def raise_for_loop_limit(self, length: int = 1) -> None:
        # Called as each loop starts (inner loops once per outer iteration); filters check
        # the clock too (_guarded), so neither loops nor filter chains run long.
        super().raise_for_loop_limit(length)
        _check_deadline()


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


DATA = "data"


def allowed_fields(definitions=()) -> frozenset[str]:
    """The merge fields a template may read: ``person.<built-in field>``,
    ``person.custom.<key>`` for the account's custom fields, ``account.name``, the
    person's own links and ``data.<anything>`` (``DATA``: the variables a transactional
    send passes; empty in a broadcast). A name ending in ``.*`` allows every path under
    it."""
    from enclave.people import visibility

    return frozenset({f"person.{f}" for f in visibility.FIELD_LABELS}
                     | {f"person.custom.{d.key}" for d in definitions}
                     | {"account.name", f"{DATA}.*", *LINKS})


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
        if not path or not any(a == path or a.startswith(path + ".")
                               or (a.endswith(".*") and (path + ".").startswith(a[:-1]))
                               for a in allowed):
            shown = path or "a computed name"
            raise TemplateError(field, f"Unknown merge field {shown}; templates may use "
                                       "person.<field>, person.custom.<key>, account.name, "
                                       "data.<key>, unsubscribe_url and preferences_url.")


_LIQUID_SPAN = re.compile(r"{%-?\s*raw\s*-?%}.*?{%-?\s*endraw\s*-?%}|{%.*?%}|{{.*?}}",
                          re.DOTALL)


def _protect(source: str) -> tuple[str, dict[str, str]]:
    """``source`` with every Liquid span swapped for a placeholder the compilers keep as
    it is — an HTML comment between elements (comments stay in place, even inside a
    table), a plain token inside a tag's attributes — so neither compiler escapes a
    ``>`` in a condition, decodes entities into Liquid, or moves a tag. Returns the text
    and the placeholders' spans."""
    nonce = secrets.token_hex(4)
    spans: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        before = source[:match.start()]
        in_tag = before.rfind("<") > before.rfind(">")
        key = f"lq{nonce}n{len(spans)}q"
        spans[key if in_tag else f"<!--{key}-->"] = match.group(0)
        return key if in_tag else f"<!--{key}-->"

    return _LIQUID_SPAN.sub(placeholder, source), spans


def _restore(compiled: str, spans: dict[str, str], source: str) -> str:
    for placeholder, span in spans.items():
        found = compiled.count(placeholder)
        # A value in an attribute may be copied (a button's link for Outlook's markup);
        # a tag between elements must stay exactly once, or its blocks would not pair.
        if found == 0 or (found > 1 and placeholder.startswith("<!--")):
            line = source.count("\n", 0, source.find(span)) + 1
            raise TemplateError("source", f"The Liquid on line {line} cannot stay where it "
                                          "is in the compiled HTML; put it inside an "
                                          "element's text or an attribute.")
        compiled = compiled.replace(placeholder, span)
    return compiled


def _to_html(kind: str, source: str) -> str:
    protected, spans = _protect(source)
    if kind == MJML:
        try:
            options = mrml.ParserOptions(include_loader=mrml.noop_loader())
            protected = mrml.to_html(protected, parser_options=options).content
        except (OSError, ValueError) as exc:
            raise TemplateError("source", f"MJML: {_first_line(exc)}") from None
        _check_size(protected)
    try:
        inlined = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True,
                                        keep_at_rules=True).inline(protected)
    except ValueError as exc:
        raise TemplateError("source", f"CSS: {_first_line(exc)}") from None
    _check_size(inlined)
    return _restore(inlined, spans, source)


def _check_size(html: str) -> None:
    if len(html) > OUTPUT_LIMIT:
        raise TemplateError("source", f"Compiled, the template would be longer than "
                                      f"{OUTPUT_LIMIT:,} characters.")


def compile_template(kind: str, subject: str, source: str, definitions=()) -> str:
    """The HTML to store for ``source``; :class:`TemplateError` when it is not a usable
    template (see the module docstring for every check). The work runs in a limited child
    process (``messaging.isolation``): a template that crashes a compiler or exhausts a
    limit there is refused like any other."""
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
    try:
        return isolation.run(_compile, kind, subject, source,
                             sorted(allowed_fields(definitions)), sample_context(definitions),
                             expected=TemplateError)
    except isolation.Failed:
        raise TemplateError("source", TOO_COSTLY) from None


TOO_COSTLY = ("The template is too large, too deeply nested or too costly to compile; "
              "simplify it.")


def _compile(kind: str, subject: str, source: str, allowed: list[str], sample: dict) -> str:
    """In the limited child: every check, then the compiled HTML."""
    allowed_set = frozenset(allowed)
    _check_fields(_parse(_TEXT_ENV, subject, "subject"), "subject", allowed_set)
    _check_fields(_parse(_HTML_ENV, source, "source"), "source", allowed_set)
    _check_depth(source)
    compiled = _to_html(kind, source)
    # The compilers may rewrite text (entities decoded, elements moved): what will run is
    # the compiled HTML, so that is what the merge-field check must pass too.
    _check_fields(_parse(_HTML_ENV, compiled, "source"), "source", allowed_set)
    render(subject, compiled, sample)  # limits, at save time
    return compiled


MAX_DEPTH = 100
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)\b[^>]*?(/?)>")
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                   "meta", "source", "track", "wbr", "mj-image", "mj-divider",
                   "mj-spacer", "mj-include", "mj-all", "mj-class", "mj-breakpoint",
                   "mj-font", "mj-preview", "mj-title"})


def _check_depth(source: str) -> None:
    """Refuse elements nested deeper than ``MAX_DEPTH`` (the compilers are recursive
    native code; far deeper nesting overflows their stack — the child process contains
    that too, this says why). A closing tag counts only when it closes an open element,
    as a parser reads it."""
    stack: list[str] = []
    for closing, name, self_closing in _TAG.findall(source):
        name = name.lower()
        if closing:
            if name in stack:
                while stack.pop() != name:
                    pass
        elif not self_closing and name not in _VOID:
            stack.append(name)
            if len(stack) > MAX_DEPTH:
                raise TemplateError("source",
                                    f"Elements are nested more than {MAX_DEPTH} deep.")


def sample_context(definitions=()) -> dict:
    person = {f: SAMPLE.get(f, "") for f in person_fields()}
    person["custom"] = {d.key: "" for d in definitions}
    return {"person": person, "account": {"name": "Your company"}, DATA: {},
            "unsubscribe_url": "https://example.com/unsubscribe",
            "preferences_url": "https://example.com/preferences"}


def person_fields():
    from enclave.people import visibility

    return visibility.FIELD_LABELS


def person_context(person, perms, definitions=()) -> dict:
    """The ``person`` a template sees: every allowed field as THE formatter shows it to
    ``perms`` (hidden → empty, masked → the mask)."""
    from enclave.people import visibility

    shown = {f: visibility.display(person, f, perms, definitions) for f in person_fields()}
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
    (SandboxLimit, "a filter's value or result is too large"),
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
    except Exception:  # noqa: BLE001 — a filter's own failure on a value (overflow, ...)
        raise TemplateError(field, "Liquid: a tag or filter cannot use the value it was "
                                   "given") from None
    finally:
        _DEADLINE.reset(token)


def render(subject: str, compiled: str, context: dict) -> Rendered:
    """Subject, HTML and plain text for one recipient (``context``: see
    :func:`sample_context` / :func:`person_context`)."""
    subject_out = _run(_parse(_TEXT_ENV, subject, "subject"), context, "subject", subject)
    html = _run(_parse(_HTML_ENV, compiled, "source"), context, "source", compiled)
    try:
        plain = text.from_html(html)
    except Exception:  # noqa: BLE001 — html.parser on hostile markup (an AssertionError)
        raise TemplateError("source", "The HTML cannot be turned into plain text; check "
                                      "its markup.") from None
    return Rendered(_one_line(subject_out), html, plain)


PREVIEW_CPU_SECONDS = 3
PREVIEW_MEMORY_BYTES = 512 << 20


def _render_fields(subject: str, compiled: str, context: dict) -> list[str]:
    out = render(subject, compiled, context)
    return [out.subject, out.html, out.text]


def render_isolated(subject: str, compiled: str, context: dict) -> Rendered:
    """:func:`render` in a limited child process (``messaging.isolation``): a template
    can branch on a value the save-time sample did not have, so a render for a real
    person is bounded by CPU and memory limits too, not by the sandbox's checks alone."""
    try:
        return Rendered(*isolation.run(_render_fields, subject, compiled, context,
                                       expected=TemplateError,
                                       cpu_seconds=PREVIEW_CPU_SECONDS,
                                       memory_bytes=PREVIEW_MEMORY_BYTES,
                                       wall_seconds=PREVIEW_CPU_SECONDS * 2))
    except isolation.Failed:
        raise TemplateError("source", "Rendering took too long or needed too much "
                                      "memory; simplify the template.") from None


BATCH_CPU_SECONDS = 30
BATCH_MEMORY_BYTES = 1 << 30


def _render_many(subject: str, compiled: str, contexts: list[dict]) -> list:
    out: list = []
    for context in contexts:
        try:
            rendered = render(subject, compiled, context)
        except TemplateError:
            out.append(None)
        else:
            out.append([rendered.subject, rendered.html, rendered.text])
    return out


def render_batch(subject: str, compiled: str, contexts: list[dict]) -> list[Rendered | None]:
    """Each context's rendering (None where this recipient's data makes the template
    fail), all in one limited child process; :class:`TemplateError` when the batch as a
    whole runs out of time or memory."""
    try:
        rows = isolation.run(_render_many, subject, compiled, contexts,
                             expected=TemplateError, cpu_seconds=BATCH_CPU_SECONDS,
                             memory_bytes=BATCH_MEMORY_BYTES,
                             wall_seconds=BATCH_CPU_SECONDS * 2)
    except isolation.Failed:
        raise TemplateError("source", "Rendering the batch took too long or needed too "
                                      "much memory.") from None
    return [None if row is None else Rendered(*row) for row in rows]


def _one_line(subject: str) -> str:
    """A header-safe subject: whitespace (CR, LF, U+2028, ...) collapsed, control
    characters dropped, at most 998 characters (RFC 5322's line limit)."""
    kept = "".join(ch for ch in subject if ch.isprintable() or ch.isspace())
    return " ".join(kept.split())[:998]
