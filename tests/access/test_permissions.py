"""The permission table's invariants (stated in enclave.access.permissions)."""

from __future__ import annotations

import pytest

from enclave.access.permissions import (
    BUILT_IN_ROLES,
    CUSTOM_ROLE_PERMISSIONS,
    IMPLIED,
    OWNER_ONLY,
    ROLE_PERMISSIONS,
    Permission,
    UnknownPermission,
    close,
    may_grant,
    parse,
    role_permissions,
)

P = Permission


class TestPermissionTable:
    def test_codenames_are_dotted_domain_and_verb(self):
        assert all(len(p.value.split(".")) == 2 for p in Permission)

    def test_owner_has_every_permission(self):
        assert ROLE_PERMISSIONS["owner"] == frozenset(Permission)

    @pytest.mark.parametrize("role", [r for r in BUILT_IN_ROLES if r != "owner"])
    def test_other_roles_are_strict_subsets_of_owner(self, role):
        assert ROLE_PERMISSIONS[role] < ROLE_PERMISSIONS["owner"]

    @pytest.mark.parametrize("permission", sorted(OWNER_ONLY))
    def test_only_owner_holds_the_owner_only_permissions(self, permission):
        assert [r for r in BUILT_IN_ROLES if permission in ROLE_PERMISSIONS[r]] == ["owner"]

    @pytest.mark.parametrize("role", BUILT_IN_ROLES)
    def test_implied_permissions_hold_in_every_role(self, role):
        perms = ROLE_PERMISSIONS[role]
        for permission, implied in IMPLIED.items():
            if permission in perms:
                assert implied <= perms, (role, permission)

    def test_user_does_marketing_work_only(self):
        perms = ROLE_PERMISSIONS["user"]
        assert {P.PEOPLE_READ, P.PEOPLE_WRITE, P.PEOPLE_EXPORT, P.EVENTS_WRITE} <= perms
        assert not perms & {P.TEAM_MANAGE, P.BILLING_MANAGE, P.API_KEYS_MANAGE,
                            P.ACCOUNT_MANAGE, P.AUDIT_READ}

    def test_analyst_reads_people_without_writing(self):
        perms = ROLE_PERMISSIONS["analyst"]
        assert P.PEOPLE_READ in perms
        assert not perms & {P.PEOPLE_WRITE, P.EVENTS_WRITE}

    def test_viewer_has_no_people_permission(self):
        assert not any(p.value.startswith("people.") for p in ROLE_PERMISSIONS["viewer"])

    def test_custom_roles_cannot_hold_owner_only_permissions(self):
        assert not CUSTOM_ROLE_PERMISSIONS & OWNER_ONLY

    def test_close_adds_read_to_write(self):
        assert close({P.PEOPLE_WRITE}) == {P.PEOPLE_WRITE, P.PEOPLE_READ}

    def test_close_follows_implications_transitively(self):
        assert close({P.PEOPLE_ERASE}) == {P.PEOPLE_ERASE, P.PEOPLE_WRITE, P.PEOPLE_READ}


class TestUnknownPermissions:
    def test_an_unknown_permission_cannot_be_named(self):
        with pytest.raises(AttributeError):
            _ = Permission.PEOPLE_FLY

    def test_parsing_an_unknown_codename_names_it(self):
        with pytest.raises(UnknownPermission, match=r"people\.fly"):
            parse(["people.read", "people.fly"])

    def test_a_stored_custom_role_with_unknown_codenames_grants_only_known_ones(self):
        assert role_permissions("viewer", ["people.read", "people.fly"]) == {P.PEOPLE_READ}


class TestRolePermissions:
    def test_custom_role_replaces_the_built_in_role(self):
        assert role_permissions("owner", ["people.write"]) == {P.PEOPLE_WRITE, P.PEOPLE_READ}

    def test_custom_role_stored_with_owner_only_permissions_does_not_grant_them(self):
        assert role_permissions("viewer", ["billing.manage", "account.manage"]) == frozenset()

    def test_unknown_built_in_role_grants_nothing(self):
        assert role_permissions("superuser") == frozenset()


class TestMayGrant:
    def test_a_subset_of_ones_own_permissions_may_be_granted(self):
        assert may_grant(ROLE_PERMISSIONS["admin"], ROLE_PERMISSIONS["user"])

    def test_more_than_one_holds_may_not_be_granted(self):
        assert not may_grant(close({P.TEAM_MANAGE}), ROLE_PERMISSIONS["admin"])

    @pytest.mark.parametrize("role", [r for r in BUILT_IN_ROLES if r != "owner"])
    def test_only_an_owner_may_grant_owner(self, role):
        assert not may_grant(ROLE_PERMISSIONS[role], ROLE_PERMISSIONS["owner"])
