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
    could not be used: unreadable dates or a range beyond a year fall back to the last
    `default_days` days, and a range ending after today is cut at today."""
    raw_start, raw_end = query.get("from", ""), query.get("to", "")
    start = parse_day(raw_start) if raw_start else None
    end = parse_day(raw_end) if raw_end else None
    fallback = (today - timedelta(days=default_days - 1), today)
    if (raw_start and start is None) or (raw_end and end is None):
        return (*fallback, str(_("Dates are written YYYY-MM-DD; showing the last 30 days.")))
    end = min(end or today, today)
    start = start or end - timedelta(days=default_days - 1)
    if start > end or (end - start).days >= MAX_REPORT_DAYS:
        return (
            *fallback,
            str(_("Choose a range of one day to a year; showing the last 30 days.")),
        )
    return start, end, None
