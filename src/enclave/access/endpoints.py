"""The one endpoint registry: every route of the public site, the web app and the REST
API, per method, with what it needs. Views declare no permission, login or method rule:

* web routes are enforced by ``enclave.accounts.middleware.EndpointMiddleware``
  (405 for an unlisted method, sign-in, account membership, the permission, recent
  re-authentication);
* API routes by ``enclave.api.base.ApiView`` (key, scope, permission, rate limits).

The generated authorization tests (tests/people/test_authorization.py for the web and
site entries, tests/api/test_authorization.py for the API) read this registry with the
permission, scope and visibility tables; a route without an entry, or an entry without a
route, fails the suite.

``access`` says who may call at all:

* ``PUBLIC`` — anyone (the site, sign-in, one-time links);
* ``SIGNED_IN`` — a signed-in member, about their own identity (sessions, password, MFA);
* ``ACCOUNT`` — a signed-in member acting in their current account, holding
  ``permission`` when one is given (``None``: any member of the account);
* ``API_KEY`` — an API key with ``scope`` and, when given, ``permission``; ``PUBLIC`` API
  routes (health, schema) take no key.

``target`` names the kind of id the URL takes (``person``, ``membership``, ``api_key``,
``session``, ``segment``, ``topic``, ``template``, ``sender_domain``, ``broadcast``,
``captured``, ``message``, ``webhook``), for the
cross-tenant tests; ``shows_people`` marks responses that carry person fields (for the
generated visibility tests); ``reauth`` marks web endpoints that need a recent password
(+ MFA) confirmation; ``cross_site`` marks a public form that other sites post to (no
CSRF token: what it does must be safe to forge — a subscribe form only ever sends a
confirmation email — or the request authenticates itself, as a provider's webhook does
with its own secret).
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.access.permissions import Permission

P = Permission
PUBLIC, SIGNED_IN, ACCOUNT, API_KEY = "public", "signed-in", "account", "api-key"
WEB, API, SITE = "web", "api", "site"
# The REST API and the tracking spec's ingest (its SDKs append /v1/<call> to a host).
API_PREFIX = ("/api/v1/", "/api/ingest/v1/")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    access: str
    permission: Permission | None = None
    scope: str | None = None
    target: str | None = None
    shows_people: bool = False
    reauth: bool = False
    surface: str = WEB
    # A public form other sites post to (a subscribe form embedded on an account's site):
    # no CSRF token can come with it (accounts.middleware.CrossSiteFormMiddleware).
    cross_site: bool = False
    # An API endpoint a browser key (a website's public tracking key) may call; every
    # other endpoint refuses browser keys whatever their scope (api.base.HasScope).
    browser: bool = False

    def __post_init__(self) -> None:
        # The registry's own invariants, checked when the module is imported.
        if self.permission is not None and not isinstance(self.permission, Permission):
            raise TypeError(f"{self.name}: permission must be a Permission member")
        if self.access not in (PUBLIC, SIGNED_IN, ACCOUNT, API_KEY):
            raise ValueError(f"{self.name}: unknown access {self.access!r}")
        if self.permission is not None and self.access not in (ACCOUNT, API_KEY):
            raise ValueError(f"{self.name}: a permission needs ACCOUNT or API_KEY access")
        if (self.access == API_KEY) != (self.scope is not None):
            raise ValueError(f"{self.name}: API_KEY access and a scope go together")
        if self.reauth and self.surface != WEB:
            raise ValueError(f"{self.name}: re-authentication is a web rule")
        if self.cross_site and (self.surface != WEB or self.access != PUBLIC
                                or self.method != "POST"):
            raise ValueError(f"{self.name}: only a public web POST takes cross-site posts")
        if self.browser and self.surface != API:
            raise ValueError(f"{self.name}: browser keys are API keys")


def web(name: str, method: str, access: str, permission: Permission | None = None,
        **kwargs) -> Endpoint:
    return Endpoint(name, method, access, permission, surface=WEB, **kwargs)


def api(name: str, method: str, scope: str | None, permission: Permission | None = None,
        **kwargs) -> Endpoint:
    return Endpoint(name, method, PUBLIC if scope is None else API_KEY, permission,
                    scope=scope, surface=API, **kwargs)


def site(name: str) -> Endpoint:
    return Endpoint(name, "GET", PUBLIC, surface=SITE)


ENDPOINTS: tuple[Endpoint, ...] = (
    # --- public website and shared pages ---
    site("landing"),
    site("pricing"),
    site("security"),
    site("security-txt"),
    site("problem-type"),
    site("healthz"),
    site("readyz"),
    site("api-docs"),
    site("tracking-library"),
    # Benchmark baseline (benchmarks/bench_api.py): routed only when
    # settings.ENCLAVE_API_BENCH_VIEW, which live environments refuse.
    site("api-bench-person"),
    # --- identity: one-time links and sign-in (no session needed) ---
    web("setup-owner", "GET", PUBLIC),
    web("setup-owner", "POST", PUBLIC),
    web("signup", "GET", PUBLIC),
    web("signup", "POST", PUBLIC),
    web("signup-complete", "GET", PUBLIC),
    web("signup-complete", "POST", PUBLIC),
    web("login", "GET", PUBLIC),
    web("login", "POST", PUBLIC),
    web("login-mfa", "GET", PUBLIC),
    web("login-mfa", "POST", PUBLIC),
    web("logout", "POST", PUBLIC),
    web("password-reset", "GET", PUBLIC),
    web("password-reset", "POST", PUBLIC),
    web("password-reset-confirm", "GET", PUBLIC),
    web("password-reset-confirm", "POST", PUBLIC),
    web("accept-invitation", "GET", PUBLIC),
    web("accept-invitation", "POST", PUBLIC),
    # --- audience: what a person does without signing in (a signed link, a form) ---
    web("preferences", "GET", PUBLIC),
    web("preferences", "POST", PUBLIC),
    web("subscription-confirm", "GET", PUBLIC),
    web("subscription-confirm", "POST", PUBLIC),
    # An email's one-click unsubscribe link (RFC 8058): mailbox providers POST to it from
    # their servers, with no cookie or CSRF token; what it does is safe to forge — it only
    # ever unsubscribes the person the signed token names.
    web("unsubscribe", "GET", PUBLIC),
    web("unsubscribe", "POST", PUBLIC, cross_site=True),
    web("subscribe-form", "GET", PUBLIC),
    web("subscribe-form", "POST", PUBLIC, cross_site=True),
    # Open pixel and click redirect of tracked broadcasts (a keyed token names the
    # message; a click goes only to the broadcast's own link of that number).
    web("track-open", "GET", PUBLIC),
    web("track-click", "GET", PUBLIC),
    # An email provider's delivery webhook and inbound (received mail) webhook: posted by
    # the provider, authenticated by its own secret (basic auth, and a signature where it
    # signs), never by a CSRF token.
    web("esp-webhook", "POST", PUBLIC, cross_site=True),
    web("esp-inbound", "POST", PUBLIC, cross_site=True),
    # Stripe's billing webhook: authenticated by Stripe's signature (enclave.billing).
    web("stripe-webhook", "POST", PUBLIC, cross_site=True),
    # --- identity: the member's own sign-in, sessions and MFA ---
    web("app-home", "GET", SIGNED_IN),
    web("account-switch", "POST", SIGNED_IN),
    web("sessions", "GET", SIGNED_IN),
    web("session-revoke", "POST", SIGNED_IN, target="session"),
    web("sessions-revoke-all", "POST", SIGNED_IN),
    web("password-change", "GET", SIGNED_IN),
    web("password-change", "POST", SIGNED_IN),
    web("mfa", "GET", SIGNED_IN),
    web("mfa-setup", "GET", SIGNED_IN, reauth=True),
    web("mfa-setup", "POST", SIGNED_IN, reauth=True),
    web("mfa-recovery-codes", "POST", SIGNED_IN, reauth=True),
    web("mfa-disable", "POST", SIGNED_IN, reauth=True),
    web("reauth", "GET", SIGNED_IN),
    web("reauth", "POST", SIGNED_IN),
    # --- billing (enclave.billing): the plan, usage and invoices; the hand-offs to
    # Stripe's hosted Checkout and customer portal ask for a recent password ---
    web("billing", "GET", ACCOUNT, P.BILLING_MANAGE),
    web("billing-checkout", "POST", ACCOUNT, P.BILLING_MANAGE, reauth=True),
    web("billing-portal", "POST", ACCOUNT, P.BILLING_MANAGE, reauth=True),
    # --- account settings, team, roles, audit ---
    web("invite", "GET", ACCOUNT, P.TEAM_MANAGE),
    web("invite", "POST", ACCOUNT, P.TEAM_MANAGE),
    web("account-security", "GET", ACCOUNT, P.ACCOUNT_MANAGE, reauth=True),
    web("account-security", "POST", ACCOUNT, P.ACCOUNT_MANAGE, reauth=True),
    web("team", "GET", ACCOUNT, P.TEAM_READ),
    web("team-roles", "GET", ACCOUNT, P.TEAM_READ),
    web("team-roles", "POST", ACCOUNT, P.ACCOUNT_MANAGE, reauth=True),
    web("team-change-role", "POST", ACCOUNT, P.TEAM_MANAGE, target="membership",
        reauth=True),
    web("team-remove", "POST", ACCOUNT, P.TEAM_MANAGE, target="membership", reauth=True),
    web("team-transfer", "POST", ACCOUNT, P.ACCOUNT_MANAGE, target="membership",
        reauth=True),
    web("audit-log", "GET", ACCOUNT, P.AUDIT_READ, shows_people=True),
    web("audit-export", "GET", ACCOUNT, P.AUDIT_READ, reauth=True, shows_people=True),
    # --- people ---
    web("people-list", "GET", ACCOUNT, shows_people=True),
    web("people-export", "GET", ACCOUNT, P.PEOPLE_EXPORT, shows_people=True, reauth=True),
    web("people-fields", "GET", ACCOUNT, P.PEOPLE_READ),
    web("people-fields", "POST", ACCOUNT, P.PEOPLE_WRITE),
    web("people-import", "GET", ACCOUNT, P.PEOPLE_WRITE),
    web("people-import", "POST", ACCOUNT, P.PEOPLE_WRITE),
    web("people-import-confirm", "POST", ACCOUNT, P.PEOPLE_WRITE),
    web("people-import-cancel", "POST", ACCOUNT, P.PEOPLE_WRITE),
    web("people-create", "GET", ACCOUNT, P.PEOPLE_WRITE),
    web("people-create", "POST", ACCOUNT, P.PEOPLE_WRITE),
    web("people-detail", "GET", ACCOUNT, P.PEOPLE_READ, target="person",
        shows_people=True),
    web("people-edit", "GET", ACCOUNT, P.PEOPLE_WRITE, target="person", shows_people=True),
    web("people-edit", "POST", ACCOUNT, P.PEOPLE_WRITE, target="person"),
    web("people-reveal", "POST", ACCOUNT, P.PEOPLE_UNMASK, target="person"),
    web("people-archive", "POST", ACCOUNT, P.PEOPLE_WRITE, target="person"),
    web("people-erase", "GET", ACCOUNT, P.PEOPLE_ERASE, target="person", reauth=True),
    web("people-erase", "POST", ACCOUNT, P.PEOPLE_ERASE, target="person", reauth=True),
    # --- segments and topics ---
    web("segments-list", "GET", ACCOUNT, P.SEGMENTS_READ),
    web("segments-create", "GET", ACCOUNT, P.SEGMENTS_MANAGE),
    web("segments-create", "POST", ACCOUNT, P.SEGMENTS_MANAGE),
    web("segments-preview", "POST", ACCOUNT, P.SEGMENTS_MANAGE, shows_people=True),
    web("segments-detail", "GET", ACCOUNT, P.SEGMENTS_READ, target="segment",
        shows_people=True),
    web("segments-edit", "GET", ACCOUNT, P.SEGMENTS_MANAGE, target="segment"),
    web("segments-edit", "POST", ACCOUNT, P.SEGMENTS_MANAGE, target="segment"),
    web("segments-delete", "POST", ACCOUNT, P.SEGMENTS_MANAGE, target="segment"),
    web("segments-snapshot", "POST", ACCOUNT, P.SEGMENTS_MANAGE, target="segment"),
    web("topics-list", "GET", ACCOUNT),
    web("topics-list", "POST", ACCOUNT, P.TOPICS_MANAGE),
    web("topics-detail", "GET", ACCOUNT, target="topic"),
    web("topics-detail", "POST", ACCOUNT, P.TOPICS_MANAGE, target="topic"),
    # The suppression list answers about addresses typed in full: as for seeing an email.
    web("suppressions", "GET", ACCOUNT, P.PEOPLE_WRITE),
    web("suppressions", "POST", ACCOUNT, P.PEOPLE_WRITE),
    # Shows no person field but the consent history's source addresses (as the ip
    # field's visibility says: tests/audience/test_pages.py).
    web("people-subscriptions", "GET", ACCOUNT, P.PEOPLE_READ, target="person"),
    web("people-subscriptions", "POST", ACCOUNT, P.PEOPLE_WRITE, target="person"),
    # --- email templates ---
    web("templates-list", "GET", ACCOUNT, P.EMAIL_READ),
    web("templates-create", "GET", ACCOUNT, P.EMAIL_MANAGE),
    web("templates-create", "POST", ACCOUNT, P.EMAIL_MANAGE),
    web("templates-detail", "GET", ACCOUNT, P.EMAIL_READ, target="template"),
    web("templates-detail", "POST", ACCOUNT, P.EMAIL_MANAGE, target="template"),
    web("templates-delete", "POST", ACCOUNT, P.EMAIL_MANAGE, target="template"),
    # ?person=<id>: that person's fields as the member may see them.
    web("templates-preview", "GET", ACCOUNT, P.EMAIL_READ, target="template",
        shows_people=True),
    web("templates-preview-html", "GET", ACCOUNT, P.EMAIL_READ, target="template",
        shows_people=True),
    web("broadcasts-list", "GET", ACCOUNT, P.EMAIL_READ),
    web("broadcasts-list", "POST", ACCOUNT, P.EMAIL_MANAGE),
    web("broadcasts-detail", "GET", ACCOUNT, P.EMAIL_READ, target="broadcast"),
    web("broadcasts-send", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    web("broadcasts-cancel", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    web("broadcasts-delete", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    web("broadcasts-schedule", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    web("broadcasts-pause", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    web("broadcasts-resume", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    # Mails the member's own address only (rate-limited per member).
    web("broadcasts-test", "POST", ACCOUNT, P.EMAIL_MANAGE, target="broadcast"),
    web("senders-list", "GET", ACCOUNT, P.EMAIL_READ),
    web("senders-list", "POST", ACCOUNT, P.EMAIL_MANAGE),
    web("senders-address", "POST", ACCOUNT, P.EMAIL_MANAGE),
    web("senders-detail", "GET", ACCOUNT, P.EMAIL_READ, target="sender_domain"),
    web("senders-check", "POST", ACCOUNT, P.EMAIL_MANAGE, target="sender_domain"),
    web("senders-rotate", "POST", ACCOUNT, P.EMAIL_MANAGE, target="sender_domain"),
    web("senders-remove", "POST", ACCOUNT, P.EMAIL_MANAGE, target="sender_domain"),
    web("senders-throttle", "POST", ACCOUNT, P.EMAIL_MANAGE, target="sender_domain"),
    # Captured mail holds personal data as sent: people.write here, and the read itself
    # (messaging.access.captured_of) also needs email.read and people.unmask.
    web("captured-list", "GET", ACCOUNT, P.PEOPLE_WRITE, shows_people=True),
    web("captured-detail", "GET", ACCOUNT, P.PEOPLE_WRITE, target="captured",
        shows_people=True),
    web("captured-html", "GET", ACCOUNT, P.PEOPLE_WRITE, target="captured",
        shows_people=True),
    # --- API keys (web pages) ---
    web("api-keys-list", "GET", ACCOUNT, P.API_KEYS_MANAGE),
    web("api-keys-create", "GET", ACCOUNT, P.API_KEYS_MANAGE, reauth=True),
    web("api-keys-create", "POST", ACCOUNT, P.API_KEYS_MANAGE, reauth=True),
    web("api-keys-policy", "POST", ACCOUNT, P.ACCOUNT_MANAGE, reauth=True),
    web("api-keys-roll", "POST", ACCOUNT, P.API_KEYS_MANAGE, target="api_key",
        reauth=True),
    web("api-keys-revoke", "POST", ACCOUNT, P.API_KEYS_MANAGE, target="api_key"),
    # --- REST API /api/v1/ ---
    api("api-health", "GET", None),
    api("api-openapi", "GET", None),
    api("api-people", "GET", "people:read", P.PEOPLE_READ, shows_people=True),
    api("api-people", "POST", "people:write", P.PEOPLE_WRITE, shows_people=True),
    api("api-people-upsert", "POST", "people:write", P.PEOPLE_WRITE, shows_people=True),
    api("api-person", "GET", "people:read", P.PEOPLE_READ, target="person",
        shows_people=True),
    api("api-person", "PATCH", "people:write", P.PEOPLE_WRITE, target="person",
        shows_people=True),
    api("api-person", "DELETE", "people:erase", P.PEOPLE_ERASE, target="person"),
    api("api-person-archive", "POST", "people:write", P.PEOPLE_WRITE, target="person",
        shows_people=True),
    api("api-person-tags", "GET", "people:read", P.PEOPLE_READ, target="person"),
    api("api-person-tags", "POST", "people:write", P.PEOPLE_WRITE, target="person"),
    api("api-person-tag", "DELETE", "people:write", P.PEOPLE_WRITE, target="person"),
    api("api-tags", "GET", "people:read", P.PEOPLE_READ),
    api("api-fields", "GET", "people:read", P.PEOPLE_READ),
    api("api-fields", "POST", "people:write", P.PEOPLE_WRITE),
    api("api-members", "GET", "team:read", P.TEAM_READ),
    api("api-member", "GET", "team:read", P.TEAM_READ, target="membership"),
    api("api-audit", "GET", "audit:read", P.AUDIT_READ, shows_people=True),
    api("api-account", "GET", "account:read"),
    api("api-keys", "GET", "api_keys:read", P.API_KEYS_READ),
    api("api-key-revoke", "POST", "api_keys:revoke", P.API_KEYS_MANAGE, target="api_key"),
    # Segments: members are rendered through the visibility formatter with the key's
    # permissions (without people:read a key sees their ids only).
    api("api-segments", "GET", "segments:read", P.SEGMENTS_READ),
    api("api-segments", "POST", "segments:write", P.SEGMENTS_MANAGE),
    api("api-segments-preview", "POST", "segments:write", P.SEGMENTS_MANAGE,
        shows_people=True),
    api("api-segment", "GET", "segments:read", P.SEGMENTS_READ, target="segment"),
    api("api-segment", "PATCH", "segments:write", P.SEGMENTS_MANAGE, target="segment"),
    api("api-segment", "DELETE", "segments:write", P.SEGMENTS_MANAGE, target="segment"),
    api("api-segment-count", "GET", "segments:read", P.SEGMENTS_READ, target="segment"),
    api("api-segment-members", "GET", "segments:read", P.SEGMENTS_READ, target="segment",
        shows_people=True),
    api("api-segment-members", "POST", "segments:write", P.SEGMENTS_MANAGE,
        target="segment"),
    api("api-segment-member", "DELETE", "segments:write", P.SEGMENTS_MANAGE,
        target="segment"),
    api("api-segment-snapshot", "POST", "segments:write", P.SEGMENTS_MANAGE,
        target="segment"),
    # Topics, a person's subscriptions and consent history, the suppression list.
    api("api-topics", "GET", "topics:read"),
    api("api-topics", "POST", "topics:write", P.TOPICS_MANAGE),
    api("api-topic", "GET", "topics:read", target="topic"),
    api("api-topic", "PATCH", "topics:write", P.TOPICS_MANAGE, target="topic"),
    api("api-person-subscriptions", "GET", "people:read", P.PEOPLE_READ, target="person"),
    api("api-person-subscriptions", "POST", "people:write", P.PEOPLE_WRITE,
        target="person"),
    api("api-person-consent", "GET", "people:read", P.PEOPLE_READ, target="person"),
    # The address is given in full and answered about: as for seeing an email in full.
    api("api-suppressions", "POST", "people:write", P.PEOPLE_WRITE),
    api("api-suppressions-check", "POST", "people:write", P.PEOPLE_WRITE),
    api("api-suppressions-remove", "POST", "people:write", P.PEOPLE_WRITE),
    # Email templates. A preview with a person renders their fields through the
    # visibility formatter (people:read needed to name one).
    api("api-templates", "GET", "email:read", P.EMAIL_READ),
    api("api-templates", "POST", "email:write", P.EMAIL_MANAGE),
    api("api-template", "GET", "email:read", P.EMAIL_READ, target="template"),
    api("api-template", "PATCH", "email:write", P.EMAIL_MANAGE, target="template"),
    api("api-template", "DELETE", "email:write", P.EMAIL_MANAGE, target="template"),
    api("api-template-preview", "POST", "email:read", P.EMAIL_READ, target="template",
        shows_people=True),
    # Sender domains and their DKIM keys (never the private key).
    api("api-sender-domains", "GET", "email:read", P.EMAIL_READ),
    api("api-sender-domains", "POST", "email:write", P.EMAIL_MANAGE),
    api("api-sender-domain", "GET", "email:read", P.EMAIL_READ, target="sender_domain"),
    api("api-sender-domain", "DELETE", "email:write", P.EMAIL_MANAGE,
        target="sender_domain"),
    api("api-sender-domain-check", "POST", "email:write", P.EMAIL_MANAGE,
        target="sender_domain"),
    api("api-sender-domain-rotate", "POST", "email:write", P.EMAIL_MANAGE,
        target="sender_domain"),
    api("api-sender-domain-throttle", "POST", "email:write", P.EMAIL_MANAGE,
        target="sender_domain"),
    # Broadcasts: drafts, sending (a snapshot into the outbox), progress.
    api("api-broadcasts", "GET", "email:read", P.EMAIL_READ),
    api("api-broadcasts", "POST", "email:write", P.EMAIL_MANAGE),
    api("api-broadcast", "GET", "email:read", P.EMAIL_READ, target="broadcast"),
    api("api-broadcast", "DELETE", "email:write", P.EMAIL_MANAGE, target="broadcast"),
    api("api-broadcast-queue", "POST", "email:write", P.EMAIL_MANAGE, target="broadcast"),
    api("api-broadcast-cancel", "POST", "email:write", P.EMAIL_MANAGE, target="broadcast"),
    api("api-broadcast-schedule", "POST", "email:write", P.EMAIL_MANAGE,
        target="broadcast"),
    api("api-broadcast-pause", "POST", "email:write", P.EMAIL_MANAGE, target="broadcast"),
    api("api-broadcast-resume", "POST", "email:write", P.EMAIL_MANAGE, target="broadcast"),
    # Transactional messages: a template to one person or address (the key never sees
    # the person's fields; the message goes to them), and the message's state.
    api("api-messages", "POST", "messages:send", P.EMAIL_MANAGE),
    api("api-message", "GET", "messages:send", P.EMAIL_MANAGE, target="message"),
    # Outgoing webhooks: endpoints (the URL shown as its host, the secret only when made)
    # and their delivery log (never a payload).
    api("api-webhooks", "GET", "webhooks:read", P.WEBHOOKS_READ),
    api("api-webhooks", "POST", "webhooks:write", P.WEBHOOKS_MANAGE),
    api("api-webhook", "GET", "webhooks:read", P.WEBHOOKS_READ, target="webhook"),
    api("api-webhook", "PATCH", "webhooks:write", P.WEBHOOKS_MANAGE, target="webhook"),
    api("api-webhook", "DELETE", "webhooks:write", P.WEBHOOKS_MANAGE, target="webhook"),
    api("api-webhook-rotate", "POST", "webhooks:write", P.WEBHOOKS_MANAGE, target="webhook"),
    api("api-webhook-deliveries", "GET", "webhooks:read", P.WEBHOOKS_READ, target="webhook"),
    api("api-webhook-replay", "POST", "webhooks:write", P.WEBHOOKS_MANAGE,
        target="webhook"),
    # Ingest: storing events needs EVENTS_WRITE; the action also authorizes PEOPLE_WRITE
    # when a batch identifies or references people.
    api("api-events", "POST", "events:write", P.EVENTS_WRITE),
    # The tracking spec's calls (Segment / RudderStack SDKs): the same rules as ingest.
    # Browser keys reach them too (and their action holds them to page / track /
    # identify: events.spec.for_browser); nothing else.
    *(api(f"api-ingest-{call}", "POST", "events:write", P.EVENTS_WRITE, browser=True)
      for call in ("batch", "identify", "track", "page", "screen", "group", "alias")),
)

_BY_KEY: dict[tuple[str, str], Endpoint] = {}
for _entry in ENDPOINTS:
    if (_entry.name, _entry.method) in _BY_KEY:
        raise ValueError(f"duplicate registry entry {_entry.method} {_entry.name}")
    _BY_KEY[(_entry.name, _entry.method)] = _entry
NAMES = frozenset(e.name for e in ENDPOINTS)


def lookup(name: str | None, method: str) -> Endpoint | None:
    """The entry for route ``name`` and ``method`` (HEAD counts as GET); None if absent."""
    method = "GET" if method == "HEAD" else method
    return _BY_KEY.get((name or "", method))


def methods(name: str) -> frozenset[str]:
    """The methods route ``name`` answers (HEAD with GET)."""
    out = {e.method for e in ENDPOINTS if e.name == name}
    return frozenset(out | ({"HEAD"} if "GET" in out else set()))


def of_surface(surface: str) -> tuple[Endpoint, ...]:
    return tuple(e for e in ENDPOINTS if e.surface == surface)
