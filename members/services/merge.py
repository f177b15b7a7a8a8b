"""Merging two members into one, and undoing it exactly.

What moves is decided by movers: each relation that points at a member registers one
(`register_merge_mover`), so later apps (tags, points, events, assignments) plug in
without editing this module. A merge records the moved row ids and the fields it
changed on both members; undo moves those rows back and restores those fields.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.locks import lock_members
from members.models import (
    LifecycleChange,
    Member,
    MemberMerge,
    MergeSuggestion,
    SuggestionStatus,
)
from members.services.errors import Conflict, MemberError
from members.services.lifecycle import member_refresh_stage
from members.services.orders import member_refresh_order_stats
from members.services.rfm import rfm_mark_dirty
from scrm.core.services import audit_record

# Fields copied from the merged-away member when the kept one has none.
FILLABLE_FIELDS = (
    "name",
    "birthday",
    "phone_digest",
    "phone_last4",
    "phone_sealed",
    "city",
    "home_store_id",
    "guide_id",
    "source_channel",
)
# Fields a merge may recompute; their old values are kept for undo.
SNAPSHOT_FIELDS = (
    *FILLABLE_FIELDS,
    "gender",
    "member_since",
    "lifecycle_stage",
    "stage_changed_at",
    "order_count",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "merged_into_id",
)


@dataclass(frozen=True)
class MergeMover:
    key: str
    move: Callable[[Member, Member], list[int]]
    restore: Callable[[Member, Member, list[int]], None]


MERGE_MOVERS: dict[str, MergeMover] = {}


def register_merge_mover(key: str, model: type[models.Model], field: str = "member") -> None:
    """Move rows of `model` whose `field` points at the merged-away member."""

    def move(kept: Member, dropped: Member) -> list[int]:
        rows = model._default_manager.filter(**{field: dropped})
        pks = list(rows.values_list("pk", flat=True))
        model._default_manager.filter(pk__in=pks).update(**{field: kept})
        return pks

    def restore(kept: Member, dropped: Member, pks: list[int]) -> None:
        model._default_manager.filter(pk__in=pks, **{field: kept}).update(**{field: dropped})

    MERGE_MOVERS[key] = MergeMover(key, move, restore)


def _snapshot(member: Member) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, bytes | memoryview):
            # The sealed phone, as BinaryField.to_python reads it back (base64).
            return base64.b64encode(bytes(value)).decode()
        return value

    return {name: plain(getattr(member, name)) for name in SNAPSHOT_FIELDS}


def _restore(member: Member, snapshot: dict[str, Any]) -> None:
    for name, value in snapshot.items():
        field: Any = member._meta.get_field(
            name.removesuffix("_id") if name.endswith("_id") else name
        )
        setattr(member, name, field.to_python(value) if value is not None else None)
    member.save(update_fields=[*snapshot.keys(), "updated_at"])


@transaction.atomic
def member_merge(
    *, keep: Member, drop: Member, actor: Any, suggestion: MergeSuggestion | None = None
) -> MemberMerge:
    if keep.pk == drop.pk:
        raise MemberError("merge_same_member", _("A member cannot be merged into itself."))
    keep, drop = lock_members(keep, drop)
    for member in (keep, drop):
        if member.erased_at is not None:
            raise Conflict(
                "member_erased",
                _("Member #%(id)s's personal data was erased: it cannot be merged.")
                % {"id": member.pk},
            )
        if member.merged_into_id is not None:
            raise Conflict(
                "member_already_merged",
                _("Member #%(id)s was already merged into another member; refresh the page.")
                % {"id": member.pk},
            )
    kept_before, dropped_before = _snapshot(keep), _snapshot(drop)

    moved = {key: mover.move(keep, drop) for key, mover in MERGE_MOVERS.items()}
    changed = []
    for name in FILLABLE_FIELDS:
        if getattr(keep, name) in (None, "") and getattr(drop, name) not in (None, ""):
            setattr(keep, name, getattr(drop, name))
            changed.append(name)
    if keep.gender == "u" and drop.gender != "u":
        keep.gender = drop.gender
        changed.append("gender")
    if drop.member_since and (keep.member_since is None or drop.member_since < keep.member_since):
        keep.member_since = drop.member_since
        changed.append("member_since")
    if changed:
        keep.save(update_fields=[*changed, "updated_at"])
    drop.merged_into = keep
    drop.save(update_fields=["merged_into", "updated_at"])

    before_changes = set(LifecycleChange.objects.filter(member=keep).values_list("pk", flat=True))
    member_refresh_order_stats(member=keep)
    keep.refresh_from_db()
    member_refresh_stage(member=keep, reason="merge")
    rfm_mark_dirty([keep.pk, drop.pk])  # orders moved: both recount
    from members.services.tiers import tier_evaluate

    tier_evaluate(member_id=keep.pk)  # the growth value moved over may reach a higher tier
    moved["lifecycle_changes_created"] = sorted(
        set(LifecycleChange.objects.filter(member=keep).values_list("pk", flat=True))
        - before_changes
    )

    if suggestion is None:
        a, b = sorted((keep.pk, drop.pk))
        suggestion = MergeSuggestion.objects.filter(
            member_a_id=a, member_b_id=b, status=SuggestionStatus.OPEN
        ).first()
    if suggestion is not None:
        suggestion.status = SuggestionStatus.MERGED
        suggestion.decided_at = timezone.now()
        suggestion.decided_by = actor
        suggestion.save(update_fields=["status", "decided_at", "decided_by"])
    merge = MemberMerge.objects.create(
        kept=keep,
        dropped=drop,
        suggestion=suggestion,
        moved=moved,
        kept_before=kept_before,
        dropped_before=dropped_before,
        merged_by=actor,
    )
    audit_record(
        actor=actor,
        action="member.merge",
        target=keep,
        data={
            "merge": merge.pk,
            "dropped": drop.pk,
            "moved": {k: len(v) for k, v in moved.items()},
        },
    )
    return merge


@transaction.atomic
def member_merge_undo(*, merge: MemberMerge, actor: Any) -> MemberMerge:
    merge = MemberMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise Conflict("merge_already_undone", _("This merge has already been undone."))
    keep, drop = lock_members(merge.kept, merge.dropped)
    if keep.erased_at is not None or drop.erased_at is not None:
        raise Conflict(
            "merge_undo_erased",
            _("This person's personal data was erased: the merge can no longer be undone."),
        )
    if keep.merged_into_id is not None:
        raise Conflict(
            "merge_undo_blocked",
            _("Member #%(id)s has since been merged into another member: undo that merge first.")
            % {"id": keep.pk},
        )
    later = (
        MemberMerge.objects.filter(
            Q(kept=keep) | Q(dropped=keep), merged_at__gt=merge.merged_at, undone_at__isnull=True
        )
        .exclude(pk=merge.pk)
        .first()
    )
    if later is not None:
        raise Conflict(
            "merge_undo_blocked",
            _("A later merge (#%(id)s) involves this member: undo it first.") % {"id": later.pk},
        )

    for key, pks in merge.moved.items():
        if key in MERGE_MOVERS:
            MERGE_MOVERS[key].restore(keep, drop, pks)
    LifecycleChange.objects.filter(
        pk__in=merge.moved.get("lifecycle_changes_created", []), member=keep
    ).delete()
    _restore(keep, merge.kept_before)
    _restore(drop, merge.dropped_before)
    rfm_mark_dirty([keep.pk, drop.pk])
    if merge.suggestion_id is not None:
        MergeSuggestion.objects.filter(pk=merge.suggestion_id).update(
            status=SuggestionStatus.OPEN, decided_at=None, decided_by=None
        )
    merge.undone_at = timezone.now()
    merge.undone_by = actor
    merge.save(update_fields=["undone_at", "undone_by"])
    audit_record(
        actor=actor,
        action="member.merge_undo",
        target=keep,
        data={"merge": merge.pk, "restored": drop.pk},
    )
    return merge


@transaction.atomic
def merge_suggestion_dismiss(*, suggestion: MergeSuggestion, actor: Any) -> MergeSuggestion:
    if suggestion.status != SuggestionStatus.OPEN:
        raise Conflict("suggestion_closed", _("This suggestion has already been decided."))
    suggestion.status = SuggestionStatus.DISMISSED
    suggestion.decided_at = timezone.now()
    suggestion.decided_by = actor
    suggestion.save(update_fields=["status", "decided_at", "decided_by"])
    audit_record(
        actor=actor,
        action="member.suggestion_dismiss",
        target=suggestion.member_a,
        data={"suggestion": suggestion.pk, "other": suggestion.member_b_id},
    )
    return suggestion


def _register_builtin_movers() -> None:
    from members.models import (
        Coupon,
        FollowUpTask,
        GuideAssignment,
        Identity,
        MemberSession,
        Order,
        Redemption,
        ServiceNote,
        TierChange,
    )
    from members.services import points

    # A guide's notes, follow-ups and the guide history stay with the person.
    register_merge_mover("service_notes", ServiceNote)
    register_merge_mover("follow_ups", FollowUpTask)
    register_merge_mover("guide_assignments", GuideAssignment)
    register_merge_mover("identities", Identity)
    register_merge_mover("orders", Order)
    register_merge_mover("sessions", MemberSession)
    register_merge_mover("coupons", Coupon)
    register_merge_mover("redemptions", Redemption)
    register_merge_mover("tier_changes", TierChange)
    # Points: whole accounts first, then the lots of accounts both members had.
    MERGE_MOVERS["points_accounts"] = MergeMover(
        "points_accounts", points.points_merge_move, points.points_merge_restore_move
    )
    # Tags: the kept member keeps theirs; the dropped member's others move over.
    from members.services import tags

    MERGE_MOVERS["tags"] = MergeMover("tags", tags.tag_merge_move, tags.tag_merge_restore)
    MERGE_MOVERS["points_transfers"] = MergeMover(
        "points_transfers", points.points_merge_transfer, points.points_merge_restore_transfer
    )


_register_builtin_movers()
