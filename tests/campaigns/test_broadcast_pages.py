"""The broadcast pages: compose, preview, submit, approve by someone else, cancel —
scoped to the stores one manages, with bad input refused and nothing written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Broadcast, Delivery
from members.models import Segment
from tests.conftest import Org

pytestmark = pytest.mark.django_db

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


@pytest.fixture
def segment(db: None) -> Segment:
    return Segment.objects.create(name="全部", rules=EVERYONE)


def compose(client: Client, segment: Segment, **extra: Any) -> Any:
    data = {
        "name": "会员日",
        "channel": "inbox",
        "segment": segment.pk,
        "title": "会员日",
        "body": "{name}，会员日双倍积分",
        "scheduled_at": "",
        "store": "",
        **extra,
    }
    return client.post("/hq/broadcasts/new/", data)


def test_compose_submit_approve_and_cancel(
    en: Client, org: Org, segment: Segment, django_capture_on_commit_callbacks: Any
) -> None:
    client = en
    client.force_login(org.hq_operator)
    response = compose(client, segment)
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    page = client.get(f"/hq/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="preview"' in page and "<b>5</b>" in page
    client.post(f"/hq/broadcasts/{broadcast.pk}/submit/")
    broadcast.refresh_from_db()
    assert broadcast.status == "pending"
    # The author cannot approve their own broadcast.
    page = client.get(f"/hq/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="approve"' not in page
    refused = client.post(f"/hq/broadcasts/{broadcast.pk}/approve/", follow=True)
    assert "you drafted this one" in refused.content.decode()
    broadcast.refresh_from_db()
    assert broadcast.status == "pending" and not Delivery.objects.exists()
    client.force_login(org.hq_admin)
    with django_capture_on_commit_callbacks():
        client.post(f"/hq/broadcasts/{broadcast.pk}/approve/")
    broadcast.refresh_from_db()
    if broadcast.status == "approved":  # approved during quiet hours: held until morning
        assert not Delivery.objects.exists()
    else:
        assert broadcast.status == "sending" and Delivery.objects.count() == 5
    client.post(f"/hq/broadcasts/{broadcast.pk}/cancel/")
    broadcast.refresh_from_db()
    assert broadcast.status == "cancelled"
    assert not Delivery.objects.filter(status="planned").exists()
    listing = client.get("/hq/broadcasts/").content.decode()
    assert f"/hq/broadcasts/{broadcast.pk}/" in listing


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"body": "{nmae}您好"}, "Unknown variable"),
        ({"body": "{name"}, "A brace is not closed"),
        ({"scheduled_at": "2020-01-01T10:00"}, "The send time is in the past."),
        ({"channel": "fax"}, "Select a valid choice"),
    ],
)
def test_bad_broadcasts_are_refused(
    en: Client, org: Org, segment: Segment, extra: dict[str, str], message: str
) -> None:
    client = en
    client.force_login(org.hq_operator)
    response = compose(client, segment, **extra)
    assert response.status_code == 200 and message in response.content.decode()
    assert not Broadcast.objects.exists()


def test_store_managers_draft_for_their_store_only(en: Client, org: Org, segment: Segment) -> None:
    client = en
    client.force_login(org.store_manager_a1)
    assert "This field is required" in compose(client, segment).content.decode()
    assert "Select a valid choice" in compose(client, segment, store=org.b1.pk).content.decode()
    assert not Broadcast.objects.exists()
    assert compose(client, segment, store=org.a1.pk).status_code == 302
    mine = Broadcast.objects.get()
    theirs = Broadcast.objects.create(
        name="北京",
        channel="inbox",
        material=mine.material,
        segment=segment,
        store=org.b1,
        created_by=org.hq_operator,
    )
    assert client.get(f"/hq/broadcasts/{theirs.pk}/").status_code == 404
    assert client.post(f"/hq/broadcasts/{theirs.pk}/cancel/").status_code == 404
    assert client.post(f"/hq/broadcasts/{mine.pk}/explode/").status_code == 404
    client.post(f"/hq/broadcasts/{mine.pk}/submit/")
    refused = client.post(f"/hq/broadcasts/{mine.pk}/approve/", follow=True)
    assert "you drafted this one" in refused.content.decode()
    mine.refresh_from_db()
    assert mine.status == "pending"
    assert timezone.now() - mine.created_at < timedelta(minutes=1)


def test_a_stores_broadcast_reaches_only_its_members(org: Org, segment: Segment) -> None:
    from campaigns.models import Material
    from campaigns.services.planning import broadcast_preview

    material = Material.objects.create(kind="text", title="店庆", body="{name}，店庆")
    store_broadcast = Broadcast.objects.create(
        name="店庆",
        channel="inbox",
        material=material,
        segment=segment,
        store=org.a1,
        created_by=org.store_manager_a1,
    )
    preview = broadcast_preview(broadcast=store_broadcast)
    assert preview.audience == 3  # the three members of 上海南京西路店 in the fixture


def test_a_broadcast_can_send_a_library_material(en: Client, org: Org, segment: Segment) -> None:
    from campaigns.models import Material

    card = Material.objects.create(
        kind="link", title="秋冬新品", body="{name}，新品到店", link_url="https://b.example.com/aw"
    )
    other_store = Material.objects.create(kind="text", title="b1 专属", body="hi", store=org.b1)
    en.force_login(org.hq_operator)
    response = compose(en, segment, material=card.pk, title="", body="")
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert broadcast.material_id == card.pk
    assert Material.objects.count() == 2  # nothing copied

    # SMS carries text only; a store manager cannot pick another store's material.
    before = (Broadcast.objects.count(), Material.objects.count())
    refused = compose(en, segment, channel="sms", material=card.pk, title="", body="")
    assert "carry text only" in refused.content.decode()
    en.force_login(org.store_manager_a1)
    refused = compose(en, segment, material=other_store.pk, store=org.a1.pk, title="", body="")
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert (Broadcast.objects.count(), Material.objects.count()) == before


def test_without_a_material_a_title_and_text_are_needed(
    en: Client, org: Org, segment: Segment
) -> None:
    en.force_login(org.hq_operator)
    page = compose(en, segment, title="", body="").content.decode()
    assert "Give the message a title, or pick a material." in page
    assert "Write the message, or pick a material." in page
    page = compose(en, segment, body="{}你好").content.decode()
    assert "plain name in braces" in page
    assert not Broadcast.objects.exists()
