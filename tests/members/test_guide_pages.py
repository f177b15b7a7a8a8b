"""Guides' pages (/m/) and their managers' (/hq/guides/) over real HTTP: a guide reaches
only their own customers and tasks (404 otherwise), and bad input changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import (
    FollowUpTask,
    GuideAssignment,
    Member,
    MemberTag,
    ServiceNote,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)
from members.services.guides import customers_transfer
from tests.members.factories import MemberFactory, TagFactory

pytestmark = pytest.mark.django_db


def make_task(member, guide, **kw) -> FollowUpTask:
    return FollowUpTask.objects.create(
        member=member,
        guide=guide,
        kind=kw.pop("kind", TaskKind.HQ),
        title=kw.pop("title", "回访"),
        due_on=kw.pop("due_on", timezone.localdate()),
        **kw,
    )


@pytest.fixture
def en(client):
    client.cookies["scrm_language"] = "en"
    return client


def state() -> tuple:
    return (
        sorted(Member.objects.values_list("pk", "guide_id")),
        GuideAssignment.objects.count(),
        sorted(FollowUpTask.objects.values_list("pk", "guide_id", "status", "outcome")),
        ServiceNote.objects.count(),
        sorted(MemberTag.objects.values_list("member_id", "tag_id")),
    )


# --- a guide reaches only their own customers ----------------------------------------------


def test_every_guide_page_and_endpoint_is_404_for_another_guides_customer(client, org):
    other = org.member_of_guide_a1_other  # same store, another guide
    far = org.member_b1  # another store
    tag = TagFactory()
    MemberTag.objects.create(member=other, tag=tag, source="staff", added_at=timezone.now())
    task = make_task(other, org.guide_a1_other)
    client.force_login(org.guide_a1)
    before = state()
    for member in (other, far, org.member_a1_unassigned):
        assert client.get(reverse("mobile:customer", args=[member.pk])).status_code == 404
        assert (
            client.post(
                reverse("mobile:customer-tag-add", args=[member.pk]), {"tag": tag.pk}
            ).status_code
            == 404
        )
        assert (
            client.post(reverse("mobile:customer-tag-remove", args=[member.pk, tag.pk])).status_code
            == 404
        )
        assert (
            client.post(
                reverse("mobile:customer-note-add", args=[member.pk]), {"body": "x", "kind": "note"}
            ).status_code
            == 404
        )
    assert client.get(reverse("mobile:task", args=[task.pk])).status_code == 404
    assert (
        client.post(reverse("mobile:task", args=[task.pk]), {"outcome": "reached"}).status_code
        == 404
    )
    assert client.get(reverse("mobile:customer", args=[999999])).status_code == 404
    assert state() == before
    # …and lists never show them.
    home = client.get(reverse("mobile:home"), {"q": other.name}).content.decode()
    assert f"/m/customers/{other.pk}/" not in home
    tasks = client.get(reverse("mobile:tasks")).content.decode()
    assert f"/m/tasks/{task.pk}/" not in tasks
    # HQ pages are not theirs at all.
    assert client.get(reverse("hq:guides")).status_code == 403
    assert (
        client.post(
            reverse("hq:member-reassign", args=[org.member_of_guide_a1.pk]),
            {"to_guide": org.guide_a1_other.pk},
        ).status_code
        == 403
    )
    assert state() == before


def test_guide_home_lists_own_customers_with_filters(en, org, django_assert_max_num_queries):
    client = en
    guide = org.guide_a1
    tag = TagFactory(name="敏感肌")
    tagged = MemberFactory(home_store=org.a1, guide=guide, name="周末", phone="+8613900005678")
    MemberTag.objects.create(member=tagged, tag=tag, source="staff", added_at=timezone.now())
    make_task(tagged, guide, due_on=timezone.localdate() - timedelta(days=1))
    for _ in range(25):
        MemberFactory(home_store=org.a1, guide=guide)
    client.force_login(guide)
    with django_assert_max_num_queries(16):
        page = client.get(reverse("mobile:home"))
    assert page.status_code == 200
    assert "27 customers" in page.content.decode()
    body = client.get(reverse("mobile:home"), {"q": "5678"}).content.decode()
    assert "1 customer" in body and "周末" in body
    body = client.get(reverse("mobile:home"), {"tag": tag.pk}).content.decode()
    assert "1 customer" in body and "周末" in body
    body = client.get(reverse("mobile:home"), {"due": "on"}).content.decode()
    assert "1 customer" in body and "1 task due" in body
    # An unknown tag is reported, not silently ignored.
    body = client.get(reverse("mobile:home"), {"tag": 999999}).content.decode()
    assert "Select a valid choice" in body


def test_customer_card_tags_and_notes(en, org):
    client = en
    member = org.member_of_guide_a1
    tag = TagFactory(name="爱喝咖啡")
    client.force_login(org.guide_a1)
    card = client.get(reverse("mobile:customer", args=[member.pk]))
    assert card.status_code == 200
    text = card.content.decode()
    assert "*******1234" in text and "13800001234" not in text  # masked, no tap-to-call
    assert 'href="tel:' not in text
    response = client.post(reverse("mobile:customer-tag-add", args=[member.pk]), {"tag": tag.pk})
    assert response.status_code == 302
    assert MemberTag.objects.filter(member=member, tag=tag).exists()
    client.post(reverse("mobile:customer-tag-remove", args=[member.pk, tag.pk]))
    assert not MemberTag.objects.filter(member=member, tag=tag).exists()
    client.post(
        reverse("mobile:customer-note-add", args=[member.pk]), {"body": "喜欢拿铁", "kind": "visit"}
    )
    (note,) = ServiceNote.objects.filter(member=member)
    assert (note.body, note.kind, note.author_id) == ("喜欢拿铁", "visit", org.guide_a1.pk)
    text = client.get(reverse("mobile:customer", args=[member.pk])).content.decode()
    assert "喜欢拿铁" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body": "", "kind": "note"}, "This field is required."),
        ({"body": "x" * 1001, "kind": "note"}, "at most 1000 characters"),
        ({"body": "ok", "kind": "fax"}, "Select a valid choice"),
    ],
)
def test_bad_note_is_refused(en, org, data, message):
    client = en
    member = org.member_of_guide_a1
    client.force_login(org.guide_a1)
    response = client.post(reverse("mobile:customer-note-add", args=[member.pk]), data, follow=True)
    assert message in response.content.decode()
    assert ServiceNote.objects.count() == 0


def test_unknown_or_inactive_tag_is_refused(en, org):
    client = en
    member = org.member_of_guide_a1
    off = TagFactory(active=False)
    client.force_login(org.guide_a1)
    for value in (off.pk, 999999, "abc"):
        response = client.post(
            reverse("mobile:customer-tag-add", args=[member.pk]), {"tag": value}, follow=True
        )
        assert "Choose an active tag." in response.content.decode()
    assert not MemberTag.objects.exists()


def test_tap_to_call_after_show_full_number_with_permission(org, client):
    from django.contrib.auth.models import Permission

    org.guide_a1.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    client.force_login(org.guide_a1)
    member = org.member_of_guide_a1
    text = client.get(reverse("mobile:customer", args=[member.pk])).content.decode()
    assert "tel:" not in text and 'data-testid="reveal-phone"' in text
    text = client.post(reverse("mobile:customer-phone-reveal", args=[member.pk])).content.decode()
    assert 'href="tel:+8613800001234"' in text


def test_complete_task_over_http(en, org):
    client = en
    task = make_task(org.member_of_guide_a1, org.guide_a1)
    overdue = make_task(
        org.member_of_guide_a1, org.guide_a1, due_on=timezone.localdate() - timedelta(days=3)
    )
    later = make_task(
        org.member_of_guide_a1, org.guide_a1, due_on=timezone.localdate() + timedelta(days=3)
    )
    client.force_login(org.guide_a1)
    listing = client.get(reverse("mobile:tasks")).content.decode()
    assert set(re.findall(r'href="/m/tasks/(\d+)/"', listing)) == {str(task.pk), str(overdue.pk)}
    assert "Overdue" in listing
    upcoming = client.get(reverse("mobile:tasks"), {"show": "upcoming"}).content.decode()
    assert f'href="/m/tasks/{later.pk}/"' in upcoming
    # No outcome: refused, nothing changes.
    response = client.post(reverse("mobile:task", args=[task.pk]), {"outcome": ""})
    assert response.status_code == 200
    assert "Choose what came of it." in response.content.decode()
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    response = client.post(
        reverse("mobile:task", args=[task.pk]), {"outcome": TaskOutcome.REACHED, "note": "已联系"}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.outcome, task.outcome_note) == (
        TaskStatus.DONE,
        TaskOutcome.REACHED,
        "已联系",
    )
    overdue.refresh_from_db()
    assert overdue.status == TaskStatus.OPEN
    done = client.get(reverse("mobile:tasks"), {"show": "done"}).content.decode()
    assert f'href="/m/tasks/{task.pk}/"' in done


def test_store_manager_sees_but_cannot_complete_a_guides_task(en, org):
    client = en
    task = make_task(org.member_of_guide_a1, org.guide_a1)
    client.force_login(org.store_manager_a1)
    page = client.get(reverse("mobile:task", args=[task.pk]))
    assert page.status_code == 200 and "task-done-form" not in page.content.decode()
    response = client.post(
        reverse("mobile:task", args=[task.pk]), {"outcome": TaskOutcome.REACHED}, follow=True
    )
    assert "only they can complete it" in response.content.decode()
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_my_performance(en, org):
    client = en
    client.force_login(org.guide_a1)
    page = client.get(reverse("mobile:performance"))
    assert page.status_code == 200
    assert 'data-testid="perf-customers">1<' in page.content.decode()
    client.force_login(org.store_manager_a1)
    board = client.get(reverse("mobile:performance")).content.decode()
    assert "leaderboard" in board and str(org.guide_a1) in board and str(org.guide_b1) not in board


# --- managers ---------------------------------------------------------------------------


def test_guide_pages_for_managers(en, org, django_assert_max_num_queries):
    client = en
    client.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(20):
        page = client.get(reverse("hq:guides"))
    text = page.content.decode()
    assert page.status_code == 200
    assert str(org.guide_a1) in text and str(org.guide_b1) not in text
    assert client.get(reverse("hq:guide", args=[org.guide_a1.pk])).status_code == 200
    assert client.get(reverse("hq:guide", args=[org.guide_b1.pk])).status_code == 404
    assert client.get(reverse("hq:guide-departure", args=[org.guide_b1.pk])).status_code == 404
    assert client.get(reverse("hq:tasks")).status_code == 200
    assert client.get(reverse("hq:guides"), {"store": org.b1.pk}).status_code == 404
    client.force_login(org.region_manager_a)
    text = client.get(reverse("hq:guides")).content.decode()
    assert str(org.guide_a1) in text and str(org.guide_b1) not in text


def test_transfer_over_http_and_bad_inputs(en, org):
    client = en
    member = org.member_of_guide_a1
    client.force_login(org.store_manager_a1)
    url = reverse("hq:guide-transfer", args=[org.guide_a1.pk])
    before = state()
    # A guide of another store is not a choice.
    response = client.post(url, {"members": [member.pk], "to_guide": org.guide_b1.pk}, follow=True)
    assert "Choose a guide of the same store" in response.content.decode()
    # A customer who is not this guide's.
    response = client.post(
        url,
        {"members": [org.member_of_guide_a1_other.pk], "to_guide": org.guide_a1_other.pk},
        follow=True,
    )
    assert "are not" in response.content.decode() and str(org.guide_a1) in response.content.decode()
    assert state() == before
    response = client.post(
        url, {"members": [member.pk], "to_guide": org.guide_a1_other.pk}, follow=True
    )
    assert "Transferred" in response.content.decode()
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1_other.pk
    customers_transfer(member_ids=[member.pk], to_guide=org.guide_a1, actor=org.hq_admin)
    before = state()
    response = client.post(
        url, {"members": [member.pk], "to_guide": org.guide_a1_other.pk}, follow=True
    )
    assert "transferred twice in the last 90 days" in response.content.decode()
    assert state() == before


def test_reassign_from_profile(en, org):
    client = en
    member = org.member_a1_unassigned
    client.force_login(org.store_manager_a1)
    profile = client.get(reverse("hq:member-profile", args=[member.pk])).content.decode()
    assert "member-reassign" in profile
    url = reverse("hq:member-reassign", args=[member.pk])
    before = state()
    response = client.post(url, {"to_guide": org.guide_b1.pk}, follow=True)
    assert "Choose a guide of the customer" in response.content.decode()
    assert state() == before
    client.post(url, {"to_guide": org.guide_a1.pk, "note": "到店认领"})
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1.pk
    client.post(url, {"to_guide": "pool"})
    member.refresh_from_db()
    assert member.guide_id is None
    assert (
        client.post(
            reverse("hq:member-reassign", args=[org.member_b1.pk]), {"to_guide": "pool"}
        ).status_code
        == 404
    )


def test_departure_over_http(en, org):
    client = en
    client.force_login(org.store_manager_a1)
    url = reverse("hq:guide-departure", args=[org.guide_a1.pk])
    page = client.get(url)
    assert "1 customer will be handed over" in page.content.decode()
    before = state()
    response = client.post(url, {"mode": "spread"})
    assert "Choose at least one guide" in response.content.decode()
    response = client.post(url, {"mode": "spread", "to_guides": [org.guide_b1.pk]})
    assert "Select a valid choice" in response.content.decode()
    assert state() == before
    response = client.post(url, {"mode": "spread", "to_guides": [org.guide_a1_other.pk]})
    assert response.status_code == 302
    org.member_of_guide_a1.refresh_from_db()
    org.guide_a1.refresh_from_db()
    assert org.member_of_guide_a1.guide_id == org.guide_a1_other.pk
    assert org.guide_a1.is_active is False


def test_pool_distribute_over_http(en, org):
    client = en
    client.force_login(org.store_manager_a1)
    response = client.post(reverse("hq:store-pool-distribute", args=[org.a1.pk]), follow=True)
    assert "Handed out" in response.content.decode()
    assert not Member.objects.filter(home_store=org.a1, guide__isnull=True).exists()
    assert client.post(reverse("hq:store-pool-distribute", args=[org.b1.pk])).status_code == 404


def test_hq_task_for_a_segment(en, org):
    from members.models import Segment

    client = en
    segment = Segment.objects.create(
        name="上海店全部",
        rules={
            "op": "and",
            "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
        },
        store=None,
    )
    client.force_login(org.hq_operator)
    due = (timezone.localdate() + timedelta(days=2)).isoformat()
    response = client.post(
        reverse("hq:task-new"),
        {"segment": segment.pk, "title": "会员日邀约", "detail": "", "due_on": due},
        follow=True,
    )
    assert "tasks sent to guides" in response.content.decode()
    with_guide = Member.objects.filter(guide__isnull=False).count()
    assert FollowUpTask.objects.filter(kind=TaskKind.HQ).count() == with_guide
    past = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = client.post(
        reverse("hq:task-new"),
        {"segment": segment.pk, "title": "x", "detail": "", "due_on": past},
    )
    assert "The due date is in the past." in response.content.decode()
    assert FollowUpTask.objects.filter(kind=TaskKind.HQ).count() == with_guide
    client.force_login(org.store_manager_a1)
    assert client.get(reverse("hq:task-new")).status_code == 403


def test_task_lists_have_a_fixed_query_count(en, org, django_assert_max_num_queries):
    client = en
    for _ in range(30):
        member = MemberFactory(home_store=org.a1, guide=org.guide_a1)
        make_task(member, org.guide_a1, kind=TaskKind.REPURCHASE, title="", facts={"days": 30})
    client.force_login(org.guide_a1)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("mobile:tasks"))
    assert len(re.findall(r'href="/m/tasks/\d+/"', page.content.decode())) == 20
    client.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("hq:tasks"))
    assert "30 tasks" in page.content.decode()
    with django_assert_max_num_queries(16):
        page = client.get(reverse("hq:guide", args=[org.guide_a1.pk]))
    assert page.content.decode().count('name="members"') == 31
