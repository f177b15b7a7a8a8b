"""Mini-program sign-in: WeChat login code → member → access and refresh tokens.

Access tokens are signed (no database row), short-lived and name a session; refresh
tokens are random, stored only as a hash, rotated on use and revocable.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import PHONE_FIELDS, Channel, Identity, IdentityKind, Member, MemberSession
from members.phones import InvalidPhone, normalize_phone
from members.services.errors import Conflict, MemberError
from members.services.identity import (
    IdentityKey,
    identity_key,
    member_resolve_with_retry,
    merge_suggestion_raise,
    phone_key,
)
from members.services.lifecycle import member_refresh_stage
from members.services.phones import phone_holder
from members.signals import member_registered
from members.wechat import WechatClient, WechatError

ACCESS_TTL = timedelta(hours=2)
REFRESH_TTL = timedelta(days=30)
ACCESS_SALT = "members.access-token"

WECHAT_STATUS = {"invalid_code": 400, "code_used": 400, "rate_limited": 429}


@dataclass
class Tokens:
    access: str
    refresh: str
    access_expires_in: int
    member: Member


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(session: MemberSession, refresh: str) -> Tokens:
    """Tokens for a saved session whose hash matches `refresh`."""
    return Tokens(
        access=signing.dumps({"sid": session.pk}, salt=ACCESS_SALT),
        refresh=refresh,
        access_expires_in=int(ACCESS_TTL.total_seconds()),
        member=session.member,
    )


def _wechat_error(exc: WechatError) -> MemberError:
    return MemberError(exc.code, exc.message, status=WECHAT_STATUS.get(exc.code, 502))


def wechat_login(*, code: str, client: WechatClient) -> Tokens:
    """Exchange a wx.login code; find or create the member; open a session.

    Not one transaction on purpose: a conflict's merge suggestion must be kept even
    though the login is refused.
    """
    if not isinstance(code, str) or not code.strip():
        raise MemberError("code_missing", _("A WeChat login code is required."))
    try:
        wx = client.code_to_session(code.strip())
    except WechatError as exc:
        raise _wechat_error(exc) from exc
    keys = [identity_key(IdentityKind.OPENID, wx.openid, app=client.app_id)]
    if wx.unionid:
        keys.append(identity_key(IdentityKind.UNIONID, wx.unionid))
    resolution = member_resolve_with_retry(identities=keys, source=Channel.MINI_PROGRAM)
    if resolution.member is None:
        raise Conflict(
            "identity_conflict",
            _(
                "This WeChat account matches two members; staff will review it. "
                "Please try again later."
            ),
        )
    return _open_session(resolution.member, client.app_id)


@transaction.atomic
def _open_session(member: Member, app: str) -> Tokens:
    refresh = secrets.token_urlsafe(32)
    session = MemberSession.objects.create(
        member=member,
        app=app,
        refresh_token_hash=_hash(refresh),
        expires_at=timezone.now() + REFRESH_TTL,
    )
    return _issue(session, refresh)


@transaction.atomic
def tokens_refresh(*, refresh: str) -> Tokens:
    if not isinstance(refresh, str) or not refresh:
        raise MemberError("refresh_missing", _("A refresh token is required."))
    session = (
        MemberSession.objects.select_for_update()
        .select_related("member")
        .filter(refresh_token_hash=_hash(refresh))
        .first()
    )
    if session is None or session.revoked_at is not None or session.expires_at <= timezone.now():
        raise MemberError(
            "refresh_invalid",
            _("The refresh token is invalid or expired; sign in again."),
            status=401,
        )
    refresh = secrets.token_urlsafe(32)
    session.refresh_token_hash = _hash(refresh)
    session.expires_at = timezone.now() + REFRESH_TTL
    session.save(update_fields=["refresh_token_hash", "expires_at"])
    return _issue(session, refresh)


def session_from_access_token(token: str) -> MemberSession | None:
    try:
        payload = signing.loads(token, salt=ACCESS_SALT, max_age=ACCESS_TTL)
    except signing.BadSignature:
        return None
    sid = payload.get("sid") if isinstance(payload, dict) else None
    if not isinstance(sid, int):
        return None
    session = _live_session(sid)
    if session is None or session.member.merged_into_id is not None:
        return None
    return session


def _columns(model: Any) -> list[str]:
    return [field.column for field in model._meta.concrete_fields]


def _live_session(session_id: int) -> MemberSession | None:
    """The session with its member and home store, in one prepared statement: every
    mini-program request authenticates, and building this through the ORM cost more
    than the rest of a member-card request."""
    import psycopg
    from django.db import connection

    from scrm.org.models import Store

    parts = [(MemberSession, "s"), (Member, "m"), (Store, "st")]
    select = ", ".join(f"{alias}.{column}" for model, alias in parts for column in _columns(model))
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT {select} FROM members_membersession s "
            "JOIN members_member m ON m.id = s.member_id "
            "LEFT JOIN org_store st ON st.id = m.home_store_id "
            "WHERE s.id = %s AND s.revoked_at IS NULL AND s.expires_at > %s",
            [session_id, timezone.now()],
            prepare=True,
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    built = []
    for model, _alias in parts:
        names = [field.attname for field in model._meta.concrete_fields]
        chunk, values = values[: len(names)], values[len(names) :]
        built.append(None if chunk[0] is None else model.from_db("default", names, chunk))
    session, member, store = built
    assert isinstance(session, MemberSession) and isinstance(member, Member)
    member._state.fields_cache["home_store"] = store
    session._state.fields_cache["member"] = member
    return session


def session_revoke(*, session: MemberSession) -> None:
    MemberSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def member_bind_phone(*, member: Member, phone_code: str, client: WechatClient) -> Member:
    """Bind the phone WeChat vouches for; the person becomes a member (会员).

    A phone that belongs to another member is not bound: a merge suggestion is queued
    (and kept, outside the refused bind) for staff to decide.
    """
    if not isinstance(phone_code, str) or not phone_code.strip():
        raise MemberError("code_missing", _("A getPhoneNumber code is required."))
    try:
        raw = client.phone_number(phone_code.strip())
    except WechatError as exc:
        raise _wechat_error(exc) from exc
    try:
        phone = normalize_phone(raw)
    except InvalidPhone as exc:
        raise MemberError("phone_invalid", exc.messages[0]) from exc
    key = phone_key(phone)
    holder = phone_holder(phone=phone, member=member)
    if holder is not None:
        merge_suggestion_raise(
            first=member,
            second=holder,
            reason="phone bound in the mini-program belongs to another member",
            evidence=[key.describe()],
        )
        raise Conflict(
            "phone_conflict",
            _(
                "This phone number belongs to another member record; staff will review and "
                "merge them. Nothing was changed."
            ),
        )
    member = _bind_phone(member=member, phone=phone, key=key)
    # Registration is what earns an inviter's referral reward (campaigns listens).
    member_registered.send(sender=Member, member=member)
    return member


@transaction.atomic
def _bind_phone(*, member: Member, phone: str, key: IdentityKey) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    # During a key rotation the member's rows may still hold a previous key's digest.
    digests = key.lookup_values()
    if member.has_phone and member.phone_digest not in digests:
        raise Conflict(
            "phone_already_bound", _("A different phone number is already bound to this member.")
        )
    mine = Identity.objects.filter(kind=IdentityKind.PHONE, app="", member=member)
    if not mine.filter(value__in=digests).exists():
        try:
            with transaction.atomic():
                Identity.objects.get_or_create(
                    kind=IdentityKind.PHONE,
                    app="",
                    value=key.value,
                    defaults={"member": member, "source": Channel.MINI_PROGRAM, "hint": key.hint},
                )
        except IntegrityError as exc:  # bound to someone else a moment ago
            raise Conflict(
                "phone_conflict",
                _("This phone number was just bound to another member; try again."),
            ) from exc
        if not mine.filter(value=key.value).exists():
            raise Conflict(
                "phone_conflict",
                _("This phone number belongs to another member record; staff will review it."),
            )
    fields = []
    if not member.has_phone:
        member.set_phone(phone)
        fields.extend(PHONE_FIELDS)
    if member.member_since is None:
        member.member_since = timezone.now()
        fields.append("member_since")
    if fields:
        member.save(update_fields=[*fields, "updated_at"])
    member_refresh_stage(member=member, reason="phone bound")
    return member


PROFILE_EDITABLE = ("name", "gender", "birthday", "city")


@transaction.atomic
def member_update_profile(*, member: Member, data: dict[str, Any]) -> Member:
    """The fields a member may edit themselves (validated by the caller's serializer)."""
    fields = [name for name in PROFILE_EDITABLE if name in data]
    for name in fields:
        setattr(member, name, data[name])
    if fields:
        member.save(update_fields=[*fields, "updated_at"])
    return member
