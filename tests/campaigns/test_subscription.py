"""The mini-program subscription-message gateway against a local HTTP server answering with
recorded WeChat responses (tests/campaigns/recordings/subscription/*.json) and recording
every request: test_wecom's server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from campaigns.gateways import Outgoing, SendResult
from campaigns.subscription import (
    SEND_PATH,
    SubscriptionGateway,
    field_value,
    subscription_gateway,
)
from members.models import IdentityKind, Member
from members.wechat import HttpWechatClient
from tests.campaigns.test_wecom import FakeWecom, Reply, _handler_for
from tests.members.factories import IdentityFactory, MemberFactory

RECORDINGS = Path(__file__).resolve().parent / "recordings" / "subscription"


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return data


def reply(name: str) -> Reply:
    rec = recording(name)
    return Reply(json.dumps(rec["response"]).encode(), status=rec["status"])


TOKEN_QUERY = recording("token")["request"]["query"]
APP_ID, APP_SECRET = TOKEN_QUERY["appid"], TOKEN_QUERY["secret"]
TOKEN = recording("token")["response"]["access_token"]
FRESH_TOKEN = recording("token_refreshed")["response"]["access_token"]
SENT = recording("send_ok")["request"]
OPENID = SENT["body"]["touser"]
TEMPLATE_ID = SENT["body"]["template_id"]
PAGE = SENT["body"]["page"]
TEXT = SENT["body"]["data"]["thing1"]["value"]
MSGID = str(recording("send_ok")["response"]["msgid"])
TOKEN_PATH = "/cgi-bin/token"


@pytest.fixture
def wechat(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWecom]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeWecom()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert fake.unexpected == [], "requests nobody queued a reply for"
    assert {path: queue for path, queue in fake.replies.items() if queue} == {}, "unused replies"


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def gateway_for(
    base_url: str, *, timeout: float = 2, data_key: str = "thing1"
) -> SubscriptionGateway:
    client = HttpWechatClient(app_id=APP_ID, app_secret=APP_SECRET, base_url=base_url)
    return SubscriptionGateway(
        client, template_id=TEMPLATE_ID, data_key=data_key, page=PAGE, timeout=timeout
    )


def subscriber(openid: str = OPENID, app: str = APP_ID) -> Member:
    member = MemberFactory.create()
    IdentityFactory(member=member, kind=IdentityKind.OPENID, app=app, value=openid)
    return member


def message(member: Member, content: str = TEXT) -> Outgoing:
    return Outgoing(f"b9:m{member.pk}", member.pk, content)


@pytest.mark.django_db
def test_a_message_goes_out_as_recorded_and_the_token_is_cached(wechat: FakeWecom) -> None:
    first, second = subscriber(), subscriber("oQm3k5Fh7bX2vN9cL1pR4tY8wZ7b")
    wechat.answer(TOKEN_PATH, reply("token"))
    wechat.answer(SEND_PATH, reply("send_ok"), reply("send_ok"))
    gateway = gateway_for(wechat.base_url)

    results = gateway.send_batch([message(first), message(second)])

    assert results == [SendResult("sent", ref=MSGID), SendResult("sent", ref=MSGID)]
    [token_call] = wechat.to(TOKEN_PATH)
    assert (token_call.method, token_call.query) == ("GET", TOKEN_QUERY)
    calls = wechat.to(SEND_PATH)
    assert [(c.method, c.query, c.content_type) for c in calls] == [
        ("POST", {"access_token": TOKEN}, "application/json")
    ] * 2
    assert calls[0].json() == SENT["body"]
    assert calls[1].json()["touser"] == "oQm3k5Fh7bX2vN9cL1pR4tY8wZ7b"
    assert gateway.sent_keys([f"b9:m{first.pk}", f"b9:m{second.pk}", "b9:m0"]) == {
        f"b9:m{first.pk}",
        f"b9:m{second.pk}",
    }
    # The token is the sign-in's, in the same cache entry: a later gateway fetches none.
    wechat.answer(SEND_PATH, reply("send_ok"))
    gateway_for(wechat.base_url).send_batch([Outgoing("b10:m1", first.pk, TEXT)])
    assert len(wechat.to(TOKEN_PATH)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("rejection", ["access_token_expired", "invalid_credential"])
def test_a_rejected_token_is_replaced_and_the_call_made_once_more(
    wechat: FakeWecom, rejection: str
) -> None:
    member = subscriber()
    wechat.answer(TOKEN_PATH, reply("token"), reply("token_refreshed"))
    wechat.answer(SEND_PATH, reply(rejection), reply("send_ok"))
    gateway = gateway_for(wechat.base_url)

    assert gateway.send_batch([message(member)]) == [SendResult("sent", ref=MSGID)]
    assert [c.query["access_token"] for c in wechat.to(SEND_PATH)] == [TOKEN, FRESH_TOKEN]
    assert cache.get(gateway.client._token_cache_key()) == FRESH_TOKEN


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("user_refused", "limit_reached"),
        ("invalid_openid", "failed_invalid_openid"),
        ("system_busy", "transient"),
        ("reach_max_api_daily_quota", "transient"),
        ("invalid_template_id", "failed_40037"),
    ],
)
def test_each_errcode_maps_to_a_status(wechat: FakeWecom, name: str, status: str) -> None:
    member = subscriber()
    wechat.answer(TOKEN_PATH, reply("token"))
    wechat.answer(SEND_PATH, reply(name))
    gateway = gateway_for(wechat.base_url)

    assert gateway.send_batch([message(member)]) == [SendResult(status)]
    # WeChat refused: nothing went out, a resend is allowed.
    assert gateway.sent_keys([f"b9:m{member.pk}"]) == set()


@pytest.mark.django_db
def test_after_a_transient_error_the_rest_is_not_tried(wechat: FakeWecom) -> None:
    members = [subscriber(f"oQm3k5Fh7bX2vN9cL1pR4tY8w{n:03d}") for n in range(3)]
    wechat.answer(TOKEN_PATH, reply("token"))
    wechat.answer(SEND_PATH, reply("system_busy"))

    results = gateway_for(wechat.base_url).send_batch([message(m) for m in members])

    assert results == [SendResult("transient")] * 3
    assert len(wechat.to(SEND_PATH)) == 1


@pytest.mark.django_db
def test_members_without_an_openid_of_the_app_are_not_sent_anything(wechat: FakeWecom) -> None:
    nobody = MemberFactory.create()
    other_app = subscriber(app="wx0000000000000000")
    unionid_only = MemberFactory.create()
    IdentityFactory(member=unionid_only, kind=IdentityKind.UNIONID, value="oU7x2kP9mW4qT1vB")

    results = gateway_for(wechat.base_url).send_batch(
        [message(nobody), message(other_app), message(unionid_only)]
    )

    assert results == [SendResult("failed_no_openid")] * 3
    assert wechat.requests == []


@pytest.mark.django_db
def test_the_text_is_cut_to_the_field_types_limit(wechat: FakeWecom) -> None:
    member = subscriber()
    long_text = "王小美您好：\n会员日全场8折，到店出示会员码再领20元无门槛券，仅限本周末"
    wechat.answer(TOKEN_PATH, reply("token"))
    wechat.answer(SEND_PATH, reply("send_ok"))

    gateway_for(wechat.base_url).send_batch([message(member, long_text)])

    value = wechat.to(SEND_PATH)[0].json()["data"]["thing1"]["value"]
    assert value == "王小美您好： 会员日全场8折，到店出示…"
    assert len(value) == 20


def test_field_limits_follow_the_key_type() -> None:
    text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    assert field_value(text, "thing1") == text[:19] + "…"
    assert field_value(text, "character_string12") == text[:31] + "…"
    assert field_value(text, "phrase3") == "abcd…"
    assert field_value("  短  文本 ", "thing2") == "短 文本"
    assert field_value(text, "unknown5") == text[:19] + "…"


@pytest.mark.django_db
def test_an_unknown_outcome_counts_as_sent_at_most_once(wechat: FakeWecom) -> None:
    member = subscriber()
    wechat.answer(TOKEN_PATH, reply("token"))
    wechat.answer(SEND_PATH, replace(reply("send_ok"), delay=1.0))
    gateway = gateway_for(wechat.base_url, timeout=0.3)

    assert gateway.send_batch([message(member)]) == [SendResult("timeout")]
    # WeChat may have sent it, spending the member's consent: never again.
    assert gateway.sent_keys([f"b9:m{member.pk}"]) == {f"b9:m{member.pk}"}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.django_db
def test_a_call_that_never_left_can_be_sent_again(wechat: FakeWecom) -> None:
    member = subscriber()
    wechat.answer(TOKEN_PATH, reply("token"))
    gateway_for(wechat.base_url).client._access_token()  # cached for the next gateway
    gateway = gateway_for(_closed_port_url(), timeout=0.3)

    assert gateway.send_batch([message(member)]) == [SendResult("transient")]
    assert gateway.sent_keys([f"b9:m{member.pk}"]) == set()


@pytest.mark.django_db
def test_no_token_means_nothing_sent() -> None:
    member = subscriber()
    gateway = gateway_for(_closed_port_url(), timeout=0.3)

    assert gateway.send_batch([message(member)]) == [SendResult("transient")]
    assert gateway.sent_keys([f"b9:m{member.pk}"]) == set()


def test_the_gateway_needs_the_app_and_a_template() -> None:
    with override_settings(WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=APP_SECRET):
        assert subscription_gateway() is None
    with override_settings(
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_SUBSCRIBE_TEMPLATE_ID=TEMPLATE_ID,
        WECHAT_SUBSCRIBE_PAGE=PAGE,
        WECHAT_API_BASE="http://127.0.0.1:9",
    ):
        gateway = subscription_gateway()
    assert gateway is not None
    assert (gateway.kind, gateway.idempotent) == ("subscription", False)
    assert (gateway.template_id, gateway.data_key, gateway.page) == (TEMPLATE_ID, "thing1", PAGE)
    assert gateway.miniprogram_state == "formal"
    assert gateway.client.base_url == "http://127.0.0.1:9"
