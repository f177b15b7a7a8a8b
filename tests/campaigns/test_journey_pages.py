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


# --- editing a draft ------------------------------------------------------------------------


def _draft(org: Org, **kw: Any) -> Campaign:
    now = timezone.now()
    return campaign_create(
        actor=kw.pop("actor", org.hq_operator),
        template_key="welcome",  # send, wait 72h, branch (no → 4), send
        name=kw.pop("name", "欢迎"),
        goal="",
        starts_at=now,
        ends_at=now + timedelta(days=30),
        **kw,
    )


def snapshot(campaign: Campaign) -> tuple[Any, ...]:
    return (
        Campaign.objects.values().get(pk=campaign.pk),
        list(JourneyStep.objects.filter(campaign=campaign).order_by("position").values()),
        Material.objects.count(),
    )


def kinds(campaign: Campaign) -> list[tuple[int, str, int | None, int | None]]:
    return list(
        campaign.steps.order_by("position").values_list(
            "position", "kind", "yes_position", "no_position"
        )
    )


def settings_data(campaign: Campaign, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": campaign.name,
        "goal": campaign.goal,
        "segment": "",
        "store": campaign.store_id or "",
        "starts_at": _local(campaign.starts_at),
        "ends_at": _local(campaign.ends_at),
        "trigger": campaign.trigger,
        "days_before": "",
        "days": "",
        "hours": "",
        "exit_tag": "",
    }
    data.update(extra)
    return data


def test_detail_offers_edit_for_drafts_and_says_active_is_read_only(en: Client, org: Org) -> None:
    campaign = _draft(org)
    en.force_login(org.hq_operator)
    detail = en.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert f'href="/hq/campaigns/{campaign.pk}/edit/"' in detail
    page = en.get(f"/hq/campaigns/{campaign.pk}/edit/").content.decode()
    assert 'data-testid="settings-form"' in page and 'data-testid="add-form"' in page
    assert 'data-testid="remove-3"' in page and "Remove step 3?" in page  # asks first
    assert 'data-testid="up-1"' not in page and 'data-testid="down-4"' not in page
    change = en.get(f"/hq/campaigns/{campaign.pk}/edit/?step=3").content.decode()
    assert 'data-testid="change-form"' in change and "Change step 3" in change

    campaign_activate(campaign=campaign, actor=org.hq_admin)
    detail = en.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert 'data-testid="edit"' not in detail and "Active: read-only." in detail
    page = en.get(f"/hq/campaigns/{campaign.pk}/edit/").content.decode()
    assert "This campaign is active: it is read-only." in page
    assert "<form" not in page.split('data-testid="read-only"')[1].split("</main>")[0]


def test_edit_settings_and_each_step_change(en: Client, org: Org) -> None:
    campaign = _draft(org, actor=org.store_manager_a1, store=org.a1)
    library = Material.objects.create(kind="text", title="素材库文案", body="{name}，会员日")
    en.force_login(org.store_manager_a1)
    url = f"/hq/campaigns/{campaign.pk}/"
    response = en.post(
        url + "edit/",
        settings_data(campaign, name="改过的名字", trigger="no_purchase_days", days="45"),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.trigger, campaign.trigger_params) == (
        "改过的名字",
        "no_purchase_days",
        {"days": 45},
    )

    steps = url + "steps/"
    add_wait = {"op": "add", "kind": "wait", "wait": "2", "wait_unit": "days", "position": "2"}
    assert en.post(steps, add_wait).status_code == 302
    add_send = {"op": "add", "kind": "send", "channel": "inbox", "material": str(library.pk)}
    assert en.post(steps, add_send).status_code == 302
    assert kinds(campaign) == [
        (1, "send", None, None),
        (2, "wait", None, None),
        (3, "wait", None, None),
        (4, "branch", None, 5),
        (5, "send", None, None),
        (6, "send", None, None),
    ]
    assert campaign.steps.get(position=2).wait_hours == 48
    assert campaign.steps.get(position=6).material == library
    change = {
        "op": "change",
        "position": "4",
        "kind": "branch",
        "condition": "opened",
        "yes_position": "6",
        "no_position": "5",
    }
    assert en.post(steps, change).status_code == 302
    assert en.post(steps, {"op": "down", "position": "2"}).status_code == 302
    assert en.post(steps, {"op": "up", "position": "6"}).status_code == 302
    assert kinds(campaign) == [
        (1, "send", None, None),
        (2, "wait", None, None),
        (3, "wait", None, None),
        (4, "branch", 5, 6),
        (5, "send", None, None),
        (6, "send", None, None),
    ]
    assert [s.wait_hours for s in campaign.steps.filter(kind="wait").order_by("position")] == [
        72,
        48,
    ]
    # Removing a branch's target: the path ends there, and the page says so.
    response = en.post(steps, {"op": "remove", "position": "6"}, follow=True)
    page = response.content.decode()
    assert "Step removed." in page
    assert "Step 4: its “no” step was removed, so that path now ends the journey." in page
    assert kinds(campaign)[3:] == [(4, "branch", 5, None), (5, "send", None, None)]
    new_text = {"op": "change", "position": "1", "kind": "send", "channel": "sms"}
    new_text |= {"title": "新文案", "body": "{name}，新文案"}
    assert en.post(steps, new_text).status_code == 302
    first = campaign.steps.get(position=1)
    assert (first.material.body, first.material.store, first.channel) == (
        "{name}，新文案",
        org.a1,
        "sms",
    )


@pytest.mark.parametrize(
    ("post", "message"),
    [
        ({"op": "up", "position": "4"}, "Step 4: a branch goes on to a later step (no loops)."),
        (
            {"op": "change", "position": "3", "kind": "branch", "condition": "converted"}
            | {"no_position": "2"},
            "Step 3: a branch goes on to a later step (no loops).",
        ),
        (
            {"op": "change", "position": "1", "kind": "send", "channel": "inbox"}
            | {"title": "t", "body": "{nmae}，你好"},
            "Unknown variable {nmae}",
        ),
        (
            {"op": "add", "kind": "wait", "wait": "400", "wait_unit": "days"},
            "Step 5: wait from 1 hour to 365 days.",
        ),
        ({"op": "add", "kind": "send", "channel": "inbox"}, "pick a material or write a title"),
        ({"op": "add", "kind": "wait", "wait": "x"}, "Check the step&#x27;s fields."),
        ({"op": "remove", "position": "9"}, "There is no step 9."),
        ({"op": "nope", "position": "1"}, "Unknown change to the steps."),
    ],
)
def test_bad_step_edits_are_explained_and_change_nothing(
    en: Client, org: Org, post: dict[str, Any], message: str
) -> None:
    campaign = _draft(org)
    before = snapshot(campaign)
    en.force_login(org.hq_operator)
    response = en.post(f"/hq/campaigns/{campaign.pk}/steps/", post)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert snapshot(campaign) == before


def test_removing_the_last_send_is_refused(en: Client, org: Org) -> None:
    campaign = _draft(org)
    en.force_login(org.hq_operator)
    assert en.post(f"/hq/campaigns/{campaign.pk}/steps/", {"op": "remove", "position": "4"})
    before = snapshot(campaign)
    response = en.post(f"/hq/campaigns/{campaign.pk}/steps/", {"op": "remove", "position": "1"})
    assert response.status_code == 400
    assert "A journey needs at least one step that sends." in response.content.decode()
    assert snapshot(campaign) == before


def test_bad_settings_are_explained_and_change_nothing(en: Client, org: Org) -> None:
    campaign = _draft(org)
    before = snapshot(campaign)
    en.force_login(org.hq_operator)
    url = f"/hq/campaigns/{campaign.pk}/edit/"
    past = _local(timezone.now() - timedelta(days=1))
    for extra, message in (
        ({"ends_at": past}, "The campaign must end after it starts."),
        (
            {"trigger": "no_purchase_days", "days": "0"},
            "“days” must be a whole number from 1 to 730.",
        ),
        ({"name": ""}, "This field is required."),
    ):
        response = en.post(url, settings_data(campaign, **extra))
        assert response.status_code == 400
        assert message in response.content.decode()
        assert snapshot(campaign) == before


def test_scoping_and_read_only_campaigns(en: Client, org: Org) -> None:
    hq_campaign = _draft(org, name="总部")
    b1_campaign = _draft(org, name="北京", store=org.b1)
    en.force_login(org.store_manager_a1)
    for campaign in (hq_campaign, b1_campaign):
        before = snapshot(campaign)
        url = f"/hq/campaigns/{campaign.pk}/"
        assert en.get(url + "edit/").status_code == 404
        assert en.post(url + "edit/", settings_data(campaign, name="x")).status_code == 404
        assert en.post(url + "steps/", {"op": "remove", "position": "4"}).status_code == 404
        assert snapshot(campaign) == before

    en.force_login(org.hq_operator)
    campaign_activate(campaign=hq_campaign, actor=org.hq_admin)
    before = snapshot(hq_campaign)
    url = f"/hq/campaigns/{hq_campaign.pk}/"
    response = en.post(url + "steps/", {"op": "remove", "position": "4"})
    assert response.status_code == 409
    assert "This campaign is active: it is read-only." in response.content.decode()
    response = en.post(url + "edit/", settings_data(hq_campaign, name="x"))
    assert response.status_code == 409
    assert "This campaign is active: it is read-only." in response.content.decode()
    assert snapshot(hq_campaign) == before

    # Paused: the settings change, the steps and the store do not.
    en.post(url + "pause/")
    page = en.get(url + "edit/").content.decode()
    assert 'data-testid="settings-form"' in page and 'data-testid="add-form"' not in page
    response = en.post(url + "steps/", {"op": "remove", "position": "4"})
    assert response.status_code == 409 and "steps stay as they are" in response.content.decode()
    assert en.post(url + "edit/", settings_data(hq_campaign, name="暂停后改名")).status_code == 302
    hq_campaign.refresh_from_db()
    assert (hq_campaign.name, hq_campaign.status, hq_campaign.store) == (
        "暂停后改名",
        "paused",
        None,
    )
    # The store field is disabled: a posted store is ignored.
    en.post(url + "edit/", settings_data(hq_campaign, store=str(org.a1.pk)))
    hq_campaign.refresh_from_db()
    assert hq_campaign.store is None
