"""HQ member list (search, filters, export) and the 360° profile, scoped and bounded."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from members.models import IdentityKind, LifecycleStage, Member
from members.services.lifecycle import member_refresh_stage
from members.services.orders import LineInput, order_record
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, phone_identity


def _names(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.name for m in response.context["page"]}


def test_search_by_phone_in_any_format_name_and_identity(client: Client, org: Org) -> None:
    IdentityFactory(member=org.member_a2, kind=IdentityKind.TMALL, value="tb_zhao_si")
    client.force_login(org.hq_operator)
    for phone in ("13800001234", "+86 138-0000-1234", "１３８００００１２３４", "0086 13800001234"):
        assert _names(client.get("/hq/members/", {"q": phone})) == {"王小美"}, phone
    assert _names(client.get("/hq/members/", {"q": "小红"})) == {"李小红"}
    assert _names(client.get("/hq/members/", {"q": "tb_zhao_si"})) == {"赵四"}
    assert _names(client.get("/hq/members/", {"q": "1234"})) == {"王小美"}
    empty = client.get("/hq/members/", {"q": "无此人"})
    assert _names(empty) == set()
    assert "没有符合条件的会员" in empty.content.decode()


def test_filters_by_store_stage_source_and_registration(client: Client, org: Org) -> None:
    old = MemberFactory(
        name="老会员",
        home_store=org.a1,
        source_channel="tmall",
        lifecycle_stage=LifecycleStage.LOYAL,
    )
    Member.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    client.force_login(org.hq_admin)
    assert _names(client.get("/hq/members/", {"store": org.a2.pk})) == {"赵四"}
    assert _names(client.get("/hq/members/", {"stage": "loyal"})) == {"老会员"}
    assert _names(client.get("/hq/members/", {"source": "tmall"})) == {"老会员"}
    last_year = (timezone.localdate() - timedelta(days=500)).isoformat()
    month_ago = (timezone.localdate() - timedelta(days=30)).isoformat()
    assert _names(
        client.get("/hq/members/", {"registered_from": last_year, "registered_to": month_ago})
    ) == {"老会员"}


def test_bad_filters_are_reported_and_ignored(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    response = client.get(
        "/hq/members/", {"store": org.b1.pk, "stage": "vip", "registered_from": "2026-13-45"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "已忽略该筛选条件" in body
    # Another store's id is not a valid choice: ignored, never shown.
    assert _names(response) == {"王小美", "李小红", "张三"}
    reversed_dates = client.get(
        "/hq/members/", {"registered_from": "2026-05-01", "registered_to": "2026-01-01"}
    )
    assert "晚于" in reversed_dates.content.decode()


def test_store_manager_sees_only_their_store_and_others_get_404(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    assert _names(client.get("/hq/members/")) == {"王小美", "李小红", "张三"}
    assert client.get(f"/hq/members/{org.member_b1.pk}/").status_code == 404
    assert client.get(f"/hq/members/{org.member_of_guide_a1.pk}/").status_code == 200
    assert client.get("/hq/members/99999999/").status_code == 404
    store_ids = [s.pk for s in client.get("/hq/members/").context["form"].fields["store"].queryset]
    assert store_ids == [org.a1.pk]


def test_guides_cannot_open_hq_member_pages(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    for url in (
        "/hq/members/",
        f"/hq/members/{org.member_of_guide_a1.pk}/",
        "/hq/members/export/?format=csv",
    ):
        assert client.get(url).status_code == 403


def test_list_and_profile_have_a_fixed_query_count(
    client: Client, org: Org, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    members = MemberFactory.create_batch(1000, home_store=org.a1, guide=org.guide_a1)
    target = members[0]
    for n in range(30):
        IdentityFactory(member=target, kind=IdentityKind.POS_CARD, value=f"card-{n}")
        order_record(
            channel="pos",
            external_id=f"P{n}",
            member=target,
            paid_at=timezone.now() - timedelta(days=n),
            amount="10",
            lines=[LineInput(sku="S", product_name="商品", quantity=1, unit_price="10")],
        )  # type: ignore[arg-type]
    member_refresh_stage(member=target, reason="test")
    from members.services.tags import member_tag_add
    from tests.members.factories import TagFactory

    for _ in range(10):
        member_tag_add(member=target, tag=TagFactory())
    client.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(12):
        response = client.get("/hq/members/", {"page": 3})
    assert len(response.context["page"]) == 25
    # Fixed whatever the member holds: each profile section costs one to three queries
    # (consent: the latest entry per purpose, the opt-outs, the ledger).
    with django_assert_max_num_queries(30):
        response = client.get(f"/hq/members/{target.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "30 笔订单" in body and "card-29" in body


def test_profile_shows_every_section_with_masked_phone(client: Client, org: Org) -> None:
    member = org.member_of_guide_a1
    phone_identity(member)
    client.force_login(org.hq_operator)
    response = client.get(f"/hq/members/{member.pk}/")
    keys = [item["section"].key for item in response.context["sections"]]
    assert keys == [
        "identities",
        "guide",
        "tags",
        "loyalty",
        "coupons",
        "consent",
        "orders",
        "behaviour",
        "lifecycle",
        "merges",
    ]
    body = response.content.decode()
    assert "*******1234" in body and "+8613800001234" not in body


def test_the_profile_is_masked_even_with_the_permission(client: Client, org: Org) -> None:
    """The permission offers the audited "show full number" button; it shows nothing."""
    org.hq_operator.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    client.force_login(org.hq_operator)
    body = client.get(f"/hq/members/{org.member_of_guide_a1.pk}/").content.decode()
    assert "*******1234" in body and "13800001234" not in body
    assert 'data-testid="reveal-phone"' in body


def test_export_csv_masks_phones_and_follows_scope(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    response = client.get("/hq/members/export/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["name"] for r in rows} == {"王小美", "李小红", "张三"}
    assert {r["phone"] for r in rows if r["name"] == "王小美"} == {"*******1234"}
    assert "+8613800001234" not in text


def test_export_xlsx_stays_masked_with_the_permission(client: Client, org: Org) -> None:
    org.hq_operator.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    client.force_login(org.hq_operator)
    response = client.get("/hq/members/export/", {"format": "xlsx", "q": "王小美"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert row["name"] == "王小美" and row["phone"] == "*******1234"
    assert sheet.max_row == 2


def test_export_refuses_an_unknown_format(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    response = client.get("/hq/members/export/", {"format": "pdf"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_member_list_empty_state(client: Client, org: Org) -> None:
    Member.objects.all().delete()
    client.force_login(org.hq_admin)
    assert "会员池还是空的" in client.get("/hq/members/").content.decode()
