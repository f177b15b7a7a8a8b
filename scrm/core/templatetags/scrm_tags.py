from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

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
