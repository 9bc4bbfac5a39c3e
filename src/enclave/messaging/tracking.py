"""Open and click tracking of broadcasts — off unless a broadcast asks for it
(``Broadcast.track_opens`` / ``track_clicks``).

* **Which links**: the template's literal ``https://`` links (``literal_links``: an
  ``href`` with no Liquid in it), taken from its compiled HTML when the broadcast is
  queued and kept on the broadcast (``tracked_links``). A personalised link — the
  recipient's unsubscribe and preference links among them — is never rewritten, and a
  link's target never travels in the URL: a click on ``/t/c/<token>`` is redirected to
  the broadcast's own link of that number, so there is no open redirect.
* **Tokens** carry no personal data: the broadcast's and the outbox row's ids, the
  link's number (or ``o`` for the open pixel), the keyring version and a keyed MAC
  (purpose ``tokens``) of them. A token that does not verify is a 404; one whose row is
  gone (its person was erased) still redirects but records nothing.
* **Recording**: the first open of a message and the first click on each of its links
  become ``DeliveryEvent`` rows (``esp="enclave"``), erased with the person. Mail clients
  that fetch every image (Apple's Mail Privacy Protection) make opens an over-count; the
  progress says "opened" for what it is.
"""

from __future__ import annotations

import base64
import binascii
import html
import re

from django.conf import settings

from enclave.core import clock

_LINK = re.compile(r'href="(https://[^"\s<>{}]+)"')
MAX_LINKS = 100
OPEN = "o"
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def literal_links(compiled_html: str) -> list[str]:
    """The template's literal https links, in order, each once (as written in the HTML,
    entities included), at most ``MAX_LINKS``."""
    found: list[str] = []
    for url in _LINK.findall(compiled_html):
        if url not in found:
            found.append(url)
    return found[:MAX_LINKS]


def _message(broadcast_id: int, row_id: int, what: str) -> bytes:
    return f"track:{broadcast_id}:{row_id}:{what}".encode()


def add(html_text: str, *, broadcast_id: int, row_id: int, links: list[str], opens: bool,
        clicks: bool) -> str:
    """``html_text`` with the broadcast's links pointing at the click redirect and, with
    ``opens``, the open pixel before ``</body>``."""
    from enclave.keys import api as keys

    what = [str(n) for n in range(len(links))] if clicks else []
    if opens:
        what.append(OPEN)
    if not what:
        return html_text
    version, tags = keys.mac_many("tokens", [_message(broadcast_id, row_id, w) for w in what])
    tokens = {w: f"{broadcast_id}-{row_id}-{w}-{version}-"
                 f"{base64.urlsafe_b64encode(tag).rstrip(b'=').decode()}"
              for w, tag in zip(what, tags, strict=True)}
    base = settings.CONFIG.public_url
    if clicks:
        for n, url in enumerate(links):
            html_text = html_text.replace(f'href="{url}"',
                                          f'href="{base}/t/c/{tokens[str(n)]}"')
    if opens:
        pixel = (f'<img src="{base}/t/o/{tokens[OPEN]}" width="1" height="1" alt="" '
                 'style="display:block;border:0;width:1px;height:1px">')
        ends = list(_BODY_END.finditer(html_text))
        at = ends[-1].start() if ends else len(html_text)
        html_text = html_text[:at] + pixel + html_text[at:]
    return html_text


def parse(token: str) -> tuple[int, int, str] | None:
    """(broadcast id, outbox row id, link number or ``OPEN``) of a token that verifies;
    else None."""
    from enclave.keys import api as keys
    from enclave.keys.errors import KeyringError

    parts = token.split("-", 4) if isinstance(token, str) and len(token) <= 140 else []
    if len(parts) != 5 or not all(p.isascii() for p in parts):
        return None
    broadcast, row, what, version, mac = parts
    if not (broadcast.isdigit() and row.isdigit() and version.isdigit()
            and (what == OPEN or what.isdigit())) \
            or len(broadcast) > 18 or len(row) > 18 or len(what) > 3 or len(version) > 6:
        return None
    try:
        tag = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        valid = keys.verify_mac("tokens", int(version),
                                _message(int(broadcast), int(row), what), tag)
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


# The open pixel: a 1×1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PRIVATE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _limited(request) -> bool:
    from enclave.core import audit, ratelimit

    return not ratelimit.hit("track.ip", audit.client_ip(request) or "unknown").allowed


def open_pixel(request, token: str):
    """``GET /t/o/<token>``: the pixel, the message's first open recorded. The same
    pixel for a token that does not verify (a mail client shows nothing either way)."""
    from django.http import HttpResponse

    parsed = parse(token)
    if parsed is not None and parsed[2] == OPEN and not _limited(request):
        record(parsed[1], OPEN)
    return HttpResponse(PIXEL, content_type="image/gif", headers=_PRIVATE)


def click(request, token: str):
    """``GET /t/c/<token>``: a redirect to the broadcast's link of that number, the first
    click on it recorded; 404 for a token that does not verify (never a redirect to
    anything a URL names)."""
    from django.http import Http404, HttpResponse, HttpResponseRedirect

    parsed = parse(token)
    if parsed is None or parsed[2] == OPEN:
        raise Http404("No such link.")
    url = target(parsed[0], parsed[2])
    if url is None:
        raise Http404("No such link.")
    if _limited(request):
        return HttpResponse("Too many requests.\n", status=429, content_type="text/plain",
                            headers={"Retry-After": "60"})
    record(parsed[1], parsed[2])
    response = HttpResponseRedirect(url)
    for name, value in _PRIVATE.items():
        response[name] = value
    return response
