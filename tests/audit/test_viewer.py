"""The HQ audit viewer /hq/audit/, its export, and the member profile's history section."""

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from scrm.audit.models import AuditAction, AuditEvent
from scrm.audit.services import record_event
from tests.conftest import Org

pytestmark = pytest.mark.django_db

URL = "/hq/audit/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def shown(response) -> list[str]:
    """The rows of the viewer's table, as text."""
    html = response.content.decode()
    return [part.split("</tr>")[0] for part in html.split('data-testid="audit-event"')[1:]]


def test_hq_admin_opens_the_viewer_and_others_are_refused(org: Org):
    assert signed_in(org.hq_admin).get(URL).status_code == 200
    for user in (org.hq_operator, org.region_manager_a, org.store_manager_a1, org.guide_a1):
        response = signed_in(user).get(URL)
        assert response.status_code == 403, user.username
        assert "audit-list" not in response.content.decode()
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/hq/login/")


def test_an_operator_granted_the_permission_may_read_it_a_manager_still_not(org: Org):
    permission = Permission.objects.get(codename="view_auditevent", content_type__app_label="audit")
    org.hq_operator.user_permissions.add(permission)
    org.store_manager_a1.user_permissions.add(permission)
    assert signed_in(org.hq_operator).get(URL).status_code == 200
    assert signed_in(org.store_manager_a1).get(URL).status_code == 403


def test_navigation_links_the_viewer_for_those_who_may_open_it(org: Org):
    assert f'href="{URL}"' in signed_in(org.hq_admin).get("/hq/").content.decode()
    assert f'href="{URL}"' not in signed_in(org.hq_operator).get("/hq/").content.decode()


def test_rows_show_when_who_what_and_the_change(org: Org):
    member = org.member_a2
    client = signed_in(org.hq_admin)
    Member.all_objects.filter(pk=member.pk).update(city="苏州", updated_at=timezone.now())

    response = client.get(URL, {"member": member.pk, "action": "update"})

    rows = shown(response)
    assert len(rows) == 1
    assert "会员" in rows[0] and f"#{member.pk}" in rows[0]
    assert f"城市</span>: {member.city} → 苏州" in rows[0]
    assert "系统" in rows[0]


def test_filters_table_action_actor_member_dates_and_search(org: Org):
    record_event(AuditAction.UNMASK, actor=org.hq_operator, member_id=org.member_b1.pk)
    record_event(AuditAction.EXPORT, actor=org.hq_admin, member_id=org.member_b1.pk)
    client = signed_in(org.hq_admin)

    def count(**query) -> int:
        response = client.get(URL, query)
        assert response.status_code == 200
        return len(shown(response))

    members_created = AuditEvent.objects.filter(
        table="members_member", action=AuditAction.INSERT
    ).count()
    assert members_created == 5
    assert count(table="members_member", action="insert") == 5
    assert count(action="unmask") == 1
    assert count(actor="hq_oper") == 1
    assert count(member=org.member_b1.pk) == 3  # created, phone shown, exported
    assert count(member=org.member_b1.pk, actor="hq_admin") == 1
    today = timezone.localdate()
    assert count(member=org.member_b1.pk, start=today.isoformat(), end=today.isoformat()) == 3
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert count(member=org.member_b1.pk, start=tomorrow) == 0
    assert count(q="钱五", table="members_member") == 1
    assert count(q=org.member_b1.phone_digest, table="members_member") == 1
    assert count(q="no-such-value-anywhere") == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"member": "abc"}, "A member id is a whole number"),
        ({"start": "2026-02-30"}, "Dates are written YYYY-MM-DD"),
        ({"start": "2026-12-10", "end": "2026-12-01"}, "The end date is before the start date"),
        ({"action": "drop"}, "Select a valid choice"),
    ],
)
def test_unusable_filters_are_named_and_list_nothing(org: Org, query, message):
    client = signed_in(org.hq_admin)
    client.cookies["scrm_language"] = "en"
    before = AuditEvent.objects.count()

    response = client.get(URL, query)
    download = client.get(URL, {**query, "format": "csv"})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert shown(response) == []
    assert download.status_code == 200 and "attachment" not in download.get(
        "Content-Disposition", ""
    )
    assert AuditEvent.objects.count() == before


def test_pagination_newest_first(org: Org):
    for number in range(60):
        record_event(AuditAction.UNMASK, member_id=999_001, detail={"n": number})
    client = signed_in(org.hq_admin)

    first = shown(client.get(URL, {"member": 999_001}))
    second = shown(client.get(URL, {"member": 999_001, "page": 2}))

    assert len(first) == 50 and len(second) == 10
    assert "n</span>: 59" in first[0] and "n</span>: 10" in first[-1]
    assert "n</span>: 9" in second[0] and "n</span>: 0" in second[-1]


def test_export_follows_the_filters_and_is_itself_recorded(org: Org):
    member = org.member_a1_unassigned
    Member.all_objects.filter(pk=member.pk).update(name="张三丰", updated_at=timezone.now())
    client = signed_in(org.hq_admin)
    client.cookies["scrm_language"] = "en"

    response = client.get(URL, {"member": member.pk, "action": "update", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["When", "By", "Action", "Record", "Row", "Member id", "Changes", "Origin"]
    assert len(rows) == 2
    assert rows[1][1:7] == [
        "System",
        "Changed",
        "Member",
        str(member.pk),
        str(member.pk),
        "name: 张三 → 张三丰",
    ]
    exported: Any = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert (exported.actor_id, exported.table, exported.new["rows"]) == (
        org.hq_admin.pk,
        "audit_auditevent",
        1,
    )
    xlsx = client.get(URL, {"member": member.pk, "format": "xlsx"})
    assert xlsx["Content-Disposition"].endswith('.xlsx"')


def test_profile_shows_the_members_history_to_hq_admin_only(org: Org):
    member = org.member_of_guide_a1
    # A city no generated member has (the factory's random city could be 南京 already,
    # and an update that changes nothing records nothing).
    Member.all_objects.filter(pk=member.pk).update(city="南京新区测试", updated_at=timezone.now())
    profile = reverse("hq:member-profile", args=[member.pk])

    page = signed_in(org.hq_admin).get(profile).content.decode()

    assert 'data-testid="section-audit"' in page
    assert f'href="{URL}?member={member.pk}"' in page
    assert page.count('data-testid="audit-history-event"') == 2  # created, then moved city
    assert "南京新区测试" in page
    for user in (org.hq_operator, org.store_manager_a1):
        other = signed_in(user).get(profile)
        assert other.status_code == 200
        assert 'data-testid="section-audit"' not in other.content.decode()
