"""Open and click tracking of broadcasts — off unless a broadcast asks for it
(``Broadcast.track_opens`` / ``track_clicks``).

* **Which links**: the template's literal ``https://`` links of ``<a>`` and ``<area>``
  elements (``literal_links``: an ``href`` with no Liquid in it), taken from its compiled
  HTML when the broadcast is queued and kept on the broadcast (``tracked_links``). A
  personalised link — the recipient's unsubscribe and preference links among them — is
  never rewritten, nor is text that merely looks like a link. A link's target never
  travels in the URL: a click on ``/t/c/<token>`` is redirected to the broadcast's own
  link of that number, so no URL can send a reader anywhere the template did not.
* **Tokens** carry no personal data: the broadcast's and the outbox row's ids, the
  link's number (or ``o`` for the open pixel), the keyring version and a keyed MAC
  (purpose ``tokens``) of them, in one canonical spelling. The version is fixed per
  broadcast when it is queued (``tracking_key_version``), so a rotation never breaks
  sent links and retiring the version waits ``LINKS_KEPT`` after the broadcast finished.
  A token that does not verify is a 404 (a click) or the pixel recording nothing (an
  open); failures are limited per address before any key is read (``track.invalid``).
* **Recording**: the first open of a message and the first click on each of its links
  become ``DeliveryEvent`` rows (``esp="enclave"``), erased with the person — only on
  GET (a HEAD is a link checker) and at most ``track.ip`` a client address; past that the
  reader still gets the pixel or the redirect, only the count misses it. Mail clients
  that fetch every image (Apple's Mail Privacy Protection) and mail-security scanners
  that follow every link (Safe Links and the like) make both counts an over-count.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import re

from django.conf import settings

from enclave.core import clock

# An <a> or <area> start tag's href, double-quoted as the template compilers write it.
_ANCHOR_HREF = re.compile(r'(<(?:a|area)\b[^>]*?\shref=")([^"]*)(")', re.IGNORECASE)
_LITERAL = re.compile(r"https://[^\s<>{}]+\Z")
MAX_LINKS = 100
OPEN = "o"
LINKS_KEPT = dt.timedelta(days=90)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TOKEN = re.compile(r"(\d{1,18})-(\d{1,18})-(o|\d{1,3})-(\d{1,6})-([A-Za-z0-9_-]{43})\Z")


def literal_links(compiled_html: str) -> list[str]:
    """The template's literal https links of <a>/<area>, in order, each once (as written
    in the HTML, entities included), at most ``MAX_LINKS``."""
    found: list[str] = []
    for _, url, _ in _ANCHOR_HREF.findall(compiled_html):
        if _LITERAL.match(url) and url not in found:
            found.append(url)
    return found[:MAX_LINKS]


def _message(broadcast_id: int, row_id: int, what: str) -> bytes:
    return f"track:{broadcast_id}:{row_id}:{what}".encode()


def _token(broadcast_id: int, row_id: int, what: str, version: int, tag: bytes) -> str:
    mac = base64.urlsafe_b64encode(tag).rstrip(b"=").decode()
    return f"{broadcast_id}-{row_id}-{what}-{version}-{mac}"


def add(html_text: str, *, broadcast_id: int, row_id: int, links: list[str], opens: bool,
        clicks: bool, version: int) -> str:
    """``html_text`` with the broadcast's links pointing at the click redirect and, with
    ``opens``, the open pixel before ``</body>`` — one pass over the HTML, the key
    material from the keyring's cache."""
    from enclave.keys import api as keys

    what = [str(n) for n in range(len(links))] if clicks else []
    if opens:
        what.append(OPEN)
    if not what:
        return html_text
    tags = keys.mac_many("tokens", version, [_message(broadcast_id, row_id, w) for w in what])
    tokens = {w: _token(broadcast_id, row_id, w, version, tag)
              for w, tag in zip(what, tags, strict=True)}
    base = settings.CONFIG.public_url
    if clicks:
        number = {url: str(n) for n, url in enumerate(links)}

        def rewrite(match: re.Match) -> str:
            n = number.get(match.group(2))
            if n is None:
                return match.group(0)
            return f"{match.group(1)}{base}/t/c/{tokens[n]}{match.group(3)}"

        html_text = _ANCHOR_HREF.sub(rewrite, html_text)
    if opens:
        pixel = (f'<img src="{base}/t/o/{tokens[OPEN]}" width="1" height="1" alt="" '
                 'style="display:block;border:0;width:1px;height:1px">')
        ends = list(_BODY_END.finditer(html_text))
        at = ends[-1].start() if ends else len(html_text)
        html_text = html_text[:at] + pixel + html_text[at:]
    return html_text


def parse(token: str) -> tuple[int, int, str] | None:
    """(broadcast id, outbox row id, link number or ``OPEN``) of a token that verifies,
    spelled exactly as this module writes it; else None."""
    from enclave.keys import api as keys
    from enclave.keys.errors import KeyringError

    match = _TOKEN.match(token) if isinstance(token, str) else None
    if match is None:
        return None
    broadcast, row, what, version, mac = match.groups()
    try:
        tag = base64.urlsafe_b64decode(mac + "=")
        canonical = _token(int(broadcast), int(row), what, int(version), tag) == token
        valid = canonical and keys.verify_mac(
            "tokens", int(version), _message(int(broadcast), int(row), what), tag)
    except (binascii.Error, ValueError, KeyringError):
        return None
    return (int(broadcast), int(row), what) if valid else None


def record(row_id: int, what: str) -> None:
    """The first open of the message, or the first click on link ``what``, as a
    ``DeliveryEvent`` (nothing when the row is gone, or already recorded)."""
    from django.db import IntegrityError, transaction

    from enclave.messaging.models import DeliveryEvent, OutboxMessage

    row = OutboxMessage.objects.filter(pk=row_id).select_related("broadcast").first()
    if row is None:
        return
    kind = "opened" if what == OPEN else "clicked"
    try:
        with transaction.atomic():
            DeliveryEvent.objects.create(
                account_id=row.broadcast.account_id, person_id=row.person_id,
                broadcast_id=row.broadcast_id, kind=kind, esp="enclave",
                event_id=f"{kind}:{row_id}:{what}", occurred_at=clock.now())
    except IntegrityError:
        return


def target(broadcast_id: int, what: str) -> str | None:
    """Where a click on link ``what`` of the broadcast goes (None: no such link). The URL
    as written in the HTML, entities decoded."""
    from enclave.messaging.models import Broadcast

    links = Broadcast.objects.filter(pk=broadcast_id).values_list(
        "tracked_links", flat=True).first()
    n = int(what)
    if not links or n >= len(links):
        return None
    return html.unescape(links[n])


def count_tracking_keys(purpose: str, version: int) -> int:
    """Tracked broadcasts signed under ``tokens`` v``version`` that are still going out or
    finished less than ``LINKS_KEPT`` ago (the keyring's reference count)."""
    from django.db.models import Q

    from enclave.messaging.models import Broadcast

    if purpose != "tokens":
        return 0
    return Broadcast.objects.filter(tracking_key_version=version).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gt=clock.now() - LINKS_KEPT)).count()


# The open pixel: a 1×1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PRIVATE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _ip(request) -> str:
    from enclave.core import audit

    return audit.client_ip(request) or "unknown"


def _verified(request, token: str):
    """``parse(token)``, with failures limited per address before any key is read."""
    from enclave.core import ratelimit

    limit, window = ratelimit.rate("track.invalid")
    if ratelimit.rate_limiter().peek(ratelimit.counter_key("track.invalid", _ip(request)),
                                     window) >= limit:
        return None
    parsed = parse(token)
    if parsed is None:
        ratelimit.hit("track.invalid", _ip(request))
    return parsed


def _counts(request) -> bool:
    """Whether this hit may be recorded: a GET (a HEAD is a link checker), within the
    address's allowance."""
    from enclave.core import ratelimit

    return request.method == "GET" and ratelimit.hit("track.ip", _ip(request)).allowed


def open_pixel(request, token: str):
    """``GET /t/o/<token>``: the pixel, the message's first open recorded. The same
    pixel for a token that does not verify (a mail client shows nothing either way)."""
    from django.http import HttpResponse

    parsed = _verified(request, token)
    if parsed is not None and parsed[2] == OPEN and _counts(request):
        record(parsed[1], OPEN)
    return HttpResponse(PIXEL, content_type="image/gif", headers=_PRIVATE)


def click(request, token: str):
    """``GET /t/c/<token>``: a redirect to the broadcast's link of that number, the first
    click on it recorded; 404 for a token that does not verify (never a redirect to
    anything a URL names)."""
    from django.http import Http404, HttpResponseRedirect

    parsed = _verified(request, token)
    if parsed is None or parsed[2] == OPEN:
        raise Http404("No such link.")
    url = target(parsed[0], parsed[2])
    if url is None:
        raise Http404("No such link.")
    if _counts(request):
        record(parsed[1], parsed[2])
    response = HttpResponseRedirect(url)
    for name, value in _PRIVATE.items():
        response[name] = value
    return response
