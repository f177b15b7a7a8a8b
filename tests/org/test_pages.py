"""HQ organisation pages, the board, the system page and the guide's home, all scoped."""

import pytest
from django.test import Client

from scrm.org.models import Staff
from scrm.org.scoping import Role
from tests.conftest import Org
from tests.members.factories import MemberFactory
from tests.org.factories import StaffFactory, StoreFactory


def test_store_list_shows_only_the_managers_stores(client: Client, org: Org) -> None:
    client.force_login(org.region_manager_a)
    body = client.get("/hq/org/stores/").content.decode()
    assert "上海南京西路店" in body
    assert "杭州湖滨店" in body
    assert "北京三里屯店" not in body
    assert "2 家门店" in body


def test_store_list_search_and_region_filter(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    page = client.get("/hq/org/stores/", {"q": "杭州"})
    assert [s.code for s in page.context["page"]] == ["HZ001"]
    page = client.get("/hq/org/stores/", {"region": org.region_b.pk})
    assert [s.code for s in page.context["page"]] == ["BJ001"]
    # A region the manager cannot see is not offered as a filter choice and filters to nothing.
    client.force_login(org.store_manager_a1)
    page = client.get("/hq/org/stores/", {"region": org.region_b.pk})
    assert list(page.context["page"]) == []
    assert [r.code for r in page.context["regions"]] == ["east"]
    assert "没有符合条件的门店" in page.content.decode()


def test_store_list_ignores_malformed_filters(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    response = client.get("/hq/org/stores/", {"region": "abc", "page": "9999"})
    assert response.status_code == 200
    assert response.context["page"].number == 1


def test_store_list_counts_active_guides(client: Client, org: Org) -> None:
    StaffFactory(role=Role.GUIDE, stores=[org.a1], is_active=False)
    client.force_login(org.hq_admin)
    stores = {s.code: s for s in client.get("/hq/org/stores/").context["page"]}
    assert stores["SH001"].guide_count == 2
    assert stores["BJ001"].guide_count == 1
    assert stores["HZ001"].guide_count == 0


def test_store_list_paginates_with_a_bounded_number_of_queries(
    client: Client, org: Org, django_assert_max_num_queries
) -> None:
    for _ in range(30):
        StoreFactory(region=org.region_a)
    client.force_login(org.hq_admin)
    with django_assert_max_num_queries(12):
        first = client.get("/hq/org/stores/")
    assert len(first.context["page"]) == 25
    second = client.get("/hq/org/stores/", {"page": 2})
    assert len(second.context["page"]) == 8
    assert "第 2 页，共 2 页" in second.content.decode()


def test_staff_list_is_scoped_and_filterable(
    client: Client, org: Org, django_assert_max_num_queries
) -> None:
    client.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(12):
        response = client.get("/hq/org/staff/")
    names = {s.username for s in response.context["page"]}
    assert names == {"manager_a1", "guide_a1", "guide_a1_other"}
    guides = client.get("/hq/org/staff/", {"role": Role.GUIDE}).context["page"]
    assert {s.username for s in guides} == {"guide_a1", "guide_a1_other"}
    bogus = client.get("/hq/org/staff/", {"role": "emperor"})
    assert bogus.context["role"] == ""


def test_board_shows_the_nine_steps_with_scoped_pool_figures(client: Client, org: Org) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from analytics.services import aggregates_rebuild

    # The board reads the aggregates, which the beat brings up to five minutes ago.
    aggregates_rebuild(now=timezone.now() + timedelta(minutes=10))
    client.force_login(org.store_manager_a1)
    response = client.get("/hq/")
    board = response.context["board"]
    assert [item["step"].number for item in board] == list(range(1, 10))
    pool = {str(f.label): f.value for f in board[0]["figures"]}
    assert pool == {"会员与潜客": 3, "本周新增": 3}
    body = response.content.decode()
    for title in (
        "建池子",
        "聚流量",
        "观用户",
        "保忠诚",
        "通触点",
        "分群组",
        "创活动",
        "自执行",
        "全监控",
    ):
        assert title in body


def test_guide_home_lists_only_their_customers(
    client: Client, org: Org, django_assert_max_num_queries
) -> None:
    for _ in range(25):
        MemberFactory(home_store=org.a1, guide=org.guide_a1)
    client.force_login(org.guide_a1)
    with django_assert_max_num_queries(12):
        response = client.get("/m/")
    assert response.context["page"].paginator.count == 26
    assert len(response.context["page"]) == 20
    # By identity, not by name: the factory's random Chinese names may repeat the fixtures'.
    seen = set(response.context["page"].paginator.object_list.values_list("pk", flat=True))
    assert org.member_of_guide_a1_other.pk not in seen  # another guide's, same store
    assert org.member_b1.pk not in seen


def test_guide_search_by_name_and_last_four_digits(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    by_digits = client.get("/m/", {"q": "1234"}).context["page"]
    assert [m.name for m in by_digits] == ["王小美"]
    assert "*******1234" in client.get("/m/", {"q": "1234"}).content.decode()
    assert [m.name for m in client.get("/m/", {"q": "小美"}).context["page"]] == ["王小美"]
    empty = client.get("/m/", {"q": "李小红"})
    assert list(empty.context["page"]) == []
    assert "没有符合搜索条件的客户" in empty.content.decode()


def test_phone_numbers_are_masked_on_the_guide_home(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    body = client.get("/m/").content.decode()
    assert "+8613800001234" not in body
    assert "13800001234" not in body
    assert "*******1234" in body


def test_new_guide_sees_an_empty_state(client: Client, org: Org) -> None:
    newcomer: Staff = StaffFactory.create(role=Role.GUIDE, stores=[org.a2])
    client.force_login(newcomer)
    assert "您名下暂无客户" in client.get("/m/").content.decode()


@pytest.mark.django_db
def test_admin_changelists_follow_scoping(client: Client, org: Org) -> None:
    org.store_manager_a1.is_staff = True
    org.store_manager_a1.save(update_fields=["is_staff"])
    from django.contrib.auth.models import Permission

    org.store_manager_a1.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_store", "view_member"])
    )
    client.force_login(org.store_manager_a1)
    stores = client.get("/admin/org/store/")
    assert stores.status_code == 200
    assert [s.code for s in stores.context["cl"].result_list] == ["SH001"]
    members = client.get("/admin/members/member/")
    assert {m.name for m in members.context["cl"].result_list} == {"王小美", "李小红", "张三"}
    assert client.get(f"/admin/org/store/{org.b1.pk}/change/").status_code == 302
