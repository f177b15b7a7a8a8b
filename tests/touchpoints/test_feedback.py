"""Feedback and tickets: surveys after purchases, answers from the mini-program, and the
tickets a negative answer or a 1–2 star review opens for the right store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.services.auth import _open_session
from tests.conftest import Org
from tests.members.factories import IdentityFactory, OrderFactory
from touchpoints.models import (
    Channel,
    FeedbackCategory,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    Ticket,
    Touchpoint,
)
from touchpoints.selectors import feedback_summary
from touchpoints.services.events import events_apply, events_ingest
from touchpoints.services.feedback import surveys_invite_after_purchase, ticket_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def nps(db: None) -> Survey:
    return Survey.objects.create(
        name="购后NPS", kind="nps", trigger="after_purchase", question="您会推荐我们吗？"
    )


def review(n: int, rating: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r-{n}",
        "type": "review",
        "time": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "identity": [{"kind": "unionid", "value": "u-wang"}],
        "properties": {"rating": rating, "text": "服务太慢", **extra.pop("properties", {})},
        **extra,
    }


def test_a_one_star_review_opens_a_ticket_for_the_right_store(org: Org) -> None:
    wang = org.member_of_guide_a1  # home store a1
    IdentityFactory(member=wang, kind="unionid", value="u-wang")
    channel = Channel.objects.create(kind="store", name="门店", code="store")
    Touchpoint.objects.create(
        channel=channel, kind="store_counter", name="北京收银台", code="bj-counter", store=org.b1
    )
    result = events_ingest(
        events=[review(1, 1, touchpoint="bj-counter"), review(2, 3), review(3, 2)]
    )
    effects = events_apply(ids=result.event_ids)
    assert effects.tickets == 2
    one_star = Ticket.objects.get(subject__startswith="1")
    assert (one_star.store_id, one_star.source, one_star.detail) == (
        org.b1.pk,
        "review",
        "服务太慢",
    )
    assert one_star.assignee_id is None  # Beijing has no store manager in the fixture
    two_star = Ticket.objects.get(subject__startswith="2")
    # No touchpoint: the member's home store, to its manager, due in 48 hours.
    assert (two_star.store_id, two_star.assignee_id) == (org.a1.pk, org.store_manager_a1.pk)
    assert timedelta(hours=47) < two_star.due_at - timezone.now() <= timedelta(hours=48)
    assert Ticket.objects.count() == 2
    assert Ticket.objects.filter(event_id__isnull=False).count() == 2
    events_apply(ids=result.event_ids)
    assert Ticket.objects.count() == 2


def test_after_purchase_invitations_once_per_order(org: Org, nps: Survey) -> None:
    now = timezone.now()
    due = OrderFactory(
        member=org.member_of_guide_a1, store=org.a1, paid_at=now - timedelta(hours=25)
    )
    OrderFactory(member=org.member_b1, paid_at=now - timedelta(hours=2))  # too recent
    OrderFactory(member=org.member_b1, paid_at=now - timedelta(days=3))  # too old
    assert surveys_invite_after_purchase(now=now) == 1
    assert surveys_invite_after_purchase(now=now) == 0
    (invitation,) = SurveyInvitation.objects.all()
    assert (invitation.member_id, invitation.order_id, invitation.store_id) == (
        org.member_of_guide_a1.pk,
        due.pk,
        org.a1.pk,
    )


def _answer(client: Client, token: str, invitation: int, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/me/surveys/{invitation}",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_answering_in_the_mini_program(client: Client, org: Org, nps: Survey) -> None:
    member = org.member_of_guide_a1
    slow = FeedbackCategory.objects.create(name="服务态度", department="客服部")
    order = OrderFactory(member=member, store=org.a1, paid_at=timezone.now() - timedelta(hours=30))
    surveys_invite_after_purchase()
    invitation = SurveyInvitation.objects.get()
    token = _open_session(member, "wx-app").access
    listing = client.get("/api/v1/me/surveys", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [(i["id"], i["kind"], i["order"]) for i in listing.json()] == [
        (invitation.pk, "nps", order.external_id)
    ]
    for body, code in (
        ({"score": 11}, "score_invalid"),
        ({"score": 5, "categories": [999]}, "category_unknown"),
        ({"score": 5, "comment": "x" * 1001}, "invalid"),
    ):
        response = _answer(client, token, invitation.pk, body)
        assert response.status_code == 400 and response.json()["code"] == code
    assert not SurveyResponse.objects.exists() and not Ticket.objects.exists()
    other = _open_session(org.member_b1, "wx-app").access
    assert _answer(client, other, invitation.pk, {"score": 9}).status_code == 404
    answered = _answer(
        client, token, invitation.pk, {"score": 3, "comment": "等太久", "categories": [slow.pk]}
    )
    assert answered.status_code == 200
    body = answered.json()
    ticket = Ticket.objects.get()
    assert body == {"id": SurveyResponse.objects.get().pk, "negative": True, "ticket": ticket.pk}
    assert (ticket.store_id, ticket.category_id, ticket.assignee_id, ticket.detail) == (
        org.a1.pk,
        slow.pk,
        org.store_manager_a1.pk,
        "等太久",
    )
    again = _answer(client, token, invitation.pk, {"score": 10})
    assert again.status_code == 409 and SurveyResponse.objects.count() == 1
    assert client.get("/api/v1/me/surveys", HTTP_AUTHORIZATION=f"Bearer {token}").json() == []


def test_nps_and_the_problem_ranking(org: Org, nps: Survey) -> None:
    service = FeedbackCategory.objects.create(name="服务态度")
    quality = FeedbackCategory.objects.create(name="产品质量")
    now = timezone.now()
    for score, categories in ((10, []), (9, []), (8, []), (3, [service]), (1, [service, quality])):
        response = SurveyResponse.objects.create(
            survey=nps,
            member=org.member_of_guide_a1,
            store=org.a1,
            score=score,
            negative=score <= 6,
            submitted_at=now,
        )
        response.categories.set(categories)
    summary = feedback_summary(
        user=org.hq_admin, start=timezone.localdate(now), end=timezone.localdate(now)
    )
    assert (summary["nps"]["n"], summary["nps"]["score"]) == (5, 0)  # (2 - 2) / 5
    assert [(r["categories__name"], r["n"]) for r in summary["ranking"]] == [
        ("服务态度", 2),
        ("产品质量", 1),
    ]
    elsewhere = feedback_summary(
        user=org.store_manager_a1, start=timezone.localdate(now), end=timezone.localdate(now)
    )
    assert elsewhere["nps"]["n"] == 5
    client_b = feedback_summary(
        user=org.guide_b1, start=timezone.localdate(now), end=timezone.localdate(now)
    )
    assert client_b["nps"]["n"] == 0


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


def test_tickets_pages_are_scoped_and_resolving_needs_a_resolution(en: Client, org: Org) -> None:
    client = en
    due = timezone.now() + timedelta(hours=48)
    mine = Ticket.objects.create(
        member=org.member_of_guide_a1, store=org.a1, source="review", subject="1-star", due_at=due
    )
    theirs = Ticket.objects.create(
        member=org.member_b1, store=org.b1, source="review", subject="北京差评", due_at=due
    )
    client.force_login(org.store_manager_a1)
    listing = client.get("/hq/tickets/").content.decode()
    assert f"/hq/tickets/{mine.pk}/" in listing and f"/hq/tickets/{theirs.pk}/" not in listing
    assert client.get(f"/hq/tickets/{theirs.pk}/").status_code == 404
    response = client.post(f"/hq/tickets/{mine.pk}/", {"status": "resolved"}, follow=True)
    assert "Say how it was resolved." in response.content.decode()
    response = client.post(
        f"/hq/tickets/{mine.pk}/",
        {"status": "open", "assignee": org.region_manager_a.pk},
        follow=True,
    )
    assert "Choose someone you work with." in response.content.decode()
    mine.refresh_from_db()
    assert (mine.status, mine.assignee_id, mine.resolved_at) == ("open", None, None)
    client.post(
        f"/hq/tickets/{mine.pk}/",
        {"status": "resolved", "resolution": "已致电道歉并补偿优惠券", "note": "顾客接受"},
    )
    mine.refresh_from_db()
    assert (mine.status, mine.resolution) == ("resolved", "已致电道歉并补偿优惠券")
    assert mine.notes.get().body == "顾客接受"
    # Assigning someone who cannot see the store is refused by the service too.
    with pytest.raises(Exception) as exc:
        ticket_update(ticket=theirs, actor=org.hq_admin, status="open", assignee=org.guide_a1)
    assert getattr(exc.value, "code", "") == "assignee_cannot_see"
    client.force_login(org.hq_operator)
    page = client.get("/hq/feedback/")
    assert page.status_code == 200


def test_further_questions_are_checked_and_kept(client: Client, org: Org, nps: Survey) -> None:
    from touchpoints.models import SurveyQuestion

    why = SurveyQuestion.objects.create(
        survey=nps,
        position=1,
        text="您主要购买什么？",
        kind="choice",
        choices=["护肤", "母婴", "家居"],
        required=True,
    )
    speed = SurveyQuestion.objects.create(survey=nps, position=2, text="结账速度", kind="rating")
    member = org.member_of_guide_a1
    OrderFactory(member=member, store=org.a1, paid_at=timezone.now() - timedelta(hours=30))
    surveys_invite_after_purchase()
    invitation = SurveyInvitation.objects.get()
    token = _open_session(member, "wx-app").access
    listing = client.get("/api/v1/me/surveys", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [(q["id"], q["kind"], q["required"]) for q in listing[0]["questions"]] == [
        (why.pk, "choice", True),
        (speed.pk, "rating", False),
    ]
    for answers, code in (
        ([], "answer_missing"),
        ([{"question": why.pk, "value": "汽车"}], "answer_invalid"),
        (
            [{"question": why.pk, "value": "护肤"}, {"question": speed.pk, "value": 9}],
            "answer_invalid",
        ),
        (
            [{"question": why.pk, "value": "护肤"}, {"question": 99999, "value": 1}],
            "question_unknown",
        ),
        ([{"question": "why", "value": "护肤"}], "question_unknown"),
    ):
        response = _answer(client, token, invitation.pk, {"score": 9, "answers": answers})
        assert response.status_code == 400 and response.json()["code"] == code, answers
    assert not SurveyResponse.objects.exists()
    ok = _answer(
        client,
        token,
        invitation.pk,
        {
            "score": 9,
            "answers": [{"question": why.pk, "value": "母婴"}, {"question": speed.pk, "value": 4}],
        },
    )
    assert ok.status_code == 200 and ok.json()["negative"] is False
    assert SurveyResponse.objects.get().answers == {str(why.pk): "母婴", str(speed.pk): 4}
    assert not Ticket.objects.exists()
