"""Core tables: deployment stamp, audit log, credential exposures, control results."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from enclave.core import clock


class AuditEventType(models.IntegerChoices):
    """Every audited event. Append-only: numbers are never reused or renumbered.

    Ranges: 100–199 deployment/system, 200–299 identity, 300–399 accounts and team,
    400–499 people, 500–599 API and keys, 600–699 keys/logs, 700–799 backups,
    800–899 billing, 900–999 incidents, 1000–1099 audience, 1100–1199 messaging,
    1200–1299 webhooks.
    """

    ENVIRONMENT_STAMPED = 101, "environment stamped"
    CREDENTIAL_EXPOSED = 110, "credential exposed over plain HTTP"
    CONTROLS_RECORDED = 120, "security controls recorded"
    DEPENDENCY_AUDIT_RECORDED = 121, "dependency audit recorded"
    OWNER_SETUP_ISSUED = 201, "owner set-up link issued"
    OWNER_CREATED = 202, "first owner created"
    SIGNUP_REQUESTED = 203, "sign-up requested"
    SIGNUP_COMPLETED = 204, "sign-up completed"
    LOGIN_SUCCEEDED = 210, "login succeeded"
    LOGIN_FAILED = 211, "login failed"
    LOGIN_THROTTLED = 212, "login refused by throttling"
    LOGOUT = 213, "logged out"
    MFA_CHALLENGE_FAILED = 214, "MFA code refused"
    REAUTHENTICATED = 215, "re-authenticated for a sensitive action"
    SESSION_REVOKED = 220, "session revoked"
    SESSIONS_REVOKED_ALL = 221, "signed out everywhere"
    ACCOUNT_SWITCHED = 222, "switched account"
    PASSWORD_CHANGED = 230, "password changed"
    PASSWORD_RESET_REQUESTED = 231, "password reset requested"
    PASSWORD_RESET_COMPLETED = 232, "password reset completed"
    PASSWORD_REHASHED = 233, "password hash upgraded"
    MFA_ENABLED = 240, "MFA enabled"
    MFA_DISABLED = 241, "MFA disabled"
    RECOVERY_CODES_REGENERATED = 242, "MFA recovery codes regenerated"
    RECOVERY_CODE_USED = 243, "MFA recovery code used"
    IDENTITY_RECORDS_PURGED = 290, "expired identity records purged"
    ACCOUNT_CREATED = 301, "account created"
    ACCOUNT_SECURITY_CHANGED = 302, "account security settings changed"
    INVITATION_SENT = 310, "invitation sent"
    INVITATION_ACCEPTED = 311, "invitation accepted"
    # Team, roles and the audit log (enclave.accounts): 320–399.
    ROLE_CHANGED = 320, "member's role changed"
    MEMBER_REMOVED = 321, "member removed from the account"
    OWNERSHIP_TRANSFERRED = 322, "account ownership transferred"
    CUSTOM_ROLE_SAVED = 323, "custom role saved"
    AUDIT_LOG_EXPORTED = 330, "audit log exported"
    # People (enclave.people): 400–499.
    PERSON_CREATED = 400, "person created"
    PERSON_UPDATED = 401, "person updated"
    PERSON_ARCHIVED = 402, "person archived"
    PERSON_ERASED = 403, "person erased"
    PERSON_VALUE_REVEALED = 404, "masked personal value revealed"
    PEOPLE_EXPORTED = 405, "people exported to CSV"
    PEOPLE_IMPORTED = 406, "people imported from CSV"
    PEOPLE_IMPORT_STAGED = 407, "CSV import checked and held for confirmation"
    PEOPLE_IMPORT_DISCARDED = 408, "held CSV imports discarded (cancelled or expired)"
    FIELD_DEFINED = 410, "custom field defined"
    # API keys (enclave.apikeys): 500–549.
    API_KEY_CREATED = 501, "API key created"
    API_KEY_ROLLED = 502, "API key rolled (successor issued)"
    API_KEY_REVOKED = 503, "API key revoked"
    API_KEY_EXPOSED = 504, "API key exposed over plain HTTP and revoked"
    API_KEY_POLICY_CHANGED = 505, "API key age policy changed"
    # Events ingest (enclave.events): 550–599.
    EVENTS_INGESTED = 550, "events batch ingested"
    EVENT_MESSAGE_IDS_PURGED = 551, "expired event message ids purged"
    # Keyring (enclave.keys): 601–629.
    DATA_KEY_CREATED = 601, "data key created"
    DATA_KEY_ROTATED = 602, "data key rotated"
    KEK_ROTATED = 603, "key-encryption key rotated"
    KEY_VERSION_RETIRED = 604, "data key version retired"
    KEYS_REENCRYPTED = 605, "stored secrets re-encrypted under primary keys"
    # Logs (enclave.logs): 650–699.
    LOGS_TAILED = 650, "operator read the newest log records"
    LOGS_SEARCHED = 651, "operator searched the logs"
    LOGS_VERIFIED = 652, "log store chain verified"
    LOGS_EXPUNGED = 653, "log segments expunged by retention"
    # Backups (enclave.backups): 700–799.
    BACKUP_CREATED = 701, "encrypted backup created"
    BACKUP_VERIFIED = 702, "backup verified"
    BACKUP_RESTORED = 703, "backup restored"
    BACKUP_EXPUNGED = 704, "backup expunged and its data key destroyed"
    BACKUP_DRILL_RUN = 705, "restore drill run"
    ERASURE_TOMBSTONE_RECORDED = 706, "erasure recorded for re-application after restores"
    # Audience (enclave.audience): 1000–1099.
    SEGMENT_CREATED = 1001, "segment created"
    SEGMENT_CHANGED = 1002, "segment changed"
    SEGMENT_DELETED = 1003, "segment deleted"
    SEGMENT_PEOPLE_ADDED = 1004, "people added to a list"
    SEGMENT_PEOPLE_REMOVED = 1005, "people removed from a list"
    SEGMENT_SNAPSHOT_TAKEN = 1006, "list made from a segment's members now"
    TOPIC_CREATED = 1010, "subscription topic created"
    TOPIC_CHANGED = 1011, "subscription topic changed"
    SUBSCRIPTION_CHANGED = 1020, "subscription changed"
    SUBSCRIPTION_CONFIRMED = 1021, "subscription confirmed (double opt-in)"
    ERASURE_REQUESTED = 1022, "person asked to be erased (preference centre)"
    ADDRESS_SUPPRESSED = 1030, "address suppressed"
    ADDRESS_UNSUPPRESSED = 1031, "address removed from the suppression list"
    # Messaging (enclave.messaging): 1100–1199.
    TEMPLATE_CREATED = 1101, "email template created"
    TEMPLATE_CHANGED = 1102, "email template changed"
    TEMPLATE_DELETED = 1103, "email template deleted"
    SENDER_DOMAIN_ADDED = 1110, "sender domain added (with its first DKIM key)"
    SENDER_DOMAIN_STATE_CHANGED = 1111, "sender domain verified or unverified by a DNS check"
    SENDER_DOMAIN_REMOVED = 1112, "sender domain removed (its DKIM keys deleted)"
    DKIM_KEY_CREATED = 1113, "DKIM key made for rotation"
    DKIM_KEY_ACTIVATED = 1114, "DKIM key took over signing (the previous one retired)"
    BROADCAST_CREATED = 1120, "broadcast drafted"
    BROADCAST_QUEUED = 1121, "broadcast queued (its recipients snapshotted into the outbox)"
    BROADCAST_CANCELLED = 1122, "broadcast cancelled"
    BROADCAST_DELETED = 1123, "broadcast draft deleted"
    BROADCAST_SCHEDULED = 1124, "broadcast scheduled (or unscheduled, back to a draft)"
    BROADCAST_NOT_STARTED = 1125, "scheduled broadcast could not start (back to a draft)"
    BROADCAST_PAUSED = 1126, "broadcast paused"
    BROADCAST_RESUMED = 1127, "broadcast resumed"
    BROADCAST_TEST_SENT = 1128, "broadcast test sent to the member's own address"
    POSTAL_ADDRESS_CHANGED = 1130, "the postal address in every email's footer changed"
    SENDER_DOMAIN_THROTTLE_CHANGED = 1115, "sender domain throttle changed"
    MESSAGE_QUEUED = 1140, "transactional message queued (to a person or an address)"
    ESP_WEBHOOK_REFUSED = 1141, "an email provider's webhook refused (authentication or form)"
    # Billing (enclave.billing): 800–899.
    BILLING_CHECKOUT_STARTED = 801, "Stripe Checkout started to subscribe to a plan"
    BILLING_PORTAL_OPENED = 802, "Stripe customer portal opened"
    BILLING_SUBSCRIPTION_CHANGED = 803, "subscription changed (as Stripe reports it)"
    BILLING_WEBHOOK_RECEIVED = 804, "Stripe webhook event handled"
    BILLING_WEBHOOK_REFUSED = 805, "Stripe webhook refused (signature, age or form)"
    # Outgoing webhooks (enclave.webhooks): 1200–1299.
    WEBHOOK_ENDPOINT_CREATED = 1201, "webhook endpoint created"
    WEBHOOK_ENDPOINT_CHANGED = 1202, "webhook endpoint changed (or enabled, or disabled)"
    WEBHOOK_SECRET_ROTATED = 1203, "webhook endpoint's signing secret rotated"
    WEBHOOK_ENDPOINT_DELETED = 1204, "webhook endpoint deleted"
    WEBHOOK_DELIVERY_REPLAYED = 1205, "webhook delivery replayed"
    WEBHOOK_ENDPOINT_DISABLED = 1206, ("webhook endpoint disabled by the system (410 Gone, "
                                       "or a delivery failed every retry)")


class DeploymentStamp(models.Model):
    """One row: which environment this database belongs to. Written at first migrate."""

    environment = models.CharField(max_length=16)
    instance_id = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(environment__in=["production", "staging", "test", "dev"]),
                name="deploymentstamp_environment_valid",
            )
        ]


class AuditEvent(models.Model):
    """Append-only audit log. Personal data is referenced by id in ``extra_data``, never copied."""

    created_at = models.DateTimeField(default=clock.now, db_index=True)
    # No `choices=` on purpose: adding an event type must not need a migration. Values are
    # checked against AuditEventType by audit.record().
    event_type = models.PositiveIntegerField()
    account_id = models.BigIntegerField(null=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True)
    trace_id = models.CharField(max_length=32, blank=True)
    extra_data = models.JSONField(default=dict)
    scrubbed = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["account_id", "created_at"])]


class CredentialExposure(models.Model):
    """A credential that arrived over plain HTTP. Stores a keyed fingerprint, never the value."""

    created_at = models.DateTimeField(default=clock.now)
    kind = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=64, db_index=True)
    path = models.CharField(max_length=512)
    ip = models.GenericIPAddressField(null=True)


class ControlResult(models.Model):
    """The latest result of each security control (one row per control id)."""

    control_id = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=8)
    evidence = models.TextField()
    public_summary = models.CharField(max_length=300)
    checked_at = models.DateTimeField()
