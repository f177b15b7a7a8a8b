"""HQ pages for channels, touchpoints, channel QR codes and event clients."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import Org
from tests.members.factories import TagFactory
from touchpoints.models import Channel, EventClient, QrCode, QrCodeGuide, Touchpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


@pytest.fixture
def wecom(db: None) -> Channel:
    return Channel.objects.create(kind="wecom", name="企业微信", code="wecom")


def new_qr_touchpoint(client: Client, channel: Channel, store_id: int | str, code: str) -> int:
    response = client.post(
        "/hq/touchpoints/new/",
        {
            "channel": channel.pk,
            "kind": "qr_code",
            "name": "门店收银台活码",
            "code": code,
            "store": store_id,
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Touchpoint.objects.get(code=code).pk


def test_hq_sets_up_a_channel_qr_code(en: Client, org: Org, wecom: Channel) -> None:
    client = en
    client.force_login(org.hq_admin)
    pk = new_qr_touchpoint(client, wecom, org.a1.pk, "sh001-counter")
    qr = QrCode.objects.get(touchpoint_id=pk)
    tag = TagFactory(name="收银台扫码")
    page = client.get(f"/hq/touchpoints/{pk}/qr/")
    assert page.status_code == 200
    data = {
        "tags": [tag.pk],
        "backup_guide": org.guide_a1_other.pk,
        "welcome_message": "欢迎！我是您的专属顾问",
        "valid_from": "",
        "valid_until": "",
        "rotation-TOTAL_FORMS": "3",
        "rotation-INITIAL_FORMS": "0",
        "rotation-0-guide": org.guide_a1.pk,
        "rotation-0-daily_cap": "20",
        "rotation-1-guide": org.guide_a1_other.pk,
        "rotation-1-daily_cap": "",
        "rotation-2-guide": "",
        "rotation-2-daily_cap": "",
    }
    response = client.post(f"/hq/touchpoints/{pk}/qr/", data)
    assert response.status_code == 302
    assert list(
        QrCodeGuide.objects.filter(qr_code=qr).values_list("guide_id", "position", "daily_cap")
    ) == [(org.guide_a1.pk, 0, 20), (org.guide_a1_other.pk, 1, None)]
    qr.refresh_from_db()
    assert (qr.welcome_message, list(qr.tags.all())) == ("欢迎！我是您的专属顾问", [tag])
    detail = client.get(f"/hq/touchpoints/{pk}/").content.decode()
    assert "欢迎！我是您的专属顾问" in detail and "收银台扫码" in detail
    png = client.get(f"/hq/touchpoints/{pk}/qr.png?download=1")
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert "attachment" in png["Content-Disposition"]
    svg = client.get(f"/hq/touchpoints/{pk}/qr.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    assert client.get(f"/hq/touchpoints/{pk}/qr.gif").status_code == 404
    # The landing page a printed code leads to.
    landing = client.get(f"/q/{qr.token}")
    assert landing.status_code == 200 and "欢迎！我是您的专属顾问" in landing.content.decode()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("guide_b1", "")], "Select a valid choice"),  # another store's guide
        ([("guide_a1", ""), ("guide_a1", "")], "in the rotation twice"),
        ([("guide_a1", "0")], "greater than or equal to 1"),
    ],
)
def test_bad_rotations_are_refused_and_change_nothing(
    en: Client, org: Org, wecom: Channel, rows: list[tuple[str, str]], message: str
) -> None:
    client = en
    client.force_login(org.hq_admin)
    pk = new_qr_touchpoint(client, wecom, org.a1.pk, "sh001-door")
    qr = QrCode.objects.get(touchpoint_id=pk)
    data: dict[str, object] = {
        "tags": [],
        "backup_guide": "",
        "welcome_message": "",
        "valid_from": "",
        "valid_until": "",
        "rotation-TOTAL_FORMS": str(len(rows)),
        "rotation-INITIAL_FORMS": "0",
    }
    for n, (username, cap) in enumerate(rows):
        data[f"rotation-{n}-guide"] = getattr(org, username).pk
        data[f"rotation-{n}-daily_cap"] = cap
    response = client.post(f"/hq/touchpoints/{pk}/qr/", data, follow=True)
    assert message in response.content.decode()
    assert not QrCodeGuide.objects.filter(qr_code=qr).exists()


def test_validity_must_end_after_it_starts(en: Client, org: Org, wecom: Channel) -> None:
    client = en
    client.force_login(org.hq_admin)
    pk = new_qr_touchpoint(client, wecom, org.a1.pk, "sh001-window")
    response = client.post(
        f"/hq/touchpoints/{pk}/qr/",
        {
            "valid_from": "2026-12-02T10:00",
            "valid_until": "2026-12-01T10:00",
            "rotation-TOTAL_FORMS": "0",
            "rotation-INITIAL_FORMS": "0",
        },
    )
    assert "The end must come after the start." in response.content.decode()
    assert QrCode.objects.get(touchpoint_id=pk).valid_until is None


def test_an_expired_code_lands_on_a_clear_page(client: Client, org: Org, wecom: Channel) -> None:
    touchpoint = Touchpoint.objects.create(
        channel=wecom, kind="qr_code", name="过期活码", code="old", store=org.a1
    )
    qr = QrCode.objects.create(
        touchpoint=touchpoint, valid_until=timezone.now() - timedelta(days=1)
    )
    assert client.get(f"/q/{qr.token}").status_code == 410
    assert client.get("/q/unknown-token").status_code == 404


def test_store_managers_see_and_edit_only_their_stores_touchpoints(
    en: Client, org: Org, wecom: Channel
) -> None:
    client = en
    theirs = Touchpoint.objects.create(
        channel=wecom, kind="poster", name="北京海报", code="bj-poster", store=org.b1
    )
    client.force_login(org.store_manager_a1)
    mine = new_qr_touchpoint(client, wecom, org.a1.pk, "a1-mine")
    listing = client.get("/hq/touchpoints/").content.decode()
    assert f"/hq/touchpoints/{mine}/" in listing and f"/hq/touchpoints/{theirs.pk}/" not in listing
    for url in (
        f"/hq/touchpoints/{theirs.pk}/",
        f"/hq/touchpoints/{theirs.pk}/edit/",
        f"/hq/touchpoints/{theirs.pk}/qr.png",
    ):
        assert client.get(url).status_code == 404
    before = Touchpoint.objects.count()
    response = client.post(
        "/hq/touchpoints/new/",
        {"channel": wecom.pk, "kind": "poster", "name": "x", "code": "x", "store": org.b1.pk},
    )
    assert "Select a valid choice" in response.content.decode()
    response = client.post(
        "/hq/touchpoints/new/",
        {"channel": wecom.pk, "kind": "poster", "name": "x", "code": "x", "store": ""},
    )
    assert "This field is required" in response.content.decode()
    assert Touchpoint.objects.count() == before
    assert client.get("/hq/channels/new/").status_code == 403
    assert client.get("/hq/event-clients/").status_code == 403


def test_event_client_key_is_shown_once_and_can_be_switched_off(
    en: Client, org: Org, wecom: Channel
) -> None:
    client = en
    client.force_login(org.hq_admin)
    page = client.post("/hq/event-clients/", {"name": "小程序后台", "channel": wecom.pk})
    text = page.content.decode()
    key = re.search(r"<code>(ek_[^<]+)</code>", text)
    assert key is not None
    made = EventClient.objects.get()
    assert made.key_hash != key.group(1) and key.group(1) not in str(made.__dict__)
    again = client.get("/hq/event-clients/").content.decode()
    assert key.group(1) not in again
    dup = client.post("/hq/event-clients/", {"name": "小程序后台", "channel": wecom.pk})
    assert "An event client of that name exists." in dup.content.decode()
    assert EventClient.objects.count() == 1
    body = {
        "events": [
            {
                "id": "k-1",
                "type": "browse_product",
                "time": timezone.now().isoformat(),
                "identity": [{"kind": "unionid", "value": "u-someone"}],
            }
        ]
    }
    api = Client()
    auth = f"EventKey {key.group(1)}"
    ok = api.post(
        "/api/v1/events",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    client.post(f"/hq/event-clients/{made.pk}/off/")
    refused = api.post(
        "/api/v1/events",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert refused.status_code == 401


def test_a_touchpoints_events_show_only_members_one_may_see(
    en: Client, org: Org, wecom: Channel
) -> None:
    from touchpoints.models import BehaviourEvent

    touchpoint = Touchpoint.objects.create(
        channel=wecom, kind="poster", name="上海海报", code="sh-poster", store=org.a1
    )
    for n, member in enumerate((org.member_of_guide_a1, org.member_b1)):
        BehaviourEvent.objects.create(
            client_event_id=f"tp-{n}",
            member=member,
            type="scan",
            occurred_at=timezone.now(),
            touchpoint=touchpoint,
        )
    client = en
    client.force_login(org.store_manager_a1)
    page = client.get(f"/hq/touchpoints/{touchpoint.pk}/").content.decode()
    assert org.member_of_guide_a1.name in page and org.member_b1.name not in page
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/touchpoints/{touchpoint.pk}/").content.decode()
    assert org.member_b1.name in page
