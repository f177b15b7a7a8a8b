"""Sections of the 360° member profile (/hq/members/<id>/).

Each section is a template plus a function that builds its context; apps add theirs
with `@profile_section(...)` in their own `profile.py`, so the profile grows (tier,
points, tags, guide, messages, behaviour trail) without one giant template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

SectionContext = Callable[[Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class ProfileSection:
    key: str
    title: str | Promise
    template: str
    order: int
    context: SectionContext


PROFILE_SECTIONS: dict[str, ProfileSection] = {}


def profile_section(
    *, key: str, title: str | Promise, template: str, order: int
) -> Callable[[SectionContext], SectionContext]:
    def register(func: SectionContext) -> SectionContext:
        PROFILE_SECTIONS[key] = ProfileSection(key, title, template, order, func)
        return func

    return register


def sections_for(member: Any, user: Any) -> list[dict[str, Any]]:
    return [
        {"section": section, **section.context(member, user)}
        for section in sorted(PROFILE_SECTIONS.values(), key=lambda s: s.order)
    ]
