"""Email service providers (ESPs), through django-anymail: which ones Enclave can send
through and read delivery webhooks from, and what each needs.

``ENCLAVE_EMAIL_BACKEND=esp`` with ``ENCLAVE_ESP=<name>`` sends every email — broadcasts,
transactional messages and account mail — through that provider's API
(``transports.EspTransport``), and accepts its delivery / bounce / complaint webhooks at
``/webhooks/esp/<name>/`` (``messaging.webhooks``). Credentials are read from files
(``ENCLAVE_ESP_API_KEY_FILE``, ``ENCLAVE_ESP_WEBHOOK_SECRET_FILE`` — the webhook's HTTP
basic-auth ``user:password`` — and, for Mailgun, which signs its webhooks,
``ENCLAVE_ESP_WEBHOOK_SIGNING_KEY_FILE``), never from the database or the environment's
values, and never logged. SendGrid is not offered: anymail dropped its support.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.mail.backends.base import BaseEmailBackend

from enclave.config import ESP_NAMES, ESP_SIGNING, ESP_WITHOUT_KEY


@dataclass(frozen=True)
class Esp:
    label: str
    module: str  # anymail.backends.<module> / anymail.webhooks.<module>
    webhook_view: str  # the tracking view's class name in anymail.webhooks.<module>
    inbound_view: str  # the inbound (received mail) view's class name there
    credential: str | None  # anymail's name for the API key (None: the platform's own)
    signing_key: str | None = None  # anymail's name for the webhook signing key
    tracking_flags: bool = True  # takes track_opens / track_clicks (else anymail refuses)
    # Its inbound webhook posts several received messages at once (one anymail cannot
    # read must not lose the others: messaging.webhooks).
    inbound_batch: bool = False
    # anymail's inbound view downloads each attachment through the provider's API as it
    # parses (with the API key, no timeout); nothing of a message is kept: none is fetched.
    inbound_attachments_by_api: bool = False

    @property
    def backend(self) -> str:
        return f"anymail.backends.{self.module}.EmailBackend"


ESPS: dict[str, Esp] = {
    "postmark": Esp("Postmark", "postmark", "PostmarkTrackingWebhookView",
                    "PostmarkInboundWebhookView", "server_token"),
    "mailgun": Esp("Mailgun", "mailgun", "MailgunTrackingWebhookView",
                   "MailgunInboundWebhookView", "api_key", signing_key="webhook_signing_key"),
    "brevo": Esp("Brevo", "brevo", "BrevoTrackingWebhookView", "BrevoInboundWebhookView",
                 "api_key", tracking_flags=False, inbound_batch=True,
                 inbound_attachments_by_api=True),
    "sparkpost": Esp("SparkPost", "sparkpost", "SparkPostTrackingWebhookView",
                     "SparkPostInboundWebhookView", "api_key", inbound_batch=True),
    # Credentials from the AWS SDK's own chain (instance role, environment, profile).
    "amazon_ses": Esp("Amazon SES", "amazon_ses", "AmazonSESTrackingWebhookView",
                      "AmazonSESInboundWebhookView", None, tracking_flags=False),
}


def _read(path) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path else None


def connection_options(cfg) -> dict[str, str]:
    """The keyword arguments for anymail's backend of the configured ESP."""
    esp = ESPS[cfg.esp]
    options: dict[str, str] = {}
    if esp.credential:
        options[esp.credential] = _read(cfg.esp_api_key_file) or ""
    if cfg.esp_api_url:
        options["api_url"] = cfg.esp_api_url
    return options


def webhook_options(cfg) -> dict:
    """The keyword arguments for anymail's tracking view of the configured ESP: the basic
    auth it must see and, where the ESP signs, its signing key."""
    esp = ESPS[cfg.esp]
    options: dict = {"webhook_secret": [_read(cfg.esp_webhook_secret_file)]}
    if esp.signing_key:
        options[esp.signing_key] = _read(cfg.esp_webhook_signing_key_file)
    return options


if set(ESPS) != set(ESP_NAMES) or {n for n, e in ESPS.items() if not e.credential} != set(
        ESP_WITHOUT_KEY) or {n for n, e in ESPS.items() if e.signing_key} != set(ESP_SIGNING):
    raise RuntimeError("enclave.config's ESP names disagree with enclave.messaging.esp")


class AccountMailBackend(BaseEmailBackend):
    """Django's email backend for account mail (sign-up, invitations, password resets)
    when ``ENCLAVE_EMAIL_BACKEND=esp``: the configured ESP's anymail backend with the
    credentials from their files."""

    def __init__(self, fail_silently: bool = False, **kwargs) -> None:
        from django.conf import settings
        from django.core.mail import get_connection

        super().__init__(fail_silently=fail_silently)
        cfg = settings.CONFIG
        self.inner = get_connection(ESPS[cfg.esp].backend, fail_silently=fail_silently,
                                    **connection_options(cfg), **kwargs)

    def open(self):
        return self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def send_messages(self, email_messages) -> int:
        from django.conf import settings

        if ESPS[settings.CONFIG.esp].tracking_flags:
            for message in email_messages:  # links in account mail stay ours
                message.track_opens = message.track_clicks = False
        return self.inner.send_messages(email_messages)
