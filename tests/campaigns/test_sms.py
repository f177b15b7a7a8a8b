"""The Aliyun SMS client and gateway against a local HTTP server that answers with recorded
dysmsapi responses (tests/campaigns/recordings/sms/*.json: each a request as Alibaba
Cloud's documentation describes it and the answer it gives) and records every request.
The server is test_wecom's, keyed here by the RPC Action instead of the path."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.test import override_settings

from campaigns.gateways import Outgoing, SendResult
from campaigns.sms import AliyunSmsClient, SmsError, SmsGateway, aliyun_phone, sms_gateway
from members.models import IdentityKind, Member
from tests.campaigns.test_wecom import FakeWecom, Reply, SeenRequest, _handler_for
from tests.members.factories import IdentityFactory, MemberFactory, phone_identity
from tests.org.factories import StoreFactory

RECORDINGS = Path(__file__).resolve().parent / "recordings" / "sms"


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return data


def reply(name: str, **changes: Any) -> Reply:
    rec = recording(name)
    return Reply(json.dumps({**rec["response"], **changes}).encode(), status=rec["status"])


SEND = recording("send_batch_sms_ok")["request"]["form"]
KEY_ID = SEND["AccessKeyId"]
SECRET = "7Hq2Vw9Xk4Rm8Tn3Lp6Zc1Yb5Jd0Gf"  # the recording's note
NONCE = SEND["SignatureNonce"]
TIMESTAMP = SEND["Timestamp"]
SIGN_NAME = json.loads(SEND["SignNameJson"])[0]
TEMPLATE = SEND["TemplateCode"]
PHONES = json.loads(SEND["PhoneNumberJson"])
TEXTS = [param["content"] for param in json.loads(SEND["TemplateParamJson"])]
BIZ_ID = recording("send_batch_sms_ok")["response"]["BizId"]
BEIJING = ZoneInfo("Asia/Shanghai")
# The gateway's clock: ten seconds before the recorded send (Beijing 10:30:02).
NOW = datetime(2024, 6, 18, 10, 29, 52, tzinfo=BEIJING).timestamp()


# --- the recorded-answer server, keyed by Action ---------------------------------------------


@dataclass
class FakeAliyun(FakeWecom):
    """Aliyun's RPC API has one path: replies are queued and requests filed by Action."""

    def take(self, request: SeenRequest) -> Reply:
        action = params_of(request).get("Action", "")
        return super().take(replace(request, path=action))


def params_of(request: SeenRequest) -> dict[str, str]:
    """The signed parameters, from the query (GET) or the form body (POST)."""
    form = dict(parse_qsl(request.body.decode(), keep_blank_values=True)) if request.body else {}
    return {**request.query, **form}


@pytest.fixture
def aliyun(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAliyun]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeAliyun()
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


def client_for(base_url: str, *, timeout: float = 2) -> AliyunSmsClient:
    return AliyunSmsClient(
        KEY_ID,
        SECRET,
        endpoint=base_url,
        timeout=timeout,
        nonce=lambda: NONCE,
        timestamp=lambda: TIMESTAMP,
    )


def gateway_for(base_url: str, *, timeout: float = 2, shared: bool = True) -> SmsGateway:
    return SmsGateway(
        client_for(base_url, timeout=timeout),
        sign_name=SIGN_NAME,
        template_code=TEMPLATE,
        cache_is_shared=shared,
        clock=lambda: NOW,
    )


def member_with_phone(phone: str, **fields: Any) -> Member:
    member = MemberFactory.create(phone=phone, **fields)
    phone_identity(member)
    return member


def message(member: Member, content: str, broadcast: int = 7) -> Outgoing:
    return Outgoing(f"b{broadcast}:m{member.pk}", member.pk, content)


def record_key(gateway: SmsGateway, key: str) -> str:
    return f"{gateway.client.cache_prefix}:sent:{key}"


# --- the signature, computed independently from Alibaba Cloud's documentation -----------------


def expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    """Signature v1 as the documentation spells it out, without the client's code."""

    def enc(text: str) -> str:
        # java.net.URLEncoder then the documented replacements: + → %20, * → %2A, %7E → ~
        return quote(text, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    pairs = sorted((enc(k), enc(v)) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{k}={v}" for k, v in pairs)
    string_to_sign = method + "&" + enc("/") + "&" + enc(canonical)
    mac = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def test_the_documented_example_signs_to_the_documented_signature() -> None:
    """Alibaba Cloud's worked example (SendSms, testId / testSecret) and its published
    signature."""
    example = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    signed = AliyunSmsClient(
        "testId",
        "testSecret",
        nonce=lambda: example["SignatureNonce"],
        timestamp=lambda: example["Timestamp"],
    ).signed_params(
        "GET",
        "SendSms",
        {
            k: example[k]
            for k in (
                "Format",
                "OutId",
                "PhoneNumbers",
                "SignName",
                "TemplateCode",
                "TemplateParam",
            )
        },
    )
    assert signed["Signature"] == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert expected_signature(example, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


# --- sending ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_goes_out_as_one_signed_send_batch_sms(aliyun: FakeAliyun) -> None:
    wang = member_with_phone("+86" + PHONES[0], name="王小美")
    li = member_with_phone("+86" + PHONES[1], name="李小红")
    aliyun.answer("SendBatchSms", reply("send_batch_sms_ok"))
    gateway = gateway_for(aliyun.base_url)

    results = gateway.send_batch([message(wang, TEXTS[0]), message(li, TEXTS[1])])

    assert results == [SendResult("sent", ref=BIZ_ID), SendResult("sent", ref=BIZ_ID)]
    [request] = aliyun.to("SendBatchSms")
    assert request.method == "POST"
    assert request.query == {}
    assert request.content_type == "application/x-www-form-urlencoded"
    params = params_of(request)
    assert {k: v for k, v in params.items() if k != "Signature"} == SEND
    assert params["Signature"] == expected_signature(params, SECRET, "POST")
    # The record says it went out, with Aliyun's BizId: no question to Aliyun later. It
    # holds no number (the cache is no place for one): the key names the member.
    record = cache.get(record_key(gateway, f"b7:m{wang.pk}"))
    assert record == {
        "date": "20240618",
        "at": NOW,
        "content": TEXTS[0],
        "biz_id": BIZ_ID,
    }
    assert gateway.sent_keys([f"b7:m{wang.pk}", f"b7:m{li.pk}", "b7:m999999"]) == {
        f"b7:m{wang.pk}",
        f"b7:m{li.pk}",
    }
    assert len(aliyun.requests) == 1  # sent_keys asked nothing


@pytest.mark.django_db
def test_250_numbers_take_three_calls_of_at_most_100(aliyun: FakeAliyun) -> None:
    store = StoreFactory()
    members = [member_with_phone(f"+86139{n:08d}", home_store=store) for n in range(250)]
    aliyun.answer(
        "SendBatchSms",
        reply("send_batch_sms_ok"),
        reply("send_batch_sms_ok_2"),
        reply("send_batch_sms_ok_3"),
    )
    # Two texts mixed in one batch: TemplateParamJson holds one object per number.
    batch = [message(m, f"第{n % 2}条") for n, m in enumerate(members)]

    results = gateway_for(aliyun.base_url).send_batch(batch)

    calls = aliyun.to("SendBatchSms")
    numbers = [json.loads(params_of(call)["PhoneNumberJson"]) for call in calls]
    assert [len(n) for n in numbers] == [100, 100, 50]
    assert sum(numbers, []) == [f"139{n:08d}" for n in range(250)]
    signs = [json.loads(params_of(call)["SignNameJson"]) for call in calls]
    assert signs == [[SIGN_NAME] * 100, [SIGN_NAME] * 100, [SIGN_NAME] * 50]
    texts: list[Any] = sum((json.loads(params_of(call)["TemplateParamJson"]) for call in calls), [])
    assert texts == [{"content": f"第{n % 2}条"} for n in range(250)]
    refs = [
        recording(name)["response"]["BizId"]
        for name in ("send_batch_sms_ok", "send_batch_sms_ok_2", "send_batch_sms_ok_3")
    ]
    assert results == (
        [SendResult("sent", refs[0])] * 100
        + [SendResult("sent", refs[1])] * 100
        + [SendResult("sent", refs[2])] * 50
    )
    for call in calls:
        params = params_of(call)
        assert params["Signature"] == expected_signature(params, SECRET, "POST")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("business_limit_control", "limit_reached"),
        ("mobile_number_illegal", "failed_invalid_phone"),
        ("system_error", "transient"),
        ("throttling_user", "transient"),
        ("template_illegal", "failed_isv.SMS_TEMPLATE_ILLEGAL"),
    ],
)
def test_each_aliyun_code_maps_to_a_status(aliyun: FakeAliyun, name: str, status: str) -> None:
    member = member_with_phone("+8613800001234")
    aliyun.answer("SendBatchSms", reply(name))
    gateway = gateway_for(aliyun.base_url)

    assert gateway.send_batch([message(member, TEXTS[0])]) == [SendResult(status)]
    # Aliyun refused the call: nothing went out, and no record says otherwise.
    assert cache.get(record_key(gateway, f"b7:m{member.pk}")) is None
    assert gateway.sent_keys([f"b7:m{member.pk}"]) == set()
    assert len(aliyun.requests) == 1


@pytest.mark.django_db
def test_a_per_number_refusal_in_a_batch_is_retried_one_number_per_call(
    aliyun: FakeAliyun,
) -> None:
    good = member_with_phone("+8613800001234")
    bad = member_with_phone("+8613000000000")
    aliyun.answer(
        "SendBatchSms",
        reply("mobile_number_illegal"),
        reply("send_batch_sms_ok"),
        reply("mobile_number_illegal"),
    )

    results = gateway_for(aliyun.base_url).send_batch([message(good, "a"), message(bad, "b")])

    assert results == [SendResult("sent", ref=BIZ_ID), SendResult("failed_invalid_phone")]
    numbers = [json.loads(params_of(r)["PhoneNumberJson"]) for r in aliyun.to("SendBatchSms")]
    assert numbers == [["13800001234", "13000000000"], ["13800001234"], ["13000000000"]]


@pytest.mark.django_db
def test_after_a_transient_error_the_rest_of_the_batch_is_not_tried(
    aliyun: FakeAliyun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("campaigns.sms.MAX_NUMBERS_PER_CALL", 2)
    members = [member_with_phone(f"+8613800000{n:03d}") for n in range(3)]
    aliyun.answer("SendBatchSms", reply("system_error"))

    results = gateway_for(aliyun.base_url).send_batch([message(m, "hi") for m in members])

    assert results == [SendResult("transient")] * 3
    assert len(aliyun.to("SendBatchSms")) == 1


@pytest.mark.django_db
def test_members_without_a_usable_phone_are_not_sent_anything(aliyun: FakeAliyun) -> None:
    no_phone = MemberFactory.create(phone="")
    abroad = member_with_phone("+85291234567")
    other_kind = MemberFactory.create(phone="")
    IdentityFactory(member=other_kind, kind=IdentityKind.TMALL, value="13800002222")

    results = gateway_for(aliyun.base_url).send_batch(
        [message(no_phone, "x"), message(abroad, "x"), message(other_kind, "x")]
    )

    assert results == [
        SendResult("failed_no_phone"),
        SendResult("failed_invalid_phone"),
        SendResult("failed_no_phone"),
    ]
    assert aliyun.requests == []


def test_phones_become_eleven_digits() -> None:
    assert aliyun_phone("+8613800001234") == "13800001234"
    assert aliyun_phone("13800001234") == "13800001234"
    assert aliyun_phone("+85291234567") == ""
    assert aliyun_phone("+86010123456") == ""


# --- outcomes unknown: the record, and QuerySendDetails ------------------------------------------


@pytest.mark.django_db
def test_a_timeout_leaves_a_record_that_query_send_details_confirms(aliyun: FakeAliyun) -> None:
    member = member_with_phone("+86" + PHONES[0])
    key = f"b7:m{member.pk}"
    aliyun.answer("SendBatchSms", replace(reply("send_batch_sms_ok"), delay=1.0))
    aliyun.answer("QuerySendDetails", reply("query_send_details"))
    gateway = gateway_for(aliyun.base_url, timeout=0.3)

    assert gateway.send_batch([message(member, TEXTS[0])]) == [SendResult("timeout")]
    assert cache.get(record_key(gateway, key))["biz_id"] == ""

    assert gateway.sent_keys([key]) == {key}

    [query] = aliyun.to("QuerySendDetails")
    assert query.method == "GET"
    params = params_of(query)
    expected = recording("query_send_details")["request"]["query"]
    assert {k: params[k] for k in expected} == expected
    assert params["Signature"] == expected_signature(params, SECRET, "GET")
    # Once confirmed, the answer is remembered.
    assert gateway.sent_keys([key]) == {key}
    assert len(aliyun.to("QuerySendDetails")) == 1


@pytest.mark.django_db
def test_a_recorded_call_aliyun_has_no_trace_of_was_not_sent(aliyun: FakeAliyun) -> None:
    member = member_with_phone("+86" + PHONES[0])
    other_text = member_with_phone("+8613900005678")
    gateway = gateway_for(aliyun.base_url)
    for who, content in ((member, TEXTS[0]), (other_text, "另一条短信")):
        cache.set(
            record_key(gateway, f"b7:m{who.pk}"),
            {
                "date": "20240618",
                "at": NOW,
                "content": content,
                "biz_id": "",
            },
        )
    aliyun.answer(
        "QuerySendDetails", reply("query_send_details_empty"), reply("query_send_details")
    )

    # The first key: Aliyun lists nothing. The second: Aliyun lists our template, another text.
    assert gateway.sent_keys([f"b7:m{member.pk}"]) == set()
    assert gateway.sent_keys([f"b7:m{other_text.pk}"]) == set()


@pytest.mark.django_db
def test_a_record_older_than_the_message_aliyun_lists_is_not_matched(aliyun: FakeAliyun) -> None:
    member = member_with_phone("+86" + PHONES[0])
    gateway = gateway_for(aliyun.base_url)
    later = datetime(2024, 6, 18, 11, 0, tzinfo=BEIJING).timestamp()
    gateway.clock = lambda: later
    cache.set(
        record_key(gateway, f"b7:m{member.pk}"),
        {"date": "20240618", "at": later, "content": TEXTS[0], "biz_id": ""},
    )
    aliyun.answer("QuerySendDetails", reply("query_send_details"))

    assert gateway.sent_keys([f"b7:m{member.pk}"]) == set()


@pytest.mark.django_db
def test_without_a_shared_cache_unrecorded_keys_are_asked_about(aliyun: FakeAliyun) -> None:
    member = member_with_phone("+86" + PHONES[0])
    no_phone = MemberFactory.create(phone="")
    aliyun.answer("QuerySendDetails", reply("query_send_details"))

    shared = gateway_for(aliyun.base_url, shared=True)
    assert shared.sent_keys([f"b7:m{member.pk}"]) == set()
    assert aliyun.requests == []  # a shared cache without a record: never handed over

    local = gateway_for(aliyun.base_url, shared=False)
    assert local.sent_keys([f"b7:m{member.pk}", f"b7:m{no_phone.pk}"]) == {f"b7:m{member.pk}"}
    assert len(aliyun.to("QuerySendDetails")) == 1


@pytest.mark.django_db
def test_query_errors_propagate_from_sent_keys(aliyun: FakeAliyun) -> None:
    member = member_with_phone("+86" + PHONES[0])
    gateway = gateway_for(aliyun.base_url)
    cache.set(
        record_key(gateway, f"b7:m{member.pk}"),
        {"date": "20240618", "at": NOW, "content": TEXTS[0], "biz_id": ""},
    )
    aliyun.answer("QuerySendDetails", reply("signature_does_not_match"))

    with pytest.raises(SmsError) as raised:
        gateway.sent_keys([f"b7:m{member.pk}"])
    assert raised.value.code == "SignatureDoesNotMatch"
    assert SECRET not in str(raised.value)


@pytest.mark.django_db
def test_query_send_details_reads_every_page(aliyun: FakeAliyun) -> None:
    row = recording("query_send_details")["response"]["SmsSendDetailDTOs"]["SmsSendDetailDTO"][1]
    page_1 = reply(
        "query_send_details", TotalCount=51, SmsSendDetailDTOs={"SmsSendDetailDTO": [row] * 50}
    )
    page_2 = reply("query_send_details", TotalCount=51)
    aliyun.answer("QuerySendDetails", page_1, page_2)

    rows = client_for(aliyun.base_url).query_send_details(phone=PHONES[0], send_date="20240618")

    assert len(rows) == 52
    assert [params_of(r)["CurrentPage"] for r in aliyun.to("QuerySendDetails")] == ["1", "2"]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.django_db
def test_an_unreachable_aliyun_is_transient_and_leaves_no_record() -> None:
    member = member_with_phone("+8613800001234")
    gateway = gateway_for(_closed_port_url(), timeout=0.3)

    assert gateway.send_batch([message(member, "hi")]) == [SendResult("transient")]
    assert cache.get(record_key(gateway, f"b7:m{member.pk}")) is None


# --- configuration ------------------------------------------------------------------------------


def test_the_gateway_needs_key_sign_and_template() -> None:
    with override_settings(ALIYUN_SMS_ACCESS_KEY_ID=KEY_ID, ALIYUN_SMS_ACCESS_KEY_SECRET=SECRET):
        assert sms_gateway() is None  # no sign name or template
    with override_settings(
        ALIYUN_SMS_ACCESS_KEY_ID=KEY_ID,
        ALIYUN_SMS_ACCESS_KEY_SECRET=SECRET,
        ALIYUN_SMS_SIGN_NAME=SIGN_NAME,
        ALIYUN_SMS_TEMPLATE_CODE=TEMPLATE,
    ):
        gateway = sms_gateway()
    assert gateway is not None
    assert (gateway.kind, gateway.idempotent) == ("sms", False)
    assert gateway.client.endpoint == "https://dysmsapi.aliyuncs.com"
    assert (gateway.sign_name, gateway.template_code) == (SIGN_NAME, TEMPLATE)
    assert SECRET not in repr(gateway.client)
    assert timedelta(hours=1) == gateway.window
