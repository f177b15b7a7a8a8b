"""Referrals (裂变): invite codes, claims, rewards on registration — two levels and no more —
and every refusal changing nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from campaigns.models import (
    InviteCode,
    Referral,
    ReferralProgramme,
    ReferralRejection,
    ReferralStatus,
)
from campaigns.services.referrals import (
    INVITE_ALPHABET,
    REFERRAL_SOURCE,
    invite_code_for,
    referral_claim,
    referral_credit,
)
from members.models import Identity, LedgerEntry, Member, PointsAccount
from members.services.auth import _open_session
from members.services.errors import MemberError
from scrm.core.models import AuditEvent
from scrm.core.pii import phone_digest
from tests.conftest import Org
from tests.members.factories import (
    MemberFactory,
    SandboxLoginCodeFactory,
    SandboxPhoneCodeFactory,
    phone_identity,
)

LEVEL1, LEVEL2 = 100, 20


@pytest.fixture
def programme(db: None) -> ReferralProgramme:
    programme, _created = ReferralProgramme.objects.update_or_create(
        pk=1,
        defaults={"active": True, "level1_points": LEVEL1, "level2_points": LEVEL2},
    )
    return programme


class Visitor:
    """Someone in the mini-program: signed in through WeChat, a prospect until they bind a
    phone."""

    def __init__(self, client: Client) -> None:
        self.client = client
        login = client.post(
            "/api/v1/auth/wechat-login",
            {"code": SandboxLoginCodeFactory().code},
            content_type="application/json",
        )
        assert login.status_code == 200, login.content
        body = login.json()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {body['access']}"}
        self.member = Member.objects.get(pk=body["member"]["id"])

    def referral(self) -> Any:
        return self.client.get("/api/v1/me/referral", **self.auth)

    def code(self) -> str:
        return str(self.referral().json()["code"])

    def claim(self, code: str, device_id: str, **extra: Any) -> Any:
        return self.client.post(
            "/api/v1/me/referral/claim",
            {"code": code, "device_id": device_id, **extra},
            content_type="application/json",
            **self.auth,
        )

    def register(self, phone: str) -> Any:
        return self.client.post(
            "/api/v1/me/phone",
            {"code": SandboxPhoneCodeFactory(phone=phone).code},
            content_type="application/json",
            **self.auth,
        )


def _rewards(member: Member) -> list[tuple[int, str]]:
    """The member's referral rewards in the ledger: (points, reference)."""
    return list(
        LedgerEntry.objects.filter(account__member=member, source=REFERRAL_SOURCE)
        .order_by("pk")
        .values_list("amount", "external_id")
    )


def _state() -> tuple[list[Any], int, list[Any]]:
    return (
        list(Referral.objects.order_by("pk").values()),
        LedgerEntry.objects.count(),
        list(PointsAccount.objects.order_by("pk").values_list("member_id", "kind", "balance")),
    )


def _chain(client: Client, length: int) -> list[Visitor]:
    """Visitors each invited by the one before and registered: a chain A → B → C …"""
    chain = [Visitor(client)]
    chain[0].register("13700000000")
    for n in range(1, length):
        visitor = Visitor(client)
        claimed = visitor.claim(chain[-1].code(), f"device-{n}")
        assert claimed.status_code == 201, claimed.content
        assert visitor.register(f"1370000000{n}").status_code == 200
        chain.append(visitor)
    return chain


def test_invite_code_is_stable_unique_and_unambiguous(client: Client, programme: Any) -> None:
    members = MemberFactory.create_batch(40)
    codes = [invite_code_for(member).code for member in members]
    assert [invite_code_for(member).code for member in members] == codes
    assert len(set(codes)) == 40 and InviteCode.objects.count() == 40
    assert all(len(code) == 8 and set(code) <= set(INVITE_ALPHABET) for code in codes)
    assert not set("01OIL") & set(INVITE_ALPHABET)

    visitor = Visitor(client)
    first, again = visitor.referral().json(), visitor.referral().json()
    assert first == again
    assert first == {
        "code": visitor.member.invite_code.code,
        "invite_path": f"pages/invite/index?code={first['code']}",
        "invite_link": f"pages/invite/index?code={first['code']}",
        "active": True,
        "invitees_credited": 0,
        "invitees_pending": 0,
        "second_level_credited": 0,
        "points_earned": 0,
    }


def test_invite_link_uses_the_configured_base(
    client: Client, programme: Any, settings: Any
) -> None:
    settings.SCRM_INVITE_LINK_BASE = "https://brand.example/h5/invite?from=share"
    body = Visitor(client).referral().json()
    assert body["invite_link"] == f"https://brand.example/h5/invite?from=share&code={body['code']}"


def test_claim_then_registration_credits_both_levels(client: Client, programme: Any) -> None:
    a = Visitor(client)
    assert a.register("13800000001").status_code == 200
    b = Visitor(client)
    claimed = b.claim(a.code().lower(), "device-b")  # typed in lower case: still found
    assert claimed.status_code == 201
    assert claimed.json() == {"status": "pending", "inviter_id": a.member.pk}
    assert _rewards(a.member) == []  # nothing until B registers
    assert a.referral().json()["invitees_pending"] == 1

    assert b.register("13800000002").status_code == 200
    b_referral = Referral.objects.get(invitee=b.member)
    assert b_referral.status == ReferralStatus.CREDITED
    assert (b_referral.level1_points, b_referral.level2_points) == (LEVEL1, 0)
    assert b_referral.invitee_phone == phone_digest("+8613800000002")  # never the number
    assert _rewards(a.member) == [(LEVEL1, f"referral:{b_referral.pk}:level1")]

    c = Visitor(client)
    assert c.claim(b.code(), "device-c").status_code == 201
    assert c.register("13800000003").status_code == 200
    c_referral = Referral.objects.get(invitee=c.member)
    assert (c_referral.inviter, c_referral.level2_inviter) == (b.member, a.member)
    assert (c_referral.level1_points, c_referral.level2_points) == (LEVEL1, LEVEL2)
    assert _rewards(b.member) == [(LEVEL1, f"referral:{c_referral.pk}:level1")]
    assert _rewards(a.member) == [
        (LEVEL1, f"referral:{b_referral.pk}:level1"),
        (LEVEL2, f"referral:{c_referral.pk}:level2"),
    ]
    assert PointsAccount.objects.get(member=a.member, kind="activity").balance == LEVEL1 + LEVEL2
    summary = a.referral().json()
    assert summary["invitees_credited"] == 1 and summary["invitees_pending"] == 0
    assert summary["second_level_credited"] == 1 and summary["points_earned"] == LEVEL1 + LEVEL2


def test_rewards_stop_at_the_inviters_inviter(client: Client, programme: Any) -> None:
    a, b, c = _chain(client, 3)
    a_before = _rewards(a.member)
    d = Visitor(client)
    assert d.claim(c.code(), "device-d").status_code == 201
    assert d.register("13900000004").status_code == 200

    d_referral = Referral.objects.get(invitee=d.member)
    assert (d_referral.inviter, d_referral.level2_inviter) == (c.member, b.member)
    assert _rewards(c.member) == [(LEVEL1, f"referral:{d_referral.pk}:level1")]
    assert _rewards(b.member)[-1] == (LEVEL2, f"referral:{d_referral.pk}:level2")
    assert _rewards(a.member) == a_before  # three levels up: nothing, ever
    paid_for_d = LedgerEntry.objects.filter(
        source=REFERRAL_SOURCE, external_id__startswith=f"referral:{d_referral.pk}:"
    )
    assert sorted(paid_for_d.values_list("account__member_id", "amount")) == sorted(
        [(c.member.pk, LEVEL1), (b.member.pk, LEVEL2)]
    )


def test_retrying_a_credit_pays_nothing_twice(client: Client, programme: Any) -> None:
    a, b, c = _chain(client, 3)
    before = _state()
    assert referral_credit(invitee=c.member) is None  # already credited: a no-op
    assert c.register("13700000002").status_code == 200  # the same phone bound again
    assert _state() == before
    # Even a referral wrongly put back to pending finds its ledger keys already used.
    Referral.objects.filter(invitee=c.member).update(status=ReferralStatus.PENDING)
    credited = referral_credit(invitee=c.member)
    assert credited is not None and credited.status == ReferralStatus.CREDITED
    assert _state()[1:] == before[1:]
    assert [amount for amount, _ref in _rewards(a.member)] == [LEVEL1, LEVEL2]


def _assert_refused(response: Any, status: int, code: str, before: Any) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert _state() == before


def test_unknown_and_own_codes_are_refused(client: Client, programme: Any) -> None:
    visitor = Visitor(client)
    own = visitor.code()
    before = _state()
    _assert_refused(visitor.claim("ZZZZ2222", "d1"), 404, "invite_code_unknown", before)
    _assert_refused(visitor.claim("", "d1"), 400, "invalid", before)
    _assert_refused(visitor.claim(own, "d1"), 400, "self_invite", before)


def test_an_invitee_is_invited_once_and_must_be_new(client: Client, programme: Any) -> None:
    a, b = Visitor(client), Visitor(client)
    c = Visitor(client)
    assert c.claim(a.code(), "device-c").status_code == 201
    before = _state()
    _assert_refused(c.claim(b.code(), "device-c2"), 409, "already_invited", before)
    _assert_refused(c.claim(a.code(), "device-c"), 409, "already_invited", before)

    registered = Visitor(client)
    assert registered.register("13600000001").status_code == 200
    before = _state()
    _assert_refused(registered.claim(a.code(), "device-r"), 409, "already_member", before)
    imported = MemberFactory(phone="+8613600000002")  # a known customer, never registered
    imported_client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {_open_session(imported, 'wx-app').access}"}
    response = imported_client.post(
        "/api/v1/me/referral/claim",
        {"code": a.code(), "device_id": "device-i"},
        content_type="application/json",
        **auth,
    )
    _assert_refused(response, 409, "already_member", before)


def test_a_device_accepts_one_invitation(client: Client, programme: Any) -> None:
    a = Visitor(client)
    assert Visitor(client).claim(a.code(), "iphone-1").status_code == 201
    second_account = Visitor(client)
    before = _state()
    _assert_refused(second_account.claim(a.code(), "iphone-1"), 409, "device_already_used", before)
    # The inviter's own device counts too: inviting oneself from a second WeChat account.
    b = Visitor(client)
    assert b.claim(a.code(), "iphone-b").status_code == 201
    b_second_account = Visitor(client)
    before = _state()
    _assert_refused(
        b_second_account.claim(b.code(), "iphone-b"), 409, "device_already_used", before
    )


def test_loops_are_refused(client: Client, programme: Any) -> None:
    a, b = Visitor(client), Visitor(client)
    assert b.claim(a.code(), "device-b").status_code == 201  # A invited B
    before = _state()
    _assert_refused(a.claim(b.code(), "device-a"), 409, "referral_cycle", before)
    c = Visitor(client)
    assert c.claim(b.code(), "device-c").status_code == 201  # B invited C
    before = _state()
    _assert_refused(a.claim(c.code(), "device-a"), 409, "referral_cycle", before)
    # Someone who already brought friends in cannot then join under another inviter.
    outsider = Visitor(client)
    _assert_refused(b.claim(outsider.code(), "device-b2"), 409, "already_invited", before)
    _assert_refused(a.claim(outsider.code(), "device-a"), 409, "invitee_has_invitees", before)


def test_a_third_level_is_refused(client: Client, programme: Any) -> None:
    a, b = Visitor(client), Visitor(client)
    before = _state()
    client.cookies["scrm_language"] = "en"
    response = b.claim(a.code(), "device-b", level=3)
    _assert_refused(response, 400, "referral_too_deep", before)
    assert response.json()["message"] == "Referral chains are limited to two levels."
    _assert_refused(b.claim(a.code(), "device-b", level=0), 400, "invalid", before)
    with pytest.raises(MemberError) as refused:
        referral_claim(invitee=b.member, code=a.code(), device_id="device-b", level=3)
    assert refused.value.code == "referral_too_deep"
    assert _state() == before
    assert b.claim(a.code(), "device-b", level=1).status_code == 201


def test_programme_off_refuses_claims_and_pending_invites_earn_nothing(
    client: Client, programme: ReferralProgramme
) -> None:
    a, b = Visitor(client), Visitor(client)
    assert b.claim(a.code(), "device-b").status_code == 201
    ReferralProgramme.objects.filter(pk=1).update(active=False)
    c = Visitor(client)
    before = _state()
    _assert_refused(c.claim(a.code(), "device-c"), 409, "referral_programme_off", before)
    assert a.referral().json()["active"] is False

    assert b.register("13500000001").status_code == 200  # registration itself goes through
    referral = Referral.objects.get(invitee=b.member)
    assert referral.status == ReferralStatus.REJECTED
    assert referral.rejected_reason == ReferralRejection.PROGRAMME_OFF
    assert _rewards(a.member) == []


def test_a_phone_that_already_earned_a_reward_earns_nothing_again(
    client: Client, programme: Any
) -> None:
    a, b = Visitor(client), Visitor(client)
    assert b.claim(a.code(), "device-b").status_code == 201
    assert b.register("13500000002").status_code == 200
    # Staff unbind B's number (say it changed hands); a new WeChat account binds it.
    Identity.objects.filter(member=b.member, kind="phone").delete()
    c = Visitor(client)
    assert c.claim(a.code(), "device-c").status_code == 201
    ledger_before = LedgerEntry.objects.count()
    response = c.register("13500000002")
    assert response.status_code == 200 and response.json()["is_member"] is True
    referral = Referral.objects.get(invitee=c.member)
    assert referral.status == ReferralStatus.REJECTED
    assert referral.rejected_reason == ReferralRejection.PHONE_REPEATED
    assert referral.invitee_phone == phone_digest("+8613500000002")
    assert (referral.level1_points, referral.level2_points) == (0, 0)
    assert LedgerEntry.objects.count() == ledger_before
    assert [amount for amount, _ref in _rewards(a.member)] == [LEVEL1]


def test_a_phone_held_by_another_member_is_not_bound_and_pays_nothing(
    client: Client, programme: Any
) -> None:
    a = Visitor(client)
    holder = MemberFactory(phone="+8613500000003")
    phone_identity(holder, "+8613500000003")
    b = Visitor(client)
    assert b.claim(a.code(), "device-b").status_code == 201
    before = _state()
    response = b.register("13500000003")
    assert response.status_code == 409 and response.json()["code"] == "phone_conflict"
    assert _state() == before
    assert Referral.objects.get(invitee=b.member).status == ReferralStatus.PENDING


def test_inviters_own_rejected_invite_earns_their_inviter_nothing(
    client: Client, programme: Any
) -> None:
    a, b = Visitor(client), Visitor(client)
    assert b.claim(a.code(), "device-b").status_code == 201
    Referral.objects.create(  # the number already earned someone a reward, long ago
        invitee=MemberFactory(),
        inviter=MemberFactory(),
        device_id="old",
        invitee_phone=phone_digest("+8613400000002"),
    )
    c = Visitor(client)
    assert c.claim(b.code(), "device-c").status_code == 201  # while B's invite is pending
    assert Referral.objects.get(invitee=c.member).level2_inviter == a.member
    assert b.register("13400000002").status_code == 200  # repeated phone: rejected
    assert c.register("13400000003").status_code == 200
    assert [amount for amount, _ref in _rewards(b.member)] == [LEVEL1]
    assert _rewards(a.member) == []


def test_referral_endpoints_need_a_member_token(client: Client, programme: Any) -> None:
    assert client.get("/api/v1/me/referral").status_code in (401, 403)
    response = client.post(
        "/api/v1/me/referral/claim",
        {"code": "ABCDEFGH", "device_id": "d"},
        content_type="application/json",
    )
    assert response.status_code in (401, 403)
    assert Referral.objects.count() == 0 and InviteCode.objects.count() == 0


def test_members_nobody_invited_register_as_before(client: Client, programme: Any) -> None:
    visitor = Visitor(client)
    assert visitor.register("13300000001").status_code == 200
    assert referral_credit(invitee=visitor.member) is None
    assert Referral.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_hq_edits_the_programme_in_the_admin(client: Client, org: Org, programme: Any) -> None:
    org.hq_admin.is_superuser = True
    org.hq_admin.save(update_fields=["is_superuser"])
    client.force_login(org.hq_admin)
    response = client.post(
        "/admin/campaigns/referralprogramme/1/change/",
        {"active": "on", "level1_points": "50", "level2_points": "10", "points_valid_days": ""},
    )
    assert response.status_code == 302
    saved = ReferralProgramme.current()
    assert (saved.level1_points, saved.level2_points, saved.points_valid_days) == (50, 10, None)
    assert AuditEvent.objects.filter(action="loyalty.referral_programme.update").exists()
    assert client.get("/admin/campaigns/referral/").status_code == 200
    assert client.get("/admin/campaigns/invitecode/").status_code == 200


def _race(*calls: Callable[[], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except BaseException as exc:  # collected and checked by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_racing_claims_cannot_both_succeed() -> None:
    ReferralProgramme.objects.update_or_create(pk=1, defaults={"active": True})
    inviter, first, second = (MemberFactory(phone="") for _ in range(3))
    code = invite_code_for(inviter).code
    results, errors = _race(
        lambda: referral_claim(invitee=first, code=code, device_id="same-device"),
        lambda: referral_claim(invitee=second, code=code, device_id="same-device"),
    )
    assert len(results) == 1 and [getattr(e, "code", e) for e in errors] == ["device_already_used"]
    assert Referral.objects.count() == 1

    # Two prospects each opening the other's invite at once: a loop, so one must lose.
    x, y = MemberFactory(phone=""), MemberFactory(phone="")
    x_code, y_code = invite_code_for(x).code, invite_code_for(y).code
    results, errors = _race(
        lambda: referral_claim(invitee=x, code=y_code, device_id="device-x"),
        lambda: referral_claim(invitee=y, code=x_code, device_id="device-y"),
    )
    assert len(results) == 1 and [getattr(e, "code", e) for e in errors] == ["referral_cycle"]
    assert Referral.objects.filter(invitee__in=[x, y]).count() == 1


def test_a_failed_credit_never_fails_registration_and_hq_can_retry_it(
    client: Client, org: Org, programme: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = Visitor(client), Visitor(client)
    assert b.claim(a.code(), "device-b").status_code == 201

    def ledger_down(**kwargs: Any) -> None:
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr("campaigns.services.referrals.points_earn", ledger_down)
    assert b.register("13200000001").status_code == 200
    referral = Referral.objects.get(invitee=b.member)
    assert referral.status == ReferralStatus.PENDING and LedgerEntry.objects.count() == 0

    monkeypatch.undo()
    org.hq_admin.is_superuser = True
    org.hq_admin.save(update_fields=["is_superuser"])
    client.force_login(org.hq_admin)
    response = client.post(
        "/admin/campaigns/referral/",
        {"action": "credit_now", "_selected_action": [referral.pk]},
    )
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.CREDITED
    assert _rewards(a.member) == [(LEVEL1, f"referral:{referral.pk}:level1")]
