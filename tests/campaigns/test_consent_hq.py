"""Head office records a member's consent decision on the profile (paper form, phone
call, store): a form, a confirmation, then the entry with source "hq" and the staff
member. Store managers do it for their own store's members; anyone else's is a 404."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.models import ConsentEntry, MarketingOptOut
from tests.conftest import Org

pytestmark = pytest.mark.django_db

WITHDRAW_SMS = {"purpose": "marketing_sms", "granted": "0", "channel": "paper", "note": "表 0117"}


def url(member) -> str:
    return f"/hq/members/{member.pk}/consents/record/"


def ledger() -> tuple[list[tuple], list[tuple]]:
    return (
        list(ConsentEntry.objects.values_list("member_id", "purpose", "granted", "source")),
        list(MarketingOptOut.objects.values_list("member_id", "channel")),
    )


def test_the_profile_links_to_recording_a_decision(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/members/{org.member_b1.pk}/").content.decode()
    assert f'href="{url(org.member_b1)}"' in page


def test_an_operator_confirms_then_the_decision_is_recorded_with_them(
    client: Client, org: Org
) -> None:
    member = org.member_b1
    client.force_login(org.hq_operator)
    client.cookies["scrm_language"] = "en"
    form = client.get(url(member))
    assert form.status_code == 200 and 'data-testid="consent-record"' in form.content.decode()

    confirm = client.post(url(member), WITHDRAW_SMS)
    body = confirm.content.decode()
    assert confirm.status_code == 200 and 'data-testid="consent-confirm"' in body
    assert "Marketing by SMS" in body and "Paper form" in body and "表 0117" in body
    assert "I agree to receive offers and event news by SMS." in body
    assert ledger() == ([], [])  # nothing until confirmed

    done = client.post(url(member), {**WITHDRAW_SMS, "confirmed": "1"})
    assert done.status_code == 302
    assert done["Location"] == f"/hq/members/{member.pk}/#section-consent"
    entry = ConsentEntry.objects.get()
    assert (entry.member_id, entry.purpose, entry.granted, entry.source, entry.channel) == (
        member.pk,
        "marketing_sms",
        False,
        "hq",
        "paper",
    )
    assert (entry.assisted_by, entry.note, entry.wording_version) == (
        org.hq_operator,
        "表 0117",
        "2026-11",
    )
    assert ledger()[1] == [(member.pk, "sms")]
    profile = client.get(done["Location"]).content.decode()
    history = profile[profile.index('data-testid="consent-history"') :]
    assert "Head office" in history and "Paper form" in history and "表 0117" in history


def test_change_goes_back_to_the_filled_in_form(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    back = client.post(url(org.member_b1), {**WITHDRAW_SMS, "confirmed": "1", "edit": "1"})
    body = back.content.decode()
    assert 'data-testid="consent-record"' in body and 'value="表 0117"' in body
    assert ledger() == ([], [])


def test_a_store_manager_records_for_their_own_stores_member(client: Client, org: Org) -> None:
    member = org.member_a1_unassigned
    client.force_login(org.store_manager_a1)
    grant = {"purpose": "profiling", "granted": "1", "channel": "store", "confirmed": "1"}
    assert client.post(url(member), grant).status_code == 302
    assert ledger() == ([(member.pk, "profiling", True, "hq")], [])
    assert ConsentEntry.objects.get().assisted_by == org.store_manager_a1


@pytest.mark.parametrize("role", ["store_manager_a1", "region_manager_a"])
def test_another_stores_member_is_404_and_nothing_is_written(
    client: Client, org: Org, role: str
) -> None:
    client.force_login(getattr(org, role))
    assert client.get(url(org.member_b1)).status_code == 404
    assert client.post(url(org.member_b1), {**WITHDRAW_SMS, "confirmed": "1"}).status_code == 404
    assert ledger() == ([], [])


def test_a_guide_is_refused(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    answer = client.post(url(org.member_of_guide_a1), {**WITHDRAW_SMS, "confirmed": "1"})
    assert answer.status_code == 403
    assert ledger() == ([], [])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"purpose": "marketing_fax"}, "purpose"),
        ({"granted": "maybe"}, "granted"),
        ({"channel": "mini_program"}, "channel"),
        ({"note": "长" * 301}, "note"),
    ],
)
def test_a_bad_form_is_shown_again_with_the_error_and_writes_nothing(
    client: Client, org: Org, change: dict, field: str
) -> None:
    client.force_login(org.hq_operator)
    answer = client.post(url(org.member_b1), {**WITHDRAW_SMS, **change, "confirmed": "1"})
    assert answer.status_code == 200
    assert list(answer.context["form"].errors) == [field]
    assert 'data-testid="consent-record"' in answer.content.decode()
    assert ledger() == ([], [])
