"""Django settings, derived entirely from :mod:`enclave.config` (``ENCLAVE_*`` variables).

Nothing here reads the environment directly; change behaviour through ``ENCLAVE_*``.
"""

from __future__ import annotations

import os as _os

import dj_database_url

from enclave import config as _config
from enclave.logs.pipeline import logging_dict as _logging_dict

CONFIG = _config.load()
ENCLAVE_ENV = CONFIG.env
SECRET_KEY = _config.read_or_create_secret_key(CONFIG)
DEBUG = CONFIG.debug
ALLOWED_HOSTS = list(CONFIG.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "enclave.core",
    "enclave.identity",
    "enclave.accounts",
    "enclave.people",
    "enclave.website",
    "enclave.api",
    "enclave.scanning",
    "enclave.server",
    "enclave.keys",
    "enclave.logs",
    "enclave.deploy",
    "enclave.backups",
    "enclave.apikeys",
    "enclave.events",
    "enclave.audience",
    "enclave.messaging",
    "enclave.webhooks",
    "enclave.billing",
    "enclave.compliance",
]

MIDDLEWARE = [
    "enclave.core.middleware.ForwardedProtoMiddleware",
    "enclave.core.middleware.TraceIdMiddleware",
    "enclave.logs.middleware.AccessLogMiddleware",
    "enclave.core.middleware.HttpsOnlyMiddleware",
    "enclave.core.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "enclave.core.middleware.BodySizeLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "enclave.accounts.middleware.CrossSiteFormMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "enclave.identity.middleware.MemberSessionMiddleware",
    "enclave.accounts.middleware.PrincipalMiddleware",
    "enclave.accounts.middleware.EndpointMiddleware",
]

ROOT_URLCONF = "enclave.urls"
WSGI_APPLICATION = "enclave.wsgi.application"
AUTH_USER_MODEL = "identity.Member"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "enclave.core.context.site",
                "enclave.accounts.context.app_navigation",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(CONFIG.database_url, conn_max_age=60)}
if CONFIG.is_sqlite:
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server read while the worker writes; IMMEDIATE avoids
        # upgrade deadlocks between concurrent writers.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Identity (docs/identity.md). The first hasher is the one new hashes use; the others only
# verify legacy hashes, which are upgraded at the member's next successful login.
PASSWORD_HASHERS = [
    "enclave.identity.passwords.EnclaveArgon2Hasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# argon2id, tuned on the reference 2-core host (~0.1-0.15 s per hash; docs/identity.md).
ARGON2_PARAMETERS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 1}
# The floor: OWASP Password Storage Cheat Sheet (argon2id m=19 MiB, t=2, p=1). AUTH-1.
ARGON2_POLICY_MINIMUM = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}
PASSWORD_MAX_LENGTH = 1024
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": CONFIG.password_min_length}},
    {"NAME": "enclave.identity.passwords.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "enclave.identity.passwords.NotFromIdentityValidator"},
]
LOGIN_URL = "login"
# Named login limits: "<failures>/<window>" (s, m, h). Beyond the limit, exponential
# back-off (1 min, 2, 4, ... capped at the window) that always expires — never a lock.
# per_member: wrong passwords per address (login, re-authentication, password change);
# per_ip: wrong passwords and codes per client; mfa_per_member: wrong second factors per
# member, cleared only by a right one (enclave.identity.throttle).
LOGIN_LIMITS = {"per_member": "5/15m", "per_ip": "50/15m", "mfa_per_member": "5/15m"}
# Where the counters live: Redis when configured (shared by every app server), else the DB.
THROTTLE_STORE = ("enclave.identity.services.RedisThrottleStore" if CONFIG.redis_url
                  else "enclave.identity.services.DatabaseThrottleStore")
SESSION_IDLE_TIMEOUT_MINUTES = 30  # accounts may set 5..720 (Account.idle_timeout_minutes)
SESSION_ABSOLUTE_TIMEOUT_HOURS = 12
SESSION_LAST_SEEN_INTERVAL_SECONDS = 60
REAUTH_WINDOW_MINUTES = 10
INVITATION_LIFETIME_DAYS = 7
PASSWORD_RESET_LIFETIME_MINUTES = 60
SIGNUP_LIFETIME_HOURS = 24
EMAIL_BACKEND = {
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "esp": "enclave.messaging.esp.AccountMailBackend",
}[CONFIG.email_backend]
EMAIL_FILE_PATH = str(CONFIG.var_dir / "mail")
EMAIL_HOST = CONFIG.email_host or "localhost"
EMAIL_PORT = CONFIG.email_port
EMAIL_HOST_USER = CONFIG.email_user or ""
EMAIL_HOST_PASSWORD = (CONFIG.email_password_file.read_text(encoding="utf-8").strip()
                       if CONFIG.email_password_file else "")
EMAIL_USE_TLS = CONFIG.email_use_tls
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = CONFIG.email_from

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = CONFIG.var_dir / "static"
# WhiteNoise serves our own static files (no CDN, so the CSP needs no third-party origin).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# HTTPS everywhere. Behind a TLS edge the edge's X-Forwarded-Proto is trusted only from a
# peer in ENCLAVE_TRUSTED_PROXIES (core.middleware.ForwardedProtoMiddleware). Django's own
# setting would trust it from any peer, so it stays off.
SECURE_PROXY_SSL_HEADER = None
SECURE_HSTS_SECONDS = 63_072_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = CONFIG.hsts_preload
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Redirects are done by HttpsOnlyMiddleware (pages 301, API refused), not SecurityMiddleware.
SECURE_SSL_REDIRECT = False
# security.W008 asks for SECURE_SSL_REDIRECT; HttpsOnlyMiddleware does it (and refuses API
# requests instead of redirecting them). enclave.E106 checks that middleware is installed.
# security.W021 asks for HSTS preload; preload is opt-in (ENCLAVE_HSTS_PRELOAD) because
# leaving the browsers' preload list takes months — an operator must choose it knowingly.
SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W021"]
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_NAME = "__Host-enclave_session"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 3600
CSRF_COOKIE_NAME = "__Host-enclave_csrf"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_TRUSTED_ORIGINS = [CONFIG.public_url]
CSRF_FAILURE_VIEW = "enclave.core.views.csrf_failure"
DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.max_body_bytes
FILE_UPLOAD_MAX_MEMORY_SIZE = CONFIG.max_body_bytes

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Authenticated views name enclave.apikeys.auth.ApiKeyAuthentication themselves
    # (enclave.api.base.ApiView), so public endpoints ignore stray credentials.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    # Per client IP and per key, named limits in ENCLAVE_API_RATES (enclave.apikeys.throttle).
    "DEFAULT_THROTTLE_CLASSES": ["enclave.apikeys.throttle.ApiIpThrottle",
                                 "enclave.apikeys.throttle.ApiKeyThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "enclave.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Enclave API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVERS": [{"url": CONFIG.public_url}],
}
# REST API (enclave.api, docs/api.md): problem+json responses and the bearer scheme on
# every operation; id path parameters are 64-bit integers.
SPECTACULAR_SETTINGS.update({
    "DESCRIPTION": "Enclave REST API v1. Authenticate with an API key "
                   "(`Authorization: Bearer <key>`). Errors are RFC 9457 problem+json.",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "enclave.api.schema.add_problem_responses",
                           "enclave.api.schema.make_precise"],
    # 3.1: full JSON Schema (propertyNames, type lists), so the document can say exactly
    # what the server accepts (docs/api.md, "Contract").
    "OAS_VERSION": "3.1.0",
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0,
                                        "maximum": 999_999_999_999_999_999, "example": 1}},
    "COMPONENT_SPLIT_REQUEST": True,
    # Two request fields are called "kind"; each enum gets a name of its own.
    "ENUM_NAME_OVERRIDES": {"TemplateKindEnum": ["mjml", "html"],
                            "SegmentKindEnum": ["dynamic", "static"],
                            "WebhookStateEnum": ["active", "disabled"],
                            "WebhookDeliveryStateEnum": ["pending", "delivered", "failed"]},
})

# Background jobs: Celery everywhere. Production uses Redis; the embedded default uses
# kombu's filesystem transport (no broker server) — see docs/architecture.md.
if CONFIG.redis_url:
    CELERY_BROKER_URL = CONFIG.redis_url
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    _queue = CONFIG.var_dir / "queue"
    # kombu's filesystem transport with atomic message files (enclave.core.queue_files).
    CELERY_BROKER_URL = "enclave-fs://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "messages"),
        "data_folder_out": str(_queue / "messages"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(CONFIG.data_dir / "celerybeat-schedule")

# Structured JSON logs, redacted by one policy on every handler, stored encrypted in
# var/logs (see docs/logging.md). A bad redaction policy stops the process here.
LOGGING = _logging_dict(CONFIG)
DEFAULT_EXCEPTION_REPORTER_FILTER = "enclave.logs.reporter.RedactingExceptionReporterFilter"

# API keys (enclave.apikeys, docs/api-keys.md).
API_KEY_DEFAULT_DAYS = 90
API_KEY_MAX_DAYS = 365
API_KEY_ROLL_GRACE_HOURS = 24  # default grace for a rolled key; per roll up to the max
API_KEY_ROLL_GRACE_MAX_HOURS = 7 * 24
API_KEY_LAST_USED_INTERVAL_SECONDS = 60  # last_used_at/ip written at most this often
# Named rate limits "<count>/<s|min|h|day>" (fixed windows), per key and per client IP.
# ENCLAVE_API_RATES="name=rate,..." overrides single entries (config.py).
ENCLAVE_API_RATES = {
    "api.key": "1200/min",
    "api.ip": "600/min",
    "ingest.key": "30000/min",
    "ingest.ip": "30000/min",
    # Browser keys (website tracking): per visitor's anonymous id and per client address.
    "ingest.browser_anonymous": "60/min",
    "ingest.browser_ip": "600/min",
    "api.auth_failures": "100/min",  # refused keys per client IP, then 429 before lookups
    # Plain-HTTP requests whose exposed credentials are recorded (rows), per client IP and
    # in all; beyond them the request is still refused and its API keys still revoked.
    "exposure.ip": "10/min",
    "exposure.global": "300/min",
    # Sign-up and password-reset requests (each may send an email), per client IP and per
    # address whether or not it has a login (enclave.identity.actions): over either, 429.
    "account_mail.ip": "20/h",
    "account_mail.address": "5/h",
    # Public subscribe forms (each may send a confirmation email) and the preference
    # centre / confirmation pages, per client IP; confirmation mails per address.
    "subscribe.ip": "10/min",
    "subscribe.address": "3/h",
    "preferences.ip": "60/min",
    # One-click unsubscribe POSTs per IP: mailbox providers send them from a few servers.
    "unsubscribe.ip": "3000/min",
    # Confirmation mails per person and topic, whoever subscribes them (a member toggling
    # a subscription must not flood a person's inbox either).
    "confirmation.person": "3/h",
    # Suppression look-ups (check, remove) per member or key: the answer says whether an
    # address was ever suppressed — or erased — so it is not an unlimited oracle.
    "suppression.lookup": "300/h",
    # Delivery webhooks per client address: providers post in bursts from few servers.
    "esp.webhook": "6000/min",
    # Stripe's billing webhooks per client address, and refused ones audited per address
    # (beyond: only logged).
    "billing.webhook": "600/min",
    "billing.webhook.refused": "60/h",
    # Tracking hits (open pixels, click redirects) recorded per client address.
    "track.ip": "600/min",
    # Tracking tokens that do not verify, per client address: past it, refused before any
    # key is read.
    "track.invalid": "60/min",
    # Refused webhook requests audited per client address (beyond: only logged).
    "esp.webhook.refused": "60/h",
    # Sender-domain DNS checks per account: each asks DNS several questions about a name
    # a member typed.
    "sender_domain.check": "30/h",
    # Sender domains added and DKIM keys made per account (each makes an RSA key), and
    # template saves per account (each compiles in a limited child process for up to
    # 20 s).
    "sender_domain.add": "20/h",
    "template.save": "300/h",
    # Test sends per member: each mails the member's own address at once.
    "broadcast.test": "20/h",
    **dict(CONFIG.api_rates),
}
# Client addresses the per-IP limits skip: the host itself (a local proxy, health checks,
# the test client). Keys are still limited per key.
API_RATE_EXEMPT_NETWORKS = ["127.0.0.0/8", "::1/128"]
# The rate limiter: Redis when configured (shared by every app server), else in-process.
API_RATE_LIMITER = ("enclave.core.ratelimit.RedisRateLimiter" if CONFIG.redis_url
                    else "enclave.core.ratelimit.LocalRateLimiter")

# Benchmark only (benchmarks/bench_api.py): a bare Django view at /api/bench/people/<id>,
# the baseline the authenticated API GET is compared with on the same server. Set by the
# benchmark's own server process (ENCLAVE_API_BENCH_VIEW=1) and never in a live
# environment, whatever the variable says. (The one environment read outside config.py:
# it is a benchmark switch, not configuration.)
ENCLAVE_API_BENCH_VIEW = (not CONFIG.is_live
                          and _os.environ.get("ENCLAVE_API_BENCH_VIEW") == "1")
