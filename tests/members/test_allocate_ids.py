"""Primary keys reserved up front for COPY: distinct, from the table's own sequence."""

import pytest
from django.db import connection

from members.models import Member, Order
from members.services.bulk import allocate_ids
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_reserved_ids_are_distinct_and_never_handed_out_again() -> None:
    with connection.cursor() as cursor:
        first = allocate_ids(cursor, "members_member", 500)
        second = allocate_ids(cursor, "members_member", 3)
    assert len(first) == 500 and len(set(first)) == 500
    assert not set(first) & set(second)
    later = MemberFactory()  # an ordinary insert draws from the same sequence
    assert later.pk not in set(first) | set(second)
    assert later.pk > max(first + second)


def test_each_table_reserves_from_its_own_sequence() -> None:
    with connection.cursor() as cursor:
        members = allocate_ids(cursor, "members_member", 2)
        orders = allocate_ids(cursor, "members_order", 2)
        assert allocate_ids(cursor, "members_order", 0) == []
    assert Member.objects.filter(pk__in=members).count() == 0
    assert Order.objects.filter(pk__in=orders).count() == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM members_order_id_seq")
        assert cursor.fetchone()[0] == max(orders)
