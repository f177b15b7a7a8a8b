"""Cell normalisation and the COPY text the import writes: every accepted form gives
the same value, and every refusal says why."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from members.services.bulk import bigint_array, text_array
from touchpoints.imports import normalize as norm
from touchpoints.imports.copytext import text

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the project's TIME_ZONE
SHANGHAI_OFFSET = timedelta(hours=8)
# The reasons as the (Chinese) error report shows them, each naming the value it refuses.
NOT_A_DATE = "不是日期"
NOT_A_REAL_DATE = "不是有效日期"
NOT_A_REAL_MOMENT = "不是有效的日期时间"


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-20 10:30:15",
        "2024-05-20T10:30:15",
        " 2024-05-20 10:30:15 ",
        "2024/5/20 10:30:15",
        "2024.05.20 10:30:15",
        "2024年5月20日 10:30:15",
        "2024-05-20 10:30:15.250",
    ],
)
def test_date_times_in_every_usual_form_read_as_the_same_local_moment(value: str) -> None:
    parsed = norm.parse_datetime(value)
    assert parsed == datetime(2024, 5, 20, 10, 30, 15, tzinfo=SHANGHAI)
    assert parsed.utcoffset() == SHANGHAI_OFFSET


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-20", datetime(2024, 5, 20, tzinfo=SHANGHAI)),
        ("2024-05-20 10:30", datetime(2024, 5, 20, 10, 30, tzinfo=SHANGHAI)),
        ("20240520", datetime(2024, 5, 20, tzinfo=SHANGHAI)),
        ("2024年5月20日", datetime(2024, 5, 20, tzinfo=SHANGHAI)),
    ],
)
def test_a_date_time_without_seconds_or_time_starts_at_the_top(
    value: str, expected: datetime
) -> None:
    parsed = norm.parse_datetime(value)
    assert parsed == expected
    assert parsed.utcoffset() == SHANGHAI_OFFSET


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2025-13-45", NOT_A_REAL_MOMENT),
        ("2025-02-30 10:00:00", NOT_A_REAL_MOMENT),
        ("2025-02-03 25:00:00", NOT_A_REAL_MOMENT),
        ("2024-05-20T10:00:00+08:00", NOT_A_DATE),
        ("2024-05-20x10:00:00", NOT_A_DATE),
        ("yesterday", NOT_A_DATE),
        ("2024-W20-1", NOT_A_DATE),
    ],
)
def test_impossible_or_unreadable_date_times_are_refused_with_the_reason(
    value: str, reason: str
) -> None:
    with pytest.raises(norm.CellError, match=reason) as refused:
        norm.parse_datetime(value)
    assert f"“{value}”" in str(refused.value)


@pytest.mark.parametrize("value", ["1990-07-01", "1990/7/1", "1990年7月1日", "19900701"])
def test_dates_in_every_usual_form(value: str) -> None:
    assert norm.parse_date(value) == date(1990, 7, 1)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("1990-02-30", NOT_A_REAL_DATE), ("1990-7-1x", NOT_A_DATE), ("", NOT_A_DATE)],
)
def test_bad_dates_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(norm.CellError, match=reason) as refused:
        norm.parse_date(value)
    assert f"“{value}”" in str(refused.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("会员 张三", "会员 张三"),
        ("a\tb", "a\\tb"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("back\\slash", "back\\\\slash"),
        ("\\N", "\\\\N"),
    ],
)
def test_copy_text_escapes_only_what_copy_reads_as_syntax(value: str, expected: str) -> None:
    assert text(value) == expected


@pytest.mark.django_db
def test_array_literals_arrive_as_the_values_they_were_made_from() -> None:
    awkward = ["plain", 'say "hi"', "back\\slash", "a,b", "{braces}", "", "NULL", "会员 一"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text[], %s::bigint[], %s::bigint[]",
            [text_array(awkward), bigint_array([3, 1, 9_000_000_000]), bigint_array([])],
        )
        strings, numbers, empty = cursor.fetchone()
    assert strings == awkward
    assert numbers == [3, 1, 9_000_000_000]
    assert empty == []
