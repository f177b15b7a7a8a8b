"""The mini-program API: WeChat login, tokens, the member card, binding a phone."""

from typing import Any

import pytest
from django.test import Client

from members.models import (
    Identity,
    LifecycleStage,
    Member,
    MemberSession,
    MergeSuggestion,
    SandboxWechatCode,
)
from scrm.core.pii import phone_digest
from tests.members.factories import (
    IdentityFactory,
    MemberFactory,
    SandboxLoginCodeFactory,
    SandboxPhoneCodeFactory,
    phone_identity,
)

pytestmark = pytest.mark.django_db


def _login(client: Client, code: str) -> Any:
    return client.post("/api/v1/auth/wechat-login", {"code": code}, content_type="application/json")


def _auth(tokens: dict[str, Any]) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"}


def _state() -> tuple[int, int, int, int]:
    return (
        Member.all_objects.count(),
        Identity.objects.count(),
        MemberSession.objects.count(),
        MergeSuggestion.objects.count(),
    )


def test_first_login_creates_a_private_domain_user(client: Client) -> None:
    code = SandboxLoginCodeFactory(openid="oNew1", unionid="oUNew1")
    response = _login(client, code.code)
    assert response.status_code == 200
    body = response.json()
    assert body["access"] and body["refresh"] and body["access_expires_in"] == 7200
    member = Member.objects.get()
    assert body["member"]["id"] == member.pk
    assert body["member"]["is_member"] is False
    assert body["member"]["lifecycle_stage"] == LifecycleStage.PRIVATE
    assert sorted(member.identities.values_list("kind", "app", "value")) == [
        ("openid", "sandbox-mini-program", "oNew1"),
        ("unionid", "", "oUNew1"),
    ]
    assert member.source_channel == "mini_program"


def test_returning_login_finds_the_same_member(client: Client) -> None:
    member = MemberFactory()
    IdentityFactory(member=member, kind="unionid", value="oUBack")
    code = SandboxLoginCodeFactory(openid="oFresh", unionid="oUBack")
    body = _login(client, code.code).json()
    assert body["member"]["id"] == member.pk
    assert Member.objects.count() == 1


def test_reused_code_is_refused_and_writes_nothing(client: Client) -> None:
    code = SandboxLoginCodeFactory()
    assert _login(client, code.code).status_code == 200
    before = _state()
    response = _login(client, code.code)
    assert response.status_code == 400
    assert response.json()["code"] == "code_used"
    assert response.json()["message"]
    assert _state() == before


@pytest.mark.parametrize("code", ["never-issued", "x" * 200, ""])
def test_unknown_or_malformed_code_is_refused(client: Client, code: str) -> None:
    response = _login(client, code)
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_code", "invalid"}
    assert _state() == (0, 0, 0, 0)


def test_login_that_matches_two_members_is_reviewed_not_merged(client: Client) -> None:
    a = MemberFactory()
    IdentityFactory(member=a, kind="unionid", value="oUTwin")
    b = MemberFactory()
    IdentityFactory(member=b, kind="openid", app="sandbox-mini-program", value="oOTwin")
    phone_identity(b, "+8613100000000")
    code = SandboxLoginCodeFactory(openid="oOTwin", unionid="oUTwin")
    response = _login(client, code.code)
    # openid is weak, unionid strong: the unionid decides, the pair is flagged.
    assert response.status_code == 200
    assert response.json()["member"]["id"] == a.pk
    assert MergeSuggestion.objects.filter(status="open").count() == 1


def test_me_requires_a_valid_token(client: Client) -> None:
    assert client.get("/api/v1/me/").json()["code"] == "not_authenticated"
    for header in ("Bearer nonsense", "Token abc", "Bearer "):
        response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_member_card_and_profile_edit(client: Client) -> None:
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    card = client.get("/api/v1/me/", **_auth(tokens)).json()
    assert card["name"] == "" and card["phone"] == ""
    response = client.patch(
        "/api/v1/me/",
        {"name": " 陈思思 ", "gender": "f", "birthday": "1995-06-01", "city": "杭州"},
        content_type="application/json",
        **_auth(tokens),
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["birthday"]) == ("陈思思", "1995-06-01")
    member = Member.objects.get()
    assert (member.name, member.gender, member.city) == ("陈思思", "f", "杭州")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "not-a-date"}, "birthday"),
        ({"gender": "x"}, "gender"),
        ({"name": ""}, "name"),
        ({"name": "名" * 51}, "name"),
        ({"phone": "13800000000"}, "phone"),
        ({"lifecycle_stage": "loyal"}, "lifecycle_stage"),
    ],
)
def test_bad_profile_edits_are_refused_and_change_nothing(
    client: Client,
    payload: dict,  # type: ignore[type-arg]
    field: str,
) -> None:
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    before = list(Member.objects.values())
    response = client.patch(
        "/api/v1/me/", payload, content_type="application/json", **_auth(tokens)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]
    assert list(Member.objects.values()) == before


def test_binding_a_phone_makes_a_member(client: Client) -> None:
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    phone_code = SandboxPhoneCodeFactory(phone="138 0000 5678")
    response = client.post(
        "/api/v1/me/phone",
        {"code": phone_code.code},
        content_type="application/json",
        **_auth(tokens),
    )
    assert response.status_code == 200
    card = response.json()
    assert card["phone"] == "*******5678"
    assert card["is_member"] is True
    assert card["lifecycle_stage"] == LifecycleStage.MEMBER
    member = Member.objects.get()
    assert member.reveal_phone() == "+8613800005678"
    assert member.identities.filter(kind="phone", value=phone_digest("+8613800005678")).exists()


def test_phone_belonging_to_another_member_goes_to_review(client: Client) -> None:
    other = MemberFactory(phone="+8613900001111")
    phone_identity(other, "+8613900001111")
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    me = Member.objects.exclude(pk=other.pk).get()
    phone_code = SandboxPhoneCodeFactory(phone="13900001111")
    response = client.post(
        "/api/v1/me/phone",
        {"code": phone_code.code},
        content_type="application/json",
        **_auth(tokens),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "phone_conflict"
    me.refresh_from_db()
    assert not me.has_phone and me.member_since is None
    assert not me.identities.filter(kind="phone").exists()
    suggestion = MergeSuggestion.objects.get()
    assert {suggestion.member_a_id, suggestion.member_b_id} == {me.pk, other.pk}


def test_invalid_phone_from_wechat_is_refused(client: Client) -> None:
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    phone_code = SandboxPhoneCodeFactory(phone="12345")
    response = client.post(
        "/api/v1/me/phone",
        {"code": phone_code.code},
        content_type="application/json",
        **_auth(tokens),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "phone_invalid"
    assert not Member.objects.get().has_phone


def test_refresh_rotates_and_the_old_refresh_token_dies(client: Client) -> None:
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    response = client.post(
        "/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["refresh"] != tokens["refresh"]
    assert client.get("/api/v1/me/", **_auth(fresh)).status_code == 200
    again = client.post(
        "/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert again.status_code == 401
    assert again.json()["code"] == "refresh_invalid"


def test_logout_revokes_the_session(client: Client) -> None:
    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    assert client.post("/api/v1/auth/logout", **_auth(tokens)).status_code == 204
    assert client.get("/api/v1/me/", **_auth(tokens)).status_code == 401
    response = client.post(
        "/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert response.status_code == 401


def test_after_a_merge_the_token_serves_the_kept_member(client: Client) -> None:
    from members.services.merge import member_merge

    tokens = _login(client, SandboxLoginCodeFactory().code).json()
    mine = Member.objects.get()
    kept = MemberFactory(name="合并后")
    member_merge(keep=kept, drop=mine, actor=None)
    card = client.get("/api/v1/me/", **_auth(tokens)).json()
    assert card["id"] == kept.pk and card["name"] == "合并后"


def test_staff_sessions_do_not_open_member_endpoints(client: Client, org) -> None:  # type: ignore[no-untyped-def]
    client.force_login(org.hq_admin)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert SandboxWechatCode.objects.count() == 0
