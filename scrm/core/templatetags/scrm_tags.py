from typing import Any

from django import template

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
