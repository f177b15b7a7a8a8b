"""Channel health: daily figures from the events, alerts on a planted drop or a run of bad
reviews (with notifications), and the HQ page that shows them."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from scrm.core.models import Notification
from tests.conftest import Org
from tests.members.factories import MemberFactory
from touchpoints.models import (
    BehaviourEvent,
    Channel,
    Touchpoint,
    TouchpointAlert,
    TouchpointDay,
)
from touchpoints.services.health import alerts_check, health_refresh

pytestmark = pytest.mark.django_db


def at(day: Any, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.get_current_timezone())


@pytest.fixture
def places(org: Org) -> dict[str, Touchpoint]:
    channel = Channel.objects.create(kind="wecom", name="企业微信", code="wecom")
    return {
        "a1": Touchpoint.objects.create(
            channel=channel,
            kind="qr_code",
            name="上海活码",
            code="qr-a1",
            store=org.a1,
            responsible=org.store_manager_a1,
        ),
        "b1": Touchpoint.objects.create(
            channel=channel, kind="qr_code", name="北京活码", code="qr-b1", store=org.b1
        ),
    }


def plant(touchpoint: Touchpoint, member: Any, kind: str, when: datetime, **props: Any) -> None:
    BehaviourEvent.objects.create(
        client_event_id=f"p-{BehaviourEvent.objects.count()}",
        member=member,
        type=kind,
        occurred_at=when,
        touchpoint=touchpoint,
        properties=props,
    )


def test_daily_figures_from_events(org: Org, places: dict[str, Touchpoint]) -> None:
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    tp = places["a1"]
    buyer = MemberFactory(first_order_at=at(yesterday, 18), order_count=1)
    bought_before = MemberFactory(first_order_at=at(yesterday - timedelta(days=40)))
    browser = MemberFactory()
    plant(tp, buyer, "scan", at(yesterday, 9))
    plant(tp, buyer, "register", at(yesterday, 10))
    plant(tp, bought_before, "follow", at(yesterday, 11))
    plant(tp, browser, "scan", at(yesterday, 12))
    plant(tp, browser, "scan", at(yesterday, 13))  # the same person twice: one contact
    plant(tp, browser, "unfollow", at(today, 8))
    plant(tp, browser, "review", at(today, 9), rating=1)
    plant(tp, buyer, "review", at(today, 10), rating=5)
    plant(tp, buyer, "browse_product", at(today, 11))
    assert health_refresh(days=2, today=today) == 2
    rows = {
        row.day: (
            row.new_contacts,
            row.new_members,
            row.first_purchases,
            row.unfollows,
            row.reviews,
            row.negative_reviews,
        )
        for row in TouchpointDay.objects.filter(touchpoint=tp)
    }
    assert rows == {yesterday: (3, 1, 1, 0, 0, 0), today: (0, 0, 0, 1, 2, 1)}
    # Running again replaces, never adds.
    health_refresh(days=2, today=today)
    assert TouchpointDay.objects.count() == 2


def test_an_alert_on_a_planted_drop_notifies_the_responsible(
    org: Org, places: dict[str, Touchpoint]
) -> None:
    today = timezone.localdate()
    day = today - timedelta(days=1)
    tp = places["a1"]
    for back in range(1, 8):
        TouchpointDay.objects.create(touchpoint=tp, day=day - timedelta(days=back), new_contacts=10)
    TouchpointDay.objects.create(touchpoint=tp, day=day, new_contacts=2)
    # A quiet touchpoint (mean under 5 a day) raises nothing.
    for back in range(1, 8):
        TouchpointDay.objects.create(
            touchpoint=places["b1"], day=day - timedelta(days=back), new_contacts=3
        )
    raised = alerts_check(today=today)
    assert [(a.touchpoint_id, a.kind, a.day, a.value, a.baseline) for a in raised] == [
        (tp.pk, "inflow_drop", day, 2.0, 10.0)
    ]
    (note,) = Notification.objects.all()
    assert note.recipient_id == org.store_manager_a1.pk
    assert "上海活码" in note.message and note.url == f"/hq/touchpoints/{tp.pk}/"
    assert alerts_check(today=today) == []
    assert TouchpointAlert.objects.count() == 1 and Notification.objects.count() == 1


def test_a_run_of_bad_reviews_raises_an_alert_for_the_stores_managers(
    org: Org, places: dict[str, Touchpoint]
) -> None:
    today = timezone.localdate()
    day = today - timedelta(days=1)
    TouchpointDay.objects.create(touchpoint=places["b1"], day=day, reviews=6, negative_reviews=2)
    TouchpointDay.objects.create(
        touchpoint=places["a1"], day=day, reviews=10, negative_reviews=2
    )  # exactly a fifth: not past the threshold
    raised = alerts_check(today=today)
    assert [(a.touchpoint_id, a.kind, round(a.value, 3)) for a in raised] == [
        (places["b1"].pk, "negative_reviews", 0.333)
    ]
    # Beijing's touchpoint has no responsible and its store no manager: head office hears.
    assert list(Notification.objects.values_list("recipient_id", flat=True)) == [org.hq_admin.pk]


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


def test_health_page_is_scoped_filtered_and_exports(
    en: Client, org: Org, places: dict[str, Touchpoint], django_assert_max_num_queries: Any
) -> None:
    client = en
    today = timezone.localdate()
    TouchpointDay.objects.create(
        touchpoint=places["a1"], day=today, new_contacts=8, new_members=3, first_purchases=2
    )
    TouchpointDay.objects.create(touchpoint=places["b1"], day=today, new_contacts=5)
    client.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(16):
        page = client.get("/hq/touchpoints/health/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "上海活码" in text and "北京活码" not in text
    assert "25%" in text  # 2 first purchases of 8 contacts
    assert 'id="health-data"' in text
    assert client.get("/hq/touchpoints/health/", {"store": org.b1.pk}).status_code == 404
    bad = client.get("/hq/touchpoints/health/", {"from": "31/12/2026"}, follow=True)
    assert "Dates are written YYYY-MM-DD" in bad.content.decode()
    backwards = client.get(
        "/hq/touchpoints/health/", {"from": today.isoformat(), "to": "2020-01-01"}
    )
    assert "The start date is after the end date" in backwards.content.decode()
    csv = client.get("/hq/touchpoints/health/", {"format": "csv"})
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("上海活码,企业微信,上海南京西路店,8,3,2,0.250")
    client.force_login(org.hq_operator)
    both = client.get("/hq/touchpoints/health/").content.decode()
    assert "上海活码" in both and "北京活码" in both


def test_home_shows_alerts_and_notifications_until_read(
    en: Client, org: Org, places: dict[str, Touchpoint]
) -> None:
    client = en
    day = timezone.localdate() - timedelta(days=1)
    for back in range(1, 8):
        TouchpointDay.objects.create(
            touchpoint=places["a1"], day=day - timedelta(days=back), new_contacts=20
        )
    alerts_check()
    client.force_login(org.store_manager_a1)
    home = client.get("/hq/").content.decode()
    assert 'data-testid="touchpoint-alerts"' in home and 'data-testid="notifications"' in home
    client.post("/hq/notifications/read/")
    home = client.get("/hq/").content.decode()
    assert 'data-testid="notifications"' not in home
    assert Notification.objects.get().read_at is not None
    alert = TouchpointAlert.objects.get()
    client.force_login(org.region_manager_a)
    assert 'data-testid="touchpoint-alerts"' in client.get("/hq/").content.decode()
    client.force_login(org.hq_operator)
    client.post(f"/hq/touchpoints/alerts/{alert.pk}/ack/")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by_id) == ("acknowledged", org.hq_operator.pk)
    assert client.post(f"/hq/touchpoints/alerts/{alert.pk}/ack/").status_code == 404


def test_odd_query_values_get_a_clear_answer(en: Client, org: Org) -> None:
    client = en
    client.force_login(org.hq_operator)
    for params in ({"from": "2026-02-30"}, {"to": "2026-13-01"}):
        page = client.get("/hq/touchpoints/health/", params)
        assert page.status_code == 200
        assert "Dates are written YYYY-MM-DD" in page.content.decode()
        assert client.get("/hq/feedback/", params).status_code == 200
    assert client.get("/hq/touchpoints/health/", {"store": "²"}).status_code == 404
    assert client.get("/hq/touchpoints/health/", {"channel": "²"}).status_code == 200
    assert client.get("/hq/guides/", {"store": "²"}).status_code == 200


def test_a_first_purchase_is_credited_once(org: Org, places: dict[str, Touchpoint]) -> None:
    today = timezone.localdate()
    day1, day2 = today - timedelta(days=2), today - timedelta(days=1)
    buyer = MemberFactory(first_order_at=at(today, 9), order_count=1)
    early_buyer = MemberFactory(first_order_at=at(day1, 8), order_count=1)
    plant(places["a1"], buyer, "scan", at(day1, 10))
    plant(places["a1"], buyer, "scan", at(day2, 10))
    plant(places["b1"], buyer, "follow", at(day2, 11))
    plant(places["a1"], early_buyer, "scan", at(day1, 12))  # bought before the scan
    health_refresh(days=3, today=today)
    credited = sorted(
        TouchpointDay.objects.filter(first_purchases__gt=0).values_list(
            "touchpoint_id", "day", "first_purchases"
        )
    )
    assert credited == [(places["a1"].pk, day1, 1)]
