"""The guide's count of WeCom group messages still to send, for the /m/ task pages
(`members` cannot ask `campaigns`, so the count arrives through the template context)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def guide_send_tasks(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not request.path.startswith("/m/") or user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        from campaigns.selectors import guide_send_tasks

        return guide_send_tasks(user).filter(confirmed_at__isnull=True).count()

    # A callable: the template counts only on the pages that show it.
    return {"send_tasks_open": count}
