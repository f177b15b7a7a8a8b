"""Rotating the personal-data key: values sealed and digested under the previous key stay
readable and findable while SCRM_PII_PREVIOUS_KEYS lists it, and `rotate_pii_key` moves
every stored phone to the current key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings

from campaigns.models import Referral, ReferralProgramme, ReferralRejection, ReferralStatus
from members.models import (
    Identity,
    IdentityKind,
    Member,
    MemberMerge,
    MergeSuggestion,
    SuggestionStatus,
)
from members.selectors import member_list, members_from_list
from members.services.identity import identity_key, member_resolve
from members.services.merge import member_merge, member_merge_undo
from members.services.segments import segment_list_match
from scrm.audit.models import AuditAction, AuditEvent
from scrm.audit.selectors import changes
from scrm.audit.tables import table_label
from scrm.core.checks import check_pii_key
from scrm.core.pii import open_phone, phone_digest, seal_phone, unseal
from scrm.org.scoping import Role
from tests.campaigns.test_referrals import Visitor
from tests.members.factories import MemberFactory, phone_identity
from tests.org.factories import StaffFactory, StoreFactory
from tests.touchpoints.files import csv_bytes, upload
from touchpoints.imports.jobs import import_job_create, import_job_run

pytestmark = pytest.mark.django_db

KEY_A = "old-key-Zt4nV9qLr2Wm7xKc5Hb8pJd3Fs6gYe1Ua0oQi"
KEY_B = "new-key-Qm3vX8kPz1Rt6yWc9Lb2Hn5Jd7Fs4gEa0uTo"
KEY_C = "oldest-key-Hc7Wq2Lm9Xz4Rt8Vn1Kb6Jp3Ys5dGe0fA"
UNDER_A = override_settings(PII_KEY=KEY_A, PII_PREVIOUS_KEYS=[])
ROTATING = override_settings(PII_KEY=KEY_B, PII_PREVIOUS_KEYS=[KEY_A])
UNDER_B = override_settings(PII_KEY=KEY_B, PII_PREVIOUS_KEYS=[])

KEPT, DROPPED = "+8613812341234", "+8613900005678"
PLAIN, SECOND = "+8613700009999", "+8613611112222"


def _legacy_seal(key: str, phone: str) -> bytes:
    """A value sealed before sealed values named their key: nonce, ciphertext and tag."""
    seal_key = hmac.new(key.encode(), b"phone seal v1", hashlib.sha256).digest()
    nonce = os.urandom(12)
    return nonce + AESGCM(seal_key).encrypt(nonce, phone.encode(), None)


def _run(*args: str) -> tuple[dict[str, Any], str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_pii_key", *args, stdout=out, stderr=err)
    lines = out.getvalue().strip().splitlines()
    return json.loads(lines[-1]), out.getvalue(), err.getvalue()


def _state() -> list[Any]:
    """Every stored form of a phone, to compare before and after."""
    return [
        sorted(
            (m.pk, m.phone_digest, bytes(m.phone_sealed) if m.phone_sealed else None)
            for m in Member.all_objects.all()
        ),
        sorted(Identity.objects.values_list("pk", "member_id", "value")),
        sorted(MergeSuggestion.objects.values_list("pk", "evidence")),
        sorted(Referral.objects.values_list("pk", "invitee_phone")),
        sorted(MemberMerge.objects.values_list("pk", "kept_before", "dropped_before")),
        AuditEvent.objects.count(),
    ]


def _holder(phone: str) -> Member | None:
    return member_resolve(
        identities=[identity_key("phone", phone)], source="pos", create=False
    ).member


@pytest.fixture
def pool(db: None) -> Iterator[dict[str, Any]]:
    """Under key A: two members merged (the merged-away one keeps its sealed phone, its
    phone identity moved to the kept one), a member with a legacy prefix-less seal, a
    conflict's suggestion naming a phone, an erased member's emptied suggestion and a
    credited referral."""
    with UNDER_A:
        store = StoreFactory()
        admin = StaffFactory(username="hq_admin", role=Role.HQ_ADMIN, is_staff=True)
        kept = MemberFactory(phone=KEPT, home_store=store)
        dropped = MemberFactory(phone=DROPPED, home_store=store)
        for member in (kept, dropped):
            phone_identity(member)
        merge = member_merge(keep=kept, drop=dropped, actor=admin)
        plain = MemberFactory(
            phone="",
            home_store=store,
            phone_digest=phone_digest(PLAIN),
            phone_last4=PLAIN[-4:],
            phone_sealed=_legacy_seal(KEY_A, PLAIN),
        )
        phone_identity(plain, PLAIN)
        union = MemberFactory(phone="", home_store=store)
        Identity.objects.create(member=union, kind=IdentityKind.UNIONID, value="oU-rot")
        conflict = member_resolve(
            identities=[identity_key("unionid", "oU-rot"), identity_key("phone", PLAIN)],
            source="mini_program",
        )
        assert conflict.member is None
        MergeSuggestion.objects.create(
            member_a=plain,
            member_b=union,
            reason="x",
            evidence={},
            status=SuggestionStatus.DISMISSED,
        )
        Referral.objects.create(
            invitee=plain,
            inviter=kept,
            device_id="device-1",
            status=ReferralStatus.CREDITED,
            invitee_phone=phone_digest(PLAIN),
        )
    yield {
        "kept": kept,
        "dropped": dropped,
        "plain": plain,
        "union": union,
        "merge": merge,
        "admin": admin,
        "store": store,
    }


# --- keys ------------------------------------------------------------------------------------


def test_a_sealed_value_names_its_key_and_opens_while_that_key_is_configured() -> None:
    with UNDER_A:
        sealed_a = seal_phone(KEPT)
        digest_a = phone_digest(KEPT)
    legacy_a = _legacy_seal(KEY_A, KEPT)
    with ROTATING:
        # The cached keys follow the settings: the current key is B now.
        assert phone_digest(KEPT) != digest_a
        assert unseal(sealed_a).phone == KEPT and not unseal(sealed_a).current
        assert open_phone(legacy_a) == KEPT and not unseal(legacy_a).current
        sealed_b = seal_phone(KEPT)
        assert unseal(sealed_b).current and open_phone(memoryview(sealed_b)) == KEPT
        tampered = sealed_a[:-1] + bytes([sealed_a[-1] ^ 1])
        with pytest.raises(InvalidTag):
            open_phone(tampered)
    with UNDER_B:
        assert open_phone(sealed_b) == KEPT
        for unknown in (sealed_a, legacy_a):
            with pytest.raises(InvalidTag):
                open_phone(unknown)
    with UNDER_A:
        # Legacy values keep opening with the key that sealed them, rotation or not.
        assert open_phone(legacy_a) == KEPT and phone_digest(KEPT) == digest_a


# --- lookups during a rotation ---------------------------------------------------------------


def test_lookups_find_rows_still_under_the_previous_key(pool: dict[str, Any]) -> None:
    kept, plain, admin = pool["kept"], pool["plain"], pool["admin"]
    with ROTATING:
        assert kept.reveal_phone() == KEPT and plain.reveal_phone() == PLAIN
        # The identity service: found, and linking a new id adds no second phone identity.
        assert _holder(KEPT) == kept and _holder(DROPPED) == kept
        linked = member_resolve(
            identities=[identity_key("phone", KEPT), identity_key("tmall", "tb-rot")],
            source="tmall",
        )
        assert linked.member == kept and not linked.created
        assert [i.kind for i in linked.linked] == [IdentityKind.TMALL]
        # HQ search, the bulk-tag list and an uploaded segment list.
        assert list(member_list(user=admin, search="138 1234 1234")) == [kept]
        assert members_from_list(user=admin, entries=["13700009999"]) == ([plain.pk], [])
        match = segment_list_match(rows=[(1, "13812341234")], column="phone", user=admin)
        assert match.member_ids == [kept.pk] and match.not_found == 0
        # An import names the same person: no new member, no second phone identity.
        job = import_job_create(
            upload=upload("members.csv", csv_bytes([["手机号", "城市"], ["13812341234", "杭州"]])),
            kind="members",
            source="generic",
            actor=None,
            enqueue=False,
        )
        assert import_job_run(job.pk, worker="test") is not None
        job.refresh_from_db()
    assert Member.all_objects.count() == 4
    assert Identity.objects.filter(kind=IdentityKind.PHONE, member=kept).count() == 2
    with UNDER_B:
        # Without the previous key nothing under it is found: the command is what moves it.
        assert _holder(KEPT) is None


def test_binding_a_phone_in_the_mini_program_sees_the_previous_keys_rows(
    client: Client,
) -> None:
    with UNDER_A:
        holder = MemberFactory(phone=KEPT)
        phone_identity(holder)
        own = Visitor(client)
        assert own.register("13900005678").status_code == 200
    with ROTATING:
        # Someone else's number under key A: refused, nothing bound.
        other = Visitor(client)
        identities = Identity.objects.count()
        response = other.register("13812341234")
        assert response.status_code == 409 and response.json()["code"] == "phone_conflict"
        assert Identity.objects.count() == identities
        other.member.refresh_from_db()
        assert not other.member.has_phone
        # Their own number again: accepted, and no second phone identity.
        assert own.register("13900005678").status_code == 200
        assert Identity.objects.filter(member=own.member, kind=IdentityKind.PHONE).count() == 1


def test_a_referral_sees_a_reward_recorded_under_the_previous_key(client: Client) -> None:
    ReferralProgramme.objects.update_or_create(
        pk=1, defaults={"active": True, "level1_points": 100, "level2_points": 20}
    )
    with UNDER_A:
        Referral.objects.create(  # the number earned someone a reward before the rotation
            invitee=MemberFactory(phone=""),
            inviter=MemberFactory(phone=""),
            device_id="old",
            status=ReferralStatus.CREDITED,
            invitee_phone=phone_digest(KEPT),
        )
    with ROTATING:
        inviter, invitee = Visitor(client), Visitor(client)
        assert invitee.claim(inviter.code(), "device-new").status_code == 201
        assert invitee.register("13812341234").status_code == 200
        referral = Referral.objects.get(invitee=invitee.member)
        assert referral.status == ReferralStatus.REJECTED
        assert referral.rejected_reason == ReferralRejection.PHONE_REPEATED
        assert referral.invitee_phone == phone_digest(KEPT)  # the current key's


# --- the command -----------------------------------------------------------------------------


def test_the_command_rekeys_every_table_and_a_second_run_changes_nothing(
    pool: dict[str, Any],
) -> None:
    kept, dropped, plain, merge = pool["kept"], pool["dropped"], pool["plain"], pool["merge"]
    with ROTATING:
        before = AuditEvent.objects.count()
        summary, out, err = _run("--batch-size", "2")
    assert summary["mode"] == "rotate"
    assert summary["rows"] == {
        "campaigns_referral": 1,
        "members_identity": 3,
        "members_member": 3,
        "members_membermerge": 1,
        "members_mergesuggestion": 1,
    }
    assert summary["remaining"] == {} and summary["unreadable"] == {}
    assert "members: 2/3 read" in out and "can be removed" in out and err == ""
    # One event per batch that changed something, none per re-keyed row.
    events = AuditEvent.objects.order_by("pk")[before:]
    assert {e.action for e in events} == {AuditAction.REKEY}
    assert sum(sum(e.new.values()) for e in events) == 9
    assert {e.origin for e in events} == {"command:rotate_pii_key"}
    # The viewer names the tables counted, as it names records.
    labels = {change.label for event in events for change in changes(event)}
    assert labels == {
        table_label(name)
        for name in (
            "members_member",
            "members_identity",
            "members_mergesuggestion",
            "members_membermerge",
            "campaigns_referral",
        )
    }
    assert not any("_" in label for label in labels), labels

    with UNDER_B:
        # Only the current key now: everything reads and is found.
        for member, phone in ((kept, KEPT), (dropped, DROPPED), (plain, PLAIN)):
            member = Member.all_objects.get(pk=member.pk)
            assert member.phone_digest == phone_digest(phone)
            assert unseal(member.phone_sealed).current and member.reveal_phone() == phone
        assert _holder(KEPT) == kept and _holder(DROPPED) == kept and _holder(PLAIN) == plain
        assert set(Identity.objects.filter(kind=IdentityKind.PHONE).values_list("value")) == {
            (phone_digest(KEPT),),
            (phone_digest(DROPPED),),
            (phone_digest(PLAIN),),
        }
        suggestion = MergeSuggestion.objects.exclude(evidence={}).get()
        assert {"kind": "phone", "app": "", "value": phone_digest(PLAIN), "hint": "9999"} in (
            suggestion.evidence
        )
        assert Referral.objects.get().invitee_phone == phone_digest(PLAIN)
        merge.refresh_from_db()
        for snapshot, phone in ((merge.kept_before, KEPT), (merge.dropped_before, DROPPED)):
            assert snapshot["phone_digest"] == phone_digest(phone)
            assert unseal(base64.b64decode(snapshot["phone_sealed"])).current
        # Undo restores the snapshots: the dropped member is found by its phone again.
        member_merge_undo(merge=merge, actor=None)
        assert _holder(DROPPED) == dropped
        assert Member.all_objects.get(pk=dropped.pk).reveal_phone() == DROPPED

    with ROTATING:
        state = _state()
        again, _out, _err = _run()
        assert again["rows"] == {} and again["remaining"] == {}
        assert _state() == state


def test_check_counts_what_holds_a_previous_key_and_changes_nothing(
    pool: dict[str, Any],
) -> None:
    with ROTATING:
        state = _state()
        summary, out, _err = _run("--check")
        assert _state() == state
        assert summary["mode"] == "check"
        assert (
            summary["rows"]
            == summary["remaining"]
            == {
                "campaigns_referral": 1,
                "members_identity": 3,
                "members_member": 3,
                "members_membermerge": 1,
                "members_mergesuggestion": 1,
            }
        )
        assert "keep SCRM_PII_PREVIOUS_KEYS" in out

        _run()
        after, out, _err = _run("--check")
        assert after["rows"] == after["remaining"] == {}
        assert "SCRM_PII_PREVIOUS_KEYS can be removed" in out


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"PII_KEY": KEY_B, "PII_PREVIOUS_KEYS": []}, "SCRM_PII_PREVIOUS_KEYS is empty"),
        ({"PII_KEY": KEY_A, "PII_PREVIOUS_KEYS": [KEY_A]}, "also listed"),
        ({"PII_KEY": KEY_B, "PII_PREVIOUS_KEYS": [KEY_A, KEY_B]}, "also listed"),
    ],
)
@pytest.mark.parametrize("check", [False, True])
def test_the_command_refuses_without_a_distinct_previous_key(
    pool: dict[str, Any], keys: dict[str, Any], message: str, check: bool
) -> None:
    with override_settings(**keys):
        state = _state()
        with pytest.raises(CommandError, match=message) as refused:
            _run(*(["--check"] if check else []))
        assert refused.value.returncode == 1
        assert _state() == state


def test_a_bad_batch_size_is_refused_and_changes_nothing(pool: dict[str, Any]) -> None:
    with ROTATING:
        state = _state()
        with pytest.raises(CommandError, match="at least 1"):
            _run("--batch-size", "0")
        assert _state() == state


def test_a_corrupted_sealed_value_is_reported_and_skipped(pool: dict[str, Any]) -> None:
    plain = pool["plain"]
    broken = bytes(plain.phone_sealed)
    broken = broken[:-1] + bytes([broken[-1] ^ 1])
    Member.all_objects.filter(pk=plain.pk).update(phone_sealed=broken)
    with ROTATING:
        summary, out, err = _run()
    assert f"members_member #{plain.pk}" in err and "skipped" in err
    assert summary["unreadable"] == {"members_member": 1}
    # The rest is re-keyed. What only the broken member's number could re-key (its
    # identity, the suggestion, the referral) still holds key A, and cannot be told apart
    # from a digest of a number no one holds sealed; the keys must stay until it is fixed.
    assert summary["rows"] == {"members_identity": 2, "members_member": 2, "members_membermerge": 1}
    assert summary["remaining"] == {}
    assert summary["unmatched"] == {
        "campaigns_referral": 1,
        "members_identity": 1,
        "members_member": 1,
    }
    assert "can be removed" not in out
    plain.refresh_from_db()
    assert bytes(plain.phone_sealed) == broken
    with UNDER_A:
        assert plain.phone_digest == phone_digest(PLAIN)
    with UNDER_B:
        assert _holder(KEPT) == pool["kept"]


def test_duplicates_are_removed_conflicts_left_and_unsealed_numbers_counted(
    pool: dict[str, Any],
) -> None:
    kept, plain, union = pool["kept"], pool["plain"], pool["union"]
    with ROTATING:
        # The kept member got its phone's current digest too (a path outside the lookups);
        # another member holds the merged-away one's under the current key; the union
        # member has a second phone nothing holds sealed.
        phone_identity(kept, KEPT)
        other = MemberFactory(phone="", home_store=pool["store"])
        phone_identity(other, DROPPED)
    with UNDER_A:
        phone_identity(union, SECOND)
    with ROTATING:
        before = AuditEvent.objects.filter(action=AuditAction.DELETE).count()
        summary, _out, err = _run()
    assert summary["duplicates_removed"] == 1
    assert AuditEvent.objects.filter(action=AuditAction.DELETE).count() == before + 1
    assert summary["remaining"] == {"members_identity": 1}
    assert summary["unmatched"] == {"members_identity": 1}
    assert "Rows still holding a previous key" in err and "cannot be re-keyed" in err
    with UNDER_B:
        assert Identity.objects.filter(member=kept, value=phone_digest(KEPT)).count() == 1
        assert _holder(PLAIN) == plain and _holder(DROPPED) == other
    with UNDER_A:
        # Left for a person: the conflicting row still holds key A's digest.
        assert Identity.objects.filter(member=kept, value=phone_digest(DROPPED)).exists()


# --- deployment check ------------------------------------------------------------------------


def test_check_deploy_reminds_of_a_rotation_and_refuses_the_current_key_as_previous() -> None:
    with override_settings(PII_KEY=KEY_B, PII_PREVIOUS_KEYS=[KEY_A], PII_KEY_DERIVED=False):
        assert [m.id for m in check_pii_key()] == ["scrm.W004"]
    with override_settings(PII_KEY=KEY_B, PII_PREVIOUS_KEYS=[KEY_B], PII_KEY_DERIVED=False):
        assert [m.id for m in check_pii_key()] == ["scrm.W003"]
    with override_settings(PII_KEY=KEY_B, PII_PREVIOUS_KEYS=[], PII_KEY_DERIVED=False):
        assert check_pii_key() == []


def test_the_temporary_digest_table_is_gone_after_a_run(pool: dict[str, Any]) -> None:
    with ROTATING:
        _run("--check")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.pii_rotation_digests')")
        assert cursor.fetchone()[0] is None
