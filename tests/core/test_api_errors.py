"""Answers the API fuzzing found wrong: an address under /api/ that matches no endpoint,
and refusals the schema did not document."""

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
