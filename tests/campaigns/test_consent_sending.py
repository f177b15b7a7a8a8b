"""A consent withdrawal reaches the sender: the member is suppressed as opted out and
nothing goes to them; consenting again, they are sent to."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from campaigns.models import ConsentEntry, Delivery, MarketingOptOut, Material, SandboxCall
from campaigns.services.consent import consent_record, unsubscribe_url
from campaigns.services.sending import delivery_key, send_chunk
from tests.campaigns.test_sending import bounds, planned_broadcast
from tests.conftest import Org

pytestmark = pytest.mark.django_db(transaction=True)


def decide(member, granted: bool) -> None:
    consent_record(
        member=member,
        purpose="marketing_sms",
        granted=granted,
        source="mini_program",
        channel="mini_program",
    )


def sent_to(broadcast, member) -> int:
    return SandboxCall.objects.filter(
        key=delivery_key(broadcast.pk, member.pk), outcome="sent"
    ).count()


def test_a_withdrawal_suppresses_the_member_and_consent_again_sends(org: Org) -> None:
    wang = org.member_of_guide_a1
    decide(wang, granted=False)
    withdrawn = planned_broadcast(org)
    low, high = bounds(withdrawn)
    stats = send_chunk(broadcast_id=withdrawn.pk, low=low, high=high)
    row = Delivery.objects.get(broadcast=withdrawn, member=wang)
    assert (row.status, row.reason) == ("suppressed", "opted_out")
    assert sent_to(withdrawn, wang) == 0
    assert stats.sent == Delivery.objects.filter(broadcast=withdrawn, status="sent").count() == 4

    decide(wang, granted=True)
    again = planned_broadcast(org)
    low, high = bounds(again)
    send_chunk(broadcast_id=again.pk, low=low, high=high)
    row = Delivery.objects.get(broadcast=again, member=wang)
    assert (row.status, row.reason) == ("sent", "")
    assert sent_to(again, wang) == 1


def test_a_withdrawal_between_planning_and_sending_is_honoured(org: Org) -> None:
    wang = org.member_of_guide_a1
    broadcast = planned_broadcast(org)
    assert Delivery.objects.get(broadcast=broadcast, member=wang).status == "planned"
    decide(wang, granted=False)
    low, high = bounds(broadcast)
    send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    row = Delivery.objects.get(broadcast=broadcast, member=wang)
    assert (row.status, row.reason) == ("suppressed", "opted_out")
    assert sent_to(broadcast, wang) == 0


def test_an_sms_carries_the_members_unsubscribe_link_where_the_text_asks(
    client: Client, org: Org
) -> None:
    wang = org.member_of_guide_a1
    broadcast = planned_broadcast(org)
    Material.objects.filter(pk=broadcast.material_id).update(
        body="{name}，会员日快乐 退订{unsubscribe}"
    )
    low, high = bounds(broadcast)
    send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    content = SandboxCall.objects.get(key=delivery_key(broadcast.pk, wang.pk)).content
    link = unsubscribe_url(member_id=wang.pk, channel="sms")
    assert content == f"{wang.name}，会员日快乐 退订{link}"
    client.post(link.removeprefix(settings.SCRM_PUBLIC_URL.rstrip("/")))
    assert list(MarketingOptOut.objects.values_list("member_id", "channel")) == [(wang.pk, "sms")]
    assert ConsentEntry.objects.get().source == "unsubscribe_link"
