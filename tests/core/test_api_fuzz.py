"""Schemathesis drives every operation of the OpenAPI schema (served by the app at
/api/schema/) with generated requests, valid and invalid, as three principals: nobody, a
member signed in through the mini-program, and a store guide with a back-office session.
Every answer must not be a server error, and its status code, content type and body must
be the ones the schema documents.

The requests go straight into the Django WSGI application inside the test's transaction,
so each operation's examples see the fixtures' rows and leave nothing behind. Runs are
deterministic (the same examples every time) and capped per operation to keep CI quick.
Run it alone with `pytest tests/core/test_api_fuzz.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns.models import InboxMessage
from members.models import CouponTemplate, Reward
from members.services.mall import reward_redeem
from members.services.points import points_earn
from tests.conftest import Org
from tests.members.factories import SandboxLoginCodeFactory

EXAMPLES_PER_OPERATION = 15
# Any 32 letters make a valid CSRF secret; the cookie and the header only have to agree.
CSRF_SECRET = "f" * 32


def inside_test_transaction(app: Any) -> Any:
    """The WSGI application, minus Django's closing of a connection left in a transaction
    when a request starts or ends: that would end the test's transaction. Django's own test
    client unhooks the same handler for the same reason."""

    def call(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = app(environ, start_response)
            try:
                return list(response)
            finally:
                response.close()  # sends request_finished while still unhooked
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return call


schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    inside_test_transaction(get_wsgi_application()),
    config=schemathesis.Config.from_dict(
        {"generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True}}
    ),
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The fixtures are set up once per operation and shared by its examples; derandomized, so
# CI sees the same requests on every run.
fuzz_settings = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@dataclass
class SignedInMember:
    access_token: str
    # Rows of this member's the path ids can name, so examples reach past "not found".
    own_ids: dict[str, int]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
def member(db: None) -> SignedInMember:
    code = SandboxLoginCodeFactory()
    response = Client().post(
        "/api/v1/auth/wechat-login", {"code": code.code}, content_type="application/json"
    )
    assert response.status_code == 200
    body = response.json()
    member_id = body["member"]["id"]
    points_earn(member_id=member_id, kind="activity", amount=1000, source="t", external_id="f1")
    reward = Reward.objects.create(
        name="10元券",
        kind="coupon",
        coupon_template=CouponTemplate.objects.create(
            name="10元券", kind="amount_off", amount_off=10
        ),
        points_price=50,
        stock=100,
    )
    redemption = reward_redeem(member_id=member_id, reward_id=reward.pk, key="fuzz-seed")
    message = InboxMessage.objects.create(member_id=member_id, key="fuzz", title="会员日", body="x")
    return SignedInMember(
        access_token=body["access"],
        own_ids={
            "reward_id": reward.pk,
            "redemption_id": redemption.pk,
            "message_id": message.pk,
        },
    )


@dataclass
class SignedInGuide:
    session_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRFToken": CSRF_SECRET}

    @property
    def cookies(self) -> dict[str, str]:
        return {"sessionid": self.session_id, "csrftoken": CSRF_SECRET}


@pytest.fixture
def guide(org: Org) -> SignedInGuide:
    client = Client()
    client.force_login(org.guide_a1)
    return SignedInGuide(session_id=client.cookies["sessionid"].value)


def aim_at_own_rows(case: schemathesis.Case, own_ids: dict[str, int]) -> None:
    """Half the generated integer ids (the even ones) name the member's own rows instead."""
    for name, own_id in own_ids.items():
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0:
            case.path_parameters[name] = own_id  # type: ignore[index]


@fuzz_settings
@schema.parametrize()
@pytest.mark.django_db
def test_anonymous(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


@fuzz_settings
@schema.parametrize()
def test_member(case: schemathesis.Case, member: SignedInMember) -> None:
    aim_at_own_rows(case, member.own_ids)
    case.call_and_validate(headers=member.headers, checks=CHECKS)


@fuzz_settings
@schema.parametrize()
def test_guide(case: schemathesis.Case, guide: SignedInGuide) -> None:
    case.call_and_validate(headers=guide.headers, cookies=guide.cookies, checks=CHECKS)


# The fuzzing above would pass as well if a principal's credentials were silently refused;
# these pin that each one is signed in through the same WSGI application.


def _call(method: str, path: str, **kwargs: Any) -> Any:
    return schema[path][method].Case().call(**kwargs)


@pytest.mark.django_db
def test_the_member_is_signed_in(member: SignedInMember) -> None:
    card = _call("GET", "/api/v1/me/", headers=member.headers)
    assert card.status_code == 200
    assert card.json()["points"]["activity"] == 950


def test_the_guide_is_signed_in_and_passes_the_csrf_check(guide: SignedInGuide) -> None:
    me = _call("GET", "/api/v1/staff/me/", headers=guide.headers, cookies=guide.cookies)
    assert me.status_code == 200
    assert me.json()["username"] == "guide_a1"
    # DRF checks CSRF while authenticating, before it looks at the method: 405, not 403,
    # means an unsafe request from this session gets through to the view.
    write = schema["/api/v1/staff/me/"]["GET"].Case(method="POST")
    refused = write.call(headers=guide.headers, cookies=guide.cookies)
    assert refused.status_code == 405
    without_token = write.call(cookies={"sessionid": guide.session_id})
    assert without_token.status_code == 403
