"""Sections of the 360° member profile (/hq/members/<id>/).

Each section is a template plus a function that builds its context; apps add theirs
with `@profile_section(...)` in their own `profile.py`, so the profile grows (tier,
points, tags, guide, messages, behaviour trail) without one giant template.

A section's table downloads (`?table=<key>&format=csv|xlsx` on the profile) through a
function registered with `@profile_table(key=...)`: it returns the header and every row
of that member's table (the page may show only the latest), with the page's columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

SectionContext = Callable[[Any, Any], dict[str, Any]]
Visibility = Callable[[Any], bool]


@dataclass(frozen=True)
class ProfileSection:
    key: str
    title: str | Promise
    template: str
    order: int
    context: SectionContext
    # Who sees the section at all (None: everyone who may open the profile).
    visible: Visibility | None = None


PROFILE_SECTIONS: dict[str, ProfileSection] = {}


def profile_section(
    *,
    key: str,
    title: str | Promise,
    template: str,
    order: int,
    visible: Visibility | None = None,
) -> Callable[[SectionContext], SectionContext]:
    def register(func: SectionContext) -> SectionContext:
        PROFILE_SECTIONS[key] = ProfileSection(key, title, template, order, func, visible)
        return func

    return register


TableRows = Callable[[Any, Any], tuple[Sequence[Any], Iterable[Sequence[Any]]]]


@dataclass(frozen=True)
class ProfileTable:
    key: str
    rows: TableRows


PROFILE_TABLES: dict[str, ProfileTable] = {}


def profile_table(*, key: str) -> Callable[[TableRows], TableRows]:
    """Register `func(member, user) -> (header, rows)` as the download `?table=<key>`."""

    def register(func: TableRows) -> TableRows:
        PROFILE_TABLES[key] = ProfileTable(key, func)
        return func

    return register


def sections_for(member: Any, user: Any) -> list[dict[str, Any]]:
    return [
        {"section": section, **section.context(member, user)}
        for section in sorted(PROFILE_SECTIONS.values(), key=lambda s: s.order)
        if section.visible is None or section.visible(user)
    ]
