"""Per-recipient variables in message text: {name}, {tier}, {points}, {guide}, and
{unsubscribe} (the recipient's unsubscribe link, filled in inbox and SMS messages only;
empty elsewhere). Unknown variables are refused when content is saved or a broadcast is
planned, never at send time."""

from __future__ import annotations

import string
from typing import Any

from django.utils.translation import gettext as _

from members.services.errors import MemberError

VARIABLES = ("name", "tier", "points", "guide", "unsubscribe")


def content_check(text: str) -> list[str]:
    """The variables `text` uses; refuses unknown ones and broken braces."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise MemberError(
            "content_braces", _("A brace is not closed: write {name}, or {{ for a brace.")
        ) from exc
    # `{}`, `{points:d}` or `{name!r}` would pass a name check and fail when sent.
    if any(name is not None and (not name or spec or conv) for _l, name, spec, conv in parsed):
        raise MemberError(
            "content_braces",
            _(
                "Write variables as a plain name in braces, such as {name}; "
                "write {{ and }} for a brace."
            ),
        )
    fields = [name for _lit, name, _spec, _conv in parsed if name]
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
    """Fill the variables (missing values become empty; 0 points stays 0)."""
    return text.format(
        **{name: "" if values.get(name) is None else values[name] for name in VARIABLES}
    )


def with_link(text: str, link: str) -> str:
    """A text-only message (SMS) carrying a link: the text, then the link."""
    if not link:
        return text
    return f"{text} {link}" if text else link
