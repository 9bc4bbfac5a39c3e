"""Headers every marketing email carries. RFC 8058 one-click unsubscribe: an https link
in ``List-Unsubscribe`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, both
covered by the DKIM signature (``messaging.dkim``); the link unsubscribes the recipient
from the topics the email was sent to (``audience.views.unsubscribe``)."""

from __future__ import annotations

from django.conf import settings


def unsubscribe_url(person, topic_ids) -> str:
    """The recipient's own one-click link (a signed token in the path: the log policy
    redacts it)."""
    from enclave.audience import tokens

    token = tokens.make(person, tokens.UNSUBSCRIBE, topic_ids=list(topic_ids))
    return f"{settings.CONFIG.public_url}/unsubscribe/{token}"


def unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """The https link first (what one-click uses), then — when the deployment receives
    mail (``messaging.mailto``) — the mailto address for clients that send an email."""
    value = f"<{url}>" if mailto is None else f"<{url}>, <mailto:{mailto}?subject=unsubscribe>"
    return {"List-Unsubscribe": value,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
