"""Permissions that come with a role rather than being granted one by one.

Roles decide most access in code (`is_hq`, `for_user`); a few pages check a Django
permission instead, so that head office can also grant it to a particular person. This
backend gives each role its permissions of that kind.
"""

from __future__ import annotations

from typing import Any

from scrm.org.scoping import Role

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # The audit trail lists every member's changes and who made them: HQ admins only.
    Role.HQ_ADMIN: frozenset({"audit.view_auditevent"}),
}


class RolePermissionBackend:
    """Answers permission checks only. It has no `get_user`, so sessions (and the test
    client's force_login) stay with the backend that signs people in."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if obj is not None or not getattr(user_obj, "is_active", False):
            return set()
        return set(ROLE_PERMISSIONS.get(getattr(user_obj, "role", ""), ()))

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return perm in self.get_all_permissions(user_obj, obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return any(perm.startswith(f"{app_label}.") for perm in self.get_all_permissions(user_obj))
