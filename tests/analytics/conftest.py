"""Planting raw rows on chosen local days, and reading the aggregates back as plain rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import LifecycleChange, Member, Order
from tests.members.factories import MemberFactory, OrderFactory


def at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def later(minutes: int = 10) -> datetime:
    """A refresh's `now` far enough ahead that rows recorded just now are past the margin."""
    return timezone.now() + timedelta(minutes=minutes)


def member(*, created: datetime, **fields: Any) -> Member:
    person = MemberFactory(**fields)
    Member.all_objects.filter(pk=person.pk).update(created_at=created)
    person.refresh_from_db()
    return person


def order(person: Member, *, paid: datetime, amount: str, **fields: Any) -> Order:
    return OrderFactory(member=person, paid_at=paid, amount=Decimal(amount), **fields)


def change(person: Member, *, frm: str, to: str, when: datetime) -> LifecycleChange:
    return LifecycleChange.objects.create(
        member=person, from_stage=frm, to_stage=to, changed_at=when
    )


def rows(queryset: Any, *fields: str) -> list[tuple[Any, ...]]:
    return sorted(queryset.values_list(*fields), key=str)


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client
