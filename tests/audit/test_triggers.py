"""The database triggers: every insert, update and delete on an audited table is recorded,
however it was written (model save, bulk update, raw SQL), with only the changed columns."""

from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from members.models import (
    Coupon,
    CouponTemplate,
    Identity,
    IdentityKind,
    Member,
    PointsKind,
)
from members.services.points import points_earn
from members.tasks import expire_coupons
from scrm.audit.models import AuditAction, AuditEvent
from scrm.audit.services import ERASED, record_event, scrub_member_history
from tests.members.factories import IdentityFactory, MemberFactory
from tests.org.factories import StaffFactory

pytestmark = pytest.mark.django_db


def events(table: str, action: str = AuditAction.UPDATE, **filters: object) -> list[Any]:
    return list(AuditEvent.objects.filter(table=table, action=action, **filters).order_by("pk"))


def test_model_save_records_insert_then_only_the_changed_columns():
    member: Any = MemberFactory(name="王小美", city="上海")
    created = events("members_member", AuditAction.INSERT, row_id=str(member.pk))
    assert len(created) == 1
    assert created[0].member_id == member.pk
    assert created[0].new["name"] == "王小美" and created[0].old is None

    member.city = "杭州"
    member.save(update_fields=["city", "updated_at"])

    [changed] = events("members_member", row_id=str(member.pk))
    assert (changed.old, changed.new) == ({"city": "上海"}, {"city": "杭州"})
    assert (changed.member_id, changed.actor_id, changed.actor_label) == (member.pk, None, "")


def test_bulk_update_records_one_event_per_row_with_changed_columns_only():
    members = [MemberFactory(city="上海"), MemberFactory(city="上海"), MemberFactory(city="杭州")]

    Member.all_objects.filter(pk__in=[m.pk for m in members]).update(
        city="北京", updated_at=timezone.now()
    )

    changed = events("members_member")
    assert sorted((e.member_id, e.old["city"]) for e in changed) == sorted(
        (m.pk, m.city) for m in members
    )
    assert all(e.new == {"city": "北京"} and set(e.old) == {"city"} for e in changed)


def test_a_bulk_update_of_many_rows_records_each_changed_row_once():
    """Over 100 rows the trigger pairs old and new rows in one statement built from the
    catalogue: the same events as a small update, and rows changing only excluded
    columns are left out."""
    moving = MemberFactory.create_batch(70, city="上海")
    staying = MemberFactory.create_batch(50, city="杭州")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE members_member SET city = CASE WHEN city = '上海' THEN '拉萨' ELSE city END, "
            "order_count = order_count + 1, updated_at = now() WHERE id = ANY(%s)",
            [[m.pk for m in moving + staying]],
        )

    changed = events("members_member")
    assert sorted((e.member_id, e.row_id) for e in changed) == sorted(
        (m.pk, str(m.pk)) for m in moving
    )
    assert all(e.old == {"city": "上海"} and e.new == {"city": "拉萨"} for e in changed)


def test_a_bulk_update_of_rows_about_no_member_records_them_without_one():
    """The bulk statement for staff (rows about no member) records a null member."""
    staff = StaffFactory.create_batch(110, is_active=True)
    from scrm.org.models import Staff

    Staff.objects.filter(pk__in=[s.pk for s in staff]).update(is_active=False)

    changed = events("org_staff")
    assert sorted(e.row_id for e in changed) == sorted(str(s.pk) for s in staff)
    assert all(e.member_id is None for e in changed)
    assert all(e.old == {"is_active": True} and e.new == {"is_active": False} for e in changed)


@pytest.mark.parametrize("size", [5, 105])
def test_small_and_bulk_updates_record_the_same_changes(size: int) -> None:
    """Below and above 100 rows the trigger takes different statements; both record the
    same old and new values, JSON nulls for values set or cleared included."""
    guide = StaffFactory(role="guide")
    since = timezone.now() - timedelta(days=3)
    members = MemberFactory.create_batch(size, city="上海", birthday=None, guide=guide)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE members_member SET birthday = %s, guide_id = NULL, city = city, "
            "member_since = %s, total_spent = 12.50, name = name || '·', updated_at = now() "
            "WHERE id = ANY(%s)",
            [date(1990, 5, 20), since, [m.pk for m in members]],
        )
        cursor.execute("SELECT to_jsonb(%s::timestamptz) #>> '{}'", [since])
        since_text = cursor.fetchone()[0]

    changed = {e.row_id: e for e in events("members_member")}
    assert set(changed) == {str(m.pk) for m in members}
    for member in members:
        event = changed[str(member.pk)]
        assert event.member_id == member.pk
        # total_spent is not recorded (an order figure); city did not change.
        assert event.old == {
            "birthday": None,
            "guide_id": guide.pk,
            "member_since": None,
            "name": member.name,
        }
        assert event.new == {
            "birthday": "1990-05-20",
            "guide_id": None,
            "member_since": since_text,
            "name": member.name + "·",
        }


def test_a_bulk_update_of_a_link_table_builds_its_statement_and_records_no_non_change():
    """Link tables are keyed by their two ids: over 100 rows the bulk statement reads the
    row key from the row (a rewrite that changes nothing records nothing)."""
    from scrm.org.models import Staff
    from tests.org.factories import StoreFactory

    store = StoreFactory()
    staff = StaffFactory.create_batch(101)
    Staff.stores.through.objects.bulk_create(
        [Staff.stores.through(staff=s, store=store) for s in staff]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE org_staff_stores SET store_id = store_id WHERE store_id = %s", [store.pk]
        )
        assert cursor.rowcount == 101

    assert events("org_staff_stores") == []


def test_raw_sql_update_is_recorded():
    member = MemberFactory(birthday=None)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE members_member SET birthday = %s, updated_at = now() WHERE id = %s",
            [date(1990, 5, 17), member.pk],
        )
    [changed] = events("members_member", row_id=str(member.pk))
    assert (changed.old, changed.new) == ({"birthday": None}, {"birthday": "1990-05-17"})


def test_update_of_excluded_columns_only_records_nothing():
    member = MemberFactory()
    Member.all_objects.filter(pk=member.pk).update(
        order_count=F("order_count") + 1, total_spent=F("total_spent") + 100
    )
    member.refresh_from_db()
    assert member.order_count == 1
    assert events("members_member", row_id=str(member.pk)) == []


def test_identity_insert_and_delete_name_their_member():
    identity = IdentityFactory(kind=IdentityKind.TMALL, value="tb-audit-1")
    member_id, identity_id = identity.member_id, identity.pk
    identity.delete()

    [created] = events("members_identity", AuditAction.INSERT, row_id=str(identity_id))
    [deleted] = events("members_identity", AuditAction.DELETE, row_id=str(identity_id))
    assert created.member_id == deleted.member_id == member_id
    assert created.new["value"] == deleted.old["value"] == "tb-audit-1"
    assert deleted.new is None
    assert not Identity.objects.filter(pk=identity_id).exists()


def test_points_ledger_entry_names_the_member_through_its_account():
    member = MemberFactory()
    points_earn(
        member_id=member.pk,
        kind=PointsKind.ACTIVITY,
        amount=30,
        source="test",
        external_id="audit-1",
    )
    [entry] = events("members_ledgerentry", AuditAction.INSERT)
    assert entry.member_id == member.pk
    assert (entry.new["amount"], entry.new["balance_after"]) == (30, 30)
    [account] = events("members_pointsaccount", AuditAction.INSERT)
    assert account.member_id == member.pk


def test_staff_password_hash_is_never_recorded_and_a_password_change_alone_is_no_event():
    staff: Any = StaffFactory(username="auditee")
    old_hash = staff.password
    staff.set_password("another-secret-2026")
    staff.save(update_fields=["password"])
    staff.last_login = timezone.now()
    staff.save(update_fields=["last_login"])

    [created] = events("org_staff", AuditAction.INSERT, row_id=str(staff.pk))
    assert "password" not in created.new and created.new["username"] == "auditee"
    assert created.member_id is None
    assert events("org_staff", row_id=str(staff.pk)) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_auditevent WHERE old::text LIKE %s OR new::text LIKE %s",
            [f"%{old_hash[:20]}%", f"%{staff.password[:20]}%"],
        )
        assert cursor.fetchone() == (0,)


def test_group_and_permission_changes_are_recorded_with_a_readable_key():
    staff = StaffFactory()
    group = Group.objects.create(name="总部运营组")
    permission = Permission.objects.get(codename="view_full_phone")

    staff.groups.add(group)
    staff.user_permissions.add(permission)
    group.permissions.add(permission)
    staff.groups.remove(group)

    [joined] = events("org_staff_groups", AuditAction.INSERT)
    [left] = events("org_staff_groups", AuditAction.DELETE)
    assert joined.row_id == left.row_id == f"staff {staff.pk} · group {group.pk}"
    [granted] = events("org_staff_user_permissions", AuditAction.INSERT)
    assert granted.row_id == f"staff {staff.pk} · permission {permission.pk}"
    assert events("auth_group_permissions", AuditAction.INSERT)[0].new["permission_id"] == (
        permission.pk
    )


def test_a_task_records_its_name_as_the_origin():
    member = MemberFactory()
    template = CouponTemplate.objects.create(name="满100减10", kind="amount_off", amount_off=10)
    coupon = Coupon.objects.create(
        template=template,
        member=member,
        code="AUDIT0001",
        source="test",
        source_ref="audit-1",
        issued_at=timezone.now() - timedelta(days=40),
        valid_until=timezone.now() - timedelta(days=1),
    )

    assert expire_coupons.apply().get() == 1

    [expired] = events("members_coupon", row_id=str(coupon.pk))
    assert (expired.old, expired.new) == ({"status": "issued"}, {"status": "expired"})
    assert expired.member_id == member.pk
    assert expired.origin == "task:members.tasks.expire_coupons"
    assert expired.actor_label == ""
    # After the task, what the connection writes is no longer the task's.
    MemberFactory()
    assert AuditEvent.objects.latest("pk").origin == ""


def test_the_trail_refuses_updates_and_deletes():
    event = record_event(AuditAction.UNMASK, member_id=7, detail={"field": "phone"})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(new={"field": "nothing"})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.new == {"field": "phone"}


def test_scrub_erases_only_the_named_fields_of_that_members_events():
    member = MemberFactory(name="王小美", phone="+8613800001111", city="上海")
    other = MemberFactory(name="李小红", phone="+8613800002222")
    Member.all_objects.filter(pk=member.pk).update(name="王美", phone_last4="3333")

    changed = scrub_member_history(member.pk, ["name", "phone_last4"])

    assert changed == 2  # the insert and the update
    [created] = events("members_member", AuditAction.INSERT, row_id=str(member.pk))
    assert (created.new["name"], created.new["phone_last4"], created.new["city"]) == (
        ERASED,
        ERASED,
        "上海",
    )
    assert "phone_sealed" not in created.new  # ciphertext is never copied
    [updated] = events("members_member", row_id=str(member.pk))
    assert updated.old == {"name": ERASED, "phone_last4": ERASED}
    assert updated.new == {"name": ERASED, "phone_last4": ERASED}
    [untouched] = events("members_member", AuditAction.INSERT, row_id=str(other.pk))
    assert (untouched.new["name"], untouched.new["phone_last4"]) == ("李小红", "2222")
    # The permission ended with the scrub.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=untouched.pk).delete()


def test_scrub_without_fields_changes_nothing():
    member = MemberFactory(name="王小美")
    assert scrub_member_history(member.pk, []) == 0
    [created] = events("members_member", AuditAction.INSERT, row_id=str(member.pk))
    assert created.new["name"] == "王小美"
