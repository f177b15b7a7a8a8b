"""Mini-program subscription messages (小程序订阅消息): the gateway for kind "subscription".

A member who tapped "allow" on a `wx.requestSubscribeMessage` prompt gave the
mini-program ONE message of that template (a one-time subscription). The server sends it
with POST /cgi-bin/message/subscribe/send?access_token=… and a JSON body:

    {"touser": <the member's openid for the mini-program>, "template_id": …, "page": …,
     "miniprogram_state": "formal", "lang": "zh_CN", "data": {"thing1": {"value": …}}}

Our broadcasts carry rendered text, and a subscription template has typed fields, not
free text. The gateway puts the whole text into ONE configured field
(WECHAT_SUBSCRIBE_DATA_KEY, default "thing1"), cut to the limit of the field's type (the
key's name without its number): thing 20 characters, character_string 32, number 32,
letter 32, name 10, phrase 5, symbol 5. Line breaks and runs of spaces become one space
(WeChat refuses them in these fields), and a longer text ends in "…" within the limit.
The template's other fields, if any, must be ones WeChat does not require.

The access token is the mini-program's own (WECHAT_APP_ID / WECHAT_APP_SECRET), and the
same one the sign-in uses: `members.wechat.HttpWechatClient` fetches and caches it in
Django's cache. Sharing matters, because each /cgi-bin/token call invalidates the token
fetched before it (after a few minutes of overlap): two caches of it would keep knocking
each other's token out. On 40001 (invalid credential) or 42001 (expired) the token is
dropped and the call made once more — a call refused for its token sent nothing.

Settings: WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_API_BASE (shared with the sign-in),
WECHAT_SUBSCRIBE_TEMPLATE_ID, WECHAT_SUBSCRIBE_DATA_KEY ("thing1"), WECHAT_SUBSCRIBE_PAGE
(the page the message opens, "" for none), WECHAT_SUBSCRIBE_STATE ("formal"; "trial" or
"developer" to reach those versions). `subscription_gateway()` is None until the app id,
secret and template id are set.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from campaigns.gateways import Outgoing, SendResult
from campaigns.models import GatewayKind
from members.models import Identity, IdentityKind
from members.wechat import (
    DEFAULT_API_BASE,
    RATE_LIMITED,
    TOKEN_ERRCODES,
    WECHAT_UNAVAILABLE,
    HttpWechatClient,
    WechatError,
)

logger = logging.getLogger(__name__)

SEND_PATH = "/cgi-bin/message/subscribe/send"
MAX_RESPONSE_BYTES = 1024 * 1024
# How long a send record stays in the cache: long past the sender's last retry.
RECORD_SECONDS = 2 * 24 * 3600

# Characters a field of each type takes (WeChat's subscription message documentation).
FIELD_LIMITS = {
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "name": 10,
    "phrase": 5,
    "symbol": 5,
}
DEFAULT_FIELD_LIMIT = 20

# 43101: the user refused the template, or used up the messages they allowed.
NO_CONSENT_ERRCODES = frozenset({43101})
# 40003: the openid is not valid (not this mini-program's, or unknown).
INVALID_OPENID_ERRCODES = frozenset({40003})
# -1 system busy, 45009 API calls over the daily limit: worth trying again later.
TRANSIENT_ERRCODES = frozenset({-1, 45009})

_WHITESPACE = re.compile(r"\s+")


def field_limit(data_key: str) -> int:
    """The length limit of a data key's type: "thing1" → thing → 20."""
    return FIELD_LIMITS.get(data_key.rstrip("0123456789"), DEFAULT_FIELD_LIMIT)


def field_value(content: str, data_key: str) -> str:
    """`content` as the value of `data_key`: one line, at most the type's limit."""
    text = _WHITESPACE.sub(" ", content).strip()
    limit = field_limit(data_key)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def classify_errcode(errcode: int) -> str:
    """Our SendResult status for an errcode of subscribe/send.

    43101 becomes "limit_reached": the member's subscription quota for this template is
    used up (or was never given). That is a quota, like WeCom's monthly limit, so the
    sender suppresses the delivery without retrying, and the member can be reached again
    once they subscribe again. "not_friend" would say something false, and a status of its
    own would be retried by the sender as if it were transient."""
    if errcode in NO_CONSENT_ERRCODES:
        return "limit_reached"
    if errcode in INVALID_OPENID_ERRCODES:
        return "failed_invalid_openid"
    if errcode in TRANSIENT_ERRCODES:
        return "transient"
    return f"failed_{errcode}"


def _openids(member_ids: Iterable[int], app: str) -> dict[int, str]:
    """member id -> the member's openid for the mini-program `app` (the newest)."""
    openids: dict[int, str] = {}
    rows = (
        Identity.objects.filter(member_id__in=set(member_ids), kind=IdentityKind.OPENID, app=app)
        .order_by("member_id", "-pk")
        .values_list("member_id", "value")
    )
    for member_id, value in rows:
        openids.setdefault(member_id, value)
    return openids


class _Unknown(Exception):
    """The call may or may not have reached WeChat (timeout, cut connection, no answer)."""

    def __init__(self, timed_out: bool) -> None:
        self.timed_out = timed_out
        super().__init__("timed out" if timed_out else "no answer")


class _NotSent(Exception):
    """The call surely did not reach WeChat (connection refused, name not resolved)."""


class SubscriptionGateway:
    """Subscription messages for kind "subscription", one subscribe/send call per member
    (WeChat has no batch call for them).

    Each message goes to the member's "openid" identity of the configured mini-program
    (`app` = WECHAT_APP_ID); a member without one gets "failed_no_openid" and nothing is
    sent. Results: errcode 0 → "sent" (ref: WeChat's msgid when it gives one, else
    "subscribe"); 43101 → "limit_reached" (no consent left, see `classify_errcode`); 40003
    → "failed_invalid_openid"; -1 / 45009 and network errors → "transient"; a timeout →
    "timeout"; other errcodes → "failed_<errcode>". After a transient error or a timeout the
    remaining messages are not tried: they come back "transient", for the sender to retry.

    `sent_keys`: WeChat has no way to ask whether a subscription message went out. So the
    gateway keeps a record per delivery key in Django's cache, as the WeCom and SMS
    gateways do — written just before each call, marked with the result when WeChat
    answers it, deleted when WeChat refused the call or the request surely never left. A key
    whose record remains is answered as SENT, also when the call's outcome is unknown
    (killed mid-call, a timeout, a cut connection): AT MOST ONCE. A subscription message
    spends the member's one-time consent: a duplicate would spend consent they did not give
    (or fail with 43101 and mark the delivery limit_reached), while a lost message is one
    missed marketing touch. Without a record the key was never handed over — which holds
    only with a cache every worker shares (Redis …): with the per-process LocMemCache a
    record dies with its worker, and a resend is possible after such a crash.
    """

    kind: str = GatewayKind.SUBSCRIPTION
    idempotent = False

    def __init__(
        self,
        client: HttpWechatClient,
        *,
        template_id: str,
        data_key: str = "thing1",
        page: str = "",
        miniprogram_state: str = "formal",
        timeout: float = 10,
    ) -> None:
        self.client = client
        self.template_id = template_id
        self.data_key = data_key
        self.page = page
        self.miniprogram_state = miniprogram_state
        self.timeout = timeout

    # --- sending ----------------------------------------------------------------------------

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        if not messages:
            return []
        openids = _openids((m.member_id for m in messages), self.client.app_id)
        results: list[SendResult] = []
        halted = ""
        for message in messages:
            openid = openids.get(message.member_id)
            if openid is None:
                results.append(SendResult("failed_no_openid"))
            elif halted:
                results.append(SendResult("transient"))
            else:
                result = self._send_one(message, openid)
                if result.status in ("transient", "timeout"):
                    halted = result.status
                results.append(result)
        return results

    def _send_one(self, message: Outgoing, openid: str) -> SendResult:
        record_key = self._record_key(message.key)
        cache.set(record_key, {"at": time.time(), "ref": ""}, RECORD_SECONDS)
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": self.template_id,
            "miniprogram_state": self.miniprogram_state,
            "lang": "zh_CN",
            "data": {self.data_key: {"value": field_value(message.content, self.data_key)}},
        }
        if self.page:
            body["page"] = self.page
        try:
            data = self._call(body)
        except WechatError as error:
            # The token could not be had: nothing was sent.
            cache.delete(record_key)
            if error.code in (WECHAT_UNAVAILABLE, RATE_LIMITED):
                return SendResult("transient")
            return SendResult(f"failed_token_{error.errcode or error.code}")
        except _NotSent:
            cache.delete(record_key)
            return SendResult("transient")
        except _Unknown as unknown:
            # The record stays: sent_keys will answer "sent" (at most once).
            return SendResult("timeout" if unknown.timed_out else "transient")
        errcode = _errcode(data)
        if errcode:
            cache.delete(record_key)  # WeChat refused: nothing went out
            logger.warning(
                "WeChat subscribe/send answered errcode %s: %s",
                errcode,
                str(data.get("errmsg", ""))[:200],
            )
            return SendResult(classify_errcode(errcode))
        ref = str(data.get("msgid") or "subscribe")
        cache.set(record_key, {"at": time.time(), "ref": ref}, RECORD_SECONDS)
        return SendResult("sent", ref=ref)

    def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode()
        token = self.client._access_token()
        data = self._post(token, payload)
        if _errcode(data) in TOKEN_ERRCODES:
            self._drop_token(token)
            data = self._post(self.client._access_token(), payload)
        return data

    def _drop_token(self, rejected: str) -> None:
        """Forget the token unless another caller already replaced it."""
        key = self.client._token_cache_key()
        if cache.get(key) == rejected:
            cache.delete(key)

    def _post(self, token: str, payload: bytes) -> dict[str, Any]:
        """One POST to subscribe/send; nothing logged shows the URL (it holds the token)."""
        url = f"{self.client.base_url}{SEND_PATH}?{urllib.parse.urlencode({'access_token': token})}"
        request = urllib.request.Request(
            url,
            data=payload,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            logger.warning("WeChat subscribe/send answered HTTP %s", status)
            raise _Unknown(timed_out=False) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            logger.warning("WeChat subscribe/send unreachable: %s", type(reason).__name__)
            if isinstance(reason, ConnectionRefusedError | socket.gaierror):
                raise _NotSent() from None
            raise _Unknown(timed_out=isinstance(reason, TimeoutError)) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise _Unknown(timed_out=False) from None
        if not isinstance(data, dict):
            raise _Unknown(timed_out=False)
        return data

    # --- which keys already went out --------------------------------------------------------

    def sent_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        stored = cache.get_many([self._record_key(key) for key in keys])
        return {key for key in keys if isinstance(stored.get(self._record_key(key)), dict)}

    def _record_key(self, delivery_key: str) -> str:
        return f"campaigns:subscription:{self.client.app_id}:sent:{delivery_key}"


def _errcode(data: dict[str, Any]) -> int:
    value = data.get("errcode", 0)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return 0


# --- configuration --------------------------------------------------------------------------


def subscription_gateway() -> SubscriptionGateway | None:
    """The subscription-message gateway when the mini-program's credentials and the
    template are configured, else None (the sandbox answers)."""
    app_id = str(getattr(settings, "WECHAT_APP_ID", "") or "")
    app_secret = str(getattr(settings, "WECHAT_APP_SECRET", "") or "")
    template_id = str(getattr(settings, "WECHAT_SUBSCRIBE_TEMPLATE_ID", "") or "")
    if not (app_id and app_secret and template_id):
        return None
    base_url = str(getattr(settings, "WECHAT_API_BASE", "") or DEFAULT_API_BASE)
    client = HttpWechatClient(app_id=app_id, app_secret=app_secret, base_url=base_url)
    return SubscriptionGateway(
        client,
        template_id=template_id,
        data_key=str(getattr(settings, "WECHAT_SUBSCRIBE_DATA_KEY", "") or "thing1"),
        page=str(getattr(settings, "WECHAT_SUBSCRIBE_PAGE", "") or ""),
        miniprogram_state=str(getattr(settings, "WECHAT_SUBSCRIBE_STATE", "") or "formal"),
    )
