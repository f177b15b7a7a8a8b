"""Feedback and tickets: surveys go out after purchases, answers come back from the
mini-program, and a negative answer or a 1–2 star review opens a ticket for the store
(or, with no store, the category's department) with a due time.

Routing: the order's store, else the review's touchpoint store, else the member's home
store; the ticket goes to that store's first active manager. Without a store it waits
in head office's queue under the category's department.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member, Order
from members.services.errors import Conflict, MemberError, NotFound
from scrm.org.models import Staff, Store
from scrm.org.scoping import Role
from touchpoints.models import (
    FeedbackCategory,
    QuestionKind,
    Survey,
    SurveyInvitation,
    SurveyQuestion,
    SurveyResponse,
    SurveyTrigger,
    Ticket,
    TicketNote,
    TicketSource,
    TicketStatus,
    Touchpoint,
)

TICKET_DUE = timedelta(hours=48)
COMMENT_MAX = 1000
NEGATIVE_REVIEW = 2

INVITE_SQL = """
INSERT INTO touchpoints_surveyinvitation (survey_id, member_id, order_id, store_id, guide_id,
                                          sent_at)
SELECT %(survey)s, o.member_id, o.id, o.store_id, o.guide_id, %(now)s
FROM members_order o
JOIN members_member m ON m.id = o.member_id AND m.merged_into_id IS NULL
WHERE o.paid_at > %(oldest)s AND o.paid_at <= %(newest)s AND o.status <> 'refunded'
ON CONFLICT (survey_id, order_id) WHERE order_id IS NOT NULL DO NOTHING
"""


def surveys_invite_after_purchase(*, now: datetime | None = None) -> int:
    """Invite the buyers of orders paid `delay_hours` ago (a day of catch-up) to each
    active after-purchase survey, once per order. Runs hourly; safe to run twice."""
    now = now or timezone.now()
    invited = 0
    for survey in Survey.objects.filter(active=True, trigger=SurveyTrigger.AFTER_PURCHASE):
        newest = now - timedelta(hours=survey.delay_hours)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                INVITE_SQL,
                {
                    "survey": survey.pk,
                    "now": now,
                    "oldest": newest - timedelta(days=1),
                    "newest": newest,
                },
            )
            invited += cursor.rowcount
    return invited


def _manager_of(store_id: int | None) -> Staff | None:
    if store_id is None:
        return None
    return (
        Staff.objects.filter(stores=store_id, role=Role.STORE_MANAGER, is_active=True)
        .order_by("pk")
        .first()
    )


def _open_ticket(
    *,
    member_id: int,
    store_id: int | None,
    category: FeedbackCategory | None,
    source: str,
    subject: str,
    detail: str,
    now: datetime,
    **link: Any,
) -> Ticket:
    return Ticket.objects.create(
        member_id=member_id,
        store_id=store_id,
        department="" if store_id else (category.department if category else ""),
        category=category,
        source=source,
        subject=subject[:200],
        detail=detail[:2000],
        assignee=_manager_of(store_id),
        due_at=now + TICKET_DUE,
        **link,
    )


@dataclass(frozen=True)
class Answer:
    response: SurveyResponse
    ticket: Ticket | None


@transaction.atomic
def survey_answer(
    *,
    invitation_id: int,
    member_id: int,
    score: Any,
    comment: str = "",
    category_ids: Sequence[int] = (),
    answers: dict[int, Any] | None = None,
    now: datetime | None = None,
) -> Answer:
    """Record a member's answer to their invitation; a negative one opens a ticket."""
    now = now or timezone.now()
    invitation = (
        SurveyInvitation.objects.select_for_update(of=("self",))
        .select_related("survey", "order")
        .filter(pk=invitation_id, member_id=member_id)
        .first()
    )
    if invitation is None:
        raise NotFound("invitation_not_found", _("No such survey for you."))
    if invitation.answered_at is not None:
        raise Conflict("already_answered", _("You have already answered this survey."))
    survey = invitation.survey
    low, high = survey.score_range
    if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
        raise MemberError(
            "score_invalid",
            _("Give a score from %(low)d to %(high)d.") % {"low": low, "high": high},
        )
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise MemberError("comment_too_long", _("Keep the comment under 1,000 characters."))
    ids = sorted({int(pk) for pk in category_ids})
    categories = list(FeedbackCategory.objects.filter(pk__in=ids, active=True))
    if len(categories) != len(ids):
        raise MemberError("category_unknown", _("Unknown feedback category."))
    extra = _check_answers(survey, answers or {})
    negative = survey.is_negative(score)
    response = SurveyResponse.objects.create(
        invitation=invitation,
        survey=survey,
        member_id=member_id,
        store_id=invitation.store_id,
        guide_id=invitation.guide_id,
        order_id=invitation.order_id,
        score=score,
        comment=comment,
        negative=negative,
        answers=extra,
        submitted_at=now,
    )
    response.categories.set(categories)
    invitation.answered_at = now
    invitation.save(update_fields=["answered_at"])
    ticket = None
    if negative:
        store_id = invitation.store_id or _home_store(member_id)
        ticket = _open_ticket(
            member_id=member_id,
            store_id=store_id,
            category=categories[0] if categories else None,
            source=TicketSource.SURVEY,
            subject=_("%(survey)s: %(score)d") % {"survey": survey.name, "score": score},
            detail=comment,
            now=now,
            response=response,
        )
    return Answer(response, ticket)


def _check_answers(survey: Survey, answers: dict[int, Any]) -> dict[str, Any]:
    """The further questions' answers, checked against their kinds; required ones must
    be there."""
    questions = {q.pk: q for q in SurveyQuestion.objects.filter(survey=survey)}
    checked: dict[str, Any] = {}
    for question_id, value in answers.items():
        question = questions.get(int(question_id))
        if question is None:
            raise MemberError("question_unknown", _("That question is not in this survey."))
        if question.kind == QuestionKind.RATING:
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
        elif question.kind == QuestionKind.CHOICE:
            ok = isinstance(value, str) and value in question.choices
        else:
            ok = isinstance(value, str) and len(value.strip()) <= 500
            value = value.strip() if ok else value
        if not ok:
            raise MemberError(
                "answer_invalid",
                _("The answer to “%(question)s” is not valid.") % {"question": question.text},
            )
        checked[str(question.pk)] = value
    for question in questions.values():
        if question.required and str(question.pk) not in checked:
            raise MemberError(
                "answer_missing",
                _("Please answer “%(question)s”.") % {"question": question.text},
            )
    return checked


def _home_store(member_id: int) -> int | None:
    return Member.objects.filter(pk=member_id).values_list("home_store_id", flat=True).first()


def review_ticket(
    *,
    event_id: int,
    member_id: int,
    rating: int,
    touchpoint_id: int | None,
    properties: dict[str, Any],
    now: datetime | None = None,
) -> Ticket | None:
    """A 1–2 star review opens a ticket (once per review event)."""
    if rating > NEGATIVE_REVIEW:
        return None
    now = now or timezone.now()
    store_id = None
    order_number = str(properties.get("order") or "")
    if order_number:
        store_id = (
            Order.objects.filter(external_id=order_number, member_id=member_id)
            .values_list("store_id", flat=True)
            .first()
        )
    if store_id is None and touchpoint_id is not None:
        store_id = Touchpoint.objects.filter(pk=touchpoint_id).values_list("store_id", flat=True)[0]
    if store_id is None and properties.get("store"):
        store_id = (
            Store.objects.filter(code=str(properties["store"])).values_list("pk", flat=True).first()
        )
    store_id = store_id or _home_store(member_id)
    category = None
    if properties.get("category"):
        category = FeedbackCategory.objects.filter(name=str(properties["category"])).first()
    existing = Ticket.objects.filter(event_id=event_id).first()
    if existing is not None:
        return existing
    return _open_ticket(
        member_id=member_id,
        store_id=store_id,
        category=category,
        source=TicketSource.REVIEW,
        subject=_("%(stars)d-star review") % {"stars": rating},
        detail=str(properties.get("text") or properties.get("comment") or "")[:2000],
        now=now,
        event_id=event_id,
    )


@transaction.atomic
def ticket_update(
    *,
    ticket: Ticket,
    actor: Any,
    status: str,
    assignee: Staff | None,
    note: str = "",
    resolution: str = "",
) -> Ticket:
    """Move a ticket on. Resolving needs a resolution; the assignee must be someone who
    can see the ticket's store."""
    if status not in TicketStatus.values:
        raise MemberError("status_invalid", _("Unknown status."))
    resolution = (resolution or "").strip()
    if status == TicketStatus.RESOLVED and not resolution:
        raise MemberError("resolution_missing", _("Say how it was resolved."))
    if assignee is not None and not Ticket.objects.for_user(assignee).filter(pk=ticket.pk).exists():
        raise MemberError(
            "assignee_cannot_see",
            _("%(name)s cannot see this ticket's store.") % {"name": assignee},
        )
    ticket.status = status
    ticket.assignee = assignee
    if resolution:
        ticket.resolution = resolution[:2000]
    ticket.resolved_at = timezone.now() if status == TicketStatus.RESOLVED else None
    ticket.save(update_fields=["status", "assignee", "resolution", "resolved_at"])
    note = (note or "").strip()
    if note:
        TicketNote.objects.create(ticket=ticket, author=actor, body=note[:2000])
    return ticket
