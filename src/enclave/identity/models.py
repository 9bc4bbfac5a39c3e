"""Members: the people who log in (distinct from marketing "people")."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower

from enclave.core import clock


class MemberManager(BaseUserManager):
    def get_by_natural_key(self, username: str):
        return self.get(email__iexact=username)


class Member(AbstractBaseUser):
    """A team member. Email is the identity, unique case-insensitively."""

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=clock.now)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = MemberManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="member_email_ci_unique")]

    def __str__(self) -> str:
        return f"member:{self.pk}"


class OwnerSetupToken(models.Model):
    """A one-time link that lets the installer create the first owner. Stored hashed."""

    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)
