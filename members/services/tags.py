"""Writes for tags: add and remove a member's tag, and tag many members at once.

A single-choice group holds at most one tag per member: adding another tag of the
group replaces the old one (logged as a removal). Every change is logged; bulk tagging
is set-based, so tagging a 500k-member segment is a few statements, not 500k.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import (
    Member,
    MemberTag,
    MemberTagLog,
    Tag,
    TagAction,
    TagChoice,
    TagSource,
)
from members.services.errors import MemberError
from scrm.core.services import audit_record


def _actor_id(actor: Any) -> int | None:
    return getattr(actor, "pk", None)


def _check_tag(tag: Tag) -> None:
    if not tag.active:
        raise MemberError(
            "tag_inactive", _("The tag “%(tag)s” is switched off.") % {"tag": tag.name}
        )


@transaction.atomic
def member_tag_add(
    *,
    member: Member,
    tag: Tag,
    source: str = TagSource.STAFF,
    actor: Any = None,
    source_ref: str = "",
    now: datetime | None = None,
) -> bool:
    """Tag a member; False when they already carry the tag (nothing changes)."""
    result = tags_bulk_apply(
        tag=tag, member_ids=[member.pk], source=source, actor=actor, source_ref=source_ref, now=now
    )
    return result.changed == 1


@transaction.atomic
def member_tag_remove(
    *,
    member: Member,
    tag: Tag,
    source: str = TagSource.STAFF,
    actor: Any = None,
    now: datetime | None = None,
) -> bool:
    """Take a tag off a member; False when they did not carry it."""
    deleted, _rows = MemberTag.objects.filter(member=member, tag=tag).delete()
    if not deleted:
        return False
    MemberTagLog.objects.create(
        member=member,
        tag=tag,
        action=TagAction.REMOVE,
        source=source,
        actor_id=_actor_id(actor),
        at=now or timezone.now(),
    )
    return True


@dataclass
class BulkTagResult:
    changed: int  # members who got (or lost) the tag
    unchanged: int  # members who already had it (or never had it)
    replaced: int = 0  # another tag of a single-choice group that gave way


@transaction.atomic
def tags_bulk_apply(
    *,
    tag: Tag,
    member_ids: Iterable[int],
    source: str,
    actor: Any = None,
    source_ref: str = "",
    now: datetime | None = None,
) -> BulkTagResult:
    _check_tag(tag)
    ids = sorted(set(member_ids))
    if not ids:
        return BulkTagResult(0, 0)
    now = now or timezone.now()
    actor_id = _actor_id(actor)
    replaced = 0
    with connection.cursor() as cursor:
        if tag.group.choice == TagChoice.SINGLE:
            # One tag per member in a single-choice group: the new one replaces the old.
            cursor.execute(
                """
                WITH gone AS (
                    DELETE FROM members_membertag mt USING members_tag t
                    WHERE mt.tag_id = t.id AND t.group_id = %s AND t.id <> %s
                      AND mt.member_id = ANY(%s)
                    RETURNING mt.member_id, mt.tag_id
                )
                INSERT INTO members_membertaglog
                    (member_id, tag_id, action, source, actor_id, source_ref, at)
                SELECT member_id, tag_id, 'remove', %s, %s, %s, %s FROM gone
                """,
                [tag.group_id, tag.pk, ids, source, actor_id, source_ref[:64], now],
            )
            replaced = cursor.rowcount
        cursor.execute(
            """
            WITH added AS (
                INSERT INTO members_membertag (member_id, tag_id, source, added_by_id,
                                               source_ref, added_at)
                SELECT m.id, %s, %s, %s, %s, %s FROM members_member m
                WHERE m.id = ANY(%s) AND m.merged_into_id IS NULL
                ON CONFLICT (tag_id, member_id) DO NOTHING
                RETURNING member_id
            )
            INSERT INTO members_membertaglog
                (member_id, tag_id, action, source, actor_id, source_ref, at)
            SELECT member_id, %s, 'add', %s, %s, %s, %s FROM added
            """,
            [
                tag.pk,
                source,
                actor_id,
                source_ref[:64],
                now,
                ids,
                tag.pk,
                source,
                actor_id,
                source_ref[:64],
                now,
            ],
        )
        added = cursor.rowcount
    return BulkTagResult(changed=added, unchanged=len(ids) - added, replaced=replaced)


@transaction.atomic
def tags_bulk_remove(*, tag: Tag, member_ids: Iterable[int], source: str, actor: Any = None) -> int:
    ids = sorted(set(member_ids))
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH gone AS (
                DELETE FROM members_membertag WHERE tag_id = %s AND member_id = ANY(%s)
                RETURNING member_id
            )
            INSERT INTO members_membertaglog
                (member_id, tag_id, action, source, actor_id, source_ref, at)
            SELECT member_id, %s, 'remove', %s, %s, '', %s FROM gone
            """,
            [tag.pk, ids, tag.pk, source, _actor_id(actor), timezone.now()],
        )
        return cursor.rowcount


@transaction.atomic
def tags_bulk_by_staff(
    *, tag: Tag, member_ids: list[int], remove: bool, actor: Any, what: str
) -> BulkTagResult:
    """HQ's bulk tagging of a segment or an uploaded list, audited as one event."""
    if remove:
        removed = tags_bulk_remove(
            tag=tag, member_ids=member_ids, source=TagSource.STAFF, actor=actor
        )
        result = BulkTagResult(changed=removed, unchanged=len(set(member_ids)) - removed)
    else:
        result = tags_bulk_apply(
            tag=tag, member_ids=member_ids, source=TagSource.STAFF, actor=actor
        )
    audit_record(
        actor=actor,
        action="tags.bulk_remove" if remove else "tags.bulk_add",
        target=tag,
        data={"members": len(member_ids), "changed": result.changed, "what": what[:200]},
    )
    return result


@transaction.atomic
def tag_settings_save(*, form: Any, actor: Any) -> Any:
    """Save a tag group or tag from HQ's form, audited."""
    creating = form.instance.pk is None
    saved = form.save()
    audit_record(
        actor=actor,
        action=f"{saved._meta.model_name}.{'create' if creating else 'update'}",
        target=saved,
        data={name: str(value) for name, value in form.cleaned_data.items()},
    )
    return saved


def tag_merge_move(kept: Member, dropped: Member) -> list[int]:
    """Merge mover: the dropped member's tags the kept one lacks move over."""
    rows = MemberTag.objects.filter(member=dropped).exclude(
        tag_id__in=MemberTag.objects.filter(member=kept).values("tag_id")
    )
    pks = list(rows.values_list("pk", flat=True))
    MemberTag.objects.filter(pk__in=pks).update(member=kept)
    return pks


def tag_merge_restore(kept: Member, dropped: Member, pks: list[int]) -> None:
    MemberTag.objects.filter(pk__in=pks, member=kept).update(member=dropped)
