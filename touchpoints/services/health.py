"""Channel health: daily figures per touchpoint, kept from the events set-based, and the
alerts they raise.

- `health_refresh(days=2)` every 15 minutes recounts today and yesterday; nightly
  `days=31` also brings first-purchase conversion up to date (a contact's first purchase
  may come weeks later). Each run replaces the rows of the days it covers, so it is safe
  to run twice.
- `alerts_check()` nightly, on the last complete day: an inflow alert when a touchpoint's
  new contacts fall below half its trailing 7-day mean (when that mean is at least 5), a
  review alert when over a fifth of its last 7 days' reviews (at least 5) are 1–2 stars.
  Each alert is raised once per touchpoint, kind and day, and its responsible staff (else
  the store's managers, else head-office admins) are notified.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.core.models import Notification
from scrm.org.models import Staff
from scrm.org.scoping import Role
from touchpoints.models import AlertKind, Touchpoint, TouchpointAlert

CONTACT_TYPES = ("scan", "follow", "register")
NEGATIVE_RATING = 2
CONVERSION_DAYS = 30
DROP_RATIO = 0.5
MIN_BASELINE = 5.0
NEGATIVE_SHARE = 0.2
MIN_REVIEWS = 5


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


REFRESH_SQL = """
WITH ev AS MATERIALIZED (
    SELECT e.touchpoint_id, (e.occurred_at AT TIME ZONE %(tz)s)::date AS day, e.member_id,
           e.type, e.properties, e.occurred_at
    FROM touchpoints_behaviourevent e
    WHERE e.touchpoint_id IS NOT NULL AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
), counted AS (
    SELECT touchpoint_id, day,
           count(DISTINCT member_id) FILTER (WHERE type = ANY(%(contacts)s)) AS new_contacts,
           count(DISTINCT member_id) FILTER (WHERE type = 'register') AS new_members,
           count(*) FILTER (WHERE type = 'unfollow') AS unfollows,
           count(*) FILTER (WHERE type = 'review') AS reviews,
           count(*) FILTER (WHERE type = 'review'
                            AND (properties->>'rating')::int <= %(negative)s) AS negative_reviews
    FROM ev GROUP BY touchpoint_id, day
), first_contact AS (
    -- A first purchase is credited once: to the person's earliest contact in the range,
    -- when it came after that contact and within the window.
    SELECT DISTINCT ON (member_id) member_id, touchpoint_id, day, occurred_at
    FROM ev WHERE type = ANY(%(contacts)s)
    ORDER BY member_id, occurred_at
), converted AS (
    SELECT c.touchpoint_id, c.day, count(*) AS first_purchases
    FROM first_contact c
    JOIN members_member m ON m.id = c.member_id
    WHERE m.first_order_at >= c.occurred_at
      AND m.first_order_at < c.occurred_at + make_interval(days => %(window)s)
    GROUP BY c.touchpoint_id, c.day
)
INSERT INTO touchpoints_touchpointday (touchpoint_id, day, new_contacts, new_members,
                                       first_purchases, unfollows, reviews, negative_reviews,
                                       updated_at)
SELECT n.touchpoint_id, n.day, n.new_contacts, n.new_members,
       COALESCE(v.first_purchases, 0), n.unfollows, n.reviews, n.negative_reviews, now()
FROM counted n
LEFT JOIN converted v ON v.touchpoint_id = n.touchpoint_id AND v.day = n.day
"""


def health_refresh(*, days: int = 2, today: date | None = None) -> int:
    """Recount the last `days` local days (today included) from the events."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    with transaction.atomic(), connection.cursor() as cursor:
        # One refresh at a time: two overlapping ones would delete each other's rows.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('touchpoint-health'))")
        # The days are rebuilt whole: a day whose events are gone loses its row too.
        cursor.execute(
            "DELETE FROM touchpoints_touchpointday WHERE day >= %s AND day <= %s", [first, today]
        )
        cursor.execute(
            REFRESH_SQL,
            {
                "tz": timezone.get_current_timezone_name(),
                "start": _midnight(first),
                "end": _midnight(today + timedelta(days=1)),
                "contacts": list(CONTACT_TYPES),
                "negative": NEGATIVE_RATING,
                "window": CONVERSION_DAYS,
            },
        )
        return cursor.rowcount


ALERT_SQL = """
WITH tp AS (
    SELECT t.id FROM touchpoints_touchpoint t WHERE t.active
), that_day AS (
    SELECT touchpoint_id, new_contacts FROM touchpoints_touchpointday WHERE day = %(day)s
), week_mean AS (
    SELECT touchpoint_id, sum(new_contacts)::float / 7 AS mean
    FROM touchpoints_touchpointday
    WHERE day >= %(day)s - 7 AND day < %(day)s
    GROUP BY touchpoint_id
), week_reviews AS (
    SELECT touchpoint_id, sum(reviews) AS reviews, sum(negative_reviews) AS negative
    FROM touchpoints_touchpointday
    WHERE day > %(day)s - 7 AND day <= %(day)s
    GROUP BY touchpoint_id
)
SELECT tp.id, 'inflow_drop', COALESCE(d.new_contacts, 0)::float, t.mean
FROM tp JOIN week_mean t ON t.touchpoint_id = tp.id
LEFT JOIN that_day d ON d.touchpoint_id = tp.id
WHERE t.mean >= %(min_baseline)s AND COALESCE(d.new_contacts, 0) < %(ratio)s * t.mean
UNION ALL
SELECT tp.id, 'negative_reviews', r.negative::float / r.reviews, %(share)s
FROM tp JOIN week_reviews r ON r.touchpoint_id = tp.id
WHERE r.reviews >= %(min_reviews)s AND r.negative::float / r.reviews > %(share)s
"""


def alerts_check(*, today: date | None = None) -> list[TouchpointAlert]:
    """Raise the alerts of the last complete day (yesterday) and notify who should act."""
    day = (today or timezone.localdate()) - timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(
            ALERT_SQL,
            {
                "day": day,
                "min_baseline": MIN_BASELINE,
                "ratio": DROP_RATIO,
                "share": NEGATIVE_SHARE,
                "min_reviews": MIN_REVIEWS,
            },
        )
        found = cursor.fetchall()
    raised = []
    with transaction.atomic():
        for touchpoint_id, kind, value, baseline in found:
            alert, created = TouchpointAlert.objects.get_or_create(
                touchpoint_id=touchpoint_id,
                kind=kind,
                day=day,
                defaults={"value": value, "baseline": baseline},
            )
            if created:
                _notify(alert)
                raised.append(alert)
    return raised


def alert_message(alert: TouchpointAlert) -> str:
    if alert.kind == AlertKind.INFLOW_DROP:
        return _(
            "%(touchpoint)s: %(value)d new contacts on %(day)s, against %(mean).1f a day the "
            "week before."
        ) % {
            "touchpoint": alert.touchpoint,
            "value": alert.value,
            "day": alert.day,
            "mean": alert.baseline,
        }
    return _("%(touchpoint)s: %(share).0f%% of the last 7 days' reviews are negative.") % {
        "touchpoint": alert.touchpoint,
        "share": alert.value * 100,
    }


def _recipients(touchpoint: Touchpoint) -> list[Staff]:
    if touchpoint.responsible_id is not None and touchpoint.responsible.is_active:  # type: ignore[union-attr]
        return [touchpoint.responsible]  # type: ignore[list-item]
    if touchpoint.store_id is not None:
        managers = list(
            Staff.objects.filter(
                stores=touchpoint.store_id, role=Role.STORE_MANAGER, is_active=True
            )
        )
        if managers:
            return managers
    return list(Staff.objects.filter(role=Role.HQ_ADMIN, is_active=True))


def _notify(alert: TouchpointAlert) -> None:
    message = alert_message(alert)[:300]
    url = reverse("hq:touchpoint", args=[alert.touchpoint_id])
    Notification.objects.bulk_create(
        Notification(recipient=staff, message=message, url=url)
        for staff in _recipients(alert.touchpoint)
    )


@transaction.atomic
def alert_acknowledge(*, alert: TouchpointAlert, actor: Any) -> TouchpointAlert:
    alert.status = "acknowledged"
    alert.acknowledged_by = actor
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    return alert
