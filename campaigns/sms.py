"""SMS through Alibaba Cloud SMS (阿里云短信服务, dysmsapi): the HTTP client and the gateway.

`AliyunSmsClient` calls dysmsapi's RPC-style API (version 2017-05-25) over HTTPS with the
standard library, each request signed with signature v1 (HMAC-SHA1) as Alibaba Cloud
documents it: the parameters (common ones included, Signature excluded) sorted by name,
names and values percent-encoded (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are),
joined as `k=v&…`; StringToSign = `<METHOD>&%2F&` + that query percent-encoded once more;
the signature is base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign)).

- `SendBatchSms` (PhoneNumberJson, SignNameJson, TemplateCode, TemplateParamJson) takes at
  most 100 numbers per call; more are split. It is sent as a form-encoded POST (signed with
  "POST&%2F&…"): 100 numbers with their texts make a URL far longer than servers accept.
- `QuerySendDetails` (PhoneNumber, SendDate yyyyMMdd, BizId, PageSize, CurrentPage) is a
  GET; it tells what Aliyun sent to one number on one day.

Marketing SMS are template based: Aliyun sends only texts of templates it approved, and
our broadcasts carry rendered text. The gateway therefore uses ONE configured template
(ALIYUN_SMS_TEMPLATE_CODE) whose text is the single variable `${content}` (with whatever
fixed wording the brand had approved around it, e.g. "${content} 拒收请回复R"), and sends
each message as TemplateParam {"content": "<the rendered text>"}. The signature
(ALIYUN_SMS_SIGN_NAME, e.g. 【品牌名】) is added by Aliyun. Whether such a template is
approved, and how long a variable may be, is Aliyun's review policy, not this code's.

Settings (read with getattr): ALIYUN_SMS_ACCESS_KEY_ID, ALIYUN_SMS_ACCESS_KEY_SECRET,
ALIYUN_SMS_SIGN_NAME, ALIYUN_SMS_TEMPLATE_CODE, ALIYUN_SMS_ENDPOINT (default
https://dysmsapi.aliyuncs.com). `sms_gateway()` is None until the first four are set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from campaigns.gateways import Outgoing, SendResult
from campaigns.models import GatewayKind
from members.models import Member
from scrm.core.pii import open_phone

logger = logging.getLogger(__name__)

ENDPOINT = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
REGION_ID = "cn-hangzhou"
# Documented limits: SendBatchSms takes at most 100 numbers, QuerySendDetails pages of 50.
MAX_NUMBERS_PER_CALL = 100
QUERY_PAGE_SIZE = 50
# A guard against paging forever, not a documented limit.
MAX_QUERY_PAGES = 10
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Aliyun's dates (SendDate, the details' SendDate) are Beijing time.
BEIJING = ZoneInfo("Asia/Shanghai")
# How long a send record stays in the cache: long past the sender's last retry.
RECORD_SECONDS = 2 * 24 * 3600
# Slack for clocks that differ between us and Aliyun.
CLOCK_SLACK = 300

# Codes about one number: in a call of several numbers Aliyun refuses the whole call, so
# those numbers are sent again one per call to learn which one it was.
PER_NUMBER_CODES = frozenset(
    {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL"}
)
LIMIT_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL"})
# Worth trying again later (the sender backs off): Aliyun busy or throttling the account.
TRANSIENT_CODES = frozenset(
    {"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError", "SignatureNonceUsed"}
)

_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_KEY = re.compile(r"^b(\d+):m(\d+)$")


class SmsError(Exception):
    """Aliyun answered with a Code other than "OK", or gave no answer.

    `code` is Aliyun's Code, or None without an answer (network, garbled body).
    `timed_out` marks a timeout; `not_sent` is True when the request surely never reached
    Aliyun (connection refused, name not resolved). An error with a code, or `not_sent`,
    means nothing was sent; otherwise Aliyun may have acted. Never carries the secret."""

    def __init__(
        self, code: str | None, message: str, *, timed_out: bool = False, not_sent: bool = False
    ) -> None:
        self.code = code
        self.message = message
        self.timed_out = timed_out
        self.not_sent = not_sent
        super().__init__(f"Aliyun SMS {code or 'no answer'}: {message}")

    @property
    def outcome_known(self) -> bool:
        return self.code is not None or self.not_sent


def classify(error: SmsError) -> str:
    """Our SendResult status for a failed call: "transient"/"timeout" are retried with
    backoff, "limit_reached" suppresses the delivery, "failed_…" will fail again."""
    if error.code is None:
        return "timeout" if error.timed_out else "transient"
    if error.code in LIMIT_CODES:
        return "limit_reached"
    if error.code == "isv.MOBILE_NUMBER_ILLEGAL":
        return "failed_invalid_phone"
    if error.code in TRANSIENT_CODES or error.code.startswith("Throttling"):
        return "transient"
    return f"failed_{error.code}"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud's signature wants it (space %20, * %2A, ~ kept)."""
    return urllib.parse.quote(value, safe="~")


def canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """Signature v1 of a request's parameters (without Signature itself)."""
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_phone(value: str) -> str:
    """A mainland mobile number as Aliyun wants it (11 digits), or "" for anything else
    (numbers outside mainland China need an international sign and template)."""
    digits = value.strip().removeprefix("+86")
    return digits if _MAINLAND_MOBILE.fullmatch(digits) else ""


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nonce() -> str:
    return uuid.uuid4().hex


class AliyunSmsClient:
    """dysmsapi for one AccessKey. `nonce` and `timestamp` make requests reproducible in
    tests; by default every request gets a fresh UUID and the current UTC time."""

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        endpoint: str = ENDPOINT,
        timeout: float = 10,
        region_id: str = REGION_ID,
        nonce: Callable[[], str] = _nonce,
        timestamp: Callable[[], str] = _timestamp,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.region_id = region_id
        self._nonce = nonce
        self._timestamp = timestamp
        digest = hashlib.sha256(f"{access_key_id}\0{access_key_secret}".encode()).hexdigest()
        self.cache_prefix = f"campaigns:sms:{digest[:24]}"

    def __repr__(self) -> str:
        return f"AliyunSmsClient(access_key_id={self.access_key_id!r}, endpoint={self.endpoint!r})"

    def signed_params(self, method: str, action: str, params: dict[str, str]) -> dict[str, str]:
        """The action's parameters with the common ones and the Signature."""
        full = {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": self._timestamp(),
            "Version": API_VERSION,
            **params,
        }
        return {**full, "Signature": signature(full, self._secret, method)}

    # --- the two actions --------------------------------------------------------------------

    def send_batch_sms(
        self,
        *,
        phones: list[str],
        sign_name: str,
        template_code: str,
        template_params: list[dict[str, str]],
    ) -> str:
        """One SendBatchSms (at most 100 numbers, one template parameter object each);
        returns the BizId. Raises SmsError."""
        if not 0 < len(phones) <= MAX_NUMBERS_PER_CALL or len(template_params) != len(phones):
            raise ValueError("SendBatchSms takes 1 to 100 numbers, one parameter object each.")
        data = self._call(
            "POST",
            "SendBatchSms",
            {
                "PhoneNumberJson": _json(phones),
                "SignNameJson": _json([sign_name] * len(phones)),
                "TemplateCode": template_code,
                "TemplateParamJson": _json(template_params),
            },
        )
        return str(data.get("BizId") or "")

    def query_send_details(
        self, *, phone: str, send_date: str, biz_id: str = "", max_pages: int = MAX_QUERY_PAGES
    ) -> list[dict[str, Any]]:
        """What Aliyun sent to `phone` on `send_date` (yyyyMMdd, Beijing time), every page:
        SmsSendDetailDTO rows (PhoneNum, SendStatus 1 waiting for a receipt / 2 failed /
        3 delivered, SendDate, ReceiveDate, TemplateCode, Content, ErrCode, OutId)."""
        rows: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            params = {
                "PhoneNumber": phone,
                "SendDate": send_date,
                "PageSize": str(QUERY_PAGE_SIZE),
                "CurrentPage": str(page),
            }
            if biz_id:
                params["BizId"] = biz_id
            data = self._call("GET", "QuerySendDetails", params)
            found = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            rows += [row for row in found if isinstance(row, dict)]
            total = int(data.get("TotalCount") or 0)
            if len(found) < QUERY_PAGE_SIZE or page * QUERY_PAGE_SIZE >= total:
                return rows
        logger.warning("Aliyun QuerySendDetails: stopped after %s pages", max_pages)
        return rows

    # --- HTTP -------------------------------------------------------------------------------

    def _call(self, method: str, action: str, params: dict[str, str]) -> dict[str, Any]:
        """One signed request; the JSON object Aliyun answered with Code "OK", else SmsError.
        Nothing logged or raised shows the URL or the secret."""
        query = canonical_query(self.signed_params(method, action, params))
        if method == "GET":
            request = urllib.request.Request(f"{self.endpoint}/?{query}", method="GET")
        else:
            request = urllib.request.Request(
                f"{self.endpoint}/",
                data=query.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                method="POST",
            )
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            # Aliyun answers errors (throttling, bad signature …) with 4xx/5xx and a JSON body.
            status = exc.code
            raw = exc.read(MAX_RESPONSE_BYTES)
            exc.close()
            data = _json_object(raw)
            if data is None or not data.get("Code"):
                logger.warning("Aliyun %s answered HTTP %s", action, status)
                raise SmsError(None, f"HTTP {status}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            timed_out = _timed_out(exc)
            # Refused, or the name did not resolve: the request never left. Anything else
            # (reset, disconnected while waiting for the answer) may have reached Aliyun.
            reason = getattr(exc, "reason", exc)
            not_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror)
            logger.warning("Aliyun %s unreachable: %s", action, type(exc).__name__)
            raise SmsError(
                None,
                "timed out" if timed_out else "unreachable",
                timed_out=timed_out,
                not_sent=not_sent,
            ) from None
        else:
            data = _json_object(raw)
            if data is None:
                raise SmsError(None, "the answer is not a JSON object")
        code = str(data.get("Code") or "")
        if code != "OK":
            message = str(data.get("Message", ""))[:300].replace(self._secret, "***")
            logger.warning("Aliyun %s answered %s: %s", action, code, message)
            raise SmsError(code or "unknown", message)
        return data


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


def _member_of(key: str) -> int:
    """The member a delivery key names (b<broadcast>:m<member>), 0 when it names none."""
    match = _KEY.match(key)
    return int(match.group(2)) if match else 0


def _beijing_date(at: float) -> str:
    return datetime.fromtimestamp(at, BEIJING).strftime("%Y%m%d")


def _phones(member_ids: Iterable[int]) -> dict[int, str]:
    """member id -> the member's phone (E.164), opened from its sealed copy here, at send
    time: the one place besides the audited unmask that needs the number. Never logged."""
    rows = Member.all_objects.filter(
        pk__in=set(member_ids), phone_sealed__isnull=False
    ).values_list("pk", "phone_sealed")
    return {member_id: open_phone(sealed) for member_id, sealed in rows if sealed is not None}


@dataclass(frozen=True)
class _Call:
    indexes: list[int]  # into the batch's messages
    phones: list[str]


class SmsGateway:
    """Marketing SMS for kind "sms", through one Aliyun template (see the module doc).

    `send_batch`: each message's number is the member's "phone" identity (+86… becomes the
    11 digits Aliyun takes). A member without one gets "failed_no_phone", one whose number
    is not a mainland mobile "failed_invalid_phone" — neither is sent. The rest go in
    SendBatchSms calls of up to 100 numbers in the batch's order: TemplateParamJson holds
    one object per number, so different texts (per-member {name} …) share a call as well
    as equal ones. Results: Code "OK" → "sent" with the BizId as ref;
    isv.BUSINESS_LIMIT_CONTROL / isv.DAY_LIMIT_CONTROL → "limit_reached";
    isv.MOBILE_NUMBER_ILLEGAL → "failed_invalid_phone"; isp.SYSTEM_ERROR, Throttling.* and
    network errors → "transient"; a timeout → "timeout"; any other Code → "failed_<Code>".
    A per-number Code in a call of several numbers refuses the whole call, so those numbers
    are sent again one per call, to learn which one it was. After a transient error or a
    timeout the remaining calls are not made: they come back "transient" for the sender to
    retry with backoff.

    `sent_keys`: Aliyun takes no client key, so the gateway keeps a send record per
    delivery key in Django's cache, as `campaigns.wecom` does for WeCom: {Beijing send
    date, time, text, BizId ""} written before each call (no number: the key names the
    member, whose sealed phone is opened when Aliyun must be asked), the BizId added when
    Aliyun answers OK, the record deleted when Aliyun refuses the call (nothing went out).

    1. A record with a BizId: sent.
    2. A record without (the worker died mid-call, a timeout, an unreadable answer): asked
       of Aliyun with QuerySendDetails for that number and the send date (and the dates
       since, past midnight): sent when a message of our template sent since the record's
       time holds our text, whatever its SendStatus (Aliyun accepted it; a failed receipt
       is the carrier's, and a second message would reach the member twice when it wasn't).
    3. No record: when the cache is shared by every worker (Redis …, not LocMemCache), the
       key was never handed over. Otherwise, a record may have died with another process,
       so each such key's number is asked about today: sent when a message of our template
       went to it within `window`. That costs one QuerySendDetails per key — configure a
       shared cache (CACHE_URL) in production.

    Errors of QuerySendDetails propagate from `sent_keys`: the sender's transaction rolls
    back and the sweep tries again later; nothing is guessed.
    """

    kind: str = GatewayKind.SMS
    idempotent = False

    def __init__(
        self,
        client: AliyunSmsClient,
        *,
        sign_name: str,
        template_code: str,
        window: timedelta = timedelta(hours=1),
        cache_is_shared: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.clock = clock
        self.sign_name = sign_name
        self.template_code = template_code
        self.window = window
        if cache_is_shared is None:
            cache_is_shared = not isinstance(caches["default"], LocMemCache | DummyCache)
        self.cache_is_shared = cache_is_shared

    # --- sending ----------------------------------------------------------------------------

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        if not messages:
            return []
        phones = _phones(m.member_id for m in messages)
        results: list[SendResult | None] = [None] * len(messages)
        sendable: list[tuple[int, str]] = []
        for index, message in enumerate(messages):
            identity = phones.get(message.member_id)
            if identity is None:
                results[index] = SendResult("failed_no_phone")
            elif not (phone := aliyun_phone(identity)):
                results[index] = SendResult("failed_invalid_phone")
            else:
                sendable.append((index, phone))
        halted = ""
        for start in range(0, len(sendable), MAX_NUMBERS_PER_CALL):
            chunk = sendable[start : start + MAX_NUMBERS_PER_CALL]
            call = _Call([i for i, _p in chunk], [p for _i, p in chunk])
            if halted:
                for index in call.indexes:
                    results[index] = SendResult("transient")
                continue
            halted = self._send(call, messages, results)
        return [result or SendResult("transient") for result in results]

    def _send(self, call: _Call, messages: list[Outgoing], results: list[SendResult | None]) -> str:
        """One SendBatchSms; fills its messages' results. Returns the status that should halt
        the batch ("" to go on)."""
        at = self.clock()
        date = _beijing_date(at)
        records = {
            self._record_key(messages[i].key): {
                "date": date,
                "at": at,
                "content": messages[i].content,
                "biz_id": "",
            }
            for i in call.indexes
        }
        cache.set_many(records, RECORD_SECONDS)  # before the call: see the class doc
        try:
            biz_id = self.client.send_batch_sms(
                phones=call.phones,
                sign_name=self.sign_name,
                template_code=self.template_code,
                template_params=[{"content": messages[i].content} for i in call.indexes],
            )
        except SmsError as error:
            if error.outcome_known:
                cache.delete_many(list(records))  # nothing went out
            if error.code in PER_NUMBER_CODES and len(call.indexes) > 1:
                for index, phone in zip(call.indexes, call.phones, strict=True):
                    halted = self._send(_Call([index], [phone]), messages, results)
                    if halted:
                        for rest in call.indexes:
                            if results[rest] is None:
                                results[rest] = SendResult("transient")
                        return halted
                return ""
            status = classify(error)
            for index in call.indexes:
                results[index] = SendResult(status)
            return status if status in ("transient", "timeout") else ""
        cache.set_many(
            {key: {**record, "biz_id": biz_id} for key, record in records.items()}, RECORD_SECONDS
        )
        for index in call.indexes:
            results[index] = SendResult("sent", ref=biz_id)
        return ""

    # --- which keys already went out --------------------------------------------------------

    def sent_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        stored = cache.get_many([self._record_key(key) for key in keys])
        sent: set[str] = set()
        unrecorded: list[str] = []
        phones = _phones(
            _member_of(key)
            for key in keys
            if isinstance(record := stored.get(self._record_key(key)), dict)
            and not record.get("biz_id")
        )
        for key in keys:
            record = stored.get(self._record_key(key))
            if not isinstance(record, dict):
                unrecorded.append(key)
            elif record.get("biz_id"):
                sent.add(key)
            elif self._aliyun_has(
                aliyun_phone(phones.get(_member_of(key), "")),
                since=float(record.get("at") or 0),
                content=str(record.get("content") or ""),
            ):
                sent.add(key)
                cache.set(self._record_key(key), {**record, "biz_id": "queried"}, RECORD_SECONDS)
        if unrecorded and not self.cache_is_shared:
            sent |= self._ask_unrecorded(unrecorded)
        return sent

    def _ask_unrecorded(self, keys: list[str]) -> set[str]:
        members = {key: int(match.group(2)) for key in keys if (match := _KEY.match(key))}
        phones = _phones(members.values())
        since = self.clock() - self.window.total_seconds()
        found: set[str] = set()
        for key, member_id in members.items():
            phone = aliyun_phone(phones.get(member_id, ""))
            if phone and self._aliyun_has(phone, since=since, content=None):
                found.add(key)
        return found

    def _aliyun_has(self, phone: str, *, since: float, content: str | None) -> bool:
        """Whether Aliyun sent our template to `phone` since `since` (holding `content`,
        when given)."""
        if not phone:
            return False
        now = self.clock()
        start = since - CLOCK_SLACK
        dates = sorted({_beijing_date(start), _beijing_date(now)})
        for date in dates:
            for row in self.client.query_send_details(phone=phone, send_date=date):
                if str(row.get("TemplateCode") or "") != self.template_code:
                    continue
                sent_at = _parse_beijing(str(row.get("SendDate") or ""))
                if sent_at is None or sent_at < start:
                    continue
                if content is None or content in str(row.get("Content") or ""):
                    return True
        return False

    def _record_key(self, delivery_key: str) -> str:
        return f"{self.client.cache_prefix}:sent:{delivery_key}"


def _parse_beijing(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        return None


# --- configuration --------------------------------------------------------------------------


def sms_client() -> AliyunSmsClient | None:
    key_id = str(getattr(settings, "ALIYUN_SMS_ACCESS_KEY_ID", "") or "")
    secret = str(getattr(settings, "ALIYUN_SMS_ACCESS_KEY_SECRET", "") or "")
    if not (key_id and secret):
        return None
    endpoint = str(getattr(settings, "ALIYUN_SMS_ENDPOINT", "") or ENDPOINT)
    return AliyunSmsClient(key_id, secret, endpoint=endpoint)


def sms_gateway() -> SmsGateway | None:
    """The SMS gateway when Aliyun SMS is configured (access key, sign name, template code),
    else None (the sandbox answers)."""
    client = sms_client()
    sign_name = str(getattr(settings, "ALIYUN_SMS_SIGN_NAME", "") or "")
    template_code = str(getattr(settings, "ALIYUN_SMS_TEMPLATE_CODE", "") or "")
    if client is None or not (sign_name and template_code):
        return None
    return SmsGateway(client, sign_name=sign_name, template_code=template_code)
