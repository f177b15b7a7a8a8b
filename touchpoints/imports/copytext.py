"""Rows in PostgreSQL's COPY text format, formatted by the import itself.

psycopg's `write_row` adapts every value through its dumpers, about 4.5 µs a row; the
import's writer thread spent a tenth of a large member file there. The import knows each
column's type, so an f-string per row (about 1.5 µs) does the same job. Free text goes
through `text`, which escapes what COPY reads as syntax; digests, numbers and timestamps
cannot contain it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Lines handed to the server per write: big enough that sending is rare, small enough
# that a chunk's rows are never all held twice.
BLOCK = 4000


def text(value: str) -> str:
    # Four substring scans (in C) cost a third of the translation, which nearly every
    # value (digests, names, codes) does not need.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def optional(value: int | Decimal | None) -> str:
    return NULL if value is None else str(value)


def moment(value: datetime | date | None) -> str:
    return NULL if value is None else value.isoformat()


def binary(value: bytes | None) -> str:
    # bytea's hex form; the backslash itself is escaped for COPY.
    return NULL if value is None else "\\\\x" + value.hex()


def write_lines(copy: Any, lines: Iterable[str]) -> None:
    """Send formatted lines (each ending in a newline) through an open `cursor.copy`."""
    block: list[str] = []
    for line in lines:
        block.append(line)
        if len(block) >= BLOCK:
            copy.write("".join(block))
            block.clear()
    if block:
        copy.write("".join(block))
