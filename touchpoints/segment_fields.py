"""Behaviour in segment rules (step 6): "browsed products at least 3 times in the last 7
days", one rule field per event type, registered into the member app's rule registry
(members never imports touchpoints; touchpoints plugs in here at start-up).

The column snapshot behind live counts holds no events, so a tree that names one of these
fields is counted in SQL (`members.segments.evaluate.live_count` checks what the
snapshot can evaluate)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils.text import format_lazy
from django.utils.translation import pgettext_lazy

from members.segments.rules import Condition, FieldSpec, register_field
from members.segments.sql import M, _compare, register_compiler
from touchpoints.models import EventType

PREFIX = "event_"


def _compile(event_type: str) -> Any:
    def compile_events(c: Condition, now: datetime, params: list[Any]) -> str:
        window = ""
        inner: list[Any] = [event_type]
        if c.days is not None:
            window = " AND e.occurred_at >= %s"
            inner.append(now - timedelta(days=c.days))
        expr = (
            f"(SELECT count(*) FROM touchpoints_behaviourevent e "
            f"WHERE e.member_id = {M}.id AND e.type = %s{window})"
        )
        params.extend(inner)
        return _compare(expr, c, params)

    return compile_events


def register() -> None:
    for value, label in EventType.choices:
        name = f"{PREFIX}{value}"
        register_field(
            FieldSpec(
                name,
                format_lazy(
                    pgettext_lazy("segment field", "Behaviour: {event} (times)"), event=label
                ),
                ("gte", "lte", "between"),
                "number",
                windowed=True,
                profiling=True,
            )
        )
        register_compiler(name, _compile(value))
