"""The permission table's invariants (stated in enclave.accounts.permissions)."""

from __future__ import annotations

import pytest

from enclave.accounts.permissions import (
    BUILT_IN_ROLES,
    CUSTOM_ROLE_PERMISSIONS,
    IMPLIED,
    PERMISSIONS,
    ROLE_PERMISSIONS,
    close,
    has_perm,
    permissions_of,
)


class TestPermissionTable:
    def test_codenames_are_dotted_domain_and_verb(self):
        assert all(len(c.split(".")) == 2 for c in PERMISSIONS)

    @pytest.mark.parametrize("role", BUILT_IN_ROLES)
    def test_role_uses_only_known_codenames(self, role):
        assert ROLE_PERMISSIONS[role] <= set(PERMISSIONS)

    def test_owner_has_every_permission(self):
        assert ROLE_PERMISSIONS["owner"] == set(PERMISSIONS)

    @pytest.mark.parametrize("role", [r for r in BUILT_IN_ROLES if r != "owner"])
    def test_other_roles_are_strict_subsets_of_owner(self, role):
        assert ROLE_PERMISSIONS[role] < ROLE_PERMISSIONS["owner"]

    def test_only_owner_manages_billing(self):
        assert [r for r in BUILT_IN_ROLES if "billing.manage" in ROLE_PERMISSIONS[r]] == [
            "owner"]

    @pytest.mark.parametrize("role", BUILT_IN_ROLES)
    def test_implied_permissions_hold_in_every_role(self, role):
        perms = ROLE_PERMISSIONS[role]
        for codename, implied in IMPLIED.items():
            if codename in perms:
                assert implied <= perms, (role, codename)

    def test_user_does_marketing_work_only(self):
        perms = ROLE_PERMISSIONS["user"]
        assert {"people.read", "people.write", "people.export"} <= perms
        assert not perms & {"team.manage", "billing.manage", "api_keys.manage",
                            "account.manage", "audit.read"}

    def test_analyst_reads_people_without_writing(self):
        perms = ROLE_PERMISSIONS["analyst"]
        assert "people.read" in perms
        assert "people.write" not in perms

    def test_viewer_has_no_people_permission(self):
        assert not any(c.startswith("people.") for c in ROLE_PERMISSIONS["viewer"])

    def test_custom_roles_cannot_hold_owner_only_permissions(self):
        assert "billing.manage" not in CUSTOM_ROLE_PERMISSIONS
        assert "account.manage" not in CUSTOM_ROLE_PERMISSIONS

    def test_close_adds_read_to_write(self):
        assert close({"people.write"}) == {"people.write", "people.read"}


class _Membership:
    def __init__(self, role, custom_role=None):
        self.role, self.custom_role = role, custom_role


class _Role:
    def __init__(self, permissions):
        self.permissions = permissions


class TestHasPerm:
    def test_non_member_has_nothing(self):
        assert permissions_of(None) == frozenset()

    def test_unknown_codename_is_an_error_not_a_no(self):
        with pytest.raises(KeyError):
            has_perm(_Membership("owner"), "people.fly")

    def test_custom_role_replaces_the_built_in_role(self):
        membership = _Membership("viewer", _Role(["people.write"]))
        assert has_perm(membership, "people.read")
        assert not has_perm(membership, "team.read")

    def test_custom_role_stored_with_billing_does_not_grant_it(self):
        membership = _Membership("viewer", _Role(["billing.manage"]))
        assert not has_perm(membership, "billing.manage")
