"""Headless Chromium: HQ builds a segment with the rule builder, watches the live count
follow each edit, sees a bad node highlighted, saves it; and tags a member on the
profile."""

from collections.abc import Iterator
from typing import Any

import pytest

from members.models import Member, MemberTag, Segment
from tests.conftest import Org
from tests.members.factories import MemberFactory, TagFactory, TagGroupFactory
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def login(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/hq/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def live_count(page: Any, expected: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('[data-testid=live-count]').textContent"
        ".replace(/,/g, '') === String(n)",
        arg=expected,
    )


def test_builder_counts_live_flags_bad_nodes_and_saves(
    live_server: Any, org: Org, desktop: Any
) -> None:
    MemberFactory.create_batch(3, gender="f", city="上海", home_store=org.a1)
    MemberFactory.create_batch(2, gender="m", city="上海", home_store=org.a2)
    women = Member.objects.filter(gender="f").count()
    # Factory cities are random and may include 上海: expectations come from the data.
    shanghai_women = Member.objects.filter(gender="f", city="上海").count()
    women_or_shanghai = (
        Member.objects.filter(gender="f").count()
        + Member.objects.filter(city="上海").exclude(gender="f").count()
    )
    login(desktop, live_server, "hq_operator")
    desktop.goto(f"{live_server.url}/hq/segments/new/")
    live_count(desktop, women)  # the starting rule: women
    assert desktop.locator("[data-testid=live-sample] tbody tr").count() == min(women, 10)

    # Add "city is 上海": women in Shanghai.
    desktop.click("#rule-tree > .rule-group > .rule-row [data-role=add-condition]")
    second = desktop.locator("[data-path='rules[1]']")
    second.locator("[data-role=field]").select_option("city")
    second.locator("[data-role=value]").fill("上海")
    live_count(desktop, shanghai_women)

    # Switch the top group to OR: women, or anyone in Shanghai.
    desktop.locator("#rule-tree > .rule-group > .rule-row [data-role=op]").first.select_option("or")
    live_count(desktop, women_or_shanghai)

    # A nested NOT group with an age range that starts after it ends: flagged, not counted.
    desktop.locator("#rule-tree > .rule-group > .rule-row [data-role=op]").first.select_option(
        "and"
    )
    desktop.click("#rule-tree > .rule-group > .rule-row [data-role=add-group]")
    group = desktop.locator(".rule-group[data-path='rules[2]']")
    group.locator(".rule-row").first.locator("[data-role=op]").select_option("not")
    inner = desktop.locator("[data-path='rules[2].rules[0]']")
    inner.locator("[data-role=field]").select_option("age")
    inner.locator("[data-role=from]").fill("40")
    inner.locator("[data-role=to]").fill("20")
    error = desktop.locator("[data-testid=live-error]")
    error.wait_for(state="visible")
    assert "rule-bad" in (inner.get_attribute("class") or "")
    inner.locator("[data-role=to]").fill("")
    error.wait_for(state="hidden")
    # NOT (age ≥ 40): factory members have no birthday, so the count is unchanged.
    live_count(desktop, shanghai_women)

    desktop.fill("#id_name", "上海女性")
    with desktop.expect_navigation():
        desktop.click("[data-testid=segment-form] button[type=submit]")
    segment = Segment.objects.get(name="上海女性")
    assert segment.size == shanghai_women
    assert segment.rules["rules"][2] == {
        "op": "not",
        "rules": [{"field": "age", "operator": "between", "value": [40, None]}],
    }
    size_line = desktop.locator("[data-testid=segment-size]").inner_text()
    assert f"{shanghai_women} 位会员" in size_line


def test_store_manager_tags_a_member_on_the_profile(
    live_server: Any, org: Org, desktop: Any
) -> None:
    group = TagGroupFactory(name="兴趣")
    TagFactory(group=group, name="瑜伽")
    member = org.member_a1_unassigned
    login(desktop, live_server, "manager_a1")
    desktop.goto(f"{live_server.url}/hq/members/{member.pk}/")
    desktop.select_option("#id_member_tag", label="瑜伽")
    with desktop.expect_navigation():
        desktop.click("[data-testid=member-tag-add] button[type=submit]")
    assert "瑜伽" in desktop.locator("[data-testid=member-tags]").inner_text()
    assert MemberTag.objects.filter(member=member, tag__name="瑜伽").exists()
    with desktop.expect_navigation():
        desktop.click("[data-testid=member-tags] button[type=submit]")
    assert not MemberTag.objects.filter(member=member).exists()
