"""Typed configuration read from ``ENCLAVE_*`` environment variables — the one place.

Every setting is parsed here, once, into a frozen :class:`Config`. A bad value raises
:class:`ConfigError` naming the variable, which the CLI prints as one line before exiting
non-zero; nothing else in Enclave reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ENVIRONMENTS = ("production", "staging", "test", "dev")
# Environments whose data is real. Test keys, test databases and debug never run here.
LIVE_ENVIRONMENTS = frozenset({"production", "staging"})
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(Exception):
    """A configuration value is missing or wrong. ``str()`` is one line naming the setting."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {message}")


def _get(env: dict[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _bool(env: dict[str, str], name: str, default: bool = False) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"expected true/false, got {raw!r}")


def _int(env: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value


def _path(env: dict[str, str], name: str, default: Path) -> Path:
    raw = _get(env, name)
    return Path(raw).expanduser().resolve() if raw else default.resolve()


@dataclass(frozen=True)
class Config:
    """The whole deployment configuration. Built by :func:`load`; never mutated."""

    env: str
    debug: bool
    var_dir: Path
    data_dir: Path
    secrets_dir: Path
    tls_dir: Path
    database_url: str
    allow_sqlite: bool
    allowed_hosts: tuple[str, ...]
    public_url: str
    https_port: int
    http_port: int
    tls_cert: Path
    tls_key: Path
    tls_ca: Path
    behind_proxy: bool
    redis_url: str | None
    hsts_preload: bool
    max_body_bytes: int
    security_contact: str
    plans_file: Path | None
    secret_key_file: Path
    extra: dict[str, str] = field(default_factory=dict)
    # Identity (issue 4): password policy and outgoing email.
    password_min_length: int = 12
    email_backend: str = "file"
    email_host: str | None = None
    email_port: int = 587
    email_user: str | None = None
    email_password_file: Path | None = None
    email_use_tls: bool = True
    email_from: str = "Enclave <no-reply@localhost>"
    # An email service provider through django-anymail (enclave.messaging.esp).
    esp: str | None = None
    esp_api_key_file: Path | None = None
    esp_api_url: str | None = None
    esp_webhook_secret_file: Path | None = None
    esp_webhook_signing_key_file: Path | None = None
    # A domain whose mail reaches the ESP's inbound webhook: broadcasts then carry a
    # mailto unsubscribe address there (enclave.messaging.mailto).
    unsubscribe_mail_domain: str | None = None
    # Keyring (enclave.keys): KEK provider and key-age policy.
    kek_provider: str = "file"
    kms_key_id: str | None = None
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    key_max_age_days: int = 90
    # Logs (enclave.logs): retention, redaction level, extra policy, syslog aggregator.
    log_retention_days: int = 90
    log_redaction: str = "standard"
    log_policy_file: Path | None = None
    log_syslog: str | None = None
    # Backups (enclave.backups): target, local directory, S3 bucket/prefix, thinning.
    backup_target: str = "local"
    backup_dir: Path | None = None
    backup_s3_bucket: str | None = None
    backup_s3_prefix: str = "enclave-backups/"
    backup_thinning: str = "none"
    # API keys (enclave.apikeys): named rate limits overriding settings.ENCLAVE_API_RATES.
    api_rates: tuple[tuple[str, str], ...] = ()
    # Behind a proxy: the peers whose X-Real-IP names the client (core.audit.client_ip).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # Dependency audit (enclave.scanning): an offline OSV advisory directory; unset = ask
    # pip-audit's online service.
    advisory_db: Path | None = None
    # Email (enclave.messaging): the DNS servers sender-domain checks ask, as (ip, port);
    # empty: the system's resolver (/etc/resolv.conf).
    dns_servers: tuple[tuple[str, int], ...] = ()
    # Outbound requests (enclave.core.outbound): internal networks an operator allows
    # (an on-premises receiver) and public ones refused (this deployment's own addresses);
    # refused wins.
    outbound_allow: tuple[str, ...] = ()
    outbound_deny: tuple[str, ...] = ()
    # Billing (enclave.billing): off by default (no plan limits); ``stripe`` with the
    # secret key and webhook signing secret in files (never the database or the logs).
    billing: str = "off"
    stripe_secret_key_file: Path | None = None
    stripe_webhook_secret_file: Path | None = None
    stripe_api_base: str | None = None
    billing_grace_days: int = 7
    # Organisational controls (enclave.compliance): the security policy documents.
    policies_dir: Path = PROJECT_ROOT / "docs" / "policies"

    @property
    def is_live(self) -> bool:
        """True for environments that hold real data (production, staging)."""
        return self.env in LIVE_ENVIRONMENTS

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"


def load(env: dict[str, str] | None = None) -> Config:
    """Parse the environment into a :class:`Config`.

    Raises :class:`ConfigError` for the first invalid or missing setting, and for any
    combination that is unsafe in a live environment.
    """
    env = dict(os.environ if env is None else env)
    name = _get(env, "ENCLAVE_ENV", "dev")
    if name not in ENVIRONMENTS:
        raise ConfigError("ENCLAVE_ENV", f"must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
    var_dir = _path(env, "ENCLAVE_VAR_DIR", PROJECT_ROOT / "var")
    data_dir = _path(env, "ENCLAVE_DATA_DIR", var_dir / "data")
    secrets_dir = _path(env, "ENCLAVE_SECRETS_DIR", var_dir / "secrets")
    tls_dir = _path(env, "ENCLAVE_TLS_DIR", var_dir / "tls")
    if secrets_dir == data_dir or secrets_dir.is_relative_to(data_dir):
        raise ConfigError("ENCLAVE_SECRETS_DIR", "must not be inside the data directory")
    https_port = _int(env, "ENCLAVE_HTTPS_PORT", 8443, low=1, high=65535)
    http_port = _int(env, "ENCLAVE_HTTP_PORT", 8080, low=1, high=65535)
    if https_port == http_port:
        raise ConfigError("ENCLAVE_HTTP_PORT", "must differ from ENCLAVE_HTTPS_PORT")
    default_url = "https://localhost" + ("" if https_port == 443 else f":{https_port}")
    public_url = _get(env, "ENCLAVE_PUBLIC_URL", default_url).rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError("ENCLAVE_PUBLIC_URL", f"must be an https:// origin, got {public_url!r}")
    hosts = _get(env, "ENCLAVE_ALLOWED_HOSTS")
    allowed_hosts = (
        tuple(h.strip() for h in hosts.split(",") if h.strip())
        if hosts
        else (parts.hostname, "127.0.0.1", "[::1]") if parts.hostname == "localhost"
        else (parts.hostname,)
    )
    if "*" in allowed_hosts:
        raise ConfigError("ENCLAVE_ALLOWED_HOSTS", "a wildcard '*' would accept any Host header")
    database_url = _get(env, "ENCLAVE_DATABASE_URL", f"sqlite:///{data_dir / 'enclave.sqlite3'}")
    if not database_url.startswith(("sqlite://", "postgres://", "postgresql://")):
        raise ConfigError("ENCLAVE_DATABASE_URL", "must be a sqlite:// or postgres:// URL")
    tls_cert = _path(env, "ENCLAVE_TLS_CERT", tls_dir / "server.crt")
    tls_key = _path(env, "ENCLAVE_TLS_KEY", tls_dir / "server.key")
    contact = _get(env, "ENCLAVE_SECURITY_CONTACT", f"mailto:security@{parts.hostname}")
    if not contact.startswith(("mailto:", "https://")):
        raise ConfigError("ENCLAVE_SECURITY_CONTACT", "must be a mailto: or https:// URI")
    plans = _get(env, "ENCLAVE_PLANS_FILE")
    advisory_db = _get(env, "ENCLAVE_ADVISORY_DB")
    cfg = Config(
        env=name,
        debug=_bool(env, "ENCLAVE_DEBUG"),
        var_dir=var_dir,
        data_dir=data_dir,
        secrets_dir=secrets_dir,
        tls_dir=tls_dir,
        database_url=database_url,
        allow_sqlite=_bool(env, "ENCLAVE_ALLOW_SQLITE"),
        allowed_hosts=allowed_hosts,
        public_url=public_url,
        https_port=https_port,
        http_port=http_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_ca=_path(env, "ENCLAVE_TLS_CA", tls_dir / "ca.crt"),
        behind_proxy=_bool(env, "ENCLAVE_BEHIND_PROXY"),
        redis_url=_get(env, "ENCLAVE_REDIS_URL"),
        hsts_preload=_bool(env, "ENCLAVE_HSTS_PRELOAD"),
        max_body_bytes=_int(env, "ENCLAVE_MAX_BODY_BYTES", 2_621_440, low=1024, high=104_857_600),
        security_contact=contact,
        plans_file=Path(plans).resolve() if plans else None,
        secret_key_file=_path(env, "ENCLAVE_SECRET_KEY_FILE", secrets_dir / "django-secret-key"),
        # Not checked for existence here: a missing directory must not stop start-up; the
        # scheduled audit records it as a finding (DEP-1 fails, saying why).
        advisory_db=Path(advisory_db).expanduser().resolve() if advisory_db else None,
        **_identity_settings(env, parts.hostname or "localhost"),
        **_keyring_settings(env),
        **_log_settings(env),
        **_backup_settings(env, var_dir),
        **_api_key_settings(env),
        **_billing_settings(env, name),
        policies_dir=_path(env, "ENCLAVE_POLICIES_DIR", PROJECT_ROOT / "docs" / "policies"),
        dns_servers=_dns_servers(env),
        outbound_allow=_networks(env, "ENCLAVE_OUTBOUND_ALLOW"),
        outbound_deny=_networks(env, "ENCLAVE_OUTBOUND_DENY"),
    )
    _refuse_unsafe_live(cfg)
    return cfg


EMAIL_BACKENDS = ("file", "console", "smtp", "esp")
BILLING_MODES = ("off", "stripe")


def _billing_settings(env: dict[str, str], env_name: str) -> dict:
    """``ENCLAVE_BILLING`` (``off``: no plan limits, nothing asked of Stripe; ``stripe``:
    Checkout, the customer portal, webhooks and plan limits). Stripe's secret key and
    webhook signing secret come from files (the secrets directory or a file a KMS agent
    writes); production refuses Stripe test-mode keys, and test and dev refuse live-mode
    keys (production is sandboxed from testing). ``ENCLAVE_STRIPE_API_BASE`` points the SDK at
    another server (a local fake in tests): https://, or http:// to this machine only."""
    mode = _get(env, "ENCLAVE_BILLING", "off")
    if mode not in BILLING_MODES:
        raise ConfigError("ENCLAVE_BILLING",
                          f"must be one of {', '.join(BILLING_MODES)}, got {mode!r}")
    grace = _int(env, "ENCLAVE_BILLING_GRACE_DAYS", 7, low=0, high=60)
    if mode == "off":
        return {"billing": mode, "billing_grace_days": grace}
    key_file = _secret_file(env, "ENCLAVE_STRIPE_SECRET_KEY_FILE")
    if key_file is None:
        raise ConfigError("ENCLAVE_STRIPE_SECRET_KEY_FILE",
                          "billing through Stripe needs the secret key in a file")
    key = key_file.read_text(encoding="utf-8").strip()
    if not key.startswith(("sk_", "rk_")):
        raise ConfigError("ENCLAVE_STRIPE_SECRET_KEY_FILE",
                          f"{key_file} does not hold a Stripe secret or restricted key")
    live_key = key.startswith(("sk_live_", "rk_live_"))
    if env_name == "production" and not live_key:
        raise ConfigError("ENCLAVE_STRIPE_SECRET_KEY_FILE",
                          "production refuses a Stripe test-mode key")
    if env_name not in LIVE_ENVIRONMENTS and live_key:
        raise ConfigError("ENCLAVE_STRIPE_SECRET_KEY_FILE",
                          f"a {env_name} environment refuses a Stripe live-mode key")
    webhook_file = _secret_file(env, "ENCLAVE_STRIPE_WEBHOOK_SECRET_FILE")
    if webhook_file is None:
        raise ConfigError("ENCLAVE_STRIPE_WEBHOOK_SECRET_FILE",
                          "billing through Stripe needs the webhook signing secret in a file")
    api_base = _get(env, "ENCLAVE_STRIPE_API_BASE")
    if api_base:
        parts = urlsplit(api_base)
        local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if (parts.scheme != "https" and not local) or not parts.hostname:
            raise ConfigError("ENCLAVE_STRIPE_API_BASE",
                              "must be an https:// URL (http:// only to this machine)")
        if env_name == "production":
            raise ConfigError("ENCLAVE_STRIPE_API_BASE", "production talks to Stripe itself")
    return {"billing": mode, "stripe_secret_key_file": key_file,
            "stripe_webhook_secret_file": webhook_file,
            "stripe_api_base": api_base.rstrip("/") if api_base else None,
            "billing_grace_days": grace}


def _dns_servers(env: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """``ENCLAVE_DNS_SERVERS``: comma-separated ``ip`` or ``ip:port`` (IPv6 as
    ``[ip]:port``)."""
    import ipaddress

    out = []
    for item in filter(None, (p.strip() for p in _get(env, "ENCLAVE_DNS_SERVERS", "").split(","))):
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            ipaddress.ip_address(host)
            number = int(port)
        except ValueError:
            raise ConfigError("ENCLAVE_DNS_SERVERS", f"not an ip[:port]: {item!r}") from None
        if not 0 < number < 65536:
            raise ConfigError("ENCLAVE_DNS_SERVERS", f"port out of range in {item!r}")
        out.append((host, number))
    return tuple(out)


def _networks(env: dict[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, normalised (``10.1.2.3`` ->
    ``10.1.2.3/32``); empty when unset."""
    out = []
    for item in filter(None, (p.strip() for p in _get(env, name, "").split(","))):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(name, f"expected IP addresses or CIDR networks, got {item!r}"
                              ) from None
    return tuple(out)


def _identity_settings(env: dict[str, str], host: str) -> dict:
    """Password policy and email delivery. NIST SP 800-63B: never below 8 characters."""
    backend = _get(env, "ENCLAVE_EMAIL_BACKEND", "file")
    if backend not in EMAIL_BACKENDS:
        raise ConfigError("ENCLAVE_EMAIL_BACKEND",
                          f"must be one of {', '.join(EMAIL_BACKENDS)}, got {backend!r}")
    email_host = _get(env, "ENCLAVE_EMAIL_HOST")
    if backend == "smtp" and not email_host:
        raise ConfigError("ENCLAVE_EMAIL_HOST", "the smtp email backend needs a host")
    password_file = _get(env, "ENCLAVE_EMAIL_PASSWORD_FILE")
    return {**_esp_settings(env, backend),
        "password_min_length": _int(env, "ENCLAVE_PASSWORD_MIN_LENGTH", 12, low=8, high=128),
        "email_backend": backend,
        "email_host": email_host,
        "email_port": _int(env, "ENCLAVE_EMAIL_PORT", 587, low=1, high=65535),
        "email_user": _get(env, "ENCLAVE_EMAIL_USER"),
        "email_password_file": Path(password_file).resolve() if password_file else None,
        "email_use_tls": _bool(env, "ENCLAVE_EMAIL_USE_TLS", True),
        "email_from": _get(env, "ENCLAVE_EMAIL_FROM", f"Enclave <no-reply@{host}>"),
    }


def _secret_file(env: dict[str, str], name: str, *, basic_auth: bool = False) -> Path | None:
    """A file holding a credential: it must hold one (printable ASCII, nothing blank —
    an empty webhook secret would let anyone in); ``basic_auth``: ``user:password``."""
    raw = _get(env, name)
    if not raw:
        return None
    path = Path(raw).expanduser().absolute()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(name, f"cannot read {path}") from None
    if not value or not value.isascii() or not value.isprintable():
        raise ConfigError(name, f"{path} must hold the credential (printable ASCII)")
    user, _, password = value.partition(":")
    if basic_auth and (not user or not password):
        raise ConfigError(name, f"{path} must hold user:password")
    return path


# The ESPs Enclave sends through (enclave.messaging.esp has what each needs); Amazon SES
# takes its credentials from the AWS SDK's own chain, the others an API key.
ESP_NAMES = ("postmark", "mailgun", "brevo", "sparkpost", "amazon_ses")
ESP_WITHOUT_KEY = ("amazon_ses",)
# The ESPs that sign their webhooks: without ENCLAVE_ESP_WEBHOOK_SIGNING_KEY_FILE their
# webhooks are not served.
ESP_SIGNING = ("mailgun",)


def _esp_settings(env: dict[str, str], backend: str) -> dict:
    """The ESP's name and credential files (``ENCLAVE_EMAIL_BACKEND=esp``)."""
    if backend != "esp":
        if _get(env, "ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN"):
            raise ConfigError("ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN",
                              "needs ENCLAVE_EMAIL_BACKEND=esp: the mail it receives "
                              "reaches Enclave through the provider's inbound webhook")
        return {}
    esp = _get(env, "ENCLAVE_ESP")
    if esp not in ESP_NAMES:
        raise ConfigError("ENCLAVE_ESP", f"the esp email backend needs one of "
                                         f"{', '.join(ESP_NAMES)}, got {esp!r}")
    key_file = _secret_file(env, "ENCLAVE_ESP_API_KEY_FILE")
    if esp not in ESP_WITHOUT_KEY and key_file is None:
        raise ConfigError("ENCLAVE_ESP_API_KEY_FILE", f"{esp} needs its API key in a file")
    api_url = _get(env, "ENCLAVE_ESP_API_URL")
    if api_url:  # an API key never travels in clear, except to this machine
        parts = urlsplit(api_url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in (
                "127.0.0.1", "localhost", "::1")):
            raise ConfigError("ENCLAVE_ESP_API_URL", "must be an https:// URL (http:// only "
                                                     "to this machine)")
    webhook_secret = _secret_file(env, "ENCLAVE_ESP_WEBHOOK_SECRET_FILE", basic_auth=True)
    signing_key = _secret_file(env, "ENCLAVE_ESP_WEBHOOK_SIGNING_KEY_FILE")
    return {"esp": esp, "esp_api_key_file": key_file, "esp_api_url": api_url,
            "esp_webhook_secret_file": webhook_secret,
            "esp_webhook_signing_key_file": signing_key,
            "unsubscribe_mail_domain": _mail_domain(
                env, webhook_secret,
                no_signing_key=esp in ESP_SIGNING and signing_key is None)}


_DOMAIN = re.compile(r"(?=.{1,200}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")


def _mail_domain(env: dict[str, str], webhook_secret: Path | None, *,
                 no_signing_key: bool) -> str | None:
    """``ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN``: mail to it reaches the ESP's inbound webhook,
    which is only served with the webhook secret and, for an ESP that signs, its signing
    key — without them every address offered would be lost."""
    name = "ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN"
    domain = (_get(env, name) or "").strip().lower()
    if not domain:
        return None
    if not _DOMAIN.match(domain):
        raise ConfigError(name, f"must be a domain name such as unsubscribe.example.com, "
                                f"got {domain[:80]!r}")
    if webhook_secret is None:
        raise ConfigError(name, "needs ENCLAVE_ESP_WEBHOOK_SECRET_FILE: the provider posts "
                                "the mail it receives to the inbound webhook")
    if no_signing_key:
        raise ConfigError(name, "needs ENCLAVE_ESP_WEBHOOK_SIGNING_KEY_FILE: the inbound "
                                "webhook checks the provider's signature with it")
    return domain


BACKUP_TARGETS = ("local", "s3")
BACKUP_THINNING = ("none", "weekly")


def _backup_settings(env: dict[str, str], var_dir: Path) -> dict:
    """Backup target (local directory or S3-compatible bucket) and thinning policy."""
    target = _get(env, "ENCLAVE_BACKUP_TARGET")
    bucket = _get(env, "ENCLAVE_BACKUP_S3_BUCKET")
    target = target or ("s3" if bucket else "local")
    if target not in BACKUP_TARGETS:
        raise ConfigError("ENCLAVE_BACKUP_TARGET",
                          f"must be one of {', '.join(BACKUP_TARGETS)}, got {target!r}")
    if target == "s3" and not bucket:
        raise ConfigError("ENCLAVE_BACKUP_S3_BUCKET", "the s3 backup target needs a bucket")
    thinning = _get(env, "ENCLAVE_BACKUP_THINNING", "none")
    if thinning not in BACKUP_THINNING:
        raise ConfigError("ENCLAVE_BACKUP_THINNING",
                          f"must be one of {', '.join(BACKUP_THINNING)}, got {thinning!r}")
    prefix = _get(env, "ENCLAVE_BACKUP_S3_PREFIX", "enclave-backups/")
    return {
        "backup_target": target,
        "backup_dir": _path(env, "ENCLAVE_BACKUP_DIR", var_dir / "backups"),
        "backup_s3_bucket": bucket,
        "backup_s3_prefix": prefix.rstrip("/") + "/",
        "backup_thinning": thinning,
    }


LOG_REDACTION_LEVELS = ("standard", "strict")


def _log_settings(env: dict[str, str]) -> dict:
    """Log retention (at most 90 days), redaction level and the syslog aggregator."""
    level = _get(env, "ENCLAVE_LOG_REDACTION", "standard")
    if level not in LOG_REDACTION_LEVELS:
        raise ConfigError("ENCLAVE_LOG_REDACTION",
                          f"must be one of {', '.join(LOG_REDACTION_LEVELS)}, got {level!r}")
    syslog = _get(env, "ENCLAVE_LOG_SYSLOG")
    if syslog is not None:
        host, _, port = syslog.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError("ENCLAVE_LOG_SYSLOG", f"expected host:port, got {syslog!r}")
    policy = _get(env, "ENCLAVE_LOG_POLICY_FILE")
    return {
        "log_retention_days": _int(env, "ENCLAVE_LOG_RETENTION_DAYS", 90, low=1, high=90),
        "log_redaction": level,
        "log_policy_file": Path(policy).resolve() if policy else None,
        "log_syslog": syslog,
    }


API_RATE_FORMAT = "<count>/<s|sec|min|h|hour|day>"


def parse_rate(text: str) -> tuple[int, int]:
    """``"1000/min"`` -> (1000, 60). Raises ValueError for anything else."""
    count, _, period = text.strip().partition("/")
    seconds = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
               "h": 3600, "hour": 3600, "d": 86400, "day": 86400}.get(period.strip())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ValueError(f"expected {API_RATE_FORMAT}, got {text!r}")
    return int(count), seconds


def _api_key_settings(env: dict[str, str]) -> dict:
    """``ENCLAVE_API_RATES="api.key=1000/min,ingest.key=20000/min"`` overrides named limits."""
    raw = _get(env, "ENCLAVE_API_RATES")
    rates = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        name, sep, rate = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError(f"expected name={API_RATE_FORMAT}, got {item.strip()!r}")
            parse_rate(rate)
        except ValueError as exc:
            raise ConfigError("ENCLAVE_API_RATES", str(exc)) from None
        rates.append((name.strip(), rate.strip()))
    proxies = []
    for item in (_get(env, "ENCLAVE_TRUSTED_PROXIES") or "127.0.0.1/32,::1/128").split(","):
        if not item.strip():
            continue
        try:
            proxies.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ConfigError("ENCLAVE_TRUSTED_PROXIES",
                              f"expected IP addresses or CIDR networks, got {item.strip()!r}"
                              ) from None
    return {"api_rates": tuple(rates), "trusted_proxies": tuple(proxies)}


KEK_PROVIDERS = ("file", "aws-kms")


def _keyring_settings(env: dict[str, str]) -> dict:
    """KEK provider (file in ENCLAVE_SECRETS_DIR, or AWS KMS) and the key-age policy."""
    provider = _get(env, "ENCLAVE_KEK_PROVIDER", "file")
    if provider not in KEK_PROVIDERS:
        raise ConfigError("ENCLAVE_KEK_PROVIDER",
                          f"must be one of {', '.join(KEK_PROVIDERS)}, got {provider!r}")
    kms_key_id = _get(env, "ENCLAVE_KMS_KEY_ID")
    if provider == "aws-kms" and not kms_key_id:
        raise ConfigError("ENCLAVE_KMS_KEY_ID", "ENCLAVE_KEK_PROVIDER=aws-kms needs a KMS key "
                          "id or ARN")
    endpoint = _get(env, "ENCLAVE_AWS_ENDPOINT_URL")
    if endpoint and urlsplit(endpoint).scheme not in ("https", "http"):
        raise ConfigError("ENCLAVE_AWS_ENDPOINT_URL", f"must be an http(s) URL, got {endpoint!r}")
    return {
        "kek_provider": provider,
        "kms_key_id": kms_key_id,
        "aws_region": _get(env, "ENCLAVE_AWS_REGION"),
        "aws_endpoint_url": endpoint,
        "key_max_age_days": _int(env, "ENCLAVE_KEY_MAX_AGE_DAYS", 90, low=1, high=3650),
    }


def _refuse_unsafe_live(cfg: Config) -> None:
    """Production and staging refuse debug, SQLite (unless allowed) and missing TLS."""
    if not cfg.is_live:
        return
    if cfg.debug:
        raise ConfigError("ENCLAVE_DEBUG", f"debug is refused in {cfg.env}")
    if cfg.is_sqlite and not cfg.allow_sqlite:
        raise ConfigError(
            "ENCLAVE_DATABASE_URL",
            f"SQLite is refused in {cfg.env}; use PostgreSQL or set ENCLAVE_ALLOW_SQLITE=1 "
            "for a single-host install",
        )
    if not cfg.behind_proxy and not (cfg.tls_cert.is_file() and cfg.tls_key.is_file()):
        raise ConfigError(
            "ENCLAVE_TLS_CERT",
            f"{cfg.env} needs a certificate and key (or ENCLAVE_BEHIND_PROXY=1 behind a TLS edge)",
        )


def read_or_create_secret_key(cfg: Config) -> str:
    """Return the Django signing key from the secrets directory.

    Outside live environments a missing key is generated (0600 in a 0700 directory).
    Live environments never generate one: a missing or short key stops the process.
    """
    path = cfg.secret_key_file
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 50 or key.startswith("django-insecure"):
            raise ConfigError("ENCLAVE_SECRET_KEY_FILE", f"{path} holds a weak or default key")
        return key
    if cfg.is_live:
        raise ConfigError("ENCLAVE_SECRET_KEY_FILE",
                          f"{path} does not exist ({cfg.env} never generates one)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(64)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key
