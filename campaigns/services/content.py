"""Per-recipient variables in message text: {name}, {tier}, {points}, {guide}. Unknown
variables are refused when content is saved or a broadcast is planned, never at send
time."""

from __future__ import annotations

import re
import string
from typing import Any

from django.utils.translation import gettext as _

from members.services.errors import MemberError

VARIABLES = ("name", "tier", "points", "guide")
_FIELD = re.compile(r"{([^{}]*)}")


def content_check(text: str) -> list[str]:
    """The variables `text` uses; refuses unknown ones and broken braces."""
    try:
        fields = [name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name]
    except ValueError as exc:
        raise MemberError(
            "content_braces", _("A brace is not closed: write {name}, or {{ for a brace.")
        ) from exc
    unknown = sorted({f for f in fields if f not in VARIABLES})
    if unknown:
        raise MemberError(
            "unknown_variable",
            _("Unknown variable %(names)s: use %(known)s.")
            % {
                "names": ", ".join("{" + name + "}" for name in unknown),
                "known": ", ".join("{" + name + "}" for name in VARIABLES),
            },
        )
    return fields


def render(text: str, values: dict[str, Any]) -> str:
    """Fill the variables (missing values become empty)."""
    return text.format(**{name: values.get(name) or "" for name in VARIABLES})
