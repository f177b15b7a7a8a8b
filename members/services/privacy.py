"""Data-subject requests (PIPL articles 45 and 47): export everything held on a member,
and erase it.

`HOLDINGS` names every table that holds rows about a member, how to find them and what
erasure does to them. A test walks the models and fails when a table that points at a
member is missing here, so a new table cannot quietly escape both requests.

Erasure anonymises rather than deletes the member row: orders, points, coupons and
deliveries stay (bookkeeping and the brand's own figures need them) but point at a
person no one can identify any more. What identifies or describes the person — name,
birthday, city, phone, identities, sessions, tags, notes, free-text answers, event
properties, message texts — is deleted or blanked, and so are the copies of those
fields in the audit trail and in merge snapshots.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members.locks import lock_members
from members.models import Gender, Member
from members.services.errors import Conflict

EXPORT_FORMAT = "scrm-member-export/1"
# What replaces a required text field (a task's title, a ticket's subject) on erasure.
ERASED = "—"

DELETE = "delete"
KEEP = "keep"
SCRUB = "scrub"

# Member fields that identify or describe the person; erasure blanks them.
PERSONAL_MEMBER_FIELDS: dict[str, Any] = {
    "name": "",
    "gender": Gender.UNKNOWN,
    "birthday": None,
    "phone_digest": "",
    "phone_last4": "",
    "phone_sealed": None,
    "city": "",
}

# Keys whose values are blanked wherever a copy of a row was kept (audit trail, merge
# snapshots): the personal member fields and every free-text or identifying column
# listed in HOLDINGS below.
PERSONAL_KEYS = frozenset(
    {
        *PERSONAL_MEMBER_FIELDS,
        "phone",
        "value",
        "hint",
        "note",
        "body",
        "title",
        "detail",
        "facts",
        "outcome_note",
        "manual_reason",
        "evidence",
        "properties",
        "comment",
        "answers",
        "subject",
        "resolution",
        "invitee_phone",
        "device_id",
        "response",
        "refresh_token_hash",
        "recipient",
        "text",
    }
)


@dataclass(frozen=True)
class Holding:
    """Rows of `label` about a member, found by any of `paths` (lookups ending at the
    member's id); `on_erase` is what erasure does: delete them, keep them, or blank the
    `scrub` fields. `omit` fields stay out of the export (secrets, other people's data)."""

    label: str
    paths: tuple[str, ...]
    on_erase: str
    scrub: dict[str, Any] = field(default_factory=dict)
    omit: tuple[str, ...] = ()

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.label)

    def rows(self, member_ids: list[int]) -> models.QuerySet[Any]:
        condition = Q()
        for path in self.paths:
            condition |= Q(**{f"{path}__in": member_ids})
        return self.model._default_manager.filter(condition).order_by("pk")


HOLDINGS: tuple[Holding, ...] = (
    Holding("members.Identity", ("member",), DELETE),
    Holding("members.MemberSession", ("member",), DELETE, omit=("refresh_token_hash",)),
    Holding("members.IdempotentRequest", ("member",), DELETE, omit=("body_hash", "response")),
    Holding("members.MemberTag", ("member",), DELETE),
    Holding("members.MemberTagLog", ("member",), DELETE),
    Holding("members.SegmentMember", ("member",), DELETE),
    Holding("members.ServiceNote", ("member",), DELETE),
    Holding("members.RfmDirty", ("member_id",), DELETE),
    Holding("members.MergeSuggestion", ("member_a", "member_b"), SCRUB, scrub={"evidence": {}}),
    # Merge snapshots are scrubbed key by key (see _scrub_merges); listed for the export.
    Holding("members.MemberMerge", ("kept", "dropped"), KEEP),
    Holding("members.GuideAssignment", ("member",), SCRUB, scrub={"note": ""}),
    Holding(
        "members.FollowUpTask",
        ("member",),
        SCRUB,
        scrub={"title": ERASED, "detail": "", "facts": {}, "outcome_note": ""},
    ),
    Holding("members.LifecycleChange", ("member",), KEEP),
    Holding("members.PointsAccount", ("member",), KEEP),
    Holding("members.LedgerEntry", ("account__member",), KEEP),
    Holding("members.PointsLot", ("account__member",), KEEP),
    Holding("members.MemberTier", ("member",), SCRUB, scrub={"manual_reason": ""}),
    Holding("members.TierChange", ("member",), KEEP),
    Holding("members.Coupon", ("member",), KEEP),
    Holding("members.CouponLog", ("coupon__member",), KEEP),
    Holding("members.Redemption", ("member",), KEEP),
    Holding("members.Order", ("member",), KEEP),
    Holding("members.OrderLine", ("order__member",), KEEP),
    Holding("members.MemberRfm", ("member",), KEEP),
    Holding("touchpoints.BehaviourEvent", ("member",), SCRUB, scrub={"properties": {}}),
    Holding("touchpoints.SurveyInvitation", ("member",), KEEP),
    Holding("touchpoints.SurveyResponse", ("member",), SCRUB, scrub={"comment": "", "answers": {}}),
    Holding("touchpoints.SurveyResponse_categories", ("surveyresponse__member",), KEEP),
    Holding(
        "touchpoints.Ticket",
        ("member",),
        SCRUB,
        scrub={"subject": ERASED, "detail": "", "resolution": ""},
    ),
    Holding("touchpoints.TicketNote", ("ticket__member",), DELETE),
    Holding("campaigns.MarketingOptOut", ("member",), KEEP),
    Holding("campaigns.ConsentEntry", ("member",), KEEP),
    Holding("campaigns.InboxMessage", ("member",), DELETE),
    Holding("campaigns.Delivery", ("member",), KEEP),
    Holding("campaigns.Conversion", ("member_id",), KEEP),
    Holding("campaigns.InviteCode", ("member",), DELETE),
    # The invitee's own referral row holds their phone and device; as an inviter the
    # member sees only that someone joined (the invitee's details are theirs).
    Holding(
        "campaigns.Referral",
        ("invitee",),
        SCRUB,
        scrub={"invitee_phone": "", "device_id": ""},
        omit=("device_id",),
    ),
    Holding(
        "campaigns.Referral",
        ("inviter", "level2_inviter"),
        KEEP,
        omit=("invitee_phone", "device_id"),
    ),
    Holding("campaigns.JourneyEnrollment", ("member",), KEEP),
    Holding("campaigns.JourneyVisit", ("enrollment__member",), KEEP),
    # What the message gateways were asked to deliver: the provider's side of a send.
    Holding("campaigns.SandboxCall", ("member_id",), DELETE),
    Holding("campaigns.SandboxFault", ("member_id",), DELETE),
)

# Columns never exported: secrets and values only meaningful inside the system.
NEVER_EXPORTED = frozenset({"phone_sealed", "phone_digest"})


def _plain_row(obj: models.Model, omit: Iterable[str] = ()) -> dict[str, Any]:
    skipped = NEVER_EXPORTED | set(omit)
    row: dict[str, Any] = {}
    for column in obj._meta.concrete_fields:
        if column.attname in skipped or column.name in skipped:
            continue
        value = getattr(obj, column.attname)
        if isinstance(value, bytes | memoryview):
            continue
        row[column.attname] = value
    return row


def person_ids(member: Member) -> list[int]:
    """The member and everyone merged into them (the same person)."""
    ids = [member.pk]
    frontier = [member.pk]
    while frontier:
        frontier = list(
            Member.all_objects.filter(merged_into__in=frontier).values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids


def _member_rows(member_ids: list[int]) -> list[dict[str, Any]]:
    rows = []
    for person in Member.all_objects.filter(pk__in=member_ids).order_by("pk"):
        row = _plain_row(person)
        row["phone"] = person.reveal_phone()  # their own number, in full
        rows.append(row)
    return rows


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, indent=1).encode()


def _audit_rows(member_ids: list[int]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    from scrm.audit.models import AuditEvent as ChangeEvent
    from scrm.core.models import AuditEvent as ActionEvent

    actions = ActionEvent.objects.filter(
        target_type="members.member", target_id__in=[str(pk) for pk in member_ids]
    ).order_by("pk")
    yield "audit.actions", [_plain_row(event) for event in actions]
    changes = ChangeEvent.objects.filter(member_id__in=member_ids).order_by("pk")
    yield "audit.changes", [_plain_row(event) for event in changes]


def member_export_archive(*, member: Member, actor: Any, origin: str = "") -> bytes:
    """A ZIP of JSON files, one per table, with everything held on `member` (and anyone
    merged into them); recorded in the audit trail as an export."""
    from scrm.audit.models import AuditAction
    from scrm.audit.services import record_event

    member_ids = person_ids(member)
    counts: dict[str, int] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        people = _member_rows(member_ids)
        archive.writestr("member.json", _json_bytes(people))
        counts["member"] = len(people)
        sections: dict[str, list[dict[str, Any]]] = {}
        for holding in HOLDINGS:
            rows = [_plain_row(obj, holding.omit) for obj in holding.rows(member_ids)]
            sections.setdefault(holding.label, []).extend(rows)
        for name, event_rows in _audit_rows(member_ids):
            sections[name] = event_rows
        for name, rows in sections.items():
            archive.writestr(f"{name}.json", _json_bytes(rows))
            counts[name] = len(rows)
        manifest = {
            "format": EXPORT_FORMAT,
            "member": member.pk,
            "merged_members": member_ids[1:],
            "generated_at": timezone.now(),
            "generated_by": actor.get_username() if getattr(actor, "pk", None) else "",
            "files": {f"{name}.json": count for name, count in counts.items()},
        }
        archive.writestr("manifest.json", _json_bytes(manifest))
    record_event(
        AuditAction.EXPORT,
        actor=actor,
        member_id=member.pk,
        table="members_member",
        row_id=member.pk,
        detail={"files": len(counts), "rows": sum(counts.values())},
        origin=origin,
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class ErasureResult:
    member_ids: list[int]
    deleted: dict[str, int]
    scrubbed: dict[str, int]


def _scrub_json(value: Any) -> Any:
    """Blank personal keys inside a JSON copy of a row (a snapshot or an audit entry)."""
    if isinstance(value, dict):
        return {k: (None if k in PERSONAL_KEYS else _scrub_json(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(item) for item in value]
    return value


def _scrub_merges(member_ids: list[int]) -> int:
    from members.models import MemberMerge

    merges = MemberMerge.objects.filter(Q(kept__in=member_ids) | Q(dropped__in=member_ids))
    for merge in merges:
        merge.kept_before = _scrub_json(merge.kept_before)
        merge.dropped_before = _scrub_json(merge.dropped_before)
        merge.save(update_fields=["kept_before", "dropped_before"])
    return len(merges)


def _withdraw_every_consent(member: Member, actor: Any, now: datetime) -> None:
    from campaigns.models import ConsentChannel, ConsentPurpose, ConsentSource
    from campaigns.services.consent import consent_record

    for purpose in ConsentPurpose.values:
        consent_record(
            member=member,
            purpose=purpose,
            granted=False,
            source=ConsentSource.HQ,
            channel=ConsentChannel.BACK_OFFICE,
            assisted_by=actor if getattr(actor, "pk", None) else None,
            now=now,
        )


@transaction.atomic
def member_erase(*, member: Member, actor: Any, origin: str = "") -> ErasureResult:
    """Anonymise `member` (and anyone merged into them) and delete or blank every
    personal field held about them, including the audit trail's copies. Irreversible;
    the erasure itself is recorded (who, when, how many rows — no personal data)."""
    from scrm.audit.models import AuditAction
    from scrm.audit.services import record_event, scrub_member_history
    from scrm.core.models import AuditEvent as ActionEvent

    if member.merged_into_id is not None:
        raise Conflict(
            "member_merged",
            _("Member #%(id)s was merged into #%(into)s: erase that member instead.")
            % {"id": member.pk, "into": member.merged_into_id},
        )
    member_ids = person_ids(member)
    people = lock_members(*Member.all_objects.filter(pk__in=member_ids))
    subject = next(person for person in people if person.pk == member.pk)
    if subject.erased_at is not None:
        raise Conflict("member_erased", _("This member's personal data was already erased."))
    now = timezone.now()
    deleted: dict[str, int] = {}
    scrubbed: dict[str, int] = {}
    for holding in HOLDINGS:
        rows = holding.rows(member_ids)
        if holding.on_erase == DELETE:
            count, _by_model = rows.delete()
            deleted[holding.label] = deleted.get(holding.label, 0) + count
        elif holding.on_erase == SCRUB:
            scrubbed[holding.label] = scrubbed.get(holding.label, 0) + rows.update(**holding.scrub)
    scrubbed["members.MemberMerge"] = _scrub_merges(member_ids)
    for person in people:
        for name, blank in PERSONAL_MEMBER_FIELDS.items():
            setattr(person, name, blank)
        person.erased_at = now
        person.save(update_fields=[*PERSONAL_MEMBER_FIELDS, "erased_at", "updated_at"])
    _withdraw_every_consent(subject, actor, now)
    actions = ActionEvent.objects.filter(
        target_type="members.member", target_id__in=[str(pk) for pk in member_ids]
    )
    for event in actions:
        event.data = _scrub_json(event.data)
        event.save(update_fields=["data"])
    for person_id in member_ids:
        scrub_member_history(person_id, sorted(PERSONAL_KEYS))
    record_event(
        AuditAction.ERASE,
        actor=actor,
        member_id=member.pk,
        table="members_member",
        row_id=member.pk,
        detail={
            "members": member_ids,
            "deleted": sum(deleted.values()),
            "scrubbed": sum(scrubbed.values()),
        },
        origin=origin,
    )
    return ErasureResult(member_ids=member_ids, deleted=deleted, scrubbed=scrubbed)
