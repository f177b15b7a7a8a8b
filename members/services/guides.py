"""Who serves whom: assigning customers to guides, transfers (在职继承 and 离职继承), the
store pool's round-robin, service notes and follow-up tasks.

Rules kept here once:
- a member has at most one responsible guide, who works at the member's home store (a
  member without a home store takes the guide's);
- every change is a `GuideAssignment` row with its reason and who made it;
- a customer may be transferred between guides still in post at most twice in 90 days
  (WeCom's limit for 在职继承; a departed guide's handover is not limited by it);
- a customer's open follow-up tasks move with them; the store pool cancels them;
- orders keep the guide credited when they were paid (see `order_record`).
Batch operations check everything first and change nothing when any member fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from members.models import (
    AssignmentReason,
    FollowUpTask,
    GuideAssignment,
    Member,
    NoteKind,
    ServiceNote,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)
from members.services.errors import Conflict, MemberError, NotFound
from scrm.core.services import audit_record
from scrm.org.models import Staff, Store
from scrm.org.scoping import Role

TRANSFER_LIMIT = 2
TRANSFER_WINDOW = timedelta(days=90)
NOTE_MAX = 1000
TASK_TITLE_MAX = 200
BATCH_MAX = 5000


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _check_guide(guide: Staff) -> list[int]:
    """The guide's store ids; refuses anyone who is not an active guide with a store."""
    if guide.role != Role.GUIDE or not guide.is_active:
        raise MemberError("not_a_guide", _("%(name)s is not an active guide.") % {"name": guide})
    stores = list(guide.stores.values_list("pk", flat=True))
    if not stores:
        raise MemberError(
            "guide_without_store", _("%(name)s does not work at any store.") % {"name": guide}
        )
    return stores


def _check_manager(actor: Any) -> None:
    if getattr(actor, "role", None) == Role.GUIDE or not getattr(actor, "can_use_hq", False):
        raise MemberError(
            "not_allowed",
            _("Only store managers, region managers and head office reassign customers."),
            status=403,
        )


def _other_store_error(member: Member, guide: Staff) -> MemberError:
    return MemberError(
        "guide_other_store",
        _(
            "%(guide)s works at another store: %(member)s belongs to %(store)s. "
            "Choose a guide of that store."
        )
        % {"guide": guide, "member": member, "store": member.home_store},
    )


# Moves that count towards WeCom's limit: a customer given to a guide by a manager or the
# round-robin after having had one before (through the pool or directly). The first guide
# a customer ever gets, and a departed guide's handover, do not count.
COUNTED_MOVES = (AssignmentReason.TRANSFER, AssignmentReason.MANAGER, AssignmentReason.ROUND_ROBIN)


def _transfers_in_window(member_ids: Iterable[int], now: datetime) -> dict[int, list[datetime]]:
    rows = (
        GuideAssignment.objects.filter(member_id__in=list(member_ids), to_guide__isnull=False)
        .order_by("member_id", "created_at", "pk")
        .values_list("member_id", "reason", "created_at", "from_guide_id")
    )
    found: dict[int, list[datetime]] = {}
    had_guide: set[int] = set()
    for member_id, reason, at, from_guide in rows:
        moved = from_guide is not None or member_id in had_guide
        had_guide.add(member_id)
        if moved and reason in COUNTED_MOVES and at > now - TRANSFER_WINDOW:
            found.setdefault(member_id, []).append(at)
    return found


def transfer_limit_error(member: Member, times: list[datetime]) -> MemberError:
    next_allowed = min(times) + TRANSFER_WINDOW
    return MemberError(
        "transfer_limit",
        _(
            "%(member)s was already transferred twice in the last 90 days; WeCom allows "
            "the next transfer from %(date)s."
        )
        % {"member": member, "date": date_format(timezone.localtime(next_allowed), "DATE_FORMAT")},
    )


def _move(
    members: Sequence[Member],
    targets: dict[int, Staff | None],
    *,
    reason: str,
    actor: Any,
    note: str,
    now: datetime,
) -> list[GuideAssignment]:
    """Write the new guides (members already locked and checked): the members' rows, one
    history row each, and their open tasks (moved along, or cancelled for the pool)."""
    rows = []
    by_target: dict[int | None, list[int]] = {}
    guide_store: dict[int, int] = {}
    for member in members:
        target = targets[member.pk]
        if target is not None and member.home_store_id is None:
            if target.pk not in guide_store:
                guide_store[target.pk] = target.stores.values_list("pk", flat=True)[0]
            member.home_store_id = guide_store[target.pk]
            Member.objects.filter(pk=member.pk).update(home_store_id=member.home_store_id)
        rows.append(
            GuideAssignment(
                member=member,
                from_guide_id=member.guide_id,
                to_guide=target,
                store_id=member.home_store_id,
                reason=reason,
                actor=actor if getattr(actor, "pk", None) else None,
                note=note[:200],
                created_at=now,
            )
        )
        by_target.setdefault(target.pk if target else None, []).append(member.pk)
        member.guide = target
    for target_id, ids in by_target.items():
        Member.objects.filter(pk__in=ids).update(guide_id=target_id, updated_at=now)
        open_tasks = FollowUpTask.objects.filter(member_id__in=ids, status=TaskStatus.OPEN)
        if target_id is None:
            open_tasks.update(status=TaskStatus.CANCELLED)
        else:
            open_tasks.exclude(guide_id=target_id).update(guide_id=target_id)
    return GuideAssignment.objects.bulk_create(rows)


def _lock(member_ids: Sequence[int]) -> list[Member]:
    return list(
        Member.objects.select_for_update(of=("self",))
        .filter(pk__in=sorted(set(member_ids)))
        .select_related("home_store", "guide")
        .order_by("pk")
    )


@transaction.atomic
def guide_assign(
    *,
    member: Member,
    guide: Staff,
    reason: str,
    actor: Any = None,
    note: str = "",
    now: datetime | None = None,
) -> GuideAssignment | None:
    """Give an unassigned member a guide (a purchase with the guide's code, the guide's
    channel QR code, an import). A member who already has a guide keeps them: None."""
    if reason in (AssignmentReason.TRANSFER, AssignmentReason.DEPARTURE, AssignmentReason.POOL):
        raise ValueError("transfers go through customers_transfer / guide_depart")
    # Lock the guide's row: a departure running at the same time switches the guide off
    # under the same lock, so no customer is handed to a guide who is leaving.
    guide = Staff.objects.select_for_update().get(pk=guide.pk)
    stores = _check_guide(guide)
    rows = _lock([member.pk])
    if not rows:
        raise NotFound("member_not_found", _("No such customer."))
    locked = rows[0]
    if locked.guide_id is not None:
        return None
    if locked.home_store_id is not None and locked.home_store_id not in stores:
        raise _other_store_error(locked, guide)
    (assignment,) = _move(
        [locked], {locked.pk: guide}, reason=reason, actor=actor, note=note, now=_now(now)
    )
    member.guide_id, member.home_store_id = guide.pk, locked.home_store_id
    return assignment


@dataclass
class TransferResult:
    moved: int = 0
    unchanged: int = 0
    by_guide: dict[str, int] = field(default_factory=dict)
    pooled: int = 0


@transaction.atomic
def customers_transfer(
    *,
    member_ids: Sequence[int],
    to_guide: Staff,
    actor: Any,
    from_guide: Staff | None = None,
    note: str = "",
    now: datetime | None = None,
) -> TransferResult:
    """A manager hands customers to `to_guide` (在职继承 for those who had a guide, an
    assignment from the pool for those who had none). With `from_guide`, every customer
    must be that guide's. All or nothing."""
    _check_manager(actor)
    now = _now(now)
    ids = sorted({int(pk) for pk in member_ids})
    if not ids:
        raise MemberError("no_customers", _("Choose at least one customer."))
    if len(ids) > BATCH_MAX:
        raise MemberError("too_many", _("At most %(n)d customers at a time.") % {"n": BATCH_MAX})
    visible = set(Member.objects.for_user(actor).filter(pk__in=ids).values_list("pk", flat=True))
    if len(visible) != len(ids):
        raise NotFound(
            "customers_not_found",
            _("%(n)d of the chosen customers do not exist or are not yours to manage.")
            % {"n": len(ids) - len(visible)},
        )
    if (
        from_guide is not None
        and Member.objects.filter(pk__in=ids).exclude(guide=from_guide).exists()
    ):
        raise MemberError(
            "not_this_guides",
            _("Some of the chosen customers are not %(guide)s's.") % {"guide": from_guide},
        )
    stores = _check_guide(to_guide)
    if not Staff.objects.for_user(actor).filter(pk=to_guide.pk).exists():
        raise NotFound("guide_not_found", _("No such guide."))
    members = _lock(ids)
    result = TransferResult()
    moving = [m for m in members if m.guide_id != to_guide.pk]
    result.unchanged = len(members) - len(moving)
    if not moving:
        raise MemberError(
            "nothing_to_move", _("These customers are already %(guide)s's.") % {"guide": to_guide}
        )
    for member in moving:
        if member.home_store_id is not None and member.home_store_id not in stores:
            raise _other_store_error(member, to_guide)
    transfers = _transfers_in_window([m.pk for m in moving], now)
    for member in moving:
        if len(transfers.get(member.pk, [])) >= TRANSFER_LIMIT:
            raise transfer_limit_error(member, transfers[member.pk])
    had_guide = [m for m in moving if m.guide_id]
    from_pool = [m for m in moving if not m.guide_id]
    targets: dict[int, Staff | None] = {m.pk: to_guide for m in moving}
    if had_guide:
        _move(had_guide, targets, reason=AssignmentReason.TRANSFER, actor=actor, note=note, now=now)
    if from_pool:
        _move(from_pool, targets, reason=AssignmentReason.MANAGER, actor=actor, note=note, now=now)
    result.moved = len(moving)
    result.by_guide = {str(to_guide): len(moving)}
    audit_record(
        actor=actor,
        action="guides.transfer",
        target=to_guide,
        data={"members": [m.pk for m in moving], "note": note[:200]},
    )
    return result


@transaction.atomic
def guide_depart(
    *,
    guide: Staff,
    actor: Any,
    to_guides: Sequence[Staff] = (),
    deactivate: bool = True,
    note: str = "",
    now: datetime | None = None,
) -> TransferResult:
    """离职继承: every customer of a leaving guide goes to one of `to_guides` of the
    customer's store, spread evenly (each to whoever has received fewest so far), or back
    to the store pool when no guide is chosen. The guide's account is then switched off,
    so they can no longer sign in."""
    _check_manager(actor)
    now = _now(now)
    if not Staff.objects.for_user(actor).filter(pk=guide.pk, role=Role.GUIDE).exists():
        raise NotFound("guide_not_found", _("No such guide."))
    Staff.objects.select_for_update().filter(pk=guide.pk).first()
    customers = Member.objects.filter(guide=guide)
    if customers.count() != Member.objects.for_user(actor).filter(guide=guide).count():
        raise MemberError(
            "customers_elsewhere",
            _(
                "%(guide)s also serves customers of stores you do not manage: ask head "
                "office or their region manager to hand them over."
            )
            % {"guide": guide},
            status=403,
        )
    targets = list(to_guides)
    if any(target.pk == guide.pk for target in targets):
        raise MemberError("same_guide", _("A leaving guide cannot take over their own customers."))
    visible = set(
        Staff.objects.for_user(actor)
        .filter(pk__in=[t.pk for t in targets])
        .values_list("pk", flat=True)
    )
    target_stores: dict[int, list[int]] = {}
    for target in targets:
        if target.pk not in visible:
            raise NotFound("guide_not_found", _("No such guide."))
        target_stores[target.pk] = _check_guide(target)
    members = _lock(list(Member.objects.filter(guide=guide).values_list("pk", flat=True)))
    received: Counter[int] = Counter()
    plan: dict[int, Staff | None] = {}
    for member in members:
        if not targets:
            plan[member.pk] = None
            continue
        eligible = [
            t
            for t in targets
            if member.home_store_id is None or member.home_store_id in target_stores[t.pk]
        ]
        if not eligible:
            raise MemberError(
                "no_guide_for_store",
                _(
                    "None of the chosen guides works at %(store)s, where %(member)s belongs. "
                    "Add a guide of that store or send the customers back to the pool."
                )
                % {"store": member.home_store, "member": member},
            )
        chosen = min(eligible, key=lambda t: (received[t.pk], t.pk))
        received[chosen.pk] += 1
        plan[member.pk] = chosen
    result = TransferResult(moved=len([m for m in plan.values() if m is not None]))
    handed = [m for m in members if plan[m.pk] is not None]
    pooled = [m for m in members if plan[m.pk] is None]
    if handed:
        _move(handed, plan, reason=AssignmentReason.DEPARTURE, actor=actor, note=note, now=now)
    if pooled:
        _move(pooled, plan, reason=AssignmentReason.POOL, actor=actor, note=note, now=now)
    result.pooled = len(pooled)
    result.by_guide = {str(t): received[t.pk] for t in targets}
    # Tasks a departed guide still held for members who already left them stay theirs:
    # cancel them so no open task points at someone who cannot sign in.
    FollowUpTask.objects.filter(guide=guide, status=TaskStatus.OPEN).update(
        status=TaskStatus.CANCELLED
    )
    if deactivate:
        Staff.objects.filter(pk=guide.pk).update(is_active=False)
        guide.is_active = False
    audit_record(
        actor=actor,
        action="guides.depart",
        target=guide,
        data={
            "to": {str(t.pk): received[t.pk] for t in targets},
            "pooled": len(pooled),
            "deactivated": deactivate,
        },
    )
    return result


@transaction.atomic
def customers_to_pool(
    *, member_ids: Sequence[int], actor: Any, note: str = "", now: datetime | None = None
) -> int:
    """Take customers off their guide, back to their store's pool."""
    _check_manager(actor)
    ids = sorted({int(pk) for pk in member_ids})
    visible = Member.objects.for_user(actor).filter(pk__in=ids, guide__isnull=False)
    if not ids or visible.count() != len(ids):
        raise NotFound("customers_not_found", _("Choose customers of yours that have a guide."))
    members = _lock(ids)
    _move(
        members,
        dict.fromkeys(ids),
        reason=AssignmentReason.POOL,
        actor=actor,
        note=note,
        now=_now(now),
    )
    return len(members)


@transaction.atomic
def pool_distribute(*, store: Store, actor: Any, now: datetime | None = None) -> dict[str, int]:
    """Round-robin the store's unassigned customers over its active guides, fewest
    customers first, so the result is as even as it can be."""
    _check_manager(actor)
    if not Store.objects.for_user(actor).filter(pk=store.pk).exists():
        raise NotFound("store_not_found", _("No such store."))
    guides = list(
        Staff.objects.guides()
        .filter(stores=store)
        .annotate(load=Count("customers", filter=Q(customers__merged_into__isnull=True)))
        .order_by("load", "pk")
    )
    if not guides:
        raise MemberError(
            "no_guides", _("%(store)s has no active guide to hand customers to.") % {"store": store}
        )
    ids = list(
        Member.objects.filter(home_store=store, guide__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH_MAX]
    )
    members = _lock(ids)
    members = [m for m in members if m.guide_id is None]
    transfers = _transfers_in_window([m.pk for m in members], _now(now))
    held = [m for m in members if len(transfers.get(m.pk, [])) >= TRANSFER_LIMIT]
    members = [m for m in members if len(transfers.get(m.pk, [])) < TRANSFER_LIMIT]
    loads = {g.pk: g.load for g in guides}
    plan: dict[int, Staff | None] = {}
    for member in members:
        chosen = min(guides, key=lambda g: (loads[g.pk], g.pk))
        loads[chosen.pk] += 1
        plan[member.pk] = chosen
    if members:
        _move(
            members, plan, reason=AssignmentReason.ROUND_ROBIN, actor=actor, note="", now=_now(now)
        )
    counts = Counter(str(plan[m.pk]) for m in members)
    if held:
        counts[_("kept in the pool (moved twice in 90 days)")] = len(held)
    return dict(counts)


def note_add(*, member: Member, author: Staff, body: str, kind: str = NoteKind.NOTE) -> ServiceNote:
    body = (body or "").strip()
    if not body:
        raise MemberError("note_empty", _("Write something in the note."))
    if len(body) > NOTE_MAX:
        raise MemberError(
            "note_too_long", _("A note holds at most %(n)d characters.") % {"n": NOTE_MAX}
        )
    if kind not in NoteKind.values:
        raise MemberError("note_kind", _("Unknown kind of note."))
    return ServiceNote.objects.create(member=member, author=author, body=body, kind=kind)


@transaction.atomic
def task_complete(
    *, task_id: int, user: Staff, outcome: str, note: str = "", now: datetime | None = None
) -> FollowUpTask:
    """Mark one's own open task done with its outcome. A task one may not see is not found;
    a task of another guide one may see (a manager's view) is refused: the guide who did
    the work completes it."""
    task: FollowUpTask | None = (
        FollowUpTask.objects.for_user(user).select_for_update().filter(pk=task_id).first()
    )
    if task is None:
        raise NotFound("task_not_found", _("No such task."))
    if task.guide_id != user.pk:
        raise MemberError(
            "task_not_yours",
            _("This task is %(guide)s's; only they can complete it.") % {"guide": task.guide},
            status=403,
        )
    if task.status != TaskStatus.OPEN:
        raise Conflict("task_closed", _("This task is already closed."))
    if outcome not in TaskOutcome.values:
        raise MemberError("outcome_invalid", _("Choose what came of it."))
    note = (note or "").strip()
    if len(note) > 500:
        raise MemberError("outcome_note_too_long", _("Keep the note under 500 characters."))
    task.status = TaskStatus.DONE
    task.outcome = outcome
    task.outcome_note = note
    task.done_at = _now(now)
    task.done_by = user
    task.save(update_fields=["status", "outcome", "outcome_note", "done_at", "done_by"])
    return task


@dataclass
class HqTaskResult:
    created: int
    without_guide: int


@transaction.atomic
def tasks_create_for_members(
    *,
    member_ids: Sequence[int],
    title: str,
    detail: str,
    due_on: date,
    actor: Any,
) -> HqTaskResult:
    """HQ asks each member's guide to do something by a day. Members without a guide are
    counted, not given a task."""
    title = (title or "").strip()
    if not title or len(title) > TASK_TITLE_MAX:
        raise MemberError("title_invalid", _("A task needs a title of 1–200 characters."))
    if due_on < timezone.localdate():
        raise MemberError("due_in_past", _("The due date is in the past."))
    ids = sorted(set(member_ids))
    if not ids:
        raise MemberError("no_customers", _("The audience is empty."))
    members = list(
        Member.objects.for_user(actor)
        .filter(pk__in=ids)
        .values_list("pk", "guide_id", "guide__is_active")
    )
    rows = [
        FollowUpTask(
            member_id=pk,
            guide_id=guide_id,
            kind=TaskKind.HQ,
            title=title,
            detail=(detail or "").strip()[:500],
            due_on=due_on,
            created_by=actor,
        )
        for pk, guide_id, active in members
        if guide_id is not None and active
    ]
    FollowUpTask.objects.bulk_create(rows, batch_size=2000)
    audit_record(
        actor=actor,
        action="guides.hq_tasks",
        target=actor,
        data={"title": title, "due_on": due_on.isoformat(), "tasks": len(rows)},
    )
    return HqTaskResult(created=len(rows), without_guide=len(members) - len(rows))


def describe_result(result: TransferResult) -> str:
    parts = [
        ngettext("%(n)d customer to %(guide)s", "%(n)d customers to %(guide)s", n)
        % {"n": n, "guide": guide}
        for guide, n in result.by_guide.items()
        if n
    ]
    if result.pooled:
        parts.append(
            ngettext(
                "%(n)d customer back to the store pool",
                "%(n)d customers back to the store pool",
                result.pooled,
            )
            % {"n": result.pooled}
        )
    return "; ".join(parts) or _("No customers to move.")
