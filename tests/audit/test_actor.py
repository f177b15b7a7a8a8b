"""The actor the triggers record: the signed-in staff member of the request, set for the
request only, so a persistent connection never carries it into the next request."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from scrm.audit.models import AuditAction, AuditEvent
from scrm.org.scoping import Role
from tests.members.factories import MemberFactory, SandboxLoginCodeFactory
from tests.org.factories import StaffFactory

pytestmark = pytest.mark.django_db


def _grant_in_admin(client: Client, target, group: Group, permission: Permission) -> None:
    """The Django admin's staff form, as HQ fills it in: a group, a permission, a role."""
    response = client.post(
        reverse("admin:org_staff_change", args=[target.pk]),
        {
            "username": target.username,
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "groups": [group.pk],
            "user_permissions": [permission.pk],
            "date_joined_0": "2026-01-05",
            "date_joined_1": "09:00:00",
            "last_login_0": "",
            "last_login_1": "",
            "display_name": target.display_name,
            "phone": "",
            "role": Role.HQ_OPERATOR,
            "region": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]


def test_a_permission_grant_and_group_change_carry_the_requests_staff_member():
    root = StaffFactory(username="root", is_staff=True, is_superuser=True, role=Role.HQ_ADMIN)
    target = StaffFactory(username="newhire", role=Role.GUIDE)
    group = Group.objects.create(name="总部运营组")
    permission = Permission.objects.get(codename="view_full_phone")
    client = Client()
    client.force_login(root)

    _grant_in_admin(client, target, group, permission)

    path = reverse("admin:org_staff_change", args=[target.pk])
    joined = AuditEvent.objects.get(table="org_staff_groups", action=AuditAction.INSERT)
    granted: Any = AuditEvent.objects.get(
        table="org_staff_user_permissions", action=AuditAction.INSERT
    )
    role: Any = AuditEvent.objects.get(
        table="org_staff", action=AuditAction.UPDATE, row_id=str(target.pk)
    )
    for event in (joined, granted, role):
        assert (event.actor_id, event.actor_label, event.origin) == (root.pk, "root", path)
    assert joined.row_id == f"staff {target.pk} · group {group.pk}"
    assert granted.new == {
        "id": granted.new["id"],
        "staff_id": target.pk,
        "permission_id": permission.pk,
    }
    assert role.old["role"] == Role.GUIDE and role.new["role"] == Role.HQ_OPERATOR
    target.refresh_from_db()
    assert target.role == Role.HQ_OPERATOR
    assert not AuditEvent.objects.filter(table="org_staff", old__has_key="password").exists()
    assert not AuditEvent.objects.filter(table="org_staff", new__has_key="password").exists()


def test_the_next_request_on_the_same_connection_gets_its_own_actor():
    root = StaffFactory(username="root", is_staff=True, is_superuser=True, role=Role.HQ_ADMIN)
    target = StaffFactory(username="newhire", role=Role.GUIDE)
    staff_client = Client()
    staff_client.force_login(root)
    _grant_in_admin(
        staff_client,
        target,
        Group.objects.create(name="门店组"),
        Permission.objects.get(codename="view_full_phone"),
    )
    assert AuditEvent.objects.filter(actor_id=root.pk).exists()

    # An anonymous request next: the mini-program's first sign-in creates a member.
    code = SandboxLoginCodeFactory(openid="oAudit1", unionid="oUAudit1")
    response = Client().post(
        "/api/v1/auth/wechat-login", {"code": code.code}, content_type="application/json"
    )
    assert response.status_code == 200
    member_id = response.json()["member"]["id"]
    created = AuditEvent.objects.get(
        table="members_member", action=AuditAction.INSERT, row_id=str(member_id)
    )
    assert (created.actor_id, created.actor_label) == (None, "")
    assert created.origin == "/api/v1/auth/wechat-login"

    # And outside any request (a shell, a script), nobody's actor remains set.
    outside = MemberFactory()
    event = AuditEvent.objects.get(
        table="members_member", action=AuditAction.INSERT, row_id=str(outside.pk)
    )
    assert (event.actor_id, event.actor_label, event.origin) == (None, "", "")


def test_a_refused_request_writes_nothing_and_puts_the_actor_back():
    admin = StaffFactory(username="hqadmin", role=Role.HQ_ADMIN)
    member = MemberFactory()
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    # A points adjustment without a reason is refused: nothing is written.
    response = client.post(
        reverse("hq:member-points-adjust", args=[member.pk]),
        {"kind": "activity", "amount": "x"},
    )
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(table="members_ledgerentry").exists()
    Member.all_objects.filter(pk=member.pk).update(city="成都", updated_at=timezone.now())
    event = AuditEvent.objects.get(table="members_member", action=AuditAction.UPDATE)
    assert (event.actor_id, event.origin) == (None, "")
