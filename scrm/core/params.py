"""Reading ids and dates from query strings and forms without a 500 on odd input.

`str.isdigit()` is true for "²" and other Unicode digits that `int()` refuses, and
`parse_date` raises on well-formed but impossible dates (2026-02-30)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _


def positive_int(value: object) -> int | None:
    """An id from ASCII digits (at most 18, so it fits a bigint), else None."""
    text = str(value or "")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def parse_day(value: object) -> date | None:
    """A YYYY-MM-DD date, else None (also for impossible dates)."""
    try:
        return parse_date(str(value or ""))
    except ValueError:
        return None


MAX_REPORT_DAYS = 366


def report_range(
    query: Mapping[str, str], *, today: date, default_days: int = 30
) -> tuple[date, date, str | None]:
    """The `from`/`to` days of a report (inclusive), and a message when what was asked
    could not be used: unreadable dates, a start after the end, or a range beyond a year
    fall back to the last `default_days` days. Every dashboard and report page reads its
    range here, so they all answer alike."""
    raw_start, raw_end = query.get("from", ""), query.get("to", "")
    start = parse_day(raw_start) if raw_start else None
    end = parse_day(raw_end) if raw_end else None
    fallback = (today - timedelta(days=default_days - 1), today)
    if (raw_start and start is None) or (raw_end and end is None):
        return (*fallback, str(_("Dates are written YYYY-MM-DD; showing the default range.")))
    end = end or today
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        return (
            *fallback,
            str(_("The start date is after the end date; showing the default range.")),
        )
    if (end - start).days >= MAX_REPORT_DAYS:
        return (*fallback, str(_("Choose a range of at most a year; showing the default range.")))
    return start, end, None
