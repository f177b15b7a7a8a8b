"""Answers the API fuzzing found wrong: an address under /api/ that matches no endpoint,
and refusals the schema did not document."""

from typing import Any

import pytest
from django.test import Client

from members.models import IdempotentRequest, LedgerEntry, Member, MemberSession
from tests.members.factories import SandboxLoginCodeFactory

pytestmark = pytest.mark.django_db


def _member_token(client: Client) -> str:
    code = SandboxLoginCodeFactory()
    response = client.post(
        "/api/v1/auth/wechat-login", {"code": code.code}, content_type="application/json"
    )
    return str(response.json()["access"])


def _state() -> tuple[int, int, int, int]:
    return (
        Member.all_objects.count(),
        MemberSession.objects.count(),
        IdempotentRequest.objects.count(),
        LedgerEntry.objects.count(),
    )


def test_unmatched_api_address_answers_a_json_error_and_changes_nothing(client: Client) -> None:
    token = _member_token(client)
    client.cookies["scrm_language"] = "en"
    before = _state()
    # An id that is not a number matches no route (the URL pattern takes integers only).
    response = client.post(
        "/api/v1/rewards/null,null/redeem",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "not_found",
        "message": "There is no such API address; check the path.",
    }
    assert _state() == before


def test_unmatched_api_address_message_is_translated(client: Client) -> None:
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "API 地址不存在，请检查路径。"}


def test_unmatched_back_office_address_keeps_its_page(client: Client) -> None:
    response = client.get("/hq/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def _operation(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return schema["paths"][path][method]  # type: ignore[no-any-return]


def test_schema_documents_the_refusals_drf_answers_before_a_view_runs(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    error = {"$ref": "#/components/schemas/ErrorOutput"}

    def error_schema(path: str, method: str, code: str) -> Any:
        return _operation(schema, path, method)["responses"][code]["content"]["application/json"][
            "schema"
        ]

    # A member endpoint without a token: 401 (the bearer scheme is named in WWW-Authenticate).
    assert error_schema("/api/v1/me/", "get", "401") == error
    # A staff endpoint without a session: 403 (session sign-in names no scheme).
    assert error_schema("/api/v1/staff/me/", "get", "403") == error
    assert "401" not in _operation(schema, "/api/v1/staff/me/", "get")["responses"]
    # A body that does not validate, and a page past the end of a list.
    assert error_schema("/api/v1/me/referral/claim", "post", "400") == error
    assert error_schema("/api/v1/rewards", "get", "404") == error
    # Signing in needs no principal, so it documents no 401.
    assert "401" not in _operation(schema, "/api/v1/auth/wechat-login", "post")["responses"]
    assert schema["components"]["schemas"]["ErrorOutput"]["required"] == ["code", "message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/me/sign-in",
        "/api/v1/rewards/{reward_id}/redeem",
        "/api/v1/me/redemptions/{redemption_id}/cancel",
    ],
)
def test_schema_documents_the_idempotency_key_header(client: Client, path: str) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    headers = [
        parameter
        for parameter in _operation(schema, path, "post").get("parameters", [])
        if parameter["in"] == "header"
    ]
    assert [(h["name"], h["required"]) for h in headers] == [("Idempotency-Key", True)]
    assert "400" in _operation(schema, path, "post")["responses"]


def test_a_reward_open_to_every_tier_is_documented_with_a_null_min_tier(client: Client) -> None:
    from members.models import CouponTemplate, Reward

    Reward.objects.create(
        name="10元券",
        kind="coupon",
        coupon_template=CouponTemplate.objects.create(
            name="10元券", kind="amount_off", amount_off=10
        ),
        points_price=50,
        stock=5,
    )
    token = _member_token(client)
    rewards = client.get("/api/v1/rewards", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [(r["name"], r["min_tier"]) for r in rewards["results"]] == [("10元券", None)]
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    min_tier = schema["components"]["schemas"]["RewardOutput"]["properties"]["min_tier"]
    assert min_tier["type"] == "string"
    assert min_tier["nullable"] is True
