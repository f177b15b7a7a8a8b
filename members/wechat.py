"""WeChat clients for the mini-program sign-in: swap `wx.login` and phone codes for identities.

The client is pluggable because the real service can only be reached with a registered
mini-program's AppID and AppSecret, and only from a server WeChat can call back. Development,
demos and tests use `SandboxWechatClient`, which redeems codes stored in the database
(`SandboxWechatCode`, once each, like WeChat does); deployments with `WECHAT_APP_ID` and
`WECHAT_APP_SECRET` set use `HttpWechatClient`, which talks to api.weixin.qq.com over HTTP with
the standard library. Both raise `WechatError` with the same small set of codes, so the
sign-in views handle either without knowing which one they have. `get_wechat_client()` picks
one from the settings.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from members.models import SandboxCodeKind, SandboxWechatCode

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
# WeChat's codes are 32 characters; anything much longer is not a code.
MAX_CODE_LENGTH = 128
# The most we read of one response: WeChat's answers are a few hundred bytes.
MAX_RESPONSE_BYTES = 1024 * 1024
# Refresh the access token this many seconds before WeChat says it expires.
TOKEN_EXPIRY_MARGIN = 300
# errcodes meaning the access token is invalid (40001) or expired (42001).
TOKEN_ERRCODES = frozenset({40001, 42001})

INVALID_CODE = "invalid_code"
CODE_USED = "code_used"
RATE_LIMITED = "rate_limited"
WECHAT_UNAVAILABLE = "wechat_unavailable"
WECHAT_ERROR = "wechat_error"

ERRCODE_TO_CODE: dict[int, str] = {
    40029: INVALID_CODE,
    40163: CODE_USED,
    45011: RATE_LIMITED,
    -1: WECHAT_UNAVAILABLE,
}


@dataclass(frozen=True)
class WechatSession:
    """What `jscode2session` answers: who signed in, and the key for their encrypted data."""

    openid: str
    unionid: str  # "" when WeChat gives none (no open-platform account bound)
    session_key: str


class WechatError(Exception):
    """WeChat refused a code or could not be reached.

    `code` is one of "invalid_code", "code_used", "rate_limited", "wechat_unavailable" and
    "wechat_error"; `message` is user-facing and translated; `errcode` is WeChat's own error
    code when WeChat answered with one.
    """

    def __init__(self, code: str, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errcode = errcode

    def __repr__(self) -> str:
        return f"WechatError(code={self.code!r}, message={self.message!r}, errcode={self.errcode})"


class WechatClient(Protocol):
    app_id: str

    def code_to_session(self, code: str) -> WechatSession:
        """Redeem a `wx.login` code; raise WechatError when WeChat refuses it."""
        ...

    def phone_number(self, code: str) -> str:
        """Redeem a `getPhoneNumber` code for the raw phone number WeChat gives (not E.164)."""
        ...


def _invalid_code_error(errcode: int | None = 40029) -> WechatError:
    return WechatError(
        INVALID_CODE,
        gettext("The WeChat code is invalid or has expired. Please try again."),
        errcode=errcode,
    )


def _code_used_error(errcode: int | None = 40163) -> WechatError:
    return WechatError(
        CODE_USED,
        gettext("The WeChat code has already been used. Please try again."),
        errcode=errcode,
    )


def _unavailable_error(errcode: int | None = None) -> WechatError:
    return WechatError(
        WECHAT_UNAVAILABLE,
        gettext("WeChat is not available at the moment. Please try again in a few minutes."),
        errcode=errcode,
    )


def _unexpected_answer_error() -> WechatError:
    return WechatError(WECHAT_ERROR, gettext("WeChat gave an unexpected answer."))


def error_for_errcode(errcode: int) -> WechatError:
    """The WechatError for an errcode WeChat answered with."""
    code = ERRCODE_TO_CODE.get(errcode, WECHAT_ERROR)
    if code == INVALID_CODE:
        return _invalid_code_error(errcode)
    if code == CODE_USED:
        return _code_used_error(errcode)
    if code == RATE_LIMITED:
        return WechatError(
            RATE_LIMITED,
            gettext("Too many sign-in attempts right now. Please wait a minute and try again."),
            errcode=errcode,
        )
    if code == WECHAT_UNAVAILABLE:
        return _unavailable_error(errcode)
    return WechatError(
        WECHAT_ERROR,
        gettext("WeChat refused the request (error %(errcode)s).") % {"errcode": errcode},
        errcode=errcode,
    )


def _check_code(code: str) -> None:
    """Refuse codes that cannot be WeChat's before asking anyone about them."""
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_LENGTH:
        raise _invalid_code_error()


class SandboxWechatClient:
    """Redeems `SandboxWechatCode` rows instead of asking WeChat: for development and tests."""

    def __init__(self, app_id: str = "sandbox-mini-program") -> None:
        self.app_id = app_id

    def code_to_session(self, code: str) -> WechatSession:
        row = self._redeem(code, SandboxCodeKind.LOGIN)
        return WechatSession(
            openid=row.openid, unionid=row.unionid, session_key=secrets.token_hex(16)
        )

    def phone_number(self, code: str) -> str:
        return self._redeem(code, SandboxCodeKind.PHONE).phone

    def _redeem(self, code: str, kind: SandboxCodeKind) -> SandboxWechatCode:
        _check_code(code)
        with transaction.atomic():
            row = SandboxWechatCode.objects.select_for_update().filter(code=code, kind=kind).first()
            if row is None:
                raise _invalid_code_error()
            if row.used_at is not None:
                raise _code_used_error()
            row.used_at = timezone.now()
            row.save(update_fields=["used_at"])
        return row

    def __repr__(self) -> str:
        return f"SandboxWechatClient(app_id={self.app_id!r})"


class HttpWechatClient:
    """The real WeChat service, over HTTPS with urllib. Never logs or reports the AppSecret."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        base_url: str = DEFAULT_API_BASE,
        timeout: float = 5.0,
    ) -> None:
        self.app_id = app_id
        self._app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HttpWechatClient(app_id={self.app_id!r}, base_url={self.base_url!r})"

    # --- the two calls ---------------------------------------------------------------------

    def code_to_session(self, code: str) -> WechatSession:
        _check_code(code)
        data = self._request(
            "/sns/jscode2session",
            {
                "appid": self.app_id,
                "secret": self._app_secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        self._raise_for_errcode(data, "/sns/jscode2session")
        openid = data.get("openid")
        session_key = data.get("session_key")
        unionid = data.get("unionid") or ""
        if not (isinstance(openid, str) and openid and isinstance(session_key, str)):
            logger.warning("WeChat jscode2session answered without an openid")
            raise _unexpected_answer_error()
        if not isinstance(unionid, str):
            raise _unexpected_answer_error()
        return WechatSession(openid=openid, unionid=unionid, session_key=session_key)

    def phone_number(self, code: str) -> str:
        _check_code(code)
        path = "/wxa/business/getuserphonenumber"
        body = {"code": code}
        data = self._request(path, {"access_token": self._access_token()}, body)
        if _errcode(data) in TOKEN_ERRCODES:
            # The cached token was revoked or expired early (another server fetched a new one,
            # say): drop it, fetch a fresh one and try once more.
            cache.delete(self._token_cache_key())
            data = self._request(path, {"access_token": self._access_token()}, body)
        self._raise_for_errcode(data, path)
        info = data.get("phone_info")
        if not isinstance(info, dict):
            raise _unexpected_answer_error()
        pure = info.get("purePhoneNumber")
        country = str(info.get("countryCode") or "")
        if isinstance(pure, str) and pure:
            return pure if country in ("", "86") else f"+{country}{pure}"
        full = info.get("phoneNumber")
        if isinstance(full, str) and full:
            return full
        raise _unexpected_answer_error()

    # --- access token ----------------------------------------------------------------------

    def _token_cache_key(self) -> str:
        return f"members:wechat:access_token:{self.app_id}"

    def _access_token(self) -> str:
        key = self._token_cache_key()
        token = cache.get(key)
        if isinstance(token, str) and token:
            return token
        data = self._request(
            "/cgi-bin/token",
            {"grant_type": "client_credential", "appid": self.app_id, "secret": self._app_secret},
        )
        self._raise_for_errcode(data, "/cgi-bin/token")
        token = data.get("access_token")
        if not (isinstance(token, str) and token):
            logger.warning("WeChat cgi-bin/token answered without an access_token")
            raise _unexpected_answer_error()
        expires_in = data.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int) else 7200
        if lifetime - TOKEN_EXPIRY_MARGIN > 0:
            cache.set(key, token, timeout=lifetime - TOKEN_EXPIRY_MARGIN)
        return token

    # --- HTTP ------------------------------------------------------------------------------

    def _request(
        self, path: str, query: dict[str, str], body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """GET (or POST `body` as JSON to) `path`; return the JSON object WeChat answered.

        Any failure to get a JSON object back is "wechat_unavailable". Nothing logged or
        raised here mentions the URL, since its query carries the secret or the token.
        """
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(query)}"
        if body is None:
            request = urllib.request.Request(url, method="GET")
        else:
            request = urllib.request.Request(
                url,
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            logger.warning("WeChat %s answered HTTP %s", path, status)
            if status >= 500:
                raise _unavailable_error() from None
            raise WechatError(
                WECHAT_ERROR,
                gettext("WeChat refused the request (HTTP %(status)s).") % {"status": status},
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # URLError also covers refused connections and DNS failures; OSError timeouts.
            logger.warning("WeChat %s unreachable: %s", path, type(exc).__name__)
            raise _unavailable_error() from None
        try:
            data = json.loads(raw)
        except ValueError:
            logger.warning("WeChat %s answered something that is not JSON", path)
            raise _unavailable_error() from None
        if not isinstance(data, dict):
            logger.warning("WeChat %s answered JSON that is not an object", path)
            raise _unavailable_error()
        return data

    def _raise_for_errcode(self, data: dict[str, Any], path: str) -> None:
        errcode = _errcode(data)
        if errcode:
            errmsg = str(data.get("errmsg", ""))[:200]
            if self._app_secret:
                errmsg = errmsg.replace(self._app_secret, "***")
            logger.warning("WeChat %s answered errcode %s: %s", path, errcode, errmsg)
            raise error_for_errcode(errcode)


def _errcode(data: dict[str, Any]) -> int:
    """WeChat's errcode in an answer, 0 when there is none (success)."""
    value = data.get("errcode", 0)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return 0


def get_wechat_client() -> WechatClient:
    """The real WeChat client when the settings hold the mini-program's credentials, else the
    sandbox."""
    app_id = str(getattr(settings, "WECHAT_APP_ID", "") or "")
    app_secret = str(getattr(settings, "WECHAT_APP_SECRET", "") or "")
    if app_id and app_secret:
        base_url = str(getattr(settings, "WECHAT_API_BASE", "") or DEFAULT_API_BASE)
        return HttpWechatClient(app_id=app_id, app_secret=app_secret, base_url=base_url)
    return SandboxWechatClient()
