"""The campaign pages: pick a template, save the prefilled draft, see it listed with its
figures, activate (head office only) and pause it; another store's campaign is a 404;
bad input answers clearly and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.journey_templates import TEMPLATES
from campaigns.models import Broadcast, Campaign, JourneyStep, Material
from campaigns.services.journeys import (
    campaign_activate,
    campaign_create,
    journeys_advance,
    journeys_enroll,
)
from tests.conftest import Org
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


def _local(moment: Any) -> str:
    return str(timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M"))


def form_data(**extra: Any) -> dict[str, Any]:
    now = timezone.now()
    data: dict[str, Any] = {
        "template": "welcome",
        "name": "新会员欢迎",
        "goal": "首单转化",
        "segment": "",
        "store": "",
        "starts_at": _local(now),
        "ends_at": _local(now + timedelta(days=30)),
        "trigger": "registered",
        "days_before": "",
        "days": "",
        "hours": "",
        "exit_tag": "",
        "steps-TOTAL_FORMS": "4",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "30",
    }
    rows = [
        {"kind": "send", "channel": "inbox", "title": "欢迎", "body": "{name}，欢迎！"},
        {"kind": "wait", "wait_hours": "72"},
        {"kind": "branch", "condition": "converted", "no_position": "4"},
        {"kind": "send", "channel": "sms", "title": "券", "body": "{name}，券快过期了"},
    ]
    for n, row in enumerate(rows):
        for name, value in row.items():
            data[f"steps-{n}-{name}"] = value
    data.update(extra)
    return data


def test_new_from_template_list_detail_activate_pause(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    picker = en.get("/hq/campaigns/new/").content.decode()
    assert all(f'data-testid="template-{key}"' in picker for key in TEMPLATES)
    prefilled = en.get("/hq/campaigns/new/?template=birthday").content.decode()
    assert (
        "生日快乐" in prefilled and 'name="days_before"' in prefilled and 'value="3"' in prefilled
    )

    response = en.post("/hq/campaigns/new/", form_data())
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.template, campaign.created_by) == (
        "draft",
        "welcome",
        org.hq_operator,
    )
    assert list(campaign.steps.values_list("position", "kind")) == [
        (1, "send"),
        (2, "wait"),
        (3, "branch"),
        (4, "send"),
    ]

    # Head office activates (someone else drafting is not required, only head office).
    en.force_login(org.hq_admin)
    page = en.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert 'data-testid="activate"' in page and "data-confirm" in page
    assert en.post(f"/hq/campaigns/{campaign.pk}/activate/").status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.activated_by) == ("active", org.hq_admin)

    member = MemberFactory(member_since=timezone.now() + timedelta(seconds=1))
    journeys_enroll(now=timezone.now() + timedelta(seconds=2))
    journeys_advance(now=timezone.localtime().replace(hour=10) + timedelta(days=1))
    listing = en.get("/hq/campaigns/").content.decode()
    assert f'data-testid="campaign-{campaign.pk}"' in listing and "新会员欢迎" in listing
    detail = en.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert str(member) in detail and 'data-testid="step-4"' in detail
    # Journey waves stay off the broadcast list.
    assert Broadcast.objects.filter(journey_step__campaign=campaign).exists()
    assert "新会员欢迎 · 1" not in en.get("/hq/broadcasts/").content.decode()

    assert en.post(f"/hq/campaigns/{campaign.pk}/pause/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "paused"


def test_list_is_scoped_and_queries_bounded(
    en: Client, org: Org, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    for store in (org.a1, org.b1, None):
        campaign_create(
            actor=org.hq_operator,
            template_key="member_day",
            name=f"会员日 {store or 'HQ'}",
            goal="",
            store=store,
            starts_at=now,
            ends_at=now + timedelta(days=3),
        )
    en.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(12):
        page = en.get("/hq/campaigns/").content.decode()
    assert str(org.a1) in page and str(org.b1) not in page
    other = Campaign.objects.get(store=org.b1)
    assert en.get(f"/hq/campaigns/{other.pk}/").status_code == 404
    assert en.post(f"/hq/campaigns/{other.pk}/pause/").status_code == 404


def test_store_manager_drafts_but_cannot_activate(en: Client, org: Org) -> None:
    en.force_login(org.store_manager_a1)
    response = en.post("/hq/campaigns/new/", form_data(store=str(org.a1.pk)))
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.store == org.a1
    page = en.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert 'data-testid="activate"' not in page
    response = en.post(f"/hq/campaigns/{campaign.pk}/activate/", follow=True)
    assert "Campaigns are activated by head office." in response.content.decode()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.activated_by) == ("draft", None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"ends_at": _local(timezone.now() - timedelta(days=1))},
            "The campaign must end after it starts.",
        ),
        (
            {
                "starts_at": _local(timezone.now() - timedelta(days=9)),
                "ends_at": _local(timezone.now() - timedelta(days=1)),
            },
            "The campaign&#x27;s end is in the past.",
        ),
        ({"steps-2-no_position": "9"}, "Step 3: there is no step 9 to go to."),
        ({"steps-0-kind": "", "steps-3-kind": ""}, "A journey needs at least one step that sends."),
        ({"steps-0-body": "{nmae}"}, "Unknown variable {nmae}"),
        (
            {"trigger": "no_purchase_days", "days": "-5"},
            "“days” must be a whole number from 1 to 730.",
        ),
    ],
)
def test_bad_input_is_explained_and_writes_nothing(
    en: Client, org: Org, extra: dict[str, Any], message: str
) -> None:
    en.force_login(org.hq_operator)
    materials = Material.objects.count()
    response = en.post("/hq/campaigns/new/", form_data(**extra))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Campaign.objects.exists() and not JourneyStep.objects.exists()
    assert Material.objects.count() == materials


def test_unknown_template_and_action(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    response = en.post("/hq/campaigns/new/", form_data(template="nope"))
    assert response.status_code == 400 and "Unknown campaign template." in response.content.decode()
    assert not Campaign.objects.exists()
    now = timezone.now()
    campaign = campaign_create(
        actor=org.hq_operator,
        template_key="referral",
        name="x",
        goal="",
        starts_at=now,
        ends_at=now + timedelta(days=1),
    )
    campaign_activate(campaign=campaign, actor=org.hq_admin)
    assert en.post(f"/hq/campaigns/{campaign.pk}/explode/").status_code == 404
    # Activating an active campaign is refused with a message, nothing changes.
    response = en.post(f"/hq/campaigns/{campaign.pk}/activate/", follow=True)
    assert "Only a draft or paused campaign is activated." in response.content.decode()
