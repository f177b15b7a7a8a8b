"""Reading ids and dates from query strings and forms without a 500 on odd input.

`str.isdigit()` is true for "²" and other Unicode digits that `int()` refuses, and
`parse_date` raises on well-formed but impossible dates (2026-02-30)."""

from __future__ import annotations

from datetime import date

from django.utils.dateparse import parse_date


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
