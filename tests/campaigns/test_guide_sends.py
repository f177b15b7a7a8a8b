"""WeCom group messages go out through guides: planning holds back members nobody can
send to, sending hands each guide a task counted in the same transaction, guides see and
confirm only their own tasks on /m/, head office follows completion. Also the WeCom
monthly limit, the shared rate limit and the retry backoff."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.gateways import throttle
from campaigns.models import (
    Broadcast,
    Delivery,
    GatewayThrottle,
    GuideSendTask,
    Material,
    SandboxCall,
)
from campaigns.services.planning import broadcast_plan
from campaigns.services.sending import delivery_key, retry_countdown, send_chunk
from members.models import Member, Segment
from scrm.core.models import AuditEvent
from tests.conftest import Org
from tests.members.factories import IdentityFactory

pytestmark = pytest.mark.django_db(transaction=True)

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


def wecom_broadcast(org: Org) -> Broadcast:
    for member in Member.objects.all():
        IdentityFactory(member=member, kind="wecom_external", value=f"wm{member.pk:08d}")
    broadcast = Broadcast.objects.create(
        name="双十二预告",
        channel="wecom",
        material=Material.objects.create(kind="text", title="双十二", body="{name}，双十二见"),
        segment=Segment.objects.create(name="全部", rules=EVERYONE),
        created_by=org.hq_operator,
        status="approved",
    )
    broadcast_plan(broadcast=broadcast)
    return broadcast


def send_all(broadcast: Broadcast) -> Any:
    ids = Delivery.objects.filter(broadcast=broadcast).values_list("pk", flat=True)
    return send_chunk(broadcast_id=broadcast.pk, low=min(ids), high=max(ids))


@pytest.fixture
def sent(org: Org) -> Broadcast:
    broadcast = wecom_broadcast(org)
    stats = send_all(broadcast)
    assert stats.sent == 3
    return broadcast


def test_members_without_a_guide_are_not_sent_a_wecom_message(org: Org) -> None:
    broadcast = wecom_broadcast(org)
    reasons = dict(Delivery.objects.filter(broadcast=broadcast).values_list("member_id", "reason"))
    assert reasons == {
        org.member_of_guide_a1.pk: "",
        org.member_of_guide_a1_other.pk: "",
        org.member_b1.pk: "",
        org.member_a1_unassigned.pk: "not_friend",
        org.member_a2.pk: "not_friend",
    }


def test_sending_hands_each_guide_one_task_with_their_customers(org: Org, sent: Broadcast) -> None:
    tasks = dict(GuideSendTask.objects.filter(broadcast=sent).values_list("guide_id", "recipients"))
    assert tasks == {org.guide_a1.pk: 1, org.guide_a1_other.pk: 1, org.guide_b1.pk: 1}
    # Sending again (a redelivered chunk) adds nothing.
    assert send_all(sent).sent == 0
    assert GuideSendTask.objects.filter(broadcast=sent).count() == 3
    assert sum(GuideSendTask.objects.values_list("recipients", flat=True)) == 3


def test_a_guide_sees_and_confirms_their_group_message(
    org: Org, sent: Broadcast, client: Client
) -> None:
    task = GuideSendTask.objects.get(broadcast=sent, guide=org.guide_a1)
    client.force_login(org.guide_a1)
    tasks_page = client.get(reverse("mobile:tasks"))
    assert 'data-testid="send-tasks-link"' in tasks_page.content.decode()
    listing = client.get(reverse("mobile:send-tasks")).content.decode()
    assert reverse("mobile:send-task", args=[task.pk]) in listing
    for other in GuideSendTask.objects.exclude(pk=task.pk):
        assert reverse("mobile:send-task", args=[other.pk]) not in listing
    detail = client.get(reverse("mobile:send-task", args=[task.pk])).content.decode()
    assert "双十二见" in detail and org.member_of_guide_a1.name in detail
    assert org.member_b1.name not in detail and org.member_of_guide_a1_other.name not in detail

    response = client.post(reverse("mobile:send-task-confirm", args=[task.pk]))
    assert response.status_code == 302
    task.refresh_from_db()
    confirmed = task.confirmed_at
    assert confirmed is not None
    assert AuditEvent.objects.filter(action="broadcast.guide_confirm").count() == 1
    # Confirming twice keeps the first time.
    client.post(reverse("mobile:send-task-confirm", args=[task.pk]))
    task.refresh_from_db()
    assert task.confirmed_at == confirmed
    done = client.get(reverse("mobile:send-tasks") + "?show=done").content.decode()
    assert reverse("mobile:send-task", args=[task.pk]) in done


def test_another_guides_task_is_404_and_stays_unconfirmed(
    org: Org, sent: Broadcast, client: Client
) -> None:
    client.force_login(org.guide_a1)
    for other in (org.guide_a1_other, org.guide_b1):  # same store, other store
        task = GuideSendTask.objects.get(broadcast=sent, guide=other)
        assert client.get(reverse("mobile:send-task", args=[task.pk])).status_code == 404
        confirm = client.post(reverse("mobile:send-task-confirm", args=[task.pk]))
        assert confirm.status_code == 404
        task.refresh_from_db()
        assert task.confirmed_at is None
    assert client.get(reverse("mobile:send-task", args=[999_999])).status_code == 404
    assert not AuditEvent.objects.filter(action="broadcast.guide_confirm").exists()


def test_head_office_follows_which_guides_have_sent(
    org: Org, sent: Broadcast, client: Client
) -> None:
    GuideSendTask.objects.filter(broadcast=sent, guide=org.guide_b1).update(
        confirmed_at="2026-11-27T10:00:00+08:00"
    )
    client.force_login(org.hq_operator)
    page = client.get(reverse("hq:broadcast", args=[sent.pk])).content.decode()
    assert 'data-testid="guide-tasks"' in page
    assert page.count('class="badge badge-ok"') == 1
    for guide in (org.guide_a1, org.guide_a1_other, org.guide_b1):
        assert str(guide) in page
    # A store manager sees only their store's guides.
    client.force_login(org.store_manager_a1)
    Broadcast.objects.filter(pk=sent.pk).update(store=org.a1)
    page = client.get(reverse("hq:broadcast", args=[sent.pk])).content.decode()
    assert str(org.guide_a1) in page and str(org.guide_b1) not in page


def test_wecom_keeps_its_four_messages_a_month(org: Org) -> None:
    member = org.member_of_guide_a1
    for n in range(4):
        SandboxCall.objects.create(
            gateway="wecom", member_id=member.pk, key=f"earlier-{n}", outcome="sent"
        )
    broadcast = wecom_broadcast(org)
    stats = send_all(broadcast)
    assert (stats.sent, stats.suppressed) == (2, 1)
    row = Delivery.objects.get(broadcast=broadcast, member=member)
    assert (row.status, row.reason) == ("suppressed", "limit_reached")
    assert SandboxCall.objects.get(key=delivery_key(broadcast.pk, member.pk)).outcome == (
        "limit_reached"
    )
    task = GuideSendTask.objects.filter(broadcast=broadcast, guide=org.guide_a1).first()
    assert task is None  # nothing was handed to that guide


def test_the_rate_limit_is_shared_and_waits() -> None:
    assert throttle("sms", 100) == 0  # no limit set: never waits
    GatewayThrottle.objects.create(gateway="sms", per_second=1000)
    assert throttle("sms", 400) == 0  # the first batch goes at once …
    started = time.monotonic()
    waited = throttle("sms", 400)  # … the next waits for the first one's 0.4 s
    assert 0.2 < waited <= 0.4
    assert time.monotonic() - started >= waited


def test_retries_back_off() -> None:
    assert [retry_countdown(n) for n in (1, 2, 3, 4, 10)] == [5, 10, 20, 40, 300]


def moments_broadcast(org: Org, **extra: Any) -> Broadcast:
    return Broadcast.objects.create(
        name="新品朋友圈",
        channel="wecom_moments",
        material=Material.objects.create(
            kind="link", title="秋冬新品", body="秋冬新品到店", link_url="https://b.example.com/aw"
        ),
        created_by=org.hq_operator,
        status="approved",
        **extra,
    )


def test_a_moments_post_is_handed_to_each_guide_once(org: Org) -> None:
    from campaigns.services.planning import broadcast_preview
    from campaigns.services.sending import post_guide_tasks

    broadcast = moments_broadcast(org, store=org.a1)
    preview = broadcast_preview(broadcast=broadcast)
    assert (preview.audience, preview.to_send) == (2, 2)  # the two guides of store a1
    plan = broadcast_plan(broadcast=broadcast)
    assert plan.to_send == 2 and not Delivery.objects.filter(broadcast=broadcast).exists()
    tasks = dict(
        GuideSendTask.objects.filter(broadcast=broadcast).values_list("guide_id", "recipients")
    )
    assert tasks == {org.guide_a1.pk: 1, org.guide_a1_other.pk: 1}
    assert broadcast_plan(broadcast=broadcast).to_send == 2  # planning twice adds nothing

    # A post went out for one guide, then the sender died before recording it.
    from campaigns.gateways import gateway_for, send_one

    send_one(
        gateway_for("wecom_moments"),
        key=f"b{broadcast.pk}:g{org.guide_a1.pk}",
        member_id=org.guide_a1.pk,
        content="秋冬新品到店",
    )
    stats = post_guide_tasks(broadcast_id=broadcast.pk)
    assert (stats.sent, stats.recovered) == (1, 1)
    assert post_guide_tasks(broadcast_id=broadcast.pk).sent == 0
    posts = SandboxCall.objects.filter(gateway="wecom_moments", outcome="sent")
    assert sorted(posts.values_list("member_id", flat=True)) == sorted(
        [org.guide_a1.pk, org.guide_a1_other.pk]
    )
    assert not GuideSendTask.objects.filter(broadcast=broadcast, handed_at__isnull=True).exists()


def test_a_guide_confirms_a_moments_post_without_a_customer_list(org: Org, client: Client) -> None:
    from campaigns.services.sending import post_guide_tasks

    broadcast = moments_broadcast(org)
    broadcast_plan(broadcast=broadcast)
    post_guide_tasks(broadcast_id=broadcast.pk)
    task = GuideSendTask.objects.get(broadcast=broadcast, guide=org.guide_b1)
    client.force_login(org.guide_b1)
    page = client.get(reverse("mobile:send-task", args=[task.pk])).content.decode()
    assert 'data-testid="post-hint"' in page and "秋冬新品到店" in page
    assert 'data-testid="send-task-customers"' not in page
    client.post(reverse("mobile:send-task-confirm", args=[task.pk]))
    task.refresh_from_db()
    assert task.confirmed_at is not None


def test_guide_posted_broadcasts_need_no_segment_but_others_do(org: Org, client: Client) -> None:
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    data = {"name": "朋友圈", "title": "新品", "body": "新品到店", "scheduled_at": "", "store": ""}
    refused = client.post("/hq/broadcasts/new/", {**data, "channel": "sms", "segment": ""})
    assert "Choose who receives it." in refused.content.decode()
    assert not Broadcast.objects.exists()
    made = client.post("/hq/broadcasts/new/", {**data, "channel": "wecom_moments", "segment": ""})
    assert made.status_code == 302
    broadcast = Broadcast.objects.get()
    assert broadcast.segment_id is None
    page = client.get(f"/hq/broadcasts/{broadcast.pk}/").content.decode()
    assert "guides will post it" in page


def test_a_store_without_guides_has_nobody_to_post(org: Org) -> None:
    from members.services.errors import MemberError

    broadcast = moments_broadcast(org, store=org.a2)
    with pytest.raises(MemberError) as refused:
        broadcast_plan(broadcast=broadcast)
    assert refused.value.code == "audience_empty"
    broadcast.refresh_from_db()
    assert broadcast.status == "approved"
    assert not GuideSendTask.objects.filter(broadcast=broadcast).exists()
