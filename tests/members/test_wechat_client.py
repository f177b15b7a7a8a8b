"""The WeChat clients: the HTTP one against a local server answering with recorded WeChat
responses, the sandbox one against `SandboxWechatCode` rows, and the choice between them."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.cache import cache
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries, Settings

from members.models import SandboxCodeKind, SandboxWechatCode
from members.wechat import (
    HttpWechatClient,
    SandboxWechatClient,
    WechatError,
    WechatSession,
    get_wechat_client,
)

RECORDED = Path(__file__).resolve().parent / "recorded" / "wechat"
APP_ID = "wx4f4bc4dec97d474b"
APP_SECRET = "9c1e3f5a7b2d4c6e8f0a1b3c5d7e9f21"
LOGIN_CODE = "0b3Xkq000jLmZS1Pbm400pFhQz2Xkq0J"
PHONE_CODE = "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"
TOKEN = json.loads((RECORDED / "token_success.json").read_text())["access_token"]
FRESH_TOKEN = json.loads((RECORDED / "token_success_refreshed.json").read_text())["access_token"]

SESSION = "/sns/jscode2session"
TOKEN_PATH = "/cgi-bin/token"
PHONE = "/wxa/business/getuserphonenumber"

MSG_INVALID = "The WeChat code is invalid or has expired. Please try again."
MSG_USED = "The WeChat code has already been used. Please try again."
MSG_UNAVAILABLE = "WeChat is not available at the moment. Please try again in a few minutes."


@pytest.fixture(autouse=True)
def english_messages() -> Iterator[None]:
    """The messages asserted below are the English source texts."""
    from django.utils import translation

    with translation.override("en"):
        yield


# --- A local server answering with recorded WeChat responses ------------------------------


@dataclass
class Reply:
    body: bytes
    status: int = 200
    delay: float = 0.0


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
class FakeWechat:
    """Serves queued replies per path, in order, and records every request it gets."""

    base_url: str = ""
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, *replies: Reply | str) -> None:
        """Queue replies for `path`: a Reply, or the name of a recorded response."""
        queue = self.replies.setdefault(path, [])
        for reply in replies:
            queue.append(Reply(recorded(reply)) if isinstance(reply, str) else reply)

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


def recorded(name: str) -> bytes:
    return (RECORDED / f"{name}.json").read_bytes()


def recorded_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(recorded(name))
    return data


def _handler_for(fake: FakeWechat) -> type[BaseHTTPRequestHandler]:
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
                # WeChat itself answers jscode2session as text/plain; clients must not care.
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def wechat(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWechat]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeWechat()
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


@pytest.fixture
def http_client(wechat: FakeWechat) -> Iterator[HttpWechatClient]:
    cache.clear()
    yield HttpWechatClient(
        app_id=APP_ID, app_secret=APP_SECRET, base_url=wechat.base_url, timeout=2.0
    )
    cache.clear()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- jscode2session -----------------------------------------------------------------------


def test_code_to_session_with_unionid(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    wechat.answer(SESSION, "jscode2session_success")

    session = http_client.code_to_session(LOGIN_CODE)

    assert session == WechatSession(
        openid="oGZUI0egBJY1zhBYw2KhdUfwVJJE",
        unionid="oVBzs0r6gWmXpE7B4kTq3fLhN2dY",
        session_key="tiihtNczf5v6AKRyjwEUhQ==",
    )
    [request] = wechat.requests
    assert request.method == "GET"
    assert request.path == SESSION
    assert request.query == {
        "appid": APP_ID,
        "secret": APP_SECRET,
        "js_code": LOGIN_CODE,
        "grant_type": "authorization_code",
    }
    assert request.body == b""


def test_code_to_session_without_unionid(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    wechat.answer(SESSION, "jscode2session_success_no_unionid")

    session = http_client.code_to_session(LOGIN_CODE)

    assert session == WechatSession(
        openid="oGZUI0cRvA8c5Hq1T9kLmP3xYw7E",
        unionid="",
        session_key="HyVFkGl5F5OQWJZZaNzBBg==",
    )


@pytest.mark.parametrize(
    ("recorded_name", "code", "errcode", "message"),
    [
        ("jscode2session_invalid_code", "invalid_code", 40029, MSG_INVALID),
        ("jscode2session_code_used", "code_used", 40163, MSG_USED),
        (
            "jscode2session_rate_limited",
            "rate_limited",
            45011,
            "Too many sign-in attempts right now. Please wait a minute and try again.",
        ),
        ("jscode2session_busy", "wechat_unavailable", -1, MSG_UNAVAILABLE),
    ],
)
def test_code_to_session_errcodes(
    wechat: FakeWechat,
    http_client: HttpWechatClient,
    recorded_name: str,
    code: str,
    errcode: int,
    message: str,
) -> None:
    wechat.answer(SESSION, recorded_name)

    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.errcode) == (code, errcode)
    assert caught.value.message == message
    assert str(caught.value) == message


def test_other_errcodes_are_wechat_error(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    wechat.answer(SESSION, Reply(b'{"errcode":40013,"errmsg":"invalid appid rid: 6721c3fb"}'))

    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.errcode) == ("wechat_error", 40013)
    assert caught.value.message == "WeChat refused the request (error 40013)."


def test_http_500_is_unavailable(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    wechat.answer(SESSION, Reply(b"<html>500 Internal Server Error</html>", status=500))

    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.errcode) == ("wechat_unavailable", None)
    assert caught.value.message == MSG_UNAVAILABLE


def test_http_4xx_is_wechat_error(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    wechat.answer(SESSION, Reply(b"<html>403 Forbidden</html>", status=403))

    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.errcode) == ("wechat_error", None)
    assert caught.value.message == "WeChat refused the request (HTTP 403)."


def test_unreachable_is_unavailable() -> None:
    client = HttpWechatClient(app_id=APP_ID, app_secret=APP_SECRET, base_url=_closed_port_url())

    with pytest.raises(WechatError) as caught:
        client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.errcode) == ("wechat_unavailable", None)


def test_timeout_is_unavailable(wechat: FakeWechat) -> None:
    wechat.answer(SESSION, Reply(recorded("jscode2session_success"), delay=1.0))
    client = HttpWechatClient(
        app_id=APP_ID, app_secret=APP_SECRET, base_url=wechat.base_url, timeout=0.2
    )

    started = time.monotonic()
    with pytest.raises(WechatError) as caught:
        client.code_to_session(LOGIN_CODE)

    assert caught.value.code == "wechat_unavailable"
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    "body",
    [b"<html><body>502 Bad Gateway</body></html>", b"", b"[1, 2, 3]", b'"ok"'],
    ids=["html", "empty", "json-array", "json-string"],
)
def test_not_a_json_object_is_unavailable(
    wechat: FakeWechat, http_client: HttpWechatClient, body: bytes
) -> None:
    wechat.answer(SESSION, Reply(body))

    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.errcode) == ("wechat_unavailable", None)


def test_success_without_openid_is_wechat_error(
    wechat: FakeWechat, http_client: HttpWechatClient
) -> None:
    wechat.answer(SESSION, Reply(b'{"session_key":"tiihtNczf5v6AKRyjwEUhQ=="}'))

    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(LOGIN_CODE)

    assert (caught.value.code, caught.value.message) == (
        "wechat_error",
        "WeChat gave an unexpected answer.",
    )


@pytest.mark.parametrize("code", ["", "   ", "x" * 129])
def test_impossible_codes_are_refused_without_asking_wechat(
    wechat: FakeWechat, http_client: HttpWechatClient, code: str
) -> None:
    with pytest.raises(WechatError) as caught:
        http_client.code_to_session(code)
    assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)
    with pytest.raises(WechatError) as caught:
        http_client.phone_number(code)
    assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)

    assert wechat.requests == []


# --- getuserphonenumber and the access token ----------------------------------------------


def test_phone_number_fetches_the_token_once_and_caches_it(
    wechat: FakeWechat, http_client: HttpWechatClient
) -> None:
    wechat.answer(TOKEN_PATH, "token_success")
    wechat.answer(PHONE, "getuserphonenumber_success", "getuserphonenumber_success")

    assert http_client.phone_number(PHONE_CODE) == "13800001234"
    assert http_client.phone_number("0a1b2c3d4e5f60718293a4b5c6d7e8f9") == "13800001234"

    [token_request] = wechat.to(TOKEN_PATH)
    assert token_request.method == "GET"
    assert token_request.query == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": APP_SECRET,
    }
    first, second = wechat.to(PHONE)
    assert first.method == "POST"
    assert first.query == {"access_token": TOKEN}
    assert first.content_type == "application/json"
    assert first.json() == {"code": PHONE_CODE}
    assert second.query == {"access_token": TOKEN}
    assert second.json() == {"code": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
    assert [request.path for request in wechat.requests] == [TOKEN_PATH, PHONE, PHONE]


def test_phone_number_outside_mainland_keeps_its_country_code(
    wechat: FakeWechat, http_client: HttpWechatClient
) -> None:
    answer = recorded_json("getuserphonenumber_success")
    answer["phone_info"].update(
        phoneNumber="+852 61234567", purePhoneNumber="61234567", countryCode="852"
    )
    wechat.answer(TOKEN_PATH, "token_success")
    wechat.answer(PHONE, Reply(json.dumps(answer).encode()))

    assert http_client.phone_number(PHONE_CODE) == "+85261234567"


@pytest.mark.parametrize("token_error", ["invalid_token", "access_token_expired"])
def test_rejected_token_is_replaced_and_the_call_retried(
    wechat: FakeWechat, http_client: HttpWechatClient, token_error: str
) -> None:
    wechat.answer(TOKEN_PATH, "token_success", "token_success_refreshed")
    wechat.answer(PHONE, token_error, "getuserphonenumber_success", "getuserphonenumber_success")

    assert http_client.phone_number(PHONE_CODE) == "13800001234"

    assert [request.path for request in wechat.requests] == [
        TOKEN_PATH,
        PHONE,
        TOKEN_PATH,
        PHONE,
    ]
    assert [request.query["access_token"] for request in wechat.to(PHONE)] == [
        TOKEN,
        FRESH_TOKEN,
    ]
    assert [request.json() for request in wechat.to(PHONE)] == [{"code": PHONE_CODE}] * 2

    # The fresh token is the one cached now.
    assert http_client.phone_number("0a1b2c3d4e5f60718293a4b5c6d7e8f9") == "13800001234"
    assert len(wechat.to(TOKEN_PATH)) == 2
    assert wechat.to(PHONE)[-1].query == {"access_token": FRESH_TOKEN}


def test_token_rejected_twice_is_retried_only_once(
    wechat: FakeWechat, http_client: HttpWechatClient
) -> None:
    wechat.answer(TOKEN_PATH, "token_success", "token_success_refreshed")
    wechat.answer(PHONE, "invalid_token", "invalid_token")

    with pytest.raises(WechatError) as caught:
        http_client.phone_number(PHONE_CODE)

    assert (caught.value.code, caught.value.errcode) == ("wechat_error", 40001)
    assert [request.path for request in wechat.requests] == [
        TOKEN_PATH,
        PHONE,
        TOKEN_PATH,
        PHONE,
    ]


def test_phone_code_errcodes(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    wechat.answer(TOKEN_PATH, "token_success")
    wechat.answer(PHONE, "jscode2session_invalid_code", "jscode2session_rate_limited")

    with pytest.raises(WechatError) as caught:
        http_client.phone_number(PHONE_CODE)
    assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)
    with pytest.raises(WechatError) as caught:
        http_client.phone_number(PHONE_CODE)
    assert (caught.value.code, caught.value.errcode) == ("rate_limited", 45011)

    assert len(wechat.to(TOKEN_PATH)) == 1


def test_failed_token_fetch_is_not_cached(
    wechat: FakeWechat, http_client: HttpWechatClient
) -> None:
    wechat.answer(TOKEN_PATH, "jscode2session_busy", "token_success")
    wechat.answer(PHONE, "getuserphonenumber_success")

    with pytest.raises(WechatError) as caught:
        http_client.phone_number(PHONE_CODE)
    assert (caught.value.code, caught.value.errcode) == ("wechat_unavailable", -1)
    assert wechat.to(PHONE) == []

    assert http_client.phone_number(PHONE_CODE) == "13800001234"
    assert [request.path for request in wechat.requests] == [TOKEN_PATH, TOKEN_PATH, PHONE]


def test_token_cached_for_expires_in_less_five_minutes(
    wechat: FakeWechat, http_client: HttpWechatClient
) -> None:
    short_lived = json.dumps({"access_token": TOKEN, "expires_in": 300}).encode()
    wechat.answer(TOKEN_PATH, Reply(short_lived), Reply(short_lived))
    wechat.answer(PHONE, "getuserphonenumber_success", "getuserphonenumber_success")

    http_client.phone_number(PHONE_CODE)
    http_client.phone_number(PHONE_CODE)

    # 300 - 300 = 0 seconds: not worth caching, so each call fetched its own.
    assert len(wechat.to(TOKEN_PATH)) == 2


def test_token_cache_is_per_app(wechat: FakeWechat, http_client: HttpWechatClient) -> None:
    other_app = HttpWechatClient(
        app_id="wx0a1b2c3d4e5f6a7b", app_secret="another-secret", base_url=wechat.base_url
    )
    wechat.answer(TOKEN_PATH, "token_success", "token_success_refreshed")
    wechat.answer(PHONE, "getuserphonenumber_success", "getuserphonenumber_success")

    http_client.phone_number(PHONE_CODE)
    other_app.phone_number(PHONE_CODE)

    assert [request.query["appid"] for request in wechat.to(TOKEN_PATH)] == [
        APP_ID,
        "wx0a1b2c3d4e5f6a7b",
    ]
    assert [request.query["access_token"] for request in wechat.to(PHONE)] == [
        TOKEN,
        FRESH_TOKEN,
    ]


# --- The secret stays secret --------------------------------------------------------------


def test_secret_never_appears_in_errors_or_logs(
    wechat: FakeWechat, http_client: HttpWechatClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echoing = json.dumps({"errcode": 40125, "errmsg": f"invalid appsecret {APP_SECRET}"})
    wechat.answer(
        SESSION,
        "jscode2session_invalid_code",
        Reply(echoing.encode()),
        Reply(b"oops", status=502),
        Reply(b"<html></html>"),
    )
    wechat.answer(TOKEN_PATH, Reply(echoing.encode()))
    unreachable = HttpWechatClient(
        app_id=APP_ID, app_secret=APP_SECRET, base_url=_closed_port_url()
    )

    errors: list[WechatError] = []
    for call in [
        lambda: http_client.code_to_session(LOGIN_CODE),
        lambda: http_client.code_to_session(LOGIN_CODE),
        lambda: http_client.code_to_session(LOGIN_CODE),
        lambda: http_client.code_to_session(LOGIN_CODE),
        lambda: http_client.phone_number(PHONE_CODE),
        lambda: unreachable.code_to_session(LOGIN_CODE),
        lambda: unreachable.phone_number(PHONE_CODE),
    ]:
        with pytest.raises(WechatError) as caught:
            call()
        errors.append(caught.value)

    assert [error.code for error in errors] == [
        "invalid_code",
        "wechat_error",
        "wechat_unavailable",
        "wechat_unavailable",
        "wechat_error",
        "wechat_unavailable",
        "wechat_unavailable",
    ]
    for error in errors:
        assert APP_SECRET not in str(error)
        assert APP_SECRET not in repr(error)
        assert APP_SECRET not in error.message
        assert error.__cause__ is None
    assert caplog.records, "the failures were logged"
    assert APP_SECRET not in caplog.text
    assert APP_SECRET not in repr(http_client)


# --- The sandbox client -------------------------------------------------------------------


def _rows() -> list[Any]:
    return list(SandboxWechatCode.objects.order_by("pk").values())


def _login_code(code: str = "sandbox-login-0001", **fields: Any) -> SandboxWechatCode:
    defaults: dict[str, Any] = {
        "kind": SandboxCodeKind.LOGIN,
        "openid": "oSandbox00000000000000000001",
        "unionid": "uSandbox00000000000000000001",
    }
    return SandboxWechatCode.objects.create(code=code, **(defaults | fields))


def _phone_code(code: str = "sandbox-phone-0001", phone: str = "13800001234") -> SandboxWechatCode:
    return SandboxWechatCode.objects.create(code=code, kind=SandboxCodeKind.PHONE, phone=phone)


def test_sandbox_login_code_returns_its_identity_and_is_marked_used(db: None) -> None:
    row = _login_code()
    other = _login_code("sandbox-login-0002", openid="oSandbox00000000000000000002")
    before = timezone.now()

    session = SandboxWechatClient().code_to_session("sandbox-login-0001")

    assert session.openid == "oSandbox00000000000000000001"
    assert session.unionid == "uSandbox00000000000000000001"
    assert len(session.session_key) == 32
    int(session.session_key, 16)  # hex
    row.refresh_from_db()
    assert row.used_at is not None
    assert before <= row.used_at <= timezone.now()
    other.refresh_from_db()
    assert other.used_at is None


def test_sandbox_login_code_without_unionid(db: None) -> None:
    _login_code(unionid="")

    session = SandboxWechatClient().code_to_session("sandbox-login-0001")

    assert (session.openid, session.unionid) == ("oSandbox00000000000000000001", "")


def test_sandbox_session_keys_differ(db: None) -> None:
    _login_code("sandbox-login-0001")
    _login_code("sandbox-login-0002")
    client = SandboxWechatClient()

    first = client.code_to_session("sandbox-login-0001")
    second = client.code_to_session("sandbox-login-0002")

    assert first.session_key != second.session_key


def test_sandbox_code_used_twice(db: None) -> None:
    _login_code()
    client = SandboxWechatClient()
    client.code_to_session("sandbox-login-0001")
    after_first_use = _rows()

    with pytest.raises(WechatError) as caught:
        client.code_to_session("sandbox-login-0001")

    assert (caught.value.code, caught.value.errcode) == ("code_used", 40163)
    assert caught.value.message == MSG_USED
    assert _rows() == after_first_use


def test_sandbox_unknown_code(db: None) -> None:
    _login_code()
    _phone_code()
    before = _rows()

    with pytest.raises(WechatError) as caught:
        SandboxWechatClient().code_to_session("never-issued")

    assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)
    assert caught.value.message == MSG_INVALID
    assert _rows() == before


def test_sandbox_phone_code_is_not_a_login_code(db: None) -> None:
    _phone_code()
    before = _rows()

    with pytest.raises(WechatError) as caught:
        SandboxWechatClient().code_to_session("sandbox-phone-0001")

    assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)
    assert _rows() == before


def test_sandbox_login_code_is_not_a_phone_code(db: None) -> None:
    _login_code()
    before = _rows()

    with pytest.raises(WechatError) as caught:
        SandboxWechatClient().phone_number("sandbox-login-0001")

    assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)
    assert _rows() == before


def test_sandbox_phone_number(db: None) -> None:
    row = _phone_code(phone="+86 13800001234")
    client = SandboxWechatClient()

    assert client.phone_number("sandbox-phone-0001") == "+86 13800001234"

    row.refresh_from_db()
    assert row.used_at is not None
    assert timezone.now() - row.used_at < timedelta(minutes=1)
    after_first_use = _rows()
    with pytest.raises(WechatError) as caught:
        client.phone_number("sandbox-phone-0001")
    assert (caught.value.code, caught.value.errcode) == ("code_used", 40163)
    assert _rows() == after_first_use


@pytest.mark.parametrize("code", ["", "   ", "\t\n", "x" * 129])
def test_sandbox_refuses_impossible_codes_without_a_query(
    db: None, django_assert_num_queries: DjangoAssertNumQueries, code: str
) -> None:
    client = SandboxWechatClient()
    with django_assert_num_queries(0):
        with pytest.raises(WechatError) as caught:
            client.code_to_session(code)
        assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)
        with pytest.raises(WechatError) as caught:
            client.phone_number(code)
        assert (caught.value.code, caught.value.errcode) == ("invalid_code", 40029)


def test_sandbox_accepts_a_128_character_code(db: None) -> None:
    _login_code("c" * 128)

    assert SandboxWechatClient().code_to_session("c" * 128).openid == (
        "oSandbox00000000000000000001"
    )


def test_sandbox_app_id() -> None:
    assert SandboxWechatClient().app_id == "sandbox-mini-program"
    assert SandboxWechatClient("wx-demo").app_id == "wx-demo"


# --- Choosing the client ------------------------------------------------------------------


def test_sandbox_client_by_default(settings: Settings) -> None:
    for name in ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_API_BASE"):
        if hasattr(settings, name):
            delattr(settings, name)

    client = get_wechat_client()

    assert isinstance(client, SandboxWechatClient)
    assert client.app_id == "sandbox-mini-program"


@pytest.mark.parametrize(("app_id", "app_secret"), [(APP_ID, ""), ("", APP_SECRET), ("", "")])
def test_sandbox_client_unless_both_credentials_are_set(
    settings: Settings, app_id: str, app_secret: str
) -> None:
    settings.WECHAT_APP_ID = app_id
    settings.WECHAT_APP_SECRET = app_secret

    assert isinstance(get_wechat_client(), SandboxWechatClient)


def test_http_client_when_credentials_are_set(settings: Settings) -> None:
    settings.WECHAT_APP_ID = APP_ID
    settings.WECHAT_APP_SECRET = APP_SECRET
    if hasattr(settings, "WECHAT_API_BASE"):
        del settings.WECHAT_API_BASE

    client = get_wechat_client()

    assert isinstance(client, HttpWechatClient)
    assert client.app_id == APP_ID
    assert client.base_url == "https://api.weixin.qq.com"
    assert client.timeout == 5.0


def test_http_client_uses_the_configured_api_base(settings: Settings, wechat: FakeWechat) -> None:
    settings.WECHAT_APP_ID = APP_ID
    settings.WECHAT_APP_SECRET = APP_SECRET
    settings.WECHAT_API_BASE = wechat.base_url
    wechat.answer(SESSION, "jscode2session_success")

    client = get_wechat_client()

    assert isinstance(client, HttpWechatClient)
    assert client.base_url == wechat.base_url
    assert client.code_to_session(LOGIN_CODE).openid == "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    assert wechat.requests[0].query["secret"] == APP_SECRET
