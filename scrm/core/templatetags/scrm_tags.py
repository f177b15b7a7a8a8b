from typing import Any

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from scrm.core.board import STEPS

register = template.Library()


@register.filter
def thousands(value: Any) -> str:
    """12345 → 12,345 (the separator Chinese business reports use too)."""
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@register.simple_tag(takes_context=True)
def query_without_page(context: Any) -> str:
    """The current query string minus `page`, ending in & when not empty (for pager links)."""
    params = context["request"].GET.copy()
    params.pop("page", None)
    encoded = params.urlencode()
    return f"{encoded}&" if encoded else ""


@register.filter
def percent(value: Any, digits: int = 1) -> str:
    """0.1234 → 12.3%; None (no base to divide by) → —."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def points_change(value: Any) -> str:
    """A difference of two rates as signed percentage points: 0.021 → +2.1 pt."""
    if value is None:
        return "—"
    return f"{float(value) * 100:+.1f} pt"


@register.simple_tag
def sparkline(values: Any, width: int = 120, height: int = 28) -> SafeString | str:
    """A small inline SVG line of `values` (oldest first), drawn on the server: no script,
    nothing to load, and it prints."""
    points = [float(v or 0) for v in (values or [])]
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = (width - 4) / (len(points) - 1)
    coords = " ".join(
        f"{2 + i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
        for i, v in enumerate(points)
    )
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}" data-points="{}"><polyline fill="none" stroke="currentColor" '
        'stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        width,
        height,
        " → ".join(f"{v:g}" for v in points),
        len(points),
        coords,
    )


@register.filter
def signed_percent(value: Any) -> str:
    """A change as a signed percentage: 0.25 → +25%; None → —."""
    if value is None:
        return "—"
    return f"{float(value) * 100:+.0f}%"


@register.simple_tag
def table_rows(rows: Any, columns: int) -> SafeString:
    """A report table's body rows, each cell shown as `{{ cell }}` would show it (None as
    —). Built here rather than by template loops: a year of a dashboard is hundreds of
    rows, and the template engine's per-cell cost was most of the page's time. Dates and
    labels repeat down a table, so each distinct value is formatted once."""
    if not rows:
        return format_html(
            '<tr><td colspan="{}" class="empty">{}</td></tr>', columns, _("Nothing in this range.")
        )
    shown: dict[tuple[type, Any], str] = {}
    plain_ints = not settings.USE_THOUSAND_SEPARATOR
    parts: list[str] = []
    for row in rows:
        parts.append("<tr>")
        for cell in row:
            if cell is None:
                text = "—"
            elif plain_ints and type(cell) is int:
                text = str(cell)
            else:
                key = (type(cell), cell)
                text = shown.get(key)  # type: ignore[assignment]
                if text is None:
                    text = shown[key] = conditional_escape(localize(cell))
            parts.append(f"<td>{text}</td>")
        parts.append("</tr>")
    return mark_safe("".join(parts))  # noqa: S308 — every cell escaped above


# The HQ side navigation, rendered once per language, role and URL prefix: it is the same
# on every page for them, and its fifty links were a good part of each page's time.
_HQ_NAV: dict[tuple[str, str, bool, bool, bool], SafeString] = {}


@register.simple_tag(takes_context=True)
def hq_nav(context: Any) -> SafeString:
    user = context.get("user")
    flags = {
        "is_hq": bool(getattr(user, "is_hq", False)),
        "is_staff": bool(getattr(user, "is_staff", False)),
        "can_view_audit": bool(getattr(user, "can_view_audit", False)),
    }
    key = (
        get_language() or "",
        get_script_prefix(),
        flags["is_hq"],
        flags["is_staff"],
        flags["can_view_audit"],
    )
    html = _HQ_NAV.get(key)
    if html is None or settings.DEBUG:  # while developing, template edits show at once
        html = mark_safe(  # noqa: S308 — rendered by the template engine, escaped there
            render_to_string("_hq_nav.html", {"user": flags, "workflow_steps": STEPS})
        )
        _HQ_NAV[key] = html
    return html
