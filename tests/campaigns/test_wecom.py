"""The WeCom client and gateway against a local HTTP server that answers with recorded WeCom
responses (tests/campaigns/recordings/wecom/*.json: each the request WeCom's documentation
describes and the answer it gives) and records every request it gets."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.cache import cache
from django.test import override_settings

from campaigns.gateways import Outgoing, SendResult
from campaigns.models import Material, MaterialKind
from campaigns.services.sending import delivery_key
from campaigns.wecom import (
    MsgTemplateResult,
    WecomClient,
    WecomError,
    WecomGateway,
    classify,
    clear_tokens_in_memory,
    image_attachment,
    link_attachment,
    material_attachments,
    send_result_status,
    wecom_gateway,
)
from members.models import IdentityKind
from tests.members.factories import IdentityFactory, MemberFactory
from tests.org.factories import StaffFactory

RECORDINGS = Path(__file__).resolve().parent / "recordings" / "wecom"


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return data


CORP_ID = recording("gettoken")["request"]["query"]["corpid"]
SECRET = recording("gettoken")["request"]["query"]["corpsecret"]
TOKEN = recording("gettoken")["response"]["access_token"]
FRESH_TOKEN = recording("gettoken_refreshed")["response"]["access_token"]
OK_BODY = recording("add_msg_template_ok")["request"]["body"]
TEXT = OK_BODY["text"]["content"]
LINK = OK_BODY["attachments"][0]
E1, E2, E3, E4 = (
    "wmGwN1CgAAk2Rz7Jx9FqT0aBcDeFgH1w",
    "wmGwN1CgAAp8Lm3Vb6NsY4uIoPqWeR2x",
    "wmGwN1CgAAz5Hc9Kd2GtX7yTrEwQaS3y",
    "wmGwN1CgAAq1Wv4Bn8MjU6iOpLkJhG4z",
)
MSGID = recording("add_msg_template_ok")["response"]["msgid"]

GETTOKEN = "/cgi-bin/gettoken"
ADD = "/cgi-bin/externalcontact/add_msg_template"
SEND_RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"
LIST = "/cgi-bin/externalcontact/get_groupmsg_list_v2"
TASK = "/cgi-bin/externalcontact/get_groupmsg_task"
GROUPCHATS = "/cgi-bin/externalcontact/groupchat/list"
MOMENT = "/cgi-bin/externalcontact/add_moment_task"
UPLOAD = "/cgi-bin/media/upload"
COVER = "/materials/cover.jpg"
COVER_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


# --- a local server answering with recorded WeCom responses -------------------------------


@dataclass
class Reply:
    body: bytes
    status: int = 200
    delay: float = 0.0
    content_type: str = "application/json; charset=UTF-8"


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeWecom:
    """Serves queued replies per path, in order, and records every request it gets."""

    base_url: str = ""
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, *replies: Reply | str) -> None:
        """Queue replies for `path`: a Reply, or the name of a recording."""
        queue = self.replies.setdefault(path, [])
        for reply in replies:
            if isinstance(reply, str):
                reply = Reply(json.dumps(recording(reply)["response"]).encode())
            queue.append(reply)

    def take(self, request: SeenRequest) -> Reply:
        with self.lock:
            self.requests.append(request)
            queue = self.replies.get(request.path)
            if not queue:
                self.unexpected.append(request.path)
                return Reply(b'{"errcode":404,"errmsg":"no reply queued"}', status=404)
            return queue.pop(0)

    def to(self, path: str) -> list[SeenRequest]:
        return [request for request in self.requests if request.path == path]


def reply_with(name: str, **changes: Any) -> Reply:
    """A recorded response with some fields changed."""
    return Reply(json.dumps({**recording(name)["response"], **changes}).encode())


def _handler_for(fake: FakeWecom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _serve(self, body: bytes) -> None:
            url = urlsplit(self.path)
            reply = fake.take(
                SeenRequest(
                    method=self.command,
                    path=url.path,
                    query=dict(parse_qsl(url.query, keep_blank_values=True)),
                    body=body,
                    content_type=self.headers.get("Content-Type") or "",
                )
            )
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up waiting (the timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def wecom(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWecom]:
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
def no_tokens_yet() -> Iterator[None]:
    """Each test starts without a token, in memory or in Django's cache."""
    cache.clear()
    clear_tokens_in_memory()
    yield
    cache.clear()
    clear_tokens_in_memory()


@pytest.fixture
def client(wecom: FakeWecom) -> WecomClient:
    return WecomClient(CORP_ID, SECRET, base_url=wecom.base_url, timeout=2)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _send(client: WecomClient, **changes: Any) -> list[MsgTemplateResult]:
    """add_msg_template with the recorded request's arguments."""
    arguments: dict[str, Any] = {
        "sender": OK_BODY["sender"],
        "external_userids": OK_BODY["external_userid"],
        "text": TEXT,
        "attachments": OK_BODY["attachments"],
    }
    return client.add_msg_template(**{**arguments, **changes})


# --- the access token ---------------------------------------------------------------------


def test_token_fetched_once_and_reused(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(MOMENT, "add_moment_task_ok", "add_moment_task_ok")

    assert client.add_moment_task(text=TEXT, attachments=[], visible_userids=[]) == (
        "tNzb3pX6yE2qK8vR1wM5cH9jL4sD7aF0"
    )
    client.add_moment_task(text=TEXT, attachments=[], visible_userids=[])

    [token_request] = wecom.to(GETTOKEN)
    assert token_request.method == "GET"
    assert token_request.query == recording("gettoken")["request"]["query"]
    assert token_request.query == {"corpid": CORP_ID, "corpsecret": SECRET}
    assert [request.query for request in wecom.to(MOMENT)] == [{"access_token": TOKEN}] * 2
    assert [request.path for request in wecom.requests] == [GETTOKEN, MOMENT, MOMENT]


def test_token_shared_with_another_client_through_the_django_cache(
    wecom: FakeWecom, client: WecomClient
) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    before = time.time()

    assert client.access_token() == TOKEN
    clear_tokens_in_memory()  # as if the next client lived in another process
    other = WecomClient(CORP_ID, SECRET, base_url=wecom.base_url)

    assert other.access_token() == TOKEN
    assert len(wecom.to(GETTOKEN)) == 1
    shared = cache.get(client.token_cache_key)
    assert shared["token"] == TOKEN
    # Kept until five minutes before WeCom's 7,200 seconds run out.
    assert before + 6900 - 5 <= shared["expires_at"] <= time.time() + 6900
    assert SECRET not in client.token_cache_key


def test_token_kept_in_memory_when_the_shared_cache_loses_it(
    wecom: FakeWecom, client: WecomClient
) -> None:
    wecom.answer(GETTOKEN, "gettoken")

    client.access_token()
    cache.delete(client.token_cache_key)

    assert client.access_token() == TOKEN
    assert len(wecom.to(GETTOKEN)) == 1


def test_another_secret_has_a_token_of_its_own(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken", "gettoken_refreshed")
    other_app = WecomClient(CORP_ID, "another-secret", base_url=wecom.base_url)

    assert client.access_token() == TOKEN
    assert other_app.access_token() == FRESH_TOKEN

    assert [request.query["corpsecret"] for request in wecom.to(GETTOKEN)] == [
        SECRET,
        "another-secret",
    ]


@pytest.mark.parametrize("token_error", ["access_token_expired", "invalid_access_token"])
def test_rejected_token_is_replaced_and_the_call_retried_once(
    wecom: FakeWecom, client: WecomClient, token_error: str
) -> None:
    wecom.answer(GETTOKEN, "gettoken", "gettoken_refreshed")
    wecom.answer(ADD, token_error, "add_msg_template_ok", "add_msg_template_ok")

    [result] = _send(client)

    assert result == MsgTemplateResult([E1, E2], msgid=MSGID, fail_list=[])
    assert [request.path for request in wecom.requests] == [GETTOKEN, ADD, GETTOKEN, ADD]
    assert [request.query["access_token"] for request in wecom.to(ADD)] == [TOKEN, FRESH_TOKEN]
    assert [request.json() for request in wecom.to(ADD)] == [OK_BODY, OK_BODY]
    # The fresh token is the one kept now.
    _send(client)
    assert len(wecom.to(GETTOKEN)) == 2
    assert wecom.to(ADD)[-1].query == {"access_token": FRESH_TOKEN}


def test_token_rejected_twice_is_retried_only_once(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken", "gettoken_refreshed")
    wecom.answer(ADD, "access_token_expired", "access_token_expired")

    [result] = _send(client)

    assert result.error is not None
    assert result.error.errcode == 42001
    assert [request.path for request in wecom.requests] == [GETTOKEN, ADD, GETTOKEN, ADD]


def test_concurrent_first_calls_fetch_the_token_once(wecom: FakeWecom) -> None:
    token_reply = Reply(json.dumps(recording("gettoken")["response"]).encode(), delay=0.3)
    wecom.answer(GETTOKEN, token_reply)
    tokens: list[str] = []
    start = threading.Barrier(8)

    def first_call() -> None:
        start.wait()
        tokens.append(WecomClient(CORP_ID, SECRET, base_url=wecom.base_url).access_token())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert tokens == [TOKEN] * 8
    assert len(wecom.to(GETTOKEN)) == 1


def test_failed_token_fetch_is_not_kept(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken_invalid_credential", "gettoken")

    with pytest.raises(WecomError) as caught:
        client.access_token()
    assert caught.value.errcode == 40001
    assert classify(caught.value) == "failed_40001"

    assert client.access_token() == TOKEN
    assert len(wecom.to(GETTOKEN)) == 2


def test_secret_and_token_stay_out_of_errors_and_logs(
    wecom: FakeWecom, client: WecomClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echoing = {"errcode": 40001, "errmsg": f"invalid credential {SECRET}"}
    wecom.answer(GETTOKEN, Reply(json.dumps(echoing).encode()), "gettoken")
    wecom.answer(ADD, Reply(b"<html>bad gateway</html>", status=502))

    with pytest.raises(WecomError) as caught:
        client.access_token()
    [result] = _send(client)

    assert result.error is not None
    for error in (caught.value, result.error):
        assert SECRET not in str(error)
        assert TOKEN not in str(error)
        assert SECRET not in repr(error)
    assert caplog.records
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text
    assert SECRET not in repr(client)


# --- group messages -----------------------------------------------------------------------


def test_add_msg_template_sends_the_documented_request(
    wecom: FakeWecom, client: WecomClient
) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "add_msg_template_ok")

    results = _send(client)

    assert results == [MsgTemplateResult([E1, E2], msgid=MSGID, fail_list=[])]
    [request] = wecom.to(ADD)
    assert request.method == "POST"
    assert request.query == recording("add_msg_template_ok")["request"]["query"]
    assert request.content_type == "application/json"
    assert request.json() == recording("add_msg_template_ok")["request"]["body"]


def test_add_msg_template_reports_the_customers_wecom_refused(
    wecom: FakeWecom, client: WecomClient
) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "add_msg_template_fail_list")

    [result] = _send(client)

    assert result == MsgTemplateResult(
        [E1, E2], msgid="msgGwN1CgAAr4Fq8Zc2LmWx6Yb0Tn3KsAA", fail_list=[E2]
    )


def test_more_than_10000_customers_go_in_several_messages(
    wecom: FakeWecom, client: WecomClient
) -> None:
    customers = [f"wmGwN1CgAA{n:022d}" for n in range(10_001)]
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "add_msg_template_ok", reply_with("add_msg_template_ok", msgid="msg2"))

    results = _send(client, external_userids=customers)

    assert [(r.msgid, len(r.recipients)) for r in results] == [(MSGID, 10_000), ("msg2", 1)]
    first, second = wecom.to(ADD)
    assert first.json()["external_userid"] == customers[:10_000]
    assert second.json()["external_userid"] == customers[10_000:]
    assert {k: v for k, v in second.json().items() if k != "external_userid"} == {
        k: v for k, v in OK_BODY.items() if k != "external_userid"
    }


def test_after_a_failed_part_the_rest_is_not_tried(wecom: FakeWecom, client: WecomClient) -> None:
    customers = [f"wmGwN1CgAA{n:022d}" for n in range(10_001)]
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "api_freq_out_of_limit")

    first, second = _send(client, external_userids=customers)

    assert first.error is not None and first.error.errcode == 45009
    assert second.error is not None and second.error.errcode is None
    assert [classify(first.error), classify(second.error)] == ["transient", "transient"]
    assert (first.msgid, second.msgid, len(second.recipients)) == ("", "", 1)
    assert len(wecom.to(ADD)) == 1


def test_no_customers_no_call(wecom: FakeWecom, client: WecomClient) -> None:
    assert _send(client, external_userids=[]) == []
    assert wecom.requests == []


def test_group_message_to_customer_groups(wecom: FakeWecom, client: WecomClient) -> None:
    expected = recording("add_msg_template_to_groups_ok")["request"]["body"]
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "add_msg_template_to_groups_ok")

    [result] = client.add_msg_template_to_groups(
        sender="guide_a1", chat_ids=expected["chat_id_list"], text=TEXT, attachments=[LINK]
    )

    assert result.msgid == "msgGwN1CgAAg7Xk2Pb5NcQz9Rm1VwE4hAA"
    assert wecom.to(ADD)[0].json() == expected


def test_customer_groups_of_guides_are_paged(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(GROUPCHATS, "groupchat_list_page_1", "groupchat_list_page_2")

    chat_ids = client.groupchat_list(owner_userids=["guide_a1", "guide_b1"])

    assert chat_ids == ["wrGwN1CgAAh6Yq2Vx8TbK0zLmNcPoQrS", "wrGwN1CgAAc3Dm7Ws1UfJ9pHkEaYtR5w"]
    assert [request.json() for request in wecom.to(GROUPCHATS)] == [
        recording("groupchat_list_page_1")["request"]["body"],
        recording("groupchat_list_page_2")["request"]["body"],
    ]


def test_moments_task(wecom: FakeWecom, client: WecomClient) -> None:
    expected = recording("add_moment_task_ok")["request"]["body"]
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(MOMENT, "add_moment_task_ok")

    jobid = client.add_moment_task(
        text=TEXT,
        attachments=expected["attachments"],
        visible_userids=["guide_a1", "guide_b1"],
    )

    assert jobid == "tNzb3pX6yE2qK8vR1wM5cH9jL4sD7aF0"
    assert wecom.to(MOMENT)[0].json() == expected


# --- send results -------------------------------------------------------------------------


def test_send_results_are_paged_and_mapped(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(SEND_RESULT, "get_groupmsg_send_result_page_1", "get_groupmsg_send_result_page_2")

    statuses = client.groupmsg_send_result(MSGID, "guide_a1")

    assert statuses == {E1: 1, E2: 2, E3: 3, E4: 0}
    assert {customer: send_result_status(s) for customer, s in statuses.items()} == {
        E1: "sent",
        E2: "not_friend",
        E3: "limit_reached",
        E4: "not_sent",
    }
    assert [request.json() for request in wecom.to(SEND_RESULT)] == [
        recording("get_groupmsg_send_result_page_1")["request"]["body"],
        recording("get_groupmsg_send_result_page_2")["request"]["body"],
    ]


def test_task_list_of_a_group_message(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(TASK, "get_groupmsg_task")

    assert client.groupmsg_task(MSGID) == {"guide_a1": 0}
    assert wecom.to(TASK)[0].json() == recording("get_groupmsg_task")["request"]["body"]


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "errcode", "status"),
    [
        ("system_busy", -1, "transient"),
        ("api_freq_out_of_limit", 45009, "transient"),
        ("api_concurrent_out_of_limit", 45033, "transient"),
        ("not_external_contact", 84061, "not_friend"),
        ("invalid_userid", 40003, "failed_40003"),
    ],
)
def test_errors_are_classified(
    wecom: FakeWecom, client: WecomClient, name: str, errcode: int, status: str
) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, name)

    [result] = _send(client)

    assert result.error is not None
    assert (result.error.errcode, classify(result.error)) == (errcode, status)
    assert result.error.errmsg == recording(name)["response"]["errmsg"]


def test_no_answer_is_transient_and_a_timeout_is_a_timeout(wecom: FakeWecom) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    ok = json.dumps(recording("add_msg_template_ok")["response"]).encode()
    wecom.answer(ADD, Reply(b"oops", status=500), Reply(b"<html></html>"), Reply(ok, delay=1.0))
    slow = WecomClient(CORP_ID, SECRET, base_url=wecom.base_url, timeout=0.3)
    unreachable = WecomClient(CORP_ID, SECRET, base_url=_closed_port_url(), timeout=0.3)

    outcomes = [_send(slow)[0].error for _ in range(3)]

    assert [(e.errcode, classify(e)) for e in outcomes if e] == [
        (None, "transient"),
        (None, "transient"),
        (None, "timeout"),
    ]
    clear_tokens_in_memory()
    cache.clear()
    with pytest.raises(WecomError) as caught:
        unreachable.access_token()
    assert classify(caught.value) == "transient"


def test_classify_without_an_answer() -> None:
    assert classify(WecomError(None, "unreachable")) == "transient"
    assert classify(WecomError(None, "timed out", timed_out=True)) == "timeout"
    assert send_result_status(9) == "unknown_9"


# --- media and attachments ----------------------------------------------------------------


def test_image_is_downloaded_and_uploaded_once(wecom: FakeWecom, client: WecomClient) -> None:
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(COVER, Reply(COVER_BYTES, content_type="image/jpeg"))
    wecom.answer(UPLOAD, "media_upload_image")
    url = f"{wecom.base_url}{COVER}"

    media_id = client.image_media_id(url)

    assert media_id == recording("media_upload_image")["response"]["media_id"]
    assert client.image_media_id(url) == media_id
    [upload] = wecom.to(UPLOAD)
    assert upload.query == recording("media_upload_image")["request"]["query"]
    assert upload.content_type.startswith("multipart/form-data; boundary=")
    assert b'name="media"; filename="cover.jpg"' in upload.body
    assert b"Content-Type: image/jpeg\r\n\r\n" + COVER_BYTES + b"\r\n--" in upload.body
    assert [request.path for request in wecom.requests] == [COVER, GETTOKEN, UPLOAD]


def _material(kind: str, **fields: Any) -> Material:
    defaults: dict[str, Any] = {
        "kind": kind,
        "title": "618 会员日",
        "body": TEXT,
        "image_url": "https://static.example-brand.cn/materials/618-cover.jpg",
        "link_url": "https://m.example-brand.cn/events/618",
        "mini_program_path": "pages/events/detail?id=618",
    }
    return Material(**{**defaults, **fields})


@override_settings(WECOM_MINIPROGRAM_APPID="wx8bd80126147dfa01")
def test_attachments_for_each_material_kind() -> None:
    image_url = "https://static.example-brand.cn/materials/618-cover.jpg"

    assert material_attachments(_material(MaterialKind.TEXT)) == []
    assert material_attachments(_material(MaterialKind.IMAGE), image_media_id="MEDIA_1") == [
        {"msgtype": "image", "image": {"media_id": "MEDIA_1"}}
    ]
    assert material_attachments(_material(MaterialKind.IMAGE)) == [
        {"msgtype": "image", "image": {"pic_url": image_url}}
    ]
    assert material_attachments(_material(MaterialKind.LINK)) == [LINK]
    assert material_attachments(_material(MaterialKind.MINI_PROGRAM), image_media_id="MEDIA_1") == [
        {
            "msgtype": "miniprogram",
            "miniprogram": {
                "title": "618 会员日",
                "pic_media_id": "MEDIA_1",
                "appid": "wx8bd80126147dfa01",
                "page": "pages/events/detail?id=618",
            },
        }
    ]


@override_settings(WECOM_MINIPROGRAM_APPID="")
def test_mini_program_card_needs_an_appid_and_a_cover() -> None:
    with pytest.raises(ValueError):
        material_attachments(_material(MaterialKind.MINI_PROGRAM), image_media_id="MEDIA_1")
    with pytest.raises(ValueError):
        material_attachments(_material(MaterialKind.MINI_PROGRAM), appid="wx8bd80126147dfa01")
    with pytest.raises(ValueError):
        image_attachment()


def test_titles_are_cut_to_wecoms_byte_limits() -> None:
    card = link_attachment(title="会" * 50, url="https://m.example-brand.cn/", desc="员" * 200)

    assert card["link"]["title"] == "会" * 42  # 126 of 128 bytes: a character is 3
    assert card["link"]["desc"] == "员" * 170
    mini = material_attachments(
        _material(MaterialKind.MINI_PROGRAM, title="日" * 30),
        image_media_id="MEDIA_1",
        appid="wx8bd80126147dfa01",
    )
    assert mini[0]["miniprogram"]["title"] == "日" * 21


# --- the gateway --------------------------------------------------------------------------


@dataclass
class Audience:
    guide_a: Any
    guide_b: Any
    members: list[Any]


@pytest.fixture
def audience(db: None) -> Audience:
    """Four customers of two guides with their WeCom contact, one without a contact and
    one without a guide."""
    guide_a = StaffFactory(username="guide_a1")
    guide_b = StaffFactory(username="guide_b1")
    members = [
        MemberFactory(name="王小美", guide=guide_a),
        MemberFactory(name="李小红", guide=guide_a),
        MemberFactory(name="赵四", guide=guide_b),
        MemberFactory(name="钱五", guide=guide_a),
        MemberFactory(name="孙六", guide=guide_a),
        MemberFactory(name="周七", guide=None),
    ]
    for member, external_userid in zip(members, [E1, E2, E3, E4], strict=False):
        IdentityFactory(member=member, kind=IdentityKind.WECOM_EXTERNAL, value=external_userid)
    IdentityFactory(
        member=members[5], kind=IdentityKind.WECOM_EXTERNAL, value="wmGwN1CgAAnoGuide00000000000000"
    )
    return Audience(guide_a, guide_b, members)


def _outgoing(member: Any, content: str = TEXT, broadcast_id: int = 7) -> Outgoing:
    return Outgoing(delivery_key(broadcast_id, member.pk), member.pk, content)


def _gateway(client: WecomClient, **options: Any) -> WecomGateway:
    material = Material.objects.create(
        kind=MaterialKind.LINK,
        title="618 会员日",
        body=options.pop("body", TEXT),
        image_url="https://static.example-brand.cn/materials/618-cover.jpg",
        link_url="https://m.example-brand.cn/events/618",
    )
    return WecomGateway(client, material=material, **options)


def test_send_batch_groups_by_guide_and_text(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    m1, m2, m3, m4, m5, m6 = audience.members
    other_text = "钱五，您的积分即将到期。"
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(
        ADD,
        "add_msg_template_fail_list",
        reply_with("add_msg_template_ok", msgid="msgB"),
        reply_with("add_msg_template_ok", msgid="msgC"),
    )
    gateway = _gateway(client)
    messages = [
        _outgoing(m1),
        _outgoing(m2),
        _outgoing(m3),
        _outgoing(m4, other_text),
        _outgoing(m5),
        _outgoing(m6),
    ]

    results = gateway.send_batch(messages)

    assert results == [
        SendResult("sent", ref="msgGwN1CgAAr4Fq8Zc2LmWx6Yb0Tn3KsAA"),
        SendResult("not_friend"),  # in WeCom's fail_list
        SendResult("sent", ref="msgB"),
        SendResult("sent", ref="msgC"),
        SendResult("not_friend"),  # no WeCom contact
        SendResult("not_friend"),  # no guide to send through
    ]
    assert [request.json() for request in wecom.to(ADD)] == [
        {**OK_BODY, "sender": "guide_a1", "external_userid": [E1, E2]},
        {**OK_BODY, "sender": "guide_b1", "external_userid": [E3]},
        {**OK_BODY, "sender": "guide_a1", "external_userid": [E4], "text": {"content": other_text}},
    ]
    assert (gateway.kind, gateway.idempotent) == ("wecom", False)


def test_a_rate_limit_halts_the_batch(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    m1, m2, m3, *_rest = audience.members
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "api_freq_out_of_limit")
    gateway = _gateway(client, cache_is_shared=True)
    messages = [_outgoing(m1), _outgoing(m2), _outgoing(m3)]

    results = gateway.send_batch(messages)

    assert results == [SendResult("transient")] * 3
    assert len(wecom.to(ADD)) == 1
    # WeCom said no: nothing was handed over, and the gateway knows it without asking.
    assert gateway.sent_keys([m.key for m in messages]) == set()
    assert len(wecom.requests) == 2


def test_sent_keys_knows_what_it_handed_over(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    m1, m2, m3, *_rest = audience.members
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, "add_msg_template_fail_list")
    gateway = _gateway(client, cache_is_shared=True)
    gateway.send_batch([_outgoing(m1), _outgoing(m2)])
    asked = len(wecom.requests)

    keys = [_outgoing(m).key for m in (m1, m2, m3)]

    assert gateway.sent_keys(keys) == {keys[0]}
    # A gateway of another worker, sharing the cache, knows it too.
    assert _gateway(client, cache_is_shared=True).sent_keys(keys) == {keys[0]}
    assert len(wecom.requests) == asked


def test_sent_keys_after_a_timeout_asks_wecom(
    wecom: FakeWecom, audience: Audience, caplog: pytest.LogCaptureFixture
) -> None:
    """The call timed out, but WeCom created the task: the next try must not create a
    second one."""
    m1, m2, m3, *_rest = audience.members
    slow = WecomClient(CORP_ID, SECRET, base_url=wecom.base_url, timeout=0.3)
    ok = json.dumps(recording("add_msg_template_ok")["response"]).encode()
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(ADD, Reply(ok, delay=1.0))
    wecom.answer(LIST, "get_groupmsg_list_v2")
    wecom.answer(SEND_RESULT, "get_groupmsg_send_result_not_sent_yet")
    gateway = _gateway(slow, cache_is_shared=True)
    messages = [_outgoing(m1), _outgoing(m2)]
    before = int(time.time())

    assert gateway.send_batch(messages) == [SendResult("timeout")] * 2
    sent = gateway.sent_keys([messages[0].key, messages[1].key, _outgoing(m3).key])

    assert sent == {messages[0].key, messages[1].key}
    [listing] = wecom.to(LIST)
    body = listing.json()
    assert {k: v for k, v in body.items() if not k.endswith("_time")} == {
        "chat_type": "single",
        "filter_type": 0,
        "limit": 100,
    }
    assert before - 300 <= body["start_time"] <= int(time.time()) - 300
    assert before <= body["end_time"] <= int(time.time())
    [result_request] = wecom.to(SEND_RESULT)
    assert result_request.json() == {"msgid": MSGID, "userid": "guide_a1", "limit": 1000}
    assert wecom.to(TASK) == []  # the hint said which guide
    # What WeCom said is remembered.
    assert gateway.sent_keys([messages[0].key]) == {messages[0].key}
    assert len(wecom.to(LIST)) == 1


def test_sent_keys_without_a_shared_cache_checks_recent_messages(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    """Another worker sent, and this one cannot see its hints: WeCom's records of the last
    hour are matched against the material's text, whatever the variables rendered to."""
    m1, _m2, m3, *_rest = audience.members
    newcomer = MemberFactory(name="吴八", guide=audience.guide_b)
    IdentityFactory(
        member=newcomer, kind=IdentityKind.WECOM_EXTERNAL, value="wmGwN1CgAAnotInAnyTask0000000000"
    )
    template = "{name}，" + TEXT
    listing = recording("get_groupmsg_list_v2")["response"]
    listing["group_msg_list"][1]["text"]["content"] = "王小美，" + TEXT
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(LIST, Reply(json.dumps(listing).encode()))
    wecom.answer(TASK, "get_groupmsg_task")
    wecom.answer(SEND_RESULT, "get_groupmsg_send_result_page_1", "get_groupmsg_send_result_page_2")
    gateway = _gateway(client, body=template, cache_is_shared=False)
    keys = [_outgoing(m).key for m in (m1, m3, newcomer)]
    before = int(time.time())

    sent = gateway.sent_keys(keys)

    # E1 and E3 are in guide_a1's task for this text (m3 is guide_b1's customer now, but a
    # second task would still reach them twice); the newcomer is in no task.
    assert sent == {keys[0], keys[1]}
    assert before - 3600 <= wecom.to(LIST)[0].json()["start_time"] <= int(time.time()) - 3600
    assert [request.json()["msgid"] for request in wecom.to(TASK)] == [MSGID]
    assert [request.json()["userid"] for request in wecom.to(SEND_RESULT)] == ["guide_a1"] * 2


def test_sent_keys_with_a_shared_cache_and_no_hint_asks_nobody(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    gateway = _gateway(client, cache_is_shared=True)

    assert gateway.sent_keys([_outgoing(m).key for m in audience.members]) == set()
    assert gateway.sent_keys([]) == set()
    assert wecom.requests == []


@override_settings(WECOM_MINIPROGRAM_APPID="wx8bd80126147dfa01")
def test_mini_program_cover_is_uploaded_once_per_gateway(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    m1, _m2, m3, *_rest = audience.members
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(COVER, Reply(COVER_BYTES, content_type="image/jpeg"))
    wecom.answer(UPLOAD, "media_upload_image")
    wecom.answer(ADD, "add_msg_template_ok", reply_with("add_msg_template_ok", msgid="msgB"))
    material = Material.objects.create(
        kind=MaterialKind.MINI_PROGRAM,
        title="618 会员日",
        body=TEXT,
        image_url=f"{wecom.base_url}{COVER}",
        mini_program_path="pages/events/detail?id=618",
    )
    gateway = WecomGateway(client, material=material)

    results = gateway.send_batch([_outgoing(m1), _outgoing(m3)])

    assert results == [SendResult("sent", ref=MSGID), SendResult("sent", ref="msgB")]
    card = {
        "msgtype": "miniprogram",
        "miniprogram": {
            "title": "618 会员日",
            "pic_media_id": recording("media_upload_image")["response"]["media_id"],
            "appid": "wx8bd80126147dfa01",
            "page": "pages/events/detail?id=618",
        },
    }
    assert [request.json()["attachments"] for request in wecom.to(ADD)] == [[card], [card]]
    assert len(wecom.to(UPLOAD)) == 1


def test_an_image_that_cannot_be_fetched_fails_the_batch_transiently(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    m1, *_rest = audience.members
    material = Material.objects.create(
        kind=MaterialKind.IMAGE,
        title="新品",
        body=TEXT,
        image_url=f"{_closed_port_url()}/cover.jpg",
    )

    assert WecomGateway(client, material=material).send_batch([_outgoing(m1)]) == [
        SendResult("transient")
    ]
    assert wecom.requests == []


@override_settings(WECOM_MINIPROGRAM_APPID="")
def test_a_material_wecom_cannot_carry_fails_the_batch(
    wecom: FakeWecom, client: WecomClient, audience: Audience
) -> None:
    m1, *_rest = audience.members
    material = Material.objects.create(
        kind=MaterialKind.MINI_PROGRAM, title="618", body=TEXT, mini_program_path="pages/index"
    )

    assert WecomGateway(client, material=material).send_batch([_outgoing(m1)]) == [
        SendResult("failed_material")
    ]
    assert wecom.requests == []


# --- configuration ------------------------------------------------------------------------


@override_settings(WECOM_CORP_ID="", WECOM_SECRET="")
def test_no_gateway_without_credentials() -> None:
    assert wecom_gateway() is None


@override_settings(WECOM_CORP_ID=CORP_ID, WECOM_SECRET=SECRET, WECOM_API_BASE="")
def test_gateway_from_the_settings() -> None:
    gateway = wecom_gateway(title="618 会员日", link_url="https://m.example-brand.cn/events/618")

    assert isinstance(gateway, WecomGateway)
    assert gateway.client.corp_id == CORP_ID
    assert gateway.client.base_url == "https://qyapi.weixin.qq.com"
    assert gateway.client.timeout == 10
    assert gateway.attachments() == [
        {
            "msgtype": "link",
            "link": {"title": "618 会员日", "url": "https://m.example-brand.cn/events/618"},
        }
    ]


# --- guide-posted broadcasts: Moments and customer groups ---------------------------------


@pytest.mark.django_db
def test_a_moments_post_per_guide_and_no_second_post(wecom: FakeWecom, client: WecomClient) -> None:
    from campaigns.wecom import WecomGuidePostGateway

    guide = StaffFactory(username="guide_a1")
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(MOMENT, "add_moment_task_ok")
    gateway = WecomGuidePostGateway(client, "wecom_moments", None)
    key = f"b7:g{guide.pk}"

    [result] = gateway.send_batch([Outgoing(key, guide.pk, "秋冬新品到店")])

    assert result == SendResult("sent", ref="tNzb3pX6yE2qK8vR1wM5cH9jL4sD7aF0")
    sent = wecom.to(MOMENT)[0].json()
    assert sent["text"] == {"content": "秋冬新品到店"}
    assert sent["visible_range"]["sender_list"]["user_list"] == ["guide_a1"]
    # Asked before a resend, the gateway says the key went: no second post.
    assert gateway.sent_keys([key, "b7:g999"]) == {key}


@pytest.mark.django_db
def test_a_group_post_goes_to_the_guides_groups_or_says_there_are_none(
    wecom: FakeWecom, client: WecomClient
) -> None:
    from campaigns.wecom import WecomGuidePostGateway

    with_groups = StaffFactory(username="guide_a1")
    without = StaffFactory(username="guide_b1")
    wecom.answer(GETTOKEN, "gettoken")
    wecom.answer(GROUPCHATS, "groupchat_list_page_1", "groupchat_list_page_2")
    wecom.answer(GROUPCHATS, reply_with("groupchat_list_page_2", group_chat_list=[]))
    wecom.answer(ADD, "add_msg_template_to_groups_ok")
    gateway = WecomGuidePostGateway(client, "wecom_groups", None)

    results = gateway.send_batch(
        [Outgoing("b8:g1", with_groups.pk, TEXT), Outgoing("b8:g2", without.pk, TEXT)]
    )

    assert [r.status for r in results] == ["sent", "not_friend"]
    body = wecom.to(ADD)[0].json()
    assert body["chat_type"] == "group" and body["sender"] == "guide_a1"
    assert body["chat_id_list"] == [
        "wrGwN1CgAAh6Yq2Vx8TbK0zLmNcPoQrS",
        "wrGwN1CgAAc3Dm7Ws1UfJ9pHkEaYtR5w",
    ]
    assert gateway.sent_keys(["b8:g1", "b8:g2"]) == {"b8:g1"}
