"""Headless Chromium: find a member by phone, open the 360° profile, merge and undo."""

from collections.abc import Iterator
from typing import Any

import pytest

from members.models import IdentityKind, Member, MemberMerge
from members.services.identity import merge_suggestion_raise
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, phone_identity
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_find_by_phone_and_open_the_profile(live_server: Any, org: Org, page: Any) -> None:
    member = org.member_of_guide_a1
    phone_identity(member)
    IdentityFactory(member=member, kind=IdentityKind.TMALL, value="tb_wang_xm")
    _sign_in(page, live_server.url, "hq_operator")
    page.click("nav a.nav:text-is('会员')")
    page.fill("input[name=q]", "138-0000-1234")
    page.click("[data-testid=member-filters] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=member-count]").inner_text() == "1 位会员"
    page.click("[data-testid=member-list] >> text=王小美")
    page.wait_for_load_state()
    assert page.url == f"{live_server.url}/hq/members/{member.pk}/"
    assert page.locator("[data-testid=profile-phone]").inner_text() == "*******1234"
    identities = page.locator("[data-testid=section-identities]").inner_text()
    assert "天猫买家ID" in identities and "tb_wang_xm" in identities


def test_merge_from_the_review_queue_then_undo(live_server: Any, org: Org, page: Any) -> None:
    twin = MemberFactory(name="王小美", home_store=org.a1, phone="+8613999990000")
    merge_suggestion_raise(
        first=org.member_of_guide_a1, second=twin, reason="same name", evidence=[]
    )
    _sign_in(page, live_server.url, "hq_admin")
    page.goto(f"{live_server.url}/hq/members/duplicates/")
    page.click(f"text=保留 #{org.member_of_guide_a1.pk}，将另一位合并进来…")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "确认合并"
    page.click("[data-testid=confirm-merge]")
    page.wait_for_load_state()
    assert page.url == f"{live_server.url}/hq/members/{org.member_of_guide_a1.pk}/"
    assert f"已将 #{twin.pk} 合并到" in page.content()
    assert Member.all_objects.get(pk=twin.pk).merged_into_id == org.member_of_guide_a1.pk
    page.goto(f"{live_server.url}/hq/members/merges/")
    page.click("text=撤销…")
    page.wait_for_load_state()
    page.click("[data-testid=confirm-undo]")
    page.wait_for_load_state()
    assert "重新成为独立会员" in page.content()
    assert MemberMerge.objects.get().undone_at is not None
    assert Member.objects.filter(pk=twin.pk).exists()
