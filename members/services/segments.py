"""Writes for segments: save, freeze a static list, record sizes, archive.

A dynamic segment is evaluated when used (a broadcast asks for it at send time); a
static one is frozen into a member list once and keeps it. Sizes are recorded on each
refresh so the segment page can show how it grew or shrank.
"""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.models import (
    IdentityKind,
    Member,
    Segment,
    SegmentKind,
    SegmentRefresh,
    SegmentSize,
    mask_phone,
)
from members.phones import try_normalize_phone
from members.segments.rules import parse_rules
from members.segments.sql import compile_rules
from members.services.errors import MemberError
from scrm.core.models import AuditEvent
from scrm.core.pii import phone_digest, previous_phone_digests
from scrm.core.services import audit_record
from scrm.org.models import Store

logger = logging.getLogger(__name__)


def segment_members(
    segment: Segment,
    *,
    user: Any = None,
    now: datetime | None = None,
    by_rules: bool = False,
) -> QuerySet[Member]:
    """The members a segment holds now: its frozen list (static) or its rules (dynamic,
    or any segment with `by_rules`), within its store, and within what `user` may see
    (None: the whole pool)."""
    members = Member.objects.for_user(user) if user is not None else Member.objects.all()
    if segment.store_id:
        members = members.filter(home_store_id=segment.store_id)
    frozen = segment.kind == SegmentKind.STATIC and segment.frozen_at is not None
    if frozen and not by_rules:
        return members.filter(pk__in=segment.frozen_members.values("member_id"))
    return members.filter(compile_rules(parse_rules(segment.rules), now=now).expression())


@transaction.atomic
def segment_save(*, form: Any, actor: Any) -> Segment:
    """Save the builder's form; a new static segment is frozen at once."""
    creating = form.instance.pk is None
    segment: Segment = form.save(commit=False)
    if creating:
        segment.created_by = actor if getattr(actor, "pk", None) else None
    segment.save()
    audit_record(
        actor=actor,
        action="segment.create" if creating else "segment.update",
        target=segment,
        data={"name": segment.name, "kind": segment.kind, "rules": segment.rules},
    )
    if segment.kind == SegmentKind.STATIC and segment.frozen_at is None:
        segment_freeze(segment=segment, actor=actor)
    else:
        segment_record_size(segment=segment)
    return segment


@transaction.atomic
def segment_freeze(*, segment: Segment, actor: Any) -> int:
    """Freeze the members the rules select now into the static list (replacing it)."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if segment.is_uploaded_list:
        raise MemberError(
            "uploaded_list",
            _("This list came from an uploaded file: upload a new file to change it."),
        )
    now = timezone.now()
    live = segment_members(segment, now=now, by_rules=True)
    query, params = live.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM members_segmentmember WHERE segment_id = %s", [segment.pk])
        cursor.execute(
            f"INSERT INTO members_segmentmember (segment_id, member_id) "
            f"SELECT %s, frozen.id FROM ({query}) AS frozen(id)",
            [segment.pk, *params],
        )
        size = cursor.rowcount
    segment.kind = SegmentKind.STATIC
    segment.frozen_at = now
    segment.size, segment.sized_at = size, now
    segment.save(update_fields=["kind", "frozen_at", "size", "sized_at", "updated_at"])
    SegmentSize.objects.create(segment=segment, at=now, size=size)
    audit_record(actor=actor, action="segment.freeze", target=segment, data={"size": size})
    return size


def segment_record_size(*, segment: Segment, now: datetime | None = None) -> int:
    now = now or timezone.now()
    size = segment_members(segment, now=now).count()
    Segment.objects.filter(pk=segment.pk).update(size=size, sized_at=now)
    SegmentSize.objects.create(segment=segment, at=now, size=size)
    segment.size, segment.sized_at = size, now
    return size


REFRESH_EVERY = {SegmentRefresh.HOURLY: timedelta(hours=1), SegmentRefresh.DAILY: timedelta(days=1)}


def segments_due(now: datetime | None = None) -> list[int]:
    """Dynamic segments whose scheduled size refresh is due."""
    now = now or timezone.now()
    due = []
    for segment in Segment.objects.filter(
        archived=False, kind=SegmentKind.DYNAMIC, refresh__in=list(REFRESH_EVERY)
    ).only("pk", "refresh", "sized_at"):
        every = REFRESH_EVERY[SegmentRefresh(segment.refresh)]
        # A little slack so an hourly beat does not skip a segment counted 59 minutes ago.
        if segment.sized_at is None or segment.sized_at <= now - every + timedelta(minutes=5):
            due.append(segment.pk)
    return due


def segments_refresh_due(now: datetime | None = None) -> int:
    """Record the size of every segment whose scheduled refresh is due."""
    refreshed = 0
    for segment in Segment.objects.filter(pk__in=segments_due(now)):
        segment_record_size(segment=segment, now=now)
        refreshed += 1
    return refreshed


@transaction.atomic
def segment_archive(*, segment: Segment, actor: Any, archived: bool = True) -> Segment:
    segment.archived = archived
    segment.save(update_fields=["archived", "updated_at"])
    audit_record(
        actor=actor,
        action="segment.archive" if archived else "segment.restore",
        target=segment,
        data={"name": segment.name},
    )
    return segment


# --- Uploaded lists: a static segment frozen to the members a file names -----------------------

LIST_MAX_ROWS = 200_000
LIST_VALUE_MAX_LENGTH = 128
LIST_REPORT_VALUE_LENGTH = 200  # a rejected cell is quoted this far in the report
_BIGINT_MAX = 2**63 - 1


class ListColumn(models.TextChoices):
    """What an uploaded list's column holds (the identity kinds a person is known by)."""

    PHONE = "phone", gettext_lazy("Phone")
    MEMBER_ID = "member_id", gettext_lazy("Member id")
    UNIONID = IdentityKind.UNIONID.value, IdentityKind.UNIONID.label
    OPENID = IdentityKind.OPENID.value, IdentityKind.OPENID.label
    POS_CARD = IdentityKind.POS_CARD.value, gettext_lazy("Member card number")


class ListReject(models.TextChoices):
    """Why a row of an uploaded list added nobody; the report shows the label."""

    EMPTY = "empty", gettext_lazy("The cell is empty.")
    INVALID_PHONE = "invalid_phone", gettext_lazy("Not a mobile number.")
    INVALID_ID = "invalid_id", gettext_lazy("Not a member id (a whole number).")
    TOO_LONG = "too_long", gettext_lazy("Longer than 128 characters.")
    DUPLICATE = "duplicate", gettext_lazy("Duplicate of an earlier row (counted once).")
    NOT_FOUND = "not_found", gettext_lazy("No member you can see matches it.")


def list_reject_reason(code: str, ref: int = 0) -> str:
    """A rejection's reason as the report shows it (a duplicate names its first row)."""
    if code == ListReject.DUPLICATE and ref:
        return _("Duplicate of row %(row)s (counted once).") % {"row": ref}
    return str(ListReject(code).label)


@dataclass(frozen=True)
class ListRejectedRow:
    row: int  # as the spreadsheet shows it: the header is row 1
    value: str
    code: str
    ref: int = 0  # for a duplicate: the row it repeats

    @property
    def reason(self) -> str:
        return list_reject_reason(self.code, self.ref)


@dataclass
class ListMatch:
    """How an uploaded list matched: rows_read = matched + duplicates + not_found + invalid."""

    rows_read: int = 0
    matched: int = 0
    duplicates: int = 0
    not_found: int = 0
    invalid: int = 0
    member_ids: list[int] = field(default_factory=list)
    rejected: list[ListRejectedRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "matched": self.matched,
            "duplicates": self.duplicates,
            "not_found": self.not_found,
            "invalid": self.invalid,
            "members": len(self.member_ids),
        }


class ListNothingMatched(MemberError):
    """An uploaded list named no member the uploader may see: nothing was written."""

    def __init__(self, match: ListMatch) -> None:
        super().__init__(
            "list_no_match",
            gettext_lazy(
                "No row of the file matched a member you can see, so no segment was created. "
                "Check that the column holds what you chose."
            ),
        )
        self.match = match


def _list_key(column: str, raw: str) -> tuple[str | None, str, str | None]:
    """(normalised value, "", the normalised phone of a phone column) or (None, rejection
    code, None) for one cell."""
    text = raw.strip()
    if not text:
        return None, ListReject.EMPTY, None
    if column == ListColumn.PHONE:
        phone = try_normalize_phone(text)
        if phone is None:
            return None, ListReject.INVALID_PHONE, None
        return phone_digest(phone), "", phone
    if column == ListColumn.MEMBER_ID:
        digits = unicodedata.normalize("NFKC", text)
        if (
            len(digits) <= 19
            and digits.isascii()
            and digits.isdigit()
            and 0 < int(digits) <= _BIGINT_MAX
        ):
            return str(int(digits)), "", None
        return None, ListReject.INVALID_ID, None
    if len(text) > LIST_VALUE_MAX_LENGTH:
        return None, ListReject.TOO_LONG, None
    return text, "", None


def _list_holders(
    *, column: str, values: list[str], user: Any, store: Store | None
) -> dict[str, set[int]]:
    """Value → the members it names that `user` may see (within `store` when given).

    The values go into a temporary table by COPY (fast, in C), then one statement matches
    them all; merged-away members count as the member they went into."""
    if not values:
        return {}
    visible = Member.objects.for_user(user)
    if store is not None:
        visible = visible.filter(home_store_id=store.pk)
    visible_sql, visible_params = visible.values("pk").query.sql_with_params()
    if column == ListColumn.MEMBER_ID:
        hits = (
            "SELECT k.value, COALESCE(m.merged_into_id, m.id) AS member_id "
            "FROM segment_list_keys k JOIN members_member m ON m.id = k.value::bigint"
        )
        params: list[Any] = []
    elif column == ListColumn.PHONE:
        # The values are digests. The phone identity decides; a member whose phone holds
        # the number but who has no phone identity yet is found too (as the bulk-tag list
        # does).
        hits = (
            "SELECT k.value, COALESCE(m.merged_into_id, m.id) AS member_id "
            "FROM segment_list_keys k "
            "JOIN members_identity i ON i.value = k.value AND i.kind = %s AND i.app = '' "
            "JOIN members_member m ON m.id = i.member_id "
            "UNION ALL "
            "SELECT k.value, m.id FROM segment_list_keys k "
            "JOIN members_member m ON m.phone_digest = k.value AND m.merged_into_id IS NULL "
            "WHERE NOT EXISTS (SELECT 1 FROM members_identity i "
            "WHERE i.value = k.value AND i.kind = %s AND i.app = '')"
        )
        params = [IdentityKind.PHONE, IdentityKind.PHONE]
    else:
        # An openid is per app; the list names none, so any app's openid counts.
        same_app = "" if column == ListColumn.OPENID else " AND i.app = ''"
        hits = (
            "SELECT k.value, COALESCE(m.merged_into_id, m.id) AS member_id "
            "FROM segment_list_keys k "
            f"JOIN members_identity i ON i.value = k.value AND i.kind = %s{same_app} "
            "JOIN members_member m ON m.id = i.member_id"
        )
        params = [column]
    found: dict[str, set[int]] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS segment_list_keys (value text NOT NULL) "
            "ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE segment_list_keys")
        with cursor.copy("COPY segment_list_keys (value) FROM STDIN") as copy:
            for value in values:
                copy.write_row((value,))
        cursor.execute("ANALYZE segment_list_keys")
        cursor.execute(
            f"SELECT DISTINCT h.value, h.member_id FROM ({hits}) AS h "
            f"WHERE h.member_id IN ({visible_sql})",
            [*params, *visible_params],
        )
        for value, member_id in cursor.fetchall():
            found.setdefault(value, set()).add(member_id)
        cursor.execute("TRUNCATE segment_list_keys")
    return found


def segment_list_match(
    *, rows: Sequence[tuple[int, str]], column: str, user: Any, store: Store | None = None
) -> ListMatch:
    """Match an uploaded list's cells (row number, text) to the members `user` may see.

    Cells are normalised (phones to E.164) and counted once; a member of a store the user
    does not see is "not found", exactly like a value nobody holds. Reads only.
    """
    if column not in ListColumn.values:
        raise MemberError("list_column_invalid", _("Choose what the column holds."))
    if len(rows) > LIST_MAX_ROWS:
        raise MemberError(
            "list_too_many_rows",
            _("The list has more than %(limit)s rows.") % {"limit": f"{LIST_MAX_ROWS:,}"},
        )
    result = ListMatch(rows_read=len(rows))
    first_row: dict[str, int] = {}
    raw_of: dict[str, str] = {}
    # During a key rotation a phone is also looked up by its previous keys' digests.
    aliases: dict[str, str] = {}
    for number, cell in rows:
        key, code, key_phone = _list_key(column, cell)
        # The report shows a valid phone masked, like every page and export.
        raw = mask_phone(key_phone) if key_phone else cell
        if key is None:
            result.invalid += 1
            result.rejected.append(ListRejectedRow(number, raw[:LIST_REPORT_VALUE_LENGTH], code))
        elif key in first_row:
            result.duplicates += 1
            result.rejected.append(
                ListRejectedRow(
                    number, raw[:LIST_REPORT_VALUE_LENGTH], ListReject.DUPLICATE, first_row[key]
                )
            )
        else:
            first_row[key] = number
            raw_of[key] = raw
            if key_phone:
                aliases.update(dict.fromkeys(previous_phone_digests(key_phone), key))
    holders: dict[str, set[int]] = {}
    found = _list_holders(column=column, values=[*first_row, *aliases], user=user, store=store)
    for value, holding in found.items():
        holders.setdefault(aliases.get(value, value), set()).update(holding)
    members: set[int] = set()
    for key, number in first_row.items():
        named = holders.get(key)
        if named:
            result.matched += 1
            members |= named
        else:
            result.not_found += 1
            result.rejected.append(
                ListRejectedRow(
                    number, raw_of[key][:LIST_REPORT_VALUE_LENGTH], ListReject.NOT_FOUND
                )
            )
    result.rejected.sort(key=lambda rejected: rejected.row)
    result.member_ids = sorted(members)
    return result


def _list_report_path(segment_id: int) -> str:
    return f"segment_uploads/{segment_id}/rejected.csv"


def segment_list_create(
    *,
    name: str,
    column: str,
    rows: Sequence[tuple[int, str]],
    actor: Any,
    store: Store | None = None,
    description: str = "",
    file_name: str = "",
    header: str = "",
) -> tuple[Segment, ListMatch]:
    """Create a static segment frozen to exactly the members an uploaded list names.

    Matching is scoped to what `actor` may see and, for a store's segment, to that store's
    members. Raises ListNothingMatched (nothing written) when no row matched; the rejected
    rows are kept as a report for `segment_list_rejected`.
    """
    name = name.strip()
    if not name:
        raise MemberError("segment_name_missing", _("Give the segment a name."))
    if store is not None and not Store.objects.for_user(actor).filter(pk=store.pk).exists():
        raise MemberError("store_not_yours", _("Unknown store, or not one of yours."))
    if store is None and not getattr(actor, "is_hq", False):
        raise MemberError("store_missing", _("Choose the store the segment is for."))
    with transaction.atomic():
        match = segment_list_match(rows=rows, column=column, user=actor, store=store)
        if not match.member_ids:
            raise ListNothingMatched(match)
        now = timezone.now()
        segment = Segment.objects.create(
            name=name[:100],
            description=description.strip()[:300],
            kind=SegmentKind.STATIC,
            # No rules: the list is the segment. The marker says where the list came from.
            rules={"source": "upload", "file": file_name[:200], "column": column},
            refresh=SegmentRefresh.MANUAL,
            store=store,
            created_by=actor if getattr(actor, "pk", None) else None,
            size=len(match.member_ids),
            sized_at=now,
            frozen_at=now,
        )
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY members_segmentmember (segment_id, member_id) FROM STDIN") as copy,
        ):
            for member_id in match.member_ids:
                copy.write_row((segment.pk, member_id))
        SegmentSize.objects.create(segment=segment, at=now, size=len(match.member_ids))
        audit_record(
            actor=actor,
            action="segment.create",
            target=segment,
            data={
                "name": segment.name,
                "kind": segment.kind,
                "source": "upload",
                "file": file_name[:200],
                "header": header[:100],
                "column": column,
                "store": store.pk if store is not None else None,
                **match.counts(),
            },
        )
    _list_report_save(segment_id=segment.pk, rejected=match.rejected)
    return segment, match


def _list_report_save(*, segment_id: int, rejected: Sequence[ListRejectedRow]) -> None:
    """Keep the rejected rows (codes, not text: the report speaks the reader's language)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rejected:
        writer.writerow([row.row, row.value, row.code, row.ref])
    path = _list_report_path(segment_id)
    try:
        if default_storage.exists(path):
            default_storage.delete(path)
        default_storage.save(path, ContentFile(buffer.getvalue().encode("utf-8")))
    except OSError:
        logger.exception("could not keep the rejected rows of segment %s", segment_id)


def segment_list_summary(*, segment: Segment) -> dict[str, Any] | None:
    """The counts recorded when `segment` was created from an uploaded list (None if it
    was not)."""
    event = (
        AuditEvent.objects.filter(
            action="segment.create",
            target_type=segment._meta.label_lower,
            target_id=str(segment.pk),
            data__source="upload",
        )
        .select_related("actor")
        .order_by("-pk")
        .first()
    )
    if event is None:
        return None
    return {**event.data, "actor": event.actor, "at": event.created_at}


def segment_list_rejected(*, segment: Segment, limit: int | None = None) -> list[ListRejectedRow]:
    """The rejected rows kept when `segment` was uploaded (empty when none were)."""
    rows: list[ListRejectedRow] = []
    try:
        with default_storage.open(_list_report_path(segment.pk), "rb") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            for cells in csv.reader(text):
                if limit is not None and len(rows) >= limit:
                    break
                if len(cells) == 4:
                    rows.append(
                        ListRejectedRow(int(cells[0]), cells[1], cells[2], int(cells[3] or 0))
                    )
    except OSError:  # no report kept (or it could not be read): nothing to show
        return []
    return rows
