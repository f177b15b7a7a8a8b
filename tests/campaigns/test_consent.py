"""The consent ledger (PIPL): decisions per purpose with their proof, applied through the
sender's opt-out check, recorded from the mini-program, by a guide on /m/ and from an
unsubscribe link; a child's profiling waits for a guardian's consent."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from campaigns.models import (
    GUIDE_POSTED,
    MARKETING_CHANNELS,
    ConsentEntry,
    GatewayKind,
    MarketingOptOut,
)
from campaigns.selectors.consent import consent_history, consent_state, consent_states
from campaigns.services.consent import (
    WORDING,
    consent_record,
    unsubscribe_token,
    unsubscribe_url,
)
from campaigns.services.tracking import link_token
from members.models.member import age_on
from members.services.auth import _open_session
from members.services.errors import MemberError
from tests.conftest import Org

pytestmark = pytest.mark.django_db

SMS = "marketing_sms"
VERSION = "2026-11"


def ledger() -> tuple[list[tuple], list[tuple]]:
    """Everything consent writes: the entries and the opt-outs."""
    return (
        sorted(ConsentEntry.objects.values_list("member_id", "purpose", "granted", "source")),
        sorted(MarketingOptOut.objects.values_list("member_id", "channel")),
    )


def record(member, purpose=SMS, granted=False, **kw) -> ConsentEntry:
    return consent_record(
        member=member,
        purpose=purpose,
        granted=granted,
        source=kw.pop("source", "hq"),
        channel=kw.pop("channel", "back_office"),
        **kw,
    )


# --- the ledger -----------------------------------------------------------------------------


def test_every_channel_a_member_is_messaged_on_has_a_marketing_purpose() -> None:
    assert set(MARKETING_CHANNELS.values()) == set(GatewayKind.values) - set(GUIDE_POSTED)


def test_the_latest_entry_is_the_state_and_the_history_keeps_every_decision(org: Org) -> None:
    wang = org.member_of_guide_a1
    start = timezone.now() - timedelta(days=3)
    first = record(wang, granted=True, now=start)
    second = record(wang, granted=False, now=start + timedelta(days=1))
    record(wang, purpose="profiling", granted=True, now=start + timedelta(days=2))
    states = {s.purpose: s for s in consent_states(member=wang)}
    assert (states[SMS].granted, states[SMS].effective, states[SMS].entry) == (False, False, second)
    assert (states["profiling"].granted, states["profiling"].effective) == (True, True)
    assert (states["marketing_inbox"].granted, states["marketing_inbox"].effective) == (None, True)
    assert (states["sensitive"].granted, states["sensitive"].effective) == (None, False)
    assert states[SMS].entry.wording_version == VERSION
    assert [e.pk for e in consent_history(member=wang)][1:] == [second.pk, first.pk]


def test_entries_are_never_changed(org: Org) -> None:
    entry = record(org.member_of_guide_a1)
    entry.granted = True
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    entry.refresh_from_db()
    assert entry.granted is False


def test_a_marketing_withdrawal_opts_out_of_its_channel_and_a_grant_lifts_it(org: Org) -> None:
    wang = org.member_of_guide_a1
    record(wang, granted=False)
    assert ledger()[1] == [(wang.pk, "sms")]
    record(wang, granted=False)  # withdrawing twice keeps one opt-out
    assert ledger()[1] == [(wang.pk, "sms")]
    record(wang, granted=True)
    assert ledger()[1] == []
    assert ConsentEntry.objects.filter(member=wang).count() == 3


def test_a_grant_narrows_an_opt_out_from_every_channel(org: Org) -> None:
    wang = org.member_of_guide_a1
    MarketingOptOut.objects.create(member=wang, channel="")
    record(wang, granted=True)
    assert ledger()[1] == [(wang.pk, c) for c in sorted(["inbox", "subscription", "wecom"])]
    assert consent_state(member=wang, purpose=SMS).effective is True
    assert consent_state(member=wang, purpose="marketing_wecom").effective is False


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"purpose": "marketing_fax"}, "unknown_purpose"),
        ({"source": "carrier_pigeon"}, "unknown_source"),
        ({"channel": "fax"}, "unknown_channel"),
        ({"wording_version": "1999-01"}, "unknown_wording"),
        ({"note": "长" * 301}, "note_too_long"),
    ],
)
def test_bad_decisions_are_refused_and_write_nothing(org: Org, change: dict, code: str) -> None:
    before = ledger()
    with pytest.raises(MemberError) as refused:
        record(org.member_of_guide_a1, **change)
    assert refused.value.code == code
    assert ledger() == before


# --- a child's data ---------------------------------------------------------------------------


def test_age_counts_full_years_and_leap_day_birthdays() -> None:
    assert age_on(date(2012, 11, 28), date(2026, 11, 28)) == 14
    assert age_on(date(2012, 11, 29), date(2026, 11, 28)) == 13
    assert age_on(date(2012, 2, 29), date(2026, 2, 28)) == 13
    assert age_on(date(2012, 2, 29), date(2026, 3, 1)) == 14


def test_a_childs_profiling_needs_a_guardians_consent(org: Org) -> None:
    child = org.member_of_guide_a1
    child.birthday = date(timezone.localdate().year - 10, 1, 1)
    child.save(update_fields=["birthday"])
    assert child.is_child is True
    record(child, purpose="profiling", granted=True)
    profiling = consent_state(member=child, purpose="profiling")
    assert (profiling.granted, profiling.effective, profiling.needs_guardian) == (True, False, True)
    record(child, purpose="sensitive", granted=True, source="guide", channel="store")
    profiling = consent_state(member=child, purpose="profiling")
    assert (profiling.granted, profiling.effective, profiling.needs_guardian) == (True, True, False)
    adult = org.member_b1
    adult.birthday = date(1990, 1, 1)
    adult.save(update_fields=["birthday"])
    assert adult.is_child is False
    record(adult, purpose="profiling", granted=True)
    profiling = consent_state(member=adult, purpose="profiling")
    assert (profiling.effective, profiling.needs_guardian) == (True, False)


def test_the_hq_profile_shows_the_child_flag_states_and_history_newest_first(
    client: Client, org: Org
) -> None:
    child = org.member_of_guide_a1
    child.birthday = date(timezone.localdate().year - 8, 1, 1)
    child.save(update_fields=["birthday"])
    start = timezone.now() - timedelta(days=2)
    record(child, granted=True, now=start)
    record(child, granted=False, source="unsubscribe_link", channel="sms", now=start + timedelta(1))
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    response = client.get(f"/hq/members/{child.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="child-flag"' in body and "Under 14: sensitive personal data" in body
    section = response.context["sections"]
    consent = next(s for s in section if s["section"].key == "consent")
    assert [(e.granted, e.source) for e in consent["history"]] == [
        (False, "unsubscribe_link"),
        (True, "hq"),
    ]
    table = body[body.index('data-testid="consent-history"') :]
    assert table.index("Unsubscribe link") < table.index("Head office")
    adult_page = client.get(f"/hq/members/{org.member_b1.pk}/").content.decode()
    assert 'data-testid="child-flag"' not in adult_page


# --- the mini-program API ---------------------------------------------------------------------


def auth(member) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {_open_session(member, 'wx-app').access}"}


def test_api_lists_every_purpose_with_its_wording_version(client: Client, org: Org) -> None:
    wang = org.member_of_guide_a1
    record(wang, granted=False)
    answer = client.get("/api/v1/me/consents", **auth(wang))
    assert answer.status_code == 200
    rows = {row["purpose"]: row for row in answer.json()}
    assert list(rows) == [
        "marketing_inbox",
        "marketing_sms",
        "marketing_wecom",
        "marketing_subscription",
        "profiling",
        "sensitive",
    ]
    assert (rows[SMS]["granted"], rows[SMS]["effective"]) == (False, False)
    assert rows["profiling"]["granted"] is None
    assert {row["wording_version"] for row in rows.values()} == {VERSION}
    assert rows[SMS]["wording"] == str(WORDING[SMS].text)


def test_api_withdraws_and_grants_with_one_call_each(client: Client, org: Org) -> None:
    wang = org.member_of_guide_a1
    url, headers = "/api/v1/me/consents", auth(wang)
    out = client.post(url, {"purpose": SMS, "granted": False}, "application/json", **headers)
    assert out.status_code == 200
    assert (out.json()["granted"], out.json()["effective"]) == (False, False)
    assert ledger() == ([(wang.pk, SMS, False, "mini_program")], [(wang.pk, "sms")])
    entry = ConsentEntry.objects.get()
    assert (entry.channel, entry.wording_version, entry.assisted_by) == (
        "mini_program",
        VERSION,
        None,
    )
    back = client.post(
        url,
        {"purpose": SMS, "granted": True, "wording_version": VERSION},
        "application/json",
        **headers,
    )
    assert (back.status_code, back.json()["effective"]) == (200, True)
    assert ledger()[1] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"purpose": "marketing_fax", "granted": False}, "invalid"),
        ({"purpose": SMS}, "invalid"),
        ({"purpose": SMS, "granted": True, "wording_version": "2020-01"}, "unknown_wording"),
    ],
)
def test_api_refuses_bad_input_and_writes_nothing(
    client: Client, org: Org, body: dict, code: str
) -> None:
    before = ledger()
    answer = client.post(
        "/api/v1/me/consents", body, "application/json", **auth(org.member_of_guide_a1)
    )
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert ledger() == before


def test_api_needs_a_member(client: Client, org: Org) -> None:
    answer = client.post(
        "/api/v1/me/consents", {"purpose": SMS, "granted": False}, "application/json"
    )
    assert answer.status_code == 401
    assert ledger() == ([], [])


# --- guide-assisted on /m/ --------------------------------------------------------------------


def test_a_guide_records_their_customers_decision(client: Client, org: Org) -> None:
    wang = org.member_of_guide_a1
    client.force_login(org.guide_a1)
    card = client.get(f"/m/customers/{wang.pk}/").content.decode()
    assert f"/m/customers/{wang.pk}/consents/" in card
    section = client.get(f"/m/customers/{wang.pk}/consents/", HTTP_HX_REQUEST="true")
    assert section.status_code == 200
    assert 'data-testid="consent-marketing_sms"' in section.content.decode()
    assert "data-confirm" in section.content.decode()
    answer = client.post(
        f"/m/customers/{wang.pk}/consents/record/",
        {"purpose": "marketing_wecom", "granted": "0", "channel": "wecom"},
    )
    assert answer.status_code == 302 and answer["Location"].endswith("#consent")
    entry = ConsentEntry.objects.get()
    assert (entry.member, entry.purpose, entry.granted, entry.source, entry.channel) == (
        wang,
        "marketing_wecom",
        False,
        "guide",
        "wecom",
    )
    assert entry.assisted_by == org.guide_a1
    assert ledger()[1] == [(wang.pk, "wecom")]


@pytest.mark.parametrize("whose", ["member_of_guide_a1_other", "member_b1"])
def test_another_guides_or_stores_customer_is_404_and_nothing_is_written(
    client: Client, org: Org, whose: str
) -> None:
    other = getattr(org, whose)
    client.force_login(org.guide_a1)
    assert client.get(f"/m/customers/{other.pk}/consents/").status_code == 404
    answer = client.post(
        f"/m/customers/{other.pk}/consents/record/",
        {"purpose": SMS, "granted": "0", "channel": "store"},
    )
    assert answer.status_code == 404
    assert ledger() == ([], [])


@pytest.mark.parametrize(
    "form",
    [
        {"purpose": "marketing_fax", "granted": "0", "channel": "store"},
        {"purpose": SMS, "granted": "maybe", "channel": "store"},
        {"purpose": SMS, "granted": "0", "channel": "mini_program"},
    ],
)
def test_a_bad_guide_form_is_refused_with_a_message_and_writes_nothing(
    client: Client, org: Org, form: dict
) -> None:
    wang = org.member_of_guide_a1
    client.force_login(org.guide_a1)
    answer = client.post(f"/m/customers/{wang.pk}/consents/record/", form, follow=True)
    assert answer.status_code == 200
    errors = [m for m in answer.context["messages"] if m.level_tag == "error"]
    assert len(errors) == 1 and str(errors[0])
    assert ledger() == ([], [])


# --- unsubscribe links --------------------------------------------------------------------------


def test_the_unsubscribe_link_confirms_then_withdraws_its_channel(client: Client, org: Org) -> None:
    wang = org.member_of_guide_a1
    url = unsubscribe_url(member_id=wang.pk, channel="sms")
    path = url.removeprefix(url.split("/u/")[0])
    page = client.get(path)
    assert page.status_code == 200
    assert "退订" in page.content.decode() and "短信" in page.content.decode()
    assert ledger() == ([], [])  # asking writes nothing
    done = client.post(path)
    assert done.status_code == 200 and 'data-testid="unsubscribed"' in done.content.decode()
    assert ledger() == ([(wang.pk, SMS, False, "unsubscribe_link")], [(wang.pk, "sms")])
    assert ConsentEntry.objects.get().channel == "sms"


def test_an_inbox_link_withdraws_only_the_inbox(client: Client, org: Org) -> None:
    wang = org.member_of_guide_a1
    client.post(f"/u/{unsubscribe_token(member_id=wang.pk, channel='inbox')}")
    assert ledger() == (
        [(wang.pk, "marketing_inbox", False, "unsubscribe_link")],
        [(wang.pk, "inbox")],
    )


def test_a_forged_or_tampered_unsubscribe_link_is_404_and_writes_nothing(
    client: Client, org: Org
) -> None:
    wang, qian = org.member_of_guide_a1, org.member_b1
    good = unsubscribe_token(member_id=wang.pk, channel="sms")
    value, signature = good.split(".")
    tampered = [
        f"{signing.b62_encode(qian.pk)}-sms.{signature}",  # another member, same signature
        f"{value.replace('-sms', '-inbox')}.{signature}",  # another channel
        f"{value}.{signature[:-1]}A" if signature[-1] != "A" else f"{value}.{signature[:-1]}B",
        link_token(wang.pk),  # a tracked link's token: signed, but not for this
        "no-such-link",
    ]
    for token in tampered:
        assert client.get(f"/u/{token}").status_code == 404, token
        assert client.post(f"/u/{token}").status_code == 404, token
    assert ledger() == ([], [])
