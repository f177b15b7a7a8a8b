"""WeCom (企业微信) external-contact messaging: the HTTP client and the gateway the sender uses.

`WecomClient` calls WeCom's documented server API over HTTPS with the standard library:
group messages to customers and to customer groups (企业群发, add_msg_template), their
records, tasks and per-customer results (get_groupmsg_list_v2, get_groupmsg_task,
get_groupmsg_send_result), customer groups (groupchat/list), Moments tasks
(add_moment_task) and temporary image media (media/upload). Its access token is kept in
this process's memory and in Django's cache (shared by every process when the cache is),
fetched under a lock so concurrent callers fetch it once, and replaced once when WeCom
says it is invalid or expired.

`WecomGateway` is the `Gateway` for kind "wecom". A WeCom group message never reaches a
customer by itself: add_msg_template puts a task in the guide's WeCom (群发助手) and the
guide confirms it there. So "sent" here means "the task was created", with the msgid as
the reference; what each customer finally got is read later with
`groupmsg_send_result` (0 not sent yet, 1 sent, 2 not a friend, 3 monthly limit reached).

The guide's WeCom userid is their Staff username: Staff has no WeCom userid field.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from campaigns.gateways import Outgoing, SendResult
from campaigns.models import GatewayKind, Material, MaterialKind
from members.models import Identity, IdentityKind, Member

logger = logging.getLogger(__name__)

API_BASE = "https://qyapi.weixin.qq.com"
# Keep a token until this many seconds before WeCom says it expires (7200 s normally).
TOKEN_EXPIRY_MARGIN = 300
# The most we read of one answer: a page of 1,000 send results is about 150 KB.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# WeCom takes images of at most 10 MB for temporary media.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Temporary media live three days; reuse an uploaded image for a little less.
MEDIA_CACHE_SECONDS = 3 * 24 * 3600 - 3600
# How long a guide post's note is kept: long after any retry of its broadcast.
NOTE_SECONDS = 30 * 24 * 3600

# Documented per-call limits of add_msg_template (92135): 10,000 customers, 2,000 groups.
MAX_CUSTOMERS_PER_MESSAGE = 10_000
MAX_GROUPS_PER_MESSAGE = 2_000
# Page sizes: get_groupmsg_list_v2 takes at most 100, the task and result lists 1,000,
# groupchat/list 1,000 and at most 100 owners per call.
LIST_PAGE = 100
RESULT_PAGE = 1_000
GROUPCHAT_PAGE = 1_000
GROUPCHAT_OWNERS_PER_CALL = 100
# A guard against a cursor that never ends, not a limit WeCom documents.
MAX_PAGES = 100

# errcodes saying the access token is bad: 40014 invalid access_token, 42001 expired.
# 40001 is "invalid credential" (WeCom's global list calls it an invalid secret); on a call
# that carries a token it means the token, so it is treated the same.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# Worth trying again later: -1 system busy, 45009 API frequency limit, 45033 too many
# concurrent calls, 41063 "group message still being dispatched, try later" (its meaning
# is taken from a third-party SDK's list, not checked against WeCom's own page).
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45033, 41063})
# The customer is not (or no longer) the sender's contact: 84061 "not external contact".
# 84084 "not a followed customer" comes from third-party lists; WeCom's global errcode
# page is the place to confirm it.
NOT_FRIEND_ERRCODES = frozenset({84061, 84084})

# get_groupmsg_send_result's status for each recipient, as our delivery outcomes.
SEND_RESULT_STATUSES = {0: "not_sent", 1: "sent", 2: "not_friend", 3: "limit_reached"}


class WecomError(Exception):
    """WeCom answered with an errcode other than 0, or did not answer at all.

    `errcode` is WeCom's code, or None when no answer came (network error, HTTP error,
    garbled body); `timed_out` marks a timeout, after which WeCom may still have acted.
    Never carries the secret or the access token."""

    def __init__(self, errcode: int | None, errmsg: str, *, timed_out: bool = False) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.timed_out = timed_out
        what = f"errcode {errcode}" if errcode is not None else "no answer"
        super().__init__(f"WeCom {what}: {errmsg}")

    def __repr__(self) -> str:
        return f"WecomError(errcode={self.errcode!r}, errmsg={self.errmsg!r})"


def classify(error: WecomError) -> str:
    """Our SendResult status for a failed call: "transient" and "timeout" are retried with
    backoff; "not_friend" and "limit_reached" suppress the delivery; "failed_<errcode>"
    will fail the same way again."""
    if error.errcode is None:
        return "timeout" if error.timed_out else "transient"
    if error.errcode in TRANSIENT_ERRCODES:
        return "transient"
    if error.errcode in NOT_FRIEND_ERRCODES:
        return "not_friend"
    return f"failed_{error.errcode}"


def send_result_status(status: int) -> str:
    """get_groupmsg_send_result's per-customer status as a delivery outcome."""
    return SEND_RESULT_STATUSES.get(status, f"unknown_{status}")


@dataclass(frozen=True)
class MsgTemplateResult:
    """One add_msg_template call: the recipients it carried (external_userids or chat ids)
    and either the msgid with the recipients WeCom refused (`fail_list`), or the error."""

    recipients: list[str]
    msgid: str = ""
    fail_list: list[str] = field(default_factory=list)
    error: WecomError | None = None


# --- the access token, per process and shared ----------------------------------------------

# cache key -> (token, expires at, as a Unix time)
_tokens_in_memory: dict[str, tuple[str, float]] = {}
_token_locks: dict[str, threading.Lock] = {}
_token_locks_guard = threading.Lock()


def _token_lock(key: str) -> threading.Lock:
    with _token_locks_guard:
        return _token_locks.setdefault(key, threading.Lock())


def clear_tokens_in_memory() -> None:
    """Forget this process's tokens (Django's cache keeps its copy)."""
    _tokens_in_memory.clear()


def _reset_after_fork() -> None:
    # A forked worker must not inherit a lock some parent thread held at fork time.
    global _token_locks_guard
    _token_locks_guard = threading.Lock()
    _token_locks.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _errcode(data: dict[str, Any]) -> int:
    """WeCom's errcode in an answer, 0 when there is none."""
    value = data.get("errcode", 0)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return 0


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


class WecomClient:
    """WeCom's server API for one corp and one secret (the customer-contact secret, or a
    self-built app's with customer-contact permission). Thread-safe."""

    def __init__(
        self, corp_id: str, secret: str, base_url: str = API_BASE, timeout: float = 10
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # The secret never appears in a cache key, only a digest of it.
        digest = hashlib.sha256(f"{corp_id}\0{secret}".encode()).hexdigest()[:24]
        self.token_cache_key = f"campaigns:wecom:token:{digest}"
        self.cache_prefix = f"campaigns:wecom:{digest}"

    def __repr__(self) -> str:
        return f"WecomClient(corp_id={self.corp_id!r}, base_url={self.base_url!r})"

    # --- access token ---------------------------------------------------------------------

    def access_token(self) -> str:
        token = self._cached_token()
        if token:
            return token
        with _token_lock(self.token_cache_key):
            # Whoever held the lock before us has most likely just fetched it.
            return self._cached_token() or self._fetch_token()

    def _cached_token(self) -> str:
        now = time.time()
        held = _tokens_in_memory.get(self.token_cache_key)
        if held is not None and held[1] > now:
            return held[0]
        shared = cache.get(self.token_cache_key)
        if not isinstance(shared, dict):
            return ""
        token, expires_at = shared.get("token"), shared.get("expires_at")
        if not (isinstance(token, str) and token and isinstance(expires_at, float | int)):
            return ""
        if expires_at <= now:
            return ""
        _tokens_in_memory[self.token_cache_key] = (token, float(expires_at))
        return token

    def _fetch_token(self) -> str:
        data = self._request(
            "GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}
        )
        self._raise_for_errcode(data, "/cgi-bin/gettoken")
        token = data.get("access_token")
        if not (isinstance(token, str) and token):
            raise WecomError(None, "gettoken answered without an access_token")
        expires_in = data.get("expires_in")
        lifetime = (expires_in if isinstance(expires_in, int) else 7200) - TOKEN_EXPIRY_MARGIN
        if lifetime > 0:
            expires_at = time.time() + lifetime
            _tokens_in_memory[self.token_cache_key] = (token, expires_at)
            cache.set(self.token_cache_key, {"token": token, "expires_at": expires_at}, lifetime)
        return token

    def _drop_token(self, rejected: str) -> None:
        """Forget `rejected` unless another caller already replaced it."""
        with _token_lock(self.token_cache_key):
            held = _tokens_in_memory.get(self.token_cache_key)
            if held is not None and held[0] == rejected:
                del _tokens_in_memory[self.token_cache_key]
            shared = cache.get(self.token_cache_key)
            if isinstance(shared, dict) and shared.get("token") == rejected:
                cache.delete(self.token_cache_key)

    # --- customer group messages (企业群发) -------------------------------------------------

    def add_msg_template(
        self,
        *,
        sender: str,
        external_userids: list[str],
        text: str,
        attachments: list[dict[str, Any]],
    ) -> list[MsgTemplateResult]:
        """A group message to customers (chat_type "single") as a task for `sender`.
        More than 10,000 customers become several calls, one result each; after a failed
        call the rest are not attempted (their result carries a transient error)."""
        return self._add_msg_templates(
            {"chat_type": "single", "sender": sender},
            "external_userid",
            external_userids,
            MAX_CUSTOMERS_PER_MESSAGE,
            text,
            attachments,
        )

    def add_msg_template_to_groups(
        self, *, sender: str, chat_ids: list[str], text: str, attachments: list[dict[str, Any]]
    ) -> list[MsgTemplateResult]:
        """A group message to customer groups (chat_type "group") the sender owns."""
        return self._add_msg_templates(
            {"chat_type": "group", "sender": sender},
            "chat_id_list",
            chat_ids,
            MAX_GROUPS_PER_MESSAGE,
            text,
            attachments,
        )

    def _add_msg_templates(
        self,
        base: dict[str, Any],
        recipients_field: str,
        recipients: list[str],
        per_call: int,
        text: str,
        attachments: list[dict[str, Any]],
    ) -> list[MsgTemplateResult]:
        base = dict(base)
        if text:
            base["text"] = {"content": text}
        if attachments:
            base["attachments"] = attachments
        results: list[MsgTemplateResult] = []
        failed = False
        for start in range(0, len(recipients), per_call):
            chunk = recipients[start : start + per_call]
            if failed:
                not_tried = WecomError(None, "not tried: an earlier part of this message failed")
                results.append(MsgTemplateResult(chunk, error=not_tried))
                continue
            try:
                data = self._call(
                    "/cgi-bin/externalcontact/add_msg_template", {**base, recipients_field: chunk}
                )
            except WecomError as error:
                results.append(MsgTemplateResult(chunk, error=error))
                failed = True
                continue
            fail_list = data.get("fail_list") or []
            results.append(
                MsgTemplateResult(
                    chunk,
                    msgid=str(data.get("msgid") or ""),
                    fail_list=[str(item) for item in fail_list],
                )
            )
        return results

    def groupmsg_list(
        self,
        *,
        start_time: int,
        end_time: int,
        chat_type: str = "single",
        filter_type: int = 0,
        creator: str = "",
        max_pages: int = MAX_PAGES,
    ) -> list[dict[str, Any]]:
        """Group message records created between two Unix times (at most a month apart).
        filter_type 0: created by the enterprise (the API or the admin console), 1: by
        members, 2: both. Records of API-created messages carry no `creator`."""
        body: dict[str, Any] = {
            "chat_type": chat_type,
            "start_time": start_time,
            "end_time": end_time,
            "filter_type": filter_type,
            "limit": LIST_PAGE,
        }
        if creator:
            body["creator"] = creator
        rows: list[dict[str, Any]] = []
        for page in self._pages("/cgi-bin/externalcontact/get_groupmsg_list_v2", body, max_pages):
            rows += [row for row in page.get("group_msg_list") or [] if isinstance(row, dict)]
        return rows

    def groupmsg_task(self, msgid: str) -> dict[str, int]:
        """The members a group message was given to, with their task status (0 not sent,
        2 sent)."""
        body = {"msgid": msgid, "limit": RESULT_PAGE}
        tasks: dict[str, int] = {}
        for page in self._pages("/cgi-bin/externalcontact/get_groupmsg_task", body):
            for row in page.get("task_list") or []:
                tasks[str(row.get("userid", ""))] = int(row.get("status", 0))
        return tasks

    def groupmsg_send_result(self, msgid: str, userid: str) -> dict[str, int]:
        """Each recipient of `userid`'s task of a group message (an external_userid, or a
        chat id for group chats) and its status: 0 not sent yet, 1 sent, 2 not a friend,
        3 already received the month's limit. `send_result_status` names them."""
        body = {"msgid": msgid, "userid": userid, "limit": RESULT_PAGE}
        statuses: dict[str, int] = {}
        for page in self._pages("/cgi-bin/externalcontact/get_groupmsg_send_result", body):
            for row in page.get("send_list") or []:
                recipient = row.get("external_userid") or row.get("chat_id") or ""
                statuses[str(recipient)] = int(row.get("status", 0))
        return statuses

    def groupchat_list(self, *, owner_userids: list[str], status_filter: int = 0) -> list[str]:
        """The chat ids of the customer groups the given members own (status_filter 0:
        groups in normal use)."""
        chat_ids: list[str] = []
        for start in range(0, len(owner_userids), GROUPCHAT_OWNERS_PER_CALL):
            body = {
                "status_filter": status_filter,
                "owner_filter": {
                    "userid_list": owner_userids[start : start + GROUPCHAT_OWNERS_PER_CALL]
                },
                "limit": GROUPCHAT_PAGE,
            }
            for page in self._pages("/cgi-bin/externalcontact/groupchat/list", body):
                chat_ids += [
                    str(row["chat_id"])
                    for row in page.get("group_chat_list") or []
                    if isinstance(row, dict) and row.get("chat_id")
                ]
        return chat_ids

    def add_moment_task(
        self, *, text: str, attachments: list[dict[str, Any]], visible_userids: list[str]
    ) -> str:
        """A Moments (客户朋友圈) task for the given members to publish; returns the jobid
        (creation is asynchronous: get_moment_task_result tells the moment id). Moments take
        images and link covers as media ids of media/upload_attachment, not URLs."""
        body: dict[str, Any] = {}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = attachments
        if visible_userids:
            body["visible_range"] = {"sender_list": {"user_list": visible_userids}}
        data = self._call("/cgi-bin/externalcontact/add_moment_task", body)
        return str(data.get("jobid") or "")

    # --- media ------------------------------------------------------------------------------

    def upload_image(self, content: bytes, *, filename: str, content_type: str) -> str:
        """Upload an image as temporary media (valid three days); returns its media_id."""
        boundary = f"----scrm{secrets.token_hex(12)}"
        safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "") or "image"
        payload = b"".join(
            [
                f"--{boundary}\r\n".encode(),
                f'Content-Disposition: form-data; name="media"; filename="{safe_name}"; '
                f"filelength={len(content)}\r\n".encode(),
                f"Content-Type: {content_type}\r\n\r\n".encode(),
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        data = self._call(
            "/cgi-bin/media/upload",
            query={"type": "image"},
            raw=(payload, f"multipart/form-data; boundary={boundary}"),
        )
        media_id = data.get("media_id")
        if not (isinstance(media_id, str) and media_id):
            raise WecomError(None, "media/upload answered without a media_id")
        return media_id

    def image_media_id(self, url: str) -> str:
        """A media_id for the image at `url`: downloaded and uploaded once, then reused
        (through Django's cache) until shortly before WeCom forgets it."""
        key = f"{self.cache_prefix}:media:{hashlib.sha256(url.encode()).hexdigest()[:32]}"
        cached = cache.get(key)
        if isinstance(cached, str) and cached:
            return cached
        content, content_type = self._download(url)
        filename = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] or "image.jpg"
        media_id = self.upload_image(content, filename=filename, content_type=content_type)
        cache.set(key, media_id, MEDIA_CACHE_SECONDS)
        return media_id

    def _download(self, url: str) -> tuple[bytes, str]:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise WecomError(None, "the image address is not http(s)")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                content = response.read(MAX_IMAGE_BYTES + 1)
                content_type = response.headers.get_content_type()
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise WecomError(
                None, "the image could not be downloaded", timed_out=_timed_out(exc)
            ) from None
        if len(content) > MAX_IMAGE_BYTES:
            raise WecomError(None, "the image is larger than WeCom's 10 MB")
        if not content_type.startswith("image/"):
            content_type = "image/jpeg"
        return content, content_type

    # --- HTTP -------------------------------------------------------------------------------

    def _pages(
        self, path: str, body: dict[str, Any], max_pages: int = MAX_PAGES
    ) -> Iterable[dict[str, Any]]:
        """Each page of a cursor-paged call (the cursor is left out of the first)."""
        cursor = ""
        for _page in range(max_pages):
            data = self._call(path, {**body, "cursor": cursor} if cursor else body)
            yield data
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return
        logger.warning("WeCom %s: stopped after %s pages", path, max_pages)

    def _call(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        raw: tuple[bytes, str] | None = None,
    ) -> dict[str, Any]:
        """POST to `path` with the access token; a rejected token is replaced and the call
        made once more (a call refused for its token did nothing, so repeating it is safe)."""
        if raw is None:
            raw = (json.dumps(body or {}, ensure_ascii=False).encode(), "application/json")
        token = self.access_token()
        data = self._request("POST", path, {**(query or {}), "access_token": token}, raw)
        if _errcode(data) in TOKEN_ERRCODES:
            self._drop_token(token)
            token = self.access_token()
            data = self._request("POST", path, {**(query or {}), "access_token": token}, raw)
        self._raise_for_errcode(data, path)
        return data

    def _request(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        payload: tuple[bytes, str] | None = None,
    ) -> dict[str, Any]:
        """One HTTP call; the JSON object WeCom answered. Nothing logged or raised here
        shows the URL: its query carries the secret or the token."""
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, method=method)
        request.add_header("Accept", "application/json")
        if payload is not None:
            request.data = payload[0]
            request.add_header("Content-Type", payload[1])
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            logger.warning("WeCom %s answered HTTP %s", path, status)
            raise WecomError(None, f"HTTP {status}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            timed_out = _timed_out(exc)
            logger.warning("WeCom %s unreachable: %s", path, type(exc).__name__)
            raise WecomError(
                None, "timed out" if timed_out else "unreachable", timed_out=timed_out
            ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise WecomError(None, "the answer is not JSON") from None
        if not isinstance(data, dict):
            raise WecomError(None, "the answer is not a JSON object")
        return data

    def _raise_for_errcode(self, data: dict[str, Any], path: str) -> None:
        errcode = _errcode(data)
        if errcode:
            errmsg = str(data.get("errmsg", ""))[:300].replace(self._secret, "***")
            logger.warning("WeCom %s answered errcode %s: %s", path, errcode, errmsg)
            raise WecomError(errcode, errmsg)


# --- attachments ----------------------------------------------------------------------------


def _truncate_bytes(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut between characters (WeCom counts bytes)."""
    return text.encode()[:limit].decode(errors="ignore")


def image_attachment(*, media_id: str = "", pic_url: str = "") -> dict[str, Any]:
    """An image: a media_id (media/upload), or a pic_url — which WeCom documents must be an
    address its own image upload (media/uploadimg) returned."""
    if not (media_id or pic_url):
        raise ValueError("An image attachment needs a media_id or a pic_url.")
    image = {"media_id": media_id} if media_id else {"pic_url": pic_url}
    return {"msgtype": "image", "image": image}


def link_attachment(*, title: str, url: str, picurl: str = "", desc: str = "") -> dict[str, Any]:
    """A link card: title at most 128 bytes, desc 512."""
    link = {"title": _truncate_bytes(title, 128), "url": url}
    if picurl:
        link["picurl"] = picurl
    if desc:
        link["desc"] = _truncate_bytes(desc, 512)
    return {"msgtype": "link", "link": link}


def miniprogram_attachment(
    *, title: str, pic_media_id: str, appid: str, page: str
) -> dict[str, Any]:
    """A mini-program card: title at most 64 bytes; the cover must be a media_id (WeCom
    suggests 520×416) and the mini-program must be linked to the corp."""
    return {
        "msgtype": "miniprogram",
        "miniprogram": {
            "title": _truncate_bytes(title, 64),
            "pic_media_id": pic_media_id,
            "appid": appid,
            "page": page,
        },
    }


def material_attachments(
    material: Material, *, image_media_id: str = "", appid: str = ""
) -> list[dict[str, Any]]:
    """The attachments a material adds to its text. Images and mini-program covers need
    `image_media_id` (see WecomClient.image_media_id); an image without one goes as a
    pic_url, which WeCom accepts only for addresses from its own image upload. The
    mini-program's appid defaults to settings.WECOM_MINIPROGRAM_APPID."""
    kind = material.kind
    if kind == MaterialKind.IMAGE:
        return [image_attachment(media_id=image_media_id, pic_url=material.image_url)]
    if kind == MaterialKind.LINK:
        return [
            link_attachment(title=material.title, url=material.link_url, picurl=material.image_url)
        ]
    if kind == MaterialKind.MINI_PROGRAM:
        appid = appid or str(getattr(settings, "WECOM_MINIPROGRAM_APPID", "") or "")
        if not (appid and image_media_id):
            raise ValueError("A mini-program card needs the appid and a cover media_id.")
        return [
            miniprogram_attachment(
                title=material.title,
                pic_media_id=image_media_id,
                appid=appid,
                page=material.mini_program_path,
            )
        ]
    return []


# --- the gateway ----------------------------------------------------------------------------

_KEY = re.compile(r"^b(\d+):m(\d+)$")
# Slack around the times we remember, for clocks that differ between us and WeCom.
CLOCK_SLACK = 300
# sent_keys reads at most this many group message records, and looks into at most this
# many that could be ours (newest first): its cost per batch stays bounded.
MAX_LIST_PAGES = 10
MAX_CANDIDATES = 20


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _template_pattern(template: str) -> re.Pattern[str] | None:
    """A pattern matching every rendering of a material's text ({name} etc. match
    anything), or None for a text that is not a valid template."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return None
    regex = "".join(
        re.escape(literal) + (".*?" if name is not None else "") for literal, name, _s, _c in parts
    )
    return re.compile(regex, re.DOTALL)


def _recipients(member_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """member id -> (guide's WeCom userid, the member's external_userid); "" where missing.
    The guide's userid is their username (Staff has no WeCom userid of its own)."""
    ids = list(set(member_ids))
    guides = dict(Member.objects.filter(pk__in=ids).values_list("pk", "guide__username"))
    externals: dict[int, str] = {}
    rows = (
        Identity.objects.filter(member_id__in=ids, kind=IdentityKind.WECOM_EXTERNAL)
        .order_by("member_id", "-pk")
        .values_list("member_id", "value")
    )
    for member_id, value in rows:
        externals.setdefault(member_id, value)  # the newest, when there are several
    return {pk: (guides.get(pk) or "", externals.get(pk, "")) for pk in ids}


class WecomGateway:
    """WeCom group messages to customers, through each customer's guide.

    `send_batch` groups the messages by (guide, text) and makes one add_msg_template call
    per group: a WeCom group message carries ONE text for all its recipients, so messages
    whose per-recipient variables render equal within a guide's group ({guide}, or none)
    share a call, and each distinct rendering ({name} …) costs a call of its own. Result per
    message: "sent" with the msgid as ref (the task is in the guide's WeCom), "not_friend"
    for a customer WeCom refused (fail_list) or one without guide or WeCom contact, or the
    classified error. After a transient error (rate limit, busy, network) the remaining
    groups are not tried: they come back "transient" for the sender to retry with backoff.

    `sent_keys` — which deliveries were already handed to WeCom — is hard because WeCom
    takes no client key, and the sender stores the msgid only when it commits: a worker
    killed between add_msg_template and that commit leaves no trace on our side. So:

    1. Before each call the gateway writes a hint per delivery key in Django's cache
       (when, which guide, a digest of the text) and adds the msgid once WeCom answered.
       A hint with a msgid answers without asking WeCom.
    2. A hint without a msgid (killed mid-call, or a timeout) is checked with WeCom: one
       paged get_groupmsg_list_v2 over the time since the hint, the records whose text is
       exactly the hinted one, and get_groupmsg_send_result for the hinted guide: the key
       counts as sent when the member's external_userid is among the recipients, whatever
       their status (the task exists; a second one would reach the customer twice).
    3. No hint: when the cache is shared by every worker (Redis, Memcached, database —
       not the per-process LocMemCache), no hint means the key was never handed over.
       Otherwise the gateway cannot know and checks WeCom as in 2 over the last `window`:
       records whose text fits the material's template ({name} … match anything), their
       guides from get_groupmsg_task, and the customer in any of those guides' results.

    The list call cannot be narrowed to a guide: records of API-created messages carry no
    `creator`, so one list per batch replaces one per guide. Matching on text, recipient
    and time window is the trade-off WeCom leaves (its texts can hold no invisible
    marker): a customer who got the same text from another broadcast within the window
    would be taken as already sent — rare, and the safer error for a channel that caps
    each customer at a few group messages a month. Cost per batch in case 3: at most
    MAX_LIST_PAGES list pages plus two calls per candidate record (at most
    MAX_CANDIDATES, newest first). WeCom errors propagate from `sent_keys`: the sender's
    transaction rolls back and the sweep tries again later, nothing is guessed.
    """

    kind: str = GatewayKind.WECOM
    idempotent = False

    def __init__(
        self,
        client: WecomClient,
        *,
        material: Material | None = None,
        title: str = "",
        link_url: str = "",
        window: timedelta = timedelta(hours=1),
        cache_is_shared: bool | None = None,
    ) -> None:
        self.client = client
        self.material = material
        self.title = title or (material.title if material else "")
        self.link_url = link_url or (material.link_url if material else "")
        self.window = window
        if cache_is_shared is None:
            cache_is_shared = not isinstance(caches["default"], LocMemCache | DummyCache)
        self.cache_is_shared = cache_is_shared
        self._template = _template_pattern(material.body) if material else None
        self._attachments: list[dict[str, Any]] | None = None

    def attachments(self) -> list[dict[str, Any]]:
        """The material's attachments, uploading its image once when WeCom needs a media_id."""
        if self._attachments is None:
            material = self.material
            if material is None:
                self._attachments = (
                    [link_attachment(title=self.title or self.link_url, url=self.link_url)]
                    if self.link_url
                    else []
                )
            else:
                needs_media = material.kind in (MaterialKind.IMAGE, MaterialKind.MINI_PROGRAM)
                media_id = (
                    self.client.image_media_id(material.image_url)
                    if needs_media and material.image_url
                    else ""
                )
                self._attachments = material_attachments(material, image_media_id=media_id)
        return self._attachments

    # --- sending ----------------------------------------------------------------------------

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        if not messages:
            return []
        people = _recipients(m.member_id for m in messages)
        results: list[SendResult | None] = [None] * len(messages)
        groups: dict[tuple[str, str], list[int]] = {}
        for index, message in enumerate(messages):
            guide, external_userid = people.get(message.member_id, ("", ""))
            if not (guide and external_userid):
                results[index] = SendResult("not_friend")
            else:
                groups.setdefault((guide, message.content), []).append(index)
        if groups:
            try:
                attachments = self.attachments()
            except (WecomError, ValueError) as error:
                # No cover to upload, or a material WeCom cannot carry (a mini-program card
                # without appid or image): nobody gets a message without its attachment.
                logger.warning("WeCom attachments unavailable: %s", error)
                status = classify(error) if isinstance(error, WecomError) else "failed_material"
                for indexes in groups.values():
                    for index in indexes:
                        results[index] = SendResult(status)
                groups = {}
            halted = ""
            for (guide, content), indexes in groups.items():
                if halted:
                    for index in indexes:
                        results[index] = SendResult("transient")
                    continue
                halted = self._send_group(
                    guide, content, indexes, messages, people, attachments, results
                )
        return [result or SendResult("transient") for result in results]

    def _send_group(
        self,
        guide: str,
        content: str,
        indexes: list[int],
        messages: list[Outgoing],
        people: dict[int, tuple[str, str]],
        attachments: list[dict[str, Any]],
        results: list[SendResult | None],
    ) -> str:
        """One add_msg_template for a guide's messages of one text; fills their results.
        Returns the status that should halt the batch ("" to go on)."""
        by_customer: dict[str, list[int]] = {}
        for index in indexes:
            by_customer.setdefault(people[messages[index].member_id][1], []).append(index)
        at = int(time.time())
        hint = {"at": at, "guide": guide, "text": _digest(content), "msgid": ""}
        # Written before the call, so a crash during it leaves a trace (see the class doc).
        cache.set_many(
            {self._hint_key(messages[i].key): hint for i in indexes}, self._hint_seconds()
        )
        halted = ""
        for call in self.client.add_msg_template(
            sender=guide, external_userids=list(by_customer), text=content, attachments=attachments
        ):
            keys = [messages[i].key for customer in call.recipients for i in by_customer[customer]]
            if call.error is not None:
                status = classify(call.error)
                if call.error.errcode is not None:
                    cache.delete_many([self._hint_key(key) for key in keys])  # WeCom said no
                if status in ("transient", "timeout"):
                    halted = status
                for customer in call.recipients:
                    for index in by_customer[customer]:
                        results[index] = SendResult(status)
                continue
            refused = set(call.fail_list)
            handed: list[str] = []
            for customer in call.recipients:
                for index in by_customer[customer]:
                    if customer in refused:
                        results[index] = SendResult("not_friend")
                    else:
                        results[index] = SendResult("sent", ref=call.msgid)
                        handed.append(messages[index].key)
            cache.set_many(
                {self._hint_key(key): {**hint, "msgid": call.msgid} for key in handed},
                self._hint_seconds(),
            )
            refused_keys = set(keys) - set(handed)
            if refused_keys:
                cache.delete_many([self._hint_key(key) for key in refused_keys])
        return halted

    # --- which keys already went out --------------------------------------------------------

    def sent_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        stored = cache.get_many([self._hint_key(key) for key in keys])
        hints: dict[str, dict[str, Any]] = {}
        for key in keys:
            hint = stored.get(self._hint_key(key))
            if isinstance(hint, dict):
                hints[key] = hint
        sent = {key for key, hint in hints.items() if hint.get("msgid")}
        in_doubt = [
            key for key in keys if key not in sent and (key in hints or not self.cache_is_shared)
        ]
        members = {key: int(match.group(2)) for key in in_doubt if (match := _KEY.match(key))}
        if not members:
            return sent
        people = _recipients(members.values())
        # Keys whose member has no guide or WeCom contact were never handed over.
        doubtful = {key: people[m] for key, m in members.items() if all(people[m])}
        if doubtful:
            sent |= self._ask_wecom(doubtful, {k: h for k, h in hints.items() if k in doubtful})
        return sent

    def _ask_wecom(
        self, doubtful: dict[str, tuple[str, str]], hints: dict[str, dict[str, Any]]
    ) -> set[str]:
        now = int(time.time())
        unhinted = [key for key in doubtful if key not in hints]
        if unhinted:
            start = now - int(self.window.total_seconds())
        else:
            start = min(int(hint.get("at", now)) for hint in hints.values()) - CLOCK_SLACK
        records = self.client.groupmsg_list(
            start_time=start, end_time=now, filter_type=0, max_pages=MAX_LIST_PAGES
        )
        hinted_texts = {str(hint.get("text")) for hint in hints.values()}
        candidates: list[tuple[str, str, str]] = []  # (msgid, text digest, text)
        for record in sorted(records, key=lambda r: int(r.get("create_time") or 0), reverse=True):
            text = str((record.get("text") or {}).get("content") or "")
            digest = _digest(text)
            fits_template = self._template is None or self._template.fullmatch(text) is not None
            if digest in hinted_texts or (unhinted and fits_template):
                candidates.append((str(record.get("msgid") or ""), digest, text))
        if len(candidates) > MAX_CANDIDATES:
            logger.warning(
                "WeCom sent_keys: %s matching group messages, checking the newest %s",
                len(candidates),
                MAX_CANDIDATES,
            )
            candidates = candidates[:MAX_CANDIDATES]
        found: dict[str, str] = {}
        for msgid, digest, text in candidates:
            open_keys = [key for key in doubtful if key not in found]
            if not open_keys or not msgid:
                break
            # Hinted keys say which guide had this text; for the others the task list does.
            guides = {
                str(hints[key].get("guide"))
                for key in open_keys
                if key in hints and hints[key].get("text") == digest
            }
            fits_template = self._template is None or self._template.fullmatch(text) is not None
            if fits_template and any(key not in hints for key in open_keys):
                guides |= set(self.client.groupmsg_task(msgid))
            for guide in sorted(guides):
                recipients = self.client.groupmsg_send_result(msgid, guide)
                for key in open_keys:
                    hint = hints.get(key)
                    same_text = hint is None or hint.get("text") == digest
                    # Whichever guide's task holds the customer: a second task would reach
                    # them twice.
                    if same_text and doubtful[key][1] in recipients:
                        found[key] = msgid
        if found:
            # Remember what WeCom told us, so a second ask is free.
            hint_for = {
                key: {**hints.get(key, {"at": now, "guide": doubtful[key][0]}), "msgid": msgid}
                for key, msgid in found.items()
            }
            cache.set_many(
                {self._hint_key(key): hint for key, hint in hint_for.items()}, self._hint_seconds()
            )
        return set(found)

    def _hint_key(self, delivery_key: str) -> str:
        return f"{self.client.cache_prefix}:handed:{delivery_key}"

    def _hint_seconds(self) -> int:
        return int(self.window.total_seconds()) + 2 * CLOCK_SLACK


# --- configuration --------------------------------------------------------------------------


def wecom_client() -> WecomClient | None:
    """The client for the corp in the settings (WECOM_CORP_ID, WECOM_SECRET, optionally
    WECOM_API_BASE); None when they are not set."""
    corp_id = str(getattr(settings, "WECOM_CORP_ID", "") or "")
    secret = str(getattr(settings, "WECOM_SECRET", "") or "")
    if not (corp_id and secret):
        return None
    base_url = str(getattr(settings, "WECOM_API_BASE", "") or API_BASE)
    return WecomClient(corp_id, secret, base_url=base_url)


def wecom_gateway(
    *, material: Material | None = None, title: str = "", link_url: str = ""
) -> WecomGateway | None:
    """The WeCom gateway when WeCom is configured, else None (the sandbox answers)."""
    client = wecom_client()
    if client is None:
        return None
    return WecomGateway(client, material=material, title=title, link_url=link_url)


class WecomGuidePostGateway:
    """Posts a guide makes once for all their customers: a Moments task (客户朋友圈) or a
    group message to the customer groups they own. Each message's recipient id is the
    guide (Staff) id; their WeCom userid is their username.

    WeCom keeps no key of ours for these, and a Moments post cannot be looked up by
    content. Before each call a note is written to the cache, and completed with WeCom's
    id after: `sent_keys` treats any note as sent — a crash mid-call leaves the post at
    most once (a second Moments post is worse than none, and the guide's task on /m/
    still shows the content to post by hand)."""

    idempotent = False

    def __init__(self, client: WecomClient, kind: str, material: Material | None) -> None:
        self.client = client
        self.kind = kind
        self.material = material

    def _note_key(self, key: str) -> str:
        return f"wecom-guide-post:{self.client.corp_id}:{key}"

    def _attachments(self) -> list[dict[str, Any]]:
        if self.material is None or self.material.kind == MaterialKind.TEXT:
            return []
        media_id = ""
        if self.material.image_url and self.material.kind != MaterialKind.LINK:
            media_id = self.client.image_media_id(self.material.image_url)
        return material_attachments(self.material, image_media_id=media_id)

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        from scrm.org.models import Staff

        if not messages:
            return []
        userids = dict(
            Staff.objects.filter(pk__in=[m.member_id for m in messages]).values_list(
                "pk", "username"
            )
        )
        results: list[SendResult] = []
        for message in messages:
            userid = userids.get(message.member_id)
            if userid is None:
                results.append(SendResult("failed_no_guide"))
                continue
            cache.set(self._note_key(message.key), "pending", NOTE_SECONDS)
            try:
                if self.kind == GatewayKind.WECOM_MOMENTS:
                    ref = self.client.add_moment_task(
                        text=message.content,
                        attachments=self._attachments(),
                        visible_userids=[userid],
                    )
                else:
                    chat_ids = self.client.groupchat_list(owner_userids=[userid])
                    if not chat_ids:
                        cache.delete(self._note_key(message.key))
                        results.append(SendResult("not_friend"))  # no customer group
                        continue
                    calls = self.client.add_msg_template_to_groups(
                        sender=userid,
                        chat_ids=chat_ids,
                        text=message.content,
                        attachments=self._attachments(),
                    )
                    ref = ",".join(call.msgid for call in calls if call.msgid)[:100]
            except WecomError as error:
                if not error.timed_out:
                    cache.delete(self._note_key(message.key))  # WeCom refused: not posted
                results.append(SendResult(classify(error)))
                continue
            cache.set(self._note_key(message.key), ref or "posted", NOTE_SECONDS)
            results.append(SendResult("sent", ref=ref))
        return results

    def sent_keys(self, keys: list[str]) -> set[str]:
        notes = cache.get_many([self._note_key(key) for key in keys])
        return {key for key in keys if self._note_key(key) in notes}


def wecom_guide_post_gateway(kind: str, material: Material | None) -> WecomGuidePostGateway | None:
    client = wecom_client()
    return None if client is None else WecomGuidePostGateway(client, kind, material)
