"""`for_user` as a role × object matrix: each role against objects of its own store/region
and of other stores/regions, for every scoped model."""

import pytest
from django.contrib.auth.models import AnonymousUser

from members.models import Member
from scrm.org.models import Region, Staff, Store
from scrm.org.scoping import Role, for_user
from tests.conftest import Org
from tests.org.factories import StaffFactory

# Expected visible objects per role, by the attribute names of the `org` fixture.
ALL_REGIONS = {"region_a", "region_b"}
ALL_STORES = {"a1", "a2", "b1"}
ALL_MEMBERS = {
    "member_of_guide_a1",
    "member_of_guide_a1_other",
    "member_a1_unassigned",
    "member_a2",
    "member_b1",
}
ALL_STAFF = {
    "hq_admin",
    "hq_operator",
    "region_manager_a",
    "store_manager_a1",
    "guide_a1",
    "guide_a1_other",
    "guide_b1",
}

MATRIX = {
    "hq_admin": (ALL_REGIONS, ALL_STORES, ALL_MEMBERS, ALL_STAFF),
    "hq_operator": (ALL_REGIONS, ALL_STORES, ALL_MEMBERS, ALL_STAFF),
    "region_manager_a": (
        {"region_a"},
        {"a1", "a2"},
        {"member_of_guide_a1", "member_of_guide_a1_other", "member_a1_unassigned", "member_a2"},
        {"region_manager_a", "store_manager_a1", "guide_a1", "guide_a1_other"},
    ),
    "store_manager_a1": (
        {"region_a"},
        {"a1"},
        {"member_of_guide_a1", "member_of_guide_a1_other", "member_a1_unassigned"},
        {"store_manager_a1", "guide_a1", "guide_a1_other"},
    ),
    "guide_a1": ({"region_a"}, {"a1"}, {"member_of_guide_a1"}, {"guide_a1"}),
    "guide_b1": ({"region_b"}, {"b1"}, {"member_b1"}, {"guide_b1"}),
}


def _names(org: Org, queryset, candidates: set[str]) -> set[str]:
    pks = list(queryset.values_list("pk", flat=True))
    assert len(pks) == len(set(pks)), "scoping must not repeat rows"
    return {name for name in candidates if getattr(org, name).pk in pks}


@pytest.mark.parametrize("role_name", sorted(MATRIX))
def test_each_role_sees_exactly_its_own_objects(org: Org, role_name: str) -> None:
    user = getattr(org, role_name)
    regions, stores, members, staff = MATRIX[role_name]
    assert _names(org, Region.objects.for_user(user), ALL_REGIONS) == regions
    assert _names(org, Store.objects.for_user(user), ALL_STORES) == stores
    assert _names(org, Member.objects.for_user(user), ALL_MEMBERS) == members
    assert _names(org, Staff.objects.for_user(user), ALL_STAFF) == staff


@pytest.mark.parametrize("role_name", sorted(MATRIX))
def test_function_form_matches_queryset_method(org: Org, role_name: str) -> None:
    user = getattr(org, role_name)
    for model in (Region, Store, Member, Staff):
        method = set(model.objects.for_user(user).values_list("pk", flat=True))
        function = set(for_user(model.objects.all(), user).values_list("pk", flat=True))
        assert method == function


def test_anonymous_inactive_and_roleless_users_see_nothing(org: Org) -> None:
    inactive = StaffFactory(role=Role.HQ_ADMIN, is_active=False)
    roleless = StaffFactory(role="")
    region_manager_without_region = StaffFactory(role=Role.REGION_MANAGER, region=None)
    store_manager_without_store = StaffFactory(role=Role.STORE_MANAGER)
    guide_without_store = StaffFactory(role=Role.GUIDE)
    for user in (AnonymousUser(), None, inactive, roleless, region_manager_without_region):
        for model in (Region, Store, Member, Staff):
            assert model.objects.for_user(user).count() == 0, (user, model)
    assert Store.objects.for_user(store_manager_without_store).count() == 0
    assert Member.objects.for_user(store_manager_without_store).count() == 0
    assert Store.objects.for_user(guide_without_store).count() == 0
    assert Member.objects.for_user(guide_without_store).count() == 0


def test_superuser_without_role_sees_everything(org: Org) -> None:
    root = StaffFactory(role="", is_superuser=True)
    assert Member.objects.for_user(root).count() == len(ALL_MEMBERS)


def test_scoping_follows_reassignment(org: Org) -> None:
    member = org.member_of_guide_a1
    member.guide = org.guide_a1_other
    member.save(update_fields=["guide"])
    assert not Member.objects.for_user(org.guide_a1).filter(pk=member.pk).exists()
    assert Member.objects.for_user(org.guide_a1_other).filter(pk=member.pk).exists()


def test_scoped_querysets_compose_with_filters_and_counts(org: Org) -> None:
    # A store manager of two stores (a staff row joined twice) is still counted once.
    org.store_manager_a1.stores.add(org.a2)
    visible = Staff.objects.for_user(org.store_manager_a1)
    assert visible.filter(role=Role.GUIDE).count() == 2
    assert visible.count() == len(set(visible.values_list("pk", flat=True)))
