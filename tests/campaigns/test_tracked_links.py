"""Tracked links (issue 10): a message whose material has a link carries its delivery's own
signed link instead; following it records the first click (and open) once and leads to
the material's stored link only; bad, forged or tampered tokens are a 404 that writes
nothing; reading an inbox message records its delivery's first open."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core import signing
from django.db import connections
from django.test import Client
from django.utils import timezone

from campaigns.models import Broadcast, Delivery, InboxMessage, Material, SandboxCall
from campaigns.services.planning import broadcast_plan
from campaigns.services.sending import delivery_key, send_chunk
from campaigns.services.tracking import (
    link_delivery_id,
    link_follow,
    link_token,
    tracked_url,
)
from members.models import Member, Segment
from members.services.auth import _open_session
from members.services.errors import MemberError
from tests.conftest import Org
from tests.members.factories import phone_identity

PUBLIC = "https://scrm.example-brand.cn"
LINK = "https://m.example-brand.cn/events/618"
EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


@pytest.fixture(autouse=True)
def _public_url(settings: Any) -> None:
    settings.SCRM_PUBLIC_URL = PUBLIC + "/"


def link_broadcast(org: Org, channel: str = "inbox", link: str = LINK) -> Broadcast:
    material = Material.objects.create(
        kind="link" if link else "text",
        title="618 会员日",
        body="{name}，618 会员日",
        link_url=link,
    )
    broadcast = Broadcast.objects.create(
        name="618",
        channel=channel,
        material=material,
        segment=Segment.objects.create(name="全部", rules=EVERYONE),
        created_by=org.hq_operator,
        status="approved",
    )
    broadcast_plan(broadcast=broadcast)
    send_chunk(broadcast_id=broadcast.pk, low=0, high=2**62)
    return broadcast


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC + "/l/")
    return url[len(PUBLIC) :]


def tracking(delivery: Delivery) -> tuple[Any, Any]:
    delivery.refresh_from_db()
    return delivery.opened_at, delivery.clicked_at


# --- tokens -------------------------------------------------------------------------------


def test_tokens_are_short_url_safe_signed_and_specific_to_links() -> None:
    token = link_token(123456)
    assert re.fullmatch(r"[0-9A-Za-z]+\.[A-Za-z0-9_-]{16}", token), token
    assert len(token) <= 24
    assert link_delivery_id(token) == 123456
    value, signature = token.split(".")
    tampered = value + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    other_id = signing.b62_encode(123457) + "." + signature  # another delivery, same signature
    # Signed for something else: the default salt, or the full-length signature.
    other_salt = signing.Signer(sep=".").sign(value)
    for bad in (tampered, other_id, other_salt, value, "", "....", "x" * 300):
        assert link_delivery_id(bad) is None, bad


# --- messages carry their own link --------------------------------------------------------


@pytest.mark.django_db
def test_inbox_messages_carry_each_deliverys_tracked_link(org: Org) -> None:
    broadcast = link_broadcast(org)
    deliveries = Delivery.objects.filter(broadcast=broadcast)
    assert deliveries.filter(status="sent").count() == 5
    links = dict(InboxMessage.objects.values_list("key", "link_url"))
    assert links == {
        delivery_key(broadcast.pk, d.member_id): f"{PUBLIC}/l/{link_token(d.pk)}"
        for d in deliveries
    }
    assert len(set(links.values())) == 5 and LINK not in links.values()


@pytest.mark.django_db(transaction=True)
def test_an_sms_carries_its_tracked_link_in_the_text(org: Org) -> None:
    for member in Member.objects.all():
        phone_identity(member, f"+86137{member.pk:08d}")
    broadcast = link_broadcast(org, channel="sms")
    wang = org.member_of_guide_a1
    delivery = Delivery.objects.get(broadcast=broadcast, member=wang)
    content = SandboxCall.objects.get(key=delivery_key(broadcast.pk, wang.pk)).content
    assert content == f"{wang.name}，618 会员日 {PUBLIC}/l/{link_token(delivery.pk)}"
    assert SandboxCall.objects.filter(content__contains=LINK).count() == 0


@pytest.mark.django_db
def test_a_material_without_a_link_gets_none(org: Org) -> None:
    broadcast = link_broadcast(org, link="")
    assert set(InboxMessage.objects.values_list("link_url", flat=True)) == {""}
    delivery = Delivery.objects.filter(broadcast=broadcast).first()
    assert delivery is not None
    # And its delivery's token leads nowhere.
    with pytest.raises(MemberError) as exc:
        link_follow(token=link_token(delivery.pk))
    assert exc.value.status == 404
    assert tracking(delivery) == (None, None)


# --- following a link ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_first_click_records_the_click_and_the_open_once_and_redirects(
    client: Client, org: Org
) -> None:
    broadcast = link_broadcast(org)
    delivery = Delivery.objects.get(broadcast=broadcast, member=org.member_of_guide_a1)
    url = InboxMessage.objects.get(key=delivery_key(broadcast.pk, delivery.member_id)).link_url
    before = timezone.now()
    response = client.get(path_of(url), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == LINK
    assert "no-cache" in response["Cache-Control"]
    opened, clicked = tracking(delivery)
    assert clicked is not None and clicked >= before and opened == clicked
    # Again: still leads on, records nothing new.
    again = client.get(path_of(url))
    assert again.status_code == 302 and again["Location"] == LINK
    assert tracking(delivery) == (opened, clicked)
    # Nobody else's delivery was touched.
    assert Delivery.objects.filter(clicked_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_a_click_after_reading_keeps_the_first_open(client: Client, org: Org) -> None:
    broadcast = link_broadcast(org)
    delivery = Delivery.objects.get(broadcast=broadcast, member=org.member_b1)
    read_at = timezone.now() - timedelta(hours=1)
    Delivery.objects.filter(pk=delivery.pk).update(opened_at=read_at)
    assert client.get(path_of(tracked_url(delivery.pk))).status_code == 302
    opened, clicked = tracking(delivery)
    assert opened == read_at and clicked is not None and clicked > read_at


@pytest.mark.django_db
def test_bad_forged_and_unknown_tokens_are_a_404_and_write_nothing(
    client: Client, org: Org
) -> None:
    broadcast = link_broadcast(org)
    mine, theirs = (
        Delivery.objects.get(broadcast=broadcast, member=m)
        for m in (org.member_of_guide_a1, org.member_b1)
    )
    value, signature = link_token(mine.pk).split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = signing.b62_encode(theirs.pk) + "." + signature  # my signature, their id
    unknown = link_token(theirs.pk + 10_000)  # well signed, no such delivery
    before = list(Delivery.objects.order_by("pk").values())
    client.cookies["scrm_language"] = "en"
    for token in (f"{value}.{flipped}", forged, unknown, "nonsense", f"{value}.{signature}x"):
        response = client.get(f"/l/{token}")
        assert response.status_code == 404, token
        assert "This link is not valid" in response.content.decode()
        assert "Location" not in response
    assert list(Delivery.objects.order_by("pk").values()) == before


@pytest.mark.django_db
def test_a_control_group_delivery_has_no_link_to_follow(client: Client, org: Org) -> None:
    material = Material.objects.create(kind="link", title="618", body="618", link_url=LINK)
    broadcast = Broadcast.objects.create(
        name="618",
        channel="inbox",
        material=material,
        segment=Segment.objects.create(name="全部", rules=EVERYONE),
        created_by=org.hq_operator,
        status="sending",
    )
    held = Delivery.objects.create(
        broadcast=broadcast,
        member=org.member_a2,
        channel="inbox",
        send_day=timezone.localdate(),
        status="held_out",
        sent_at=timezone.now(),
    )
    assert client.get(path_of(tracked_url(held.pk))).status_code == 404
    assert tracking(held) == (None, None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_record_once(org: Org) -> None:
    broadcast = link_broadcast(org)
    delivery = Delivery.objects.get(broadcast=broadcast, member=org.member_a2)
    token = link_token(delivery.pk)
    moments = [timezone.now() + timedelta(seconds=n) for n in range(6)]
    start = threading.Barrier(len(moments))
    errors: list[BaseException] = []

    def click(moment: Any) -> None:
        try:
            start.wait()
            assert link_follow(token=token, now=moment) == LINK
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(m,)) for m in moments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    opened, clicked = tracking(delivery)
    assert clicked in moments and opened == clicked
    assert Delivery.objects.filter(clicked_at__isnull=False).count() == 1


# --- opens from the inbox -----------------------------------------------------------------


@pytest.mark.django_db
def test_reading_the_inbox_message_records_the_open_once(client: Client, org: Org) -> None:
    broadcast = link_broadcast(org)
    wang = org.member_of_guide_a1
    delivery = Delivery.objects.get(broadcast=broadcast, member=wang)
    message = InboxMessage.objects.get(key=delivery_key(broadcast.pk, wang.pk))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {_open_session(wang, 'wx-app').access}"}
    read = client.post(f"/api/v1/me/messages/{message.pk}/read", **auth)
    assert read.status_code == 200
    opened, clicked = tracking(delivery)
    message.refresh_from_db()
    assert opened is not None and opened == message.read_at and clicked is None
    # Reading again changes nothing; nobody else's delivery is opened.
    assert client.post(f"/api/v1/me/messages/{message.pk}/read", **auth).status_code == 200
    assert tracking(delivery) == (opened, None)
    assert Delivery.objects.filter(opened_at__isnull=False).count() == 1
    # Someone else's message is refused and opens nothing.
    theirs = InboxMessage.objects.get(key=delivery_key(broadcast.pk, org.member_b1.pk))
    assert client.post(f"/api/v1/me/messages/{theirs.pk}/read", **auth).status_code == 404
    assert Delivery.objects.filter(opened_at__isnull=False).count() == 1
