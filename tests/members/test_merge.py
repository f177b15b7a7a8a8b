"""Merge moves everything into one member, is audited, and undo restores the exact state."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import (
    Identity,
    IdentityKind,
    LifecycleChange,
    Member,
    MemberMerge,
    MemberSession,
    MergeSuggestion,
    Order,
    SuggestionStatus,
)
from members.services.errors import MemberError
from members.services.identity import merge_suggestion_raise
from members.services.merge import member_merge, member_merge_undo
from scrm.core.models import AuditEvent
from scrm.core.pii import phone_digest
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, OrderFactory, phone_identity


def _db_state() -> dict[str, Any]:
    """Every row a merge may touch, as plain values."""
    return {
        "members": list(Member.all_objects.order_by("pk").values()),
        "identities": list(Identity.objects.order_by("pk").values()),
        "orders": list(Order.objects.order_by("pk").values()),
        "sessions": list(MemberSession.objects.order_by("pk").values()),
        "lifecycle": list(LifecycleChange.objects.order_by("pk").values()),
        "suggestions": list(
            MergeSuggestion.objects.order_by("pk").values(
                "pk", "status", "decided_by", "decided_at"
            )
        ),
    }


@pytest.fixture
def pair(org: Org) -> tuple[Member, Member]:
    keep = MemberFactory(
        name="周小云",
        phone="+8613800000011",
        birthday=None,
        city="",
        home_store=org.a1,
        guide=org.guide_a1,
    )
    phone_identity(keep, "+8613800000011")
    OrderFactory(member=keep, external_id="POS-K1", amount=Decimal("100.00"))
    drop = MemberFactory(
        name="周小云",
        phone="+8613800000022",
        birthday=date(1990, 1, 2),
        city="上海",
        home_store=org.a1,
        guide=None,
        member_since=timezone.now() - timedelta(days=400),
    )
    phone_identity(drop, "+8613800000022")
    IdentityFactory(member=drop, kind=IdentityKind.TMALL, value="tb_zhou")
    OrderFactory(member=drop, external_id="POS-D1", amount=Decimal("50.50"))
    OrderFactory(member=drop, external_id="POS-D2", amount=Decimal("20.00"))
    MemberSession.objects.create(
        member=drop,
        refresh_token_hash="h" * 64,
        app="app",
        expires_at=timezone.now() + timedelta(days=1),
    )
    for member in (keep, drop):
        from members.services.orders import member_refresh_order_stats

        member_refresh_order_stats(member=member)
    merge_suggestion_raise(first=keep, second=drop, reason="same name", evidence=[])
    return Member.objects.get(pk=keep.pk), Member.objects.get(pk=drop.pk)


def test_merge_moves_identities_orders_and_sessions(org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, drop = pair
    merge = member_merge(keep=keep, drop=drop, actor=org.hq_admin)
    keep.refresh_from_db()
    drop = Member.all_objects.get(pk=drop.pk)
    assert drop.merged_into == keep
    assert not Member.objects.filter(pk=drop.pk).exists()  # gone from every list
    assert sorted(keep.identities.values_list("value", flat=True)) == sorted(
        [phone_digest("+8613800000011"), phone_digest("+8613800000022"), "tb_zhou"]
    )
    assert sorted(keep.orders.values_list("external_id", flat=True)) == [
        "POS-D1",
        "POS-D2",
        "POS-K1",
    ]
    assert MemberSession.objects.get().member == keep
    assert keep.order_count == 3
    assert keep.total_spent == Decimal("170.50")
    # Empty fields are filled from the merged member; existing ones are kept.
    assert keep.birthday == date(1990, 1, 2) and keep.city == "上海"
    assert keep.reveal_phone() == "+8613800000011" and keep.guide == org.guide_a1
    assert keep.member_since == drop.member_since
    assert set(merge.moved) >= {"identities", "orders", "sessions"}
    assert MergeSuggestion.objects.get().status == SuggestionStatus.MERGED
    event = AuditEvent.objects.get(action="member.merge")
    assert event.actor == org.hq_admin and event.target_id == str(keep.pk)
    assert event.data["moved"]["orders"] == 2


def test_undo_restores_the_original_state_exactly(org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, drop = pair
    before = _db_state()
    merge = member_merge(keep=keep, drop=drop, actor=org.hq_admin)
    assert _db_state() != before
    member_merge_undo(merge=merge, actor=org.hq_operator)
    after = _db_state()
    for table in before:
        if table == "members":
            # updated_at moves forward; everything else is as it was.
            strip = [{k: v for k, v in row.items() if k != "updated_at"} for row in after[table]]
            assert strip == [
                {k: v for k, v in row.items() if k != "updated_at"} for row in before[table]
            ]
        else:
            assert after[table] == before[table], table
    merge.refresh_from_db()
    assert merge.undone_by == org.hq_operator and merge.undone_at is not None
    assert AuditEvent.objects.filter(action="member.merge_undo", actor=org.hq_operator).count() == 1


def test_merging_a_member_into_itself_is_refused(org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, _drop = pair
    before = _db_state()
    with pytest.raises(MemberError) as error:
        member_merge(keep=keep, drop=keep, actor=org.hq_admin)
    assert error.value.code == "merge_same_member"
    assert _db_state() == before
    assert not MemberMerge.objects.exists() and not AuditEvent.objects.exists()


def test_a_member_already_merged_cannot_be_merged_again(org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, drop = pair
    member_merge(keep=keep, drop=drop, actor=org.hq_admin)
    third = MemberFactory(home_store=org.a1)
    before = _db_state()
    with pytest.raises(MemberError) as error:
        member_merge(keep=third, drop=Member.all_objects.get(pk=drop.pk), actor=org.hq_admin)
    assert error.value.code == "member_already_merged"
    assert _db_state() == before


def test_undo_twice_and_undo_under_a_later_merge_are_refused(org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, drop = pair
    first = member_merge(keep=keep, drop=drop, actor=org.hq_admin)
    third = MemberFactory(home_store=org.a1)
    second = member_merge(keep=third, drop=Member.objects.get(pk=keep.pk), actor=org.hq_admin)
    before = _db_state()
    with pytest.raises(MemberError) as error:
        member_merge_undo(merge=first, actor=org.hq_admin)
    assert error.value.code == "merge_undo_blocked"
    assert _db_state() == before
    member_merge_undo(merge=second, actor=org.hq_admin)
    member_merge_undo(merge=first, actor=org.hq_admin)
    with pytest.raises(MemberError) as error:
        member_merge_undo(merge=first, actor=org.hq_admin)
    assert error.value.code == "merge_already_undone"


# --- The HQ review queue -------------------------------------------------------------------


def test_duplicates_page_shows_pairs_side_by_side(client: Client, org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, drop = pair
    client.force_login(org.hq_operator)
    body = client.get("/hq/members/duplicates/").content.decode()
    assert f"#{keep.pk} 周小云" in body and f"#{drop.pk} 周小云" in body
    assert "*******0011" in body and "*******0022" in body
    assert "+8613800000011" not in body


def test_merge_needs_confirmation_then_undo_from_history(client: Client, org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, drop = pair
    suggestion = MergeSuggestion.objects.get()
    client.force_login(org.hq_operator)
    url = f"/hq/members/duplicates/{suggestion.pk}/merge/"
    confirm = client.get(url, {"keep": keep.pk})
    assert confirm.status_code == 200
    assert "确认合并" in confirm.content.decode()
    assert not MemberMerge.objects.exists()  # looking is not merging
    response = client.post(url, {"keep": keep.pk})
    assert response["Location"] == f"/hq/members/{keep.pk}/"
    merge = MemberMerge.objects.get()
    assert (merge.kept_id, merge.dropped_id, merge.merged_by) == (keep.pk, drop.pk, org.hq_operator)
    assert client.get("/hq/members/duplicates/").content.decode().count("suggestion-") == 0
    undo_url = f"/hq/members/merges/{merge.pk}/undo/"
    assert "撤销合并" in client.get(undo_url).content.decode()
    client.post(undo_url)
    merge.refresh_from_db()
    assert merge.undone_at is not None
    assert Member.objects.filter(pk=drop.pk).exists()
    assert MergeSuggestion.objects.get().status == SuggestionStatus.OPEN


def test_merge_with_an_unknown_keep_changes_nothing(client: Client, org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    suggestion = MergeSuggestion.objects.get()
    client.force_login(org.hq_admin)
    before = _db_state()
    for keep in ("999999", "abc", ""):
        response = client.post(f"/hq/members/duplicates/{suggestion.pk}/merge/", {"keep": keep})
        assert response.status_code == 302
    assert _db_state() == before
    assert client.post("/hq/members/duplicates/999999/merge/", {"keep": 1}).status_code == 404


def test_dismissing_a_suggestion(client: Client, org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    suggestion = MergeSuggestion.objects.get()
    client.force_login(org.hq_admin)
    assert client.get(f"/hq/members/duplicates/{suggestion.pk}/dismiss/").status_code == 405
    client.post(f"/hq/members/duplicates/{suggestion.pk}/dismiss/")
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.DISMISSED
    assert suggestion.decided_by == org.hq_admin
    assert not MemberMerge.objects.exists()
    assert Member.objects.count() == 7  # the org's five and the pair, all still separate


def test_store_managers_cannot_merge(client: Client, org: Org, pair) -> None:  # type: ignore[no-untyped-def]
    keep, _drop = pair
    suggestion = MergeSuggestion.objects.get()
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/members/duplicates/").status_code == 403
    response = client.post(f"/hq/members/duplicates/{suggestion.pk}/merge/", {"keep": keep.pk})
    assert response.status_code == 403
    assert not MemberMerge.objects.exists()


def test_merge_moves_guide_notes_tasks_and_history_and_undo_puts_them_back(
    org: Org,
) -> None:
    from members.models import FollowUpTask, GuideAssignment, ServiceNote, TaskKind
    from members.services.guides import customers_transfer, note_add

    keep, drop = org.member_of_guide_a1, org.member_of_guide_a1_other
    note = note_add(member=drop, author=org.guide_a1_other, body="喜欢无香款")
    task = FollowUpTask.objects.create(
        member=drop,
        guide=org.guide_a1_other,
        kind=TaskKind.HQ,
        title="回访",
        due_on=timezone.localdate(),
    )
    customers_transfer(member_ids=[drop.pk], to_guide=org.guide_a1, actor=org.hq_admin)
    history = GuideAssignment.objects.get(member=drop)
    merge = member_merge(keep=keep, drop=drop, actor=org.hq_admin)
    assert ServiceNote.objects.get(pk=note.pk).member_id == keep.pk
    assert FollowUpTask.objects.get(pk=task.pk).member_id == keep.pk
    assert GuideAssignment.objects.get(pk=history.pk).member_id == keep.pk
    member_merge_undo(merge=merge, actor=org.hq_admin)
    assert ServiceNote.objects.get(pk=note.pk).member_id == drop.pk
    assert FollowUpTask.objects.get(pk=task.pk).member_id == drop.pk
    assert GuideAssignment.objects.get(pk=history.pk).member_id == drop.pk
