"""Behaviour events: batches in (good kept, bad refused with reasons, replays ignored) and
their effects out (points, QR-code tags and guides, lifecycle), each exactly once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import (
    AssignmentReason,
    EarnRule,
    GuideAssignment,
    Identity,
    LedgerEntry,
    LifecycleStage,
    Member,
    MemberTag,
)
from members.services.earning import earn_rules_ensure_defaults
from members.services.errors import MemberError
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, TagFactory
from tests.org.factories import StaffFactory
from touchpoints.api.auth import key_hash, new_event_key
from touchpoints.models import (
    BehaviourEvent,
    Channel,
    EventClient,
    QrCode,
    QrCodeGuide,
    Touchpoint,
)
from touchpoints.services.events import events_apply, events_ingest
from touchpoints.services.qr import qr_scan

pytestmark = pytest.mark.django_db


def now_iso(**delta: float) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


def event(n: int | str, kind: str = "browse_product", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e-{n}",
        "type": kind,
        "time": extra.pop("time", now_iso(minutes=-1)),
        "identity": extra.pop("identity", [{"kind": "unionid", "value": "u-wang"}]),
        **extra,
    }


@pytest.fixture
def wang(org: Org) -> Member:
    member = org.member_of_guide_a1
    IdentityFactory(member=member, kind="unionid", value="u-wang")
    return member


@pytest.fixture
def channel(db: None) -> Channel:
    return Channel.objects.create(kind="wecom", name="企业微信", code="wecom")


def make_qr(
    channel: Channel, store: Any, guides: list[Any], caps: list[int | None] | None = None, **kw: Any
) -> QrCode:
    touchpoint = Touchpoint.objects.create(
        channel=channel,
        kind="qr_code",
        name=kw.pop("name", "门店活码"),
        code=kw.pop("code", "qr-a1"),
        store=store,
    )
    qr = QrCode.objects.create(touchpoint=touchpoint, **kw)
    for position, guide in enumerate(guides):
        QrCodeGuide.objects.create(
            qr_code=qr,
            guide=guide,
            position=position,
            daily_cap=(caps or [None] * len(guides))[position],
        )
    return qr


# --- ingest ---------------------------------------------------------------------------------


def test_a_batch_keeps_the_good_events_and_reports_the_bad(wang: Member) -> None:
    batch = [
        event(1),
        event(2, kind="teleport"),
        event(3, time="yesterday"),
        event(4, time=now_iso(hours=2)),
        event(5, identity=[{"kind": "phone", "value": "12345"}]),
        event(6, properties={"blob": "x" * 5000}),
        event(7, kind="review", properties={"rating": 9}),
        {"type": "like"},
        "not an object",
        event(8, kind="like"),
        event(9, touchpoint="no-such-place"),
    ]
    result = events_ingest(events=batch)
    assert result.accepted == 2
    assert [(r.index, r.code) for r in result.rejected] == [
        (1, "type_unknown"),
        (2, "time_invalid"),
        (3, "time_future"),
        (4, "phone_invalid"),
        (5, "properties_too_large"),
        (6, "rating_invalid"),
        (7, "id_invalid"),
        (8, "event_invalid"),
        (10, "touchpoint_unknown"),
    ]
    assert sorted(BehaviourEvent.objects.values_list("client_event_id", "type", "member_id")) == [
        ("e-1", "browse_product", wang.pk),
        ("e-8", "like", wang.pk),
    ]


def test_a_replayed_event_changes_nothing(wang: Member) -> None:
    earn_rules_ensure_defaults()
    first = events_ingest(events=[event(1, kind="sign_in")])
    events_apply(ids=first.event_ids)
    balance = list(LedgerEntry.objects.values_list("pk", "amount"))
    assert balance and balance[0][1] == EarnRule.objects.get(event="sign_in").points
    again = events_ingest(events=[event(1, kind="sign_in"), event(1, kind="sign_in")])
    assert (again.accepted, again.duplicates, again.event_ids) == (0, 2, [])
    assert BehaviourEvent.objects.count() == 1
    assert list(LedgerEntry.objects.values_list("pk", "amount")) == balance


def test_whole_batch_errors_store_nothing(wang: Member) -> None:
    for batch, code in (
        ([], "batch_invalid"),
        ("events", "batch_invalid"),
        ([event(n) for n in range(501)], "batch_too_large"),
    ):
        with pytest.raises(MemberError) as exc:
            events_ingest(events=batch)
        assert exc.value.code == code
    assert not BehaviourEvent.objects.exists()


def test_an_unknown_person_joins_the_pool_as_a_private_domain_user(db: None) -> None:
    result = events_ingest(
        events=[event(1, kind="follow", identity=[{"kind": "unionid", "value": "u-new"}])]
    )
    assert result.accepted == 1
    member = Identity.objects.get(value="u-new").member
    events_apply(ids=result.event_ids)
    member.refresh_from_db()
    assert member.lifecycle_stage == LifecycleStage.PRIVATE


def test_effects_apply_once_however_often_they_run(wang: Member) -> None:
    earn_rules_ensure_defaults()
    result = events_ingest(events=[event(1, kind="share"), event(2, kind="like")])
    first = events_apply(ids=result.event_ids)
    second = events_apply(ids=result.event_ids)
    assert (first.events, second.events) == (2, 0)
    rules = dict(EarnRule.objects.values_list("event", "points"))
    assert first.points == rules["share"] + rules["like"]
    assert LedgerEntry.objects.count() == 2
    assert BehaviourEvent.objects.filter(applied_at__isnull=True).count() == 0


# --- channel QR codes -----------------------------------------------------------------------


def test_a_scan_tags_the_member_and_assigns_the_rotations_next_guide(
    org: Org, channel: Channel
) -> None:
    tag = TagFactory(name="企微活码")
    qr = make_qr(channel, org.a1, [org.guide_a1, org.guide_a1_other])
    qr.tags.add(tag)
    people = []
    for n in range(3):
        member = MemberFactory(home_store=org.a1, guide=None)
        IdentityFactory(member=member, kind="unionid", value=f"u-scan-{n}")
        people.append(member)
    batch = [
        event(
            n,
            kind="scan",
            identity=[{"kind": "unionid", "value": f"u-scan-{n}"}],
            properties={"qr": qr.token},
        )
        for n in range(3)
    ]
    result = events_ingest(events=batch)
    assert result.accepted == 3 and not result.rejected
    effects = events_apply(ids=result.event_ids)
    assert (effects.tagged, effects.assigned) == (3, 3)
    guides = [Member.objects.get(pk=m.pk).guide_id for m in people]
    assert guides == [org.guide_a1.pk, org.guide_a1_other.pk, org.guide_a1.pk]
    assert MemberTag.objects.filter(tag=tag, source="channel_qr").count() == 3
    assert set(
        GuideAssignment.objects.filter(member__in=people).values_list("reason", flat=True)
    ) == {AssignmentReason.QR_CODE}
    assert set(BehaviourEvent.objects.values_list("touchpoint_id", flat=True)) == {qr.touchpoint_id}


def test_rotation_skips_guides_at_their_cap_then_uses_the_backup(
    org: Org, channel: Channel
) -> None:
    backup = StaffFactory(role="guide", stores=[org.a1])
    qr = make_qr(
        channel, org.a1, [org.guide_a1, org.guide_a1_other], caps=[1, 1], backup_guide=backup
    )
    got = []
    for _n in range(4):
        member = MemberFactory(home_store=org.a1, guide=None)
        got.append(qr_scan(touchpoint_id=qr.touchpoint_id, member_id=member.pk).guide_id)
    assert got == [org.guide_a1.pk, org.guide_a1_other.pk, backup.pk, backup.pk]


def test_a_scan_keeps_an_existing_guide_and_an_expired_code_is_refused(
    org: Org, channel: Channel
) -> None:
    qr = make_qr(channel, org.a1, [org.guide_a1_other])
    kept = qr_scan(touchpoint_id=qr.touchpoint_id, member_id=org.member_of_guide_a1.pk)
    assert (kept.assigned, kept.guide_id) == (0, org.guide_a1.pk)
    QrCode.objects.filter(pk=qr.pk).update(valid_until=timezone.now() - timedelta(days=1))
    before = list(Member.objects.values_list("pk", "guide_id"))
    with pytest.raises(MemberError) as exc:
        qr_scan(touchpoint_id=qr.touchpoint_id, member_id=org.member_a1_unassigned.pk)
    assert exc.value.code == "qr_expired"
    assert list(Member.objects.values_list("pk", "guide_id")) == before


def test_unknown_qr_token_is_refused(wang: Member) -> None:
    result = events_ingest(events=[event(1, kind="scan", properties={"qr": "nope"})])
    assert [(r.index, r.code) for r in result.rejected] == [(0, "qr_unknown")]
    assert not BehaviourEvent.objects.exists()


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def key(channel: Channel) -> str:
    raw = new_event_key()
    EventClient.objects.create(
        name="小程序后台", channel=channel, key_hash=key_hash(raw), key_hint=raw[-4:]
    )
    return raw


def post(client: Client, body: Any, auth: str) -> Any:
    return client.post(
        "/api/v1/events",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


def test_events_api_with_an_event_key(client: Client, wang: Member, key: str) -> None:
    response = post(client, {"events": [event(1), event(2, kind="nope")]}, f"EventKey {key}")
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [
            {
                "index": 1,
                "id": "e-2",
                "code": "type_unknown",
                "message": response.json()["rejected"][0]["message"],
            }
        ],
    }
    again = post(client, {"events": [event(1)]}, f"EventKey {key}")
    assert again.json()["duplicates"] == 1
    assert BehaviourEvent.objects.get().client_id == EventClient.objects.get().pk


def test_events_api_refuses_bad_requests_and_stores_nothing(
    client: Client, wang: Member, key: str, settings: Any
) -> None:
    assert post(client, {"events": [event(1)]}, "EventKey wrong").status_code == 401
    assert post(client, {"events": [event(1)]}, "").status_code in (401, 403)
    too_many = post(client, {"events": [event(n) for n in range(501)]}, f"EventKey {key}")
    assert (too_many.status_code, too_many.json()["code"]) == (413, "batch_too_large")
    assert post(client, {"nothing": 1}, f"EventKey {key}").json()["code"] == "batch_invalid"
    broken = client.post(
        "/api/v1/events",
        data=b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"EventKey {key}",
    )
    assert broken.status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = post(client, {"events": [event(n) for n in range(20)]}, f"EventKey {key}")
    assert (big.status_code, big.json()["code"]) == (413, "payload_too_large")
    assert not BehaviourEvent.objects.exists()


def test_a_member_posts_only_their_own_events(client: Client, org: Org, wang: Member) -> None:
    from members.services.auth import _open_session

    other = org.member_of_guide_a1_other
    IdentityFactory(member=other, kind="unionid", value="u-li")
    tokens = _open_session(wang, "wx-app")
    auth = f"Bearer {tokens.access}"
    batch = {
        "events": [
            {"id": "m-1", "type": "browse_product", "time": now_iso(minutes=-1)},
            event(2, identity=[{"kind": "unionid", "value": "u-li"}]),
        ]
    }
    response = post(client, batch, auth)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "identity_not_yours")]
    assert list(BehaviourEvent.objects.values_list("member_id", flat=True)) == [wang.pk]


# --- what a member's own token may and may not do (review findings) ---------------------


def test_a_member_cannot_mint_points_or_link_identities(
    client: Client, org: Org, wang: Member
) -> None:
    from members.models import MergeSuggestion
    from members.services.auth import _open_session

    earn_rules_ensure_defaults()
    IdentityFactory(member=org.member_b1, kind="unionid", value="u-qian")
    auth = f"Bearer {_open_session(wang, 'wx-app').access}"
    members_before = Member.all_objects.count()
    batch = (
        [{"id": f"reg-{n}", "type": "register", "time": now_iso(minutes=-1)} for n in range(5)]
        + [{"id": f"sign-{n}", "type": "sign_in", "time": now_iso(days=-n)} for n in range(3)]
        + [
            event("x-1", identity=[{"kind": "phone", "value": "13912345678"}]),
            event(
                "x-2",
                identity=[
                    {"kind": "unionid", "value": "u-wang"},
                    {"kind": "phone", "value": "13912345679"},
                ],
            ),
            event("x-3", identity=[{"kind": "unionid", "value": "u-qian"}]),
        ]
    )
    body = post(client, {"events": batch}, auth).json()
    assert body["accepted"] == 8
    assert [r["code"] for r in body["rejected"]] == ["identity_not_yours"] * 3
    assert Member.all_objects.count() == members_before
    assert not Identity.objects.filter(value__startswith="+861391234567").exists()
    assert not MergeSuggestion.objects.exists()
    events_apply(ids=list(BehaviourEvent.objects.values_list("pk", flat=True)))
    rules = dict(EarnRule.objects.values_list("event", "points"))
    earned = sum(LedgerEntry.objects.filter(account__member=wang).values_list("amount", flat=True))
    assert earned == rules["register"] + rules["sign_in"]  # once each, however many sent


def test_two_sources_may_use_the_same_ids(client: Client, wang: Member, key: str) -> None:
    from members.services.auth import _open_session

    auth = f"Bearer {_open_session(wang, 'wx-app').access}"
    mine = {"events": [{"id": "1", "type": "like", "time": now_iso(minutes=-1)}]}
    assert post(client, mine, auth).json()["accepted"] == 1
    assert post(client, {"events": [event("1")]}, f"EventKey {key}").json()["accepted"] == 1
    assert post(client, mine, auth).json()["duplicates"] == 1
    assert BehaviourEvent.objects.count() == 2


def test_a_nul_character_refuses_only_that_event(wang: Member) -> None:
    result = events_ingest(
        events=[
            event(1, properties={"note": "a\x00b"}),
            event("2\x00"),
            event(3),
            event(4, identity=[{"kind": "unionid", "value": "u\x00x"}]),
            event(5, touchpoint="qr\x00"),
        ]
    )
    assert result.accepted == 1
    assert [(r.index, r.code) for r in result.rejected] == [
        (0, "nul_character"),
        (1, "nul_character"),
        (3, "nul_character"),
        (4, "nul_character"),
    ]


def test_effects_follow_a_merge_made_after_the_event_arrived(org: Org, wang: Member) -> None:
    from members.services.merge import member_merge

    earn_rules_ensure_defaults()
    result = events_ingest(events=[event(1, kind="share")])
    member_merge(keep=org.member_b1, drop=wang, actor=org.hq_admin)
    effects = events_apply(ids=result.event_ids)
    assert effects.events == 1 and effects.points == EarnRule.objects.get(event="share").points
    assert LedgerEntry.objects.get().account.member_id == org.member_b1.pk


def test_a_merge_moves_behaviour_and_undo_moves_it_back(org: Org, wang: Member) -> None:
    from members.services.merge import member_merge, member_merge_undo

    result = events_ingest(events=[event(1)])
    merge = member_merge(keep=org.member_b1, drop=wang, actor=org.hq_admin)
    assert BehaviourEvent.objects.get(pk=result.event_ids[0]).member_id == org.member_b1.pk
    member_merge_undo(merge=merge, actor=org.hq_admin)
    assert BehaviourEvent.objects.get(pk=result.event_ids[0]).member_id == wang.pk
