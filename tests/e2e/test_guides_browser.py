"""Headless Chromium at a phone's size (390×844): a guide works a customer (find, tag,
untag, note, task), and a store manager hands a departed guide's customers over; the new
guide sees them with their history."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from members.models import (
    FollowUpTask,
    GuideAssignment,
    MemberTag,
    ServiceNote,
    TaskKind,
    TaskStatus,
)
from members.services.guides import note_add
from tests.conftest import Org
from tests.members.factories import MemberFactory, TagFactory, TagGroupFactory
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def _sign_in(page: Any, base: str, path: str, username: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _fits_the_screen(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"


def test_guide_finds_a_customer_tags_notes_and_completes_a_task(
    live_server: Any, org: Org, phone: Any
) -> None:
    member = org.member_of_guide_a1
    for n in range(3):
        MemberFactory(home_store=org.a1, guide=org.guide_a1, name=f"顾客{n}")
    group = TagGroupFactory(name="偏好")
    tag = TagFactory(group=group, name="爱喝咖啡")
    task = FollowUpTask.objects.create(
        member=member,
        guide=org.guide_a1,
        kind=TaskKind.HQ,
        title="会员日邀约",
        due_on=timezone.localdate(),
    )
    _sign_in(phone, live_server.url, "/m/login/", "guide_a1")
    assert phone.url == f"{live_server.url}/m/"
    _fits_the_screen(phone)
    assert phone.locator("[data-testid=tab-tasks] .m-count").inner_text() == "1"

    # Find by the last four digits of the phone.
    phone.fill("input[name=q]", "1234")
    phone.press("input[name=q]", "Enter")
    phone.wait_for_load_state()
    rows = phone.locator("[data-testid=customer-list] li")
    assert rows.count() == 1
    rows.first.click()
    phone.wait_for_load_state()
    assert phone.url == f"{live_server.url}/m/customers/{member.pk}/"
    _fits_the_screen(phone)
    assert phone.locator("[data-testid=phone]").inner_text() == "*******1234"

    # Add a tag, then remove it.
    phone.select_option("select[name=tag]", str(tag.pk))
    phone.click("#tags button[type=submit]:not(.m-x)")
    phone.wait_for_load_state()
    assert "爱喝咖啡" in phone.locator("[data-testid=tags]").inner_text()
    assert MemberTag.objects.filter(member=member, tag=tag).exists()
    phone.click("[data-testid=tags] button.m-x")
    phone.wait_for_load_state()
    assert "爱喝咖啡" not in phone.locator("[data-testid=tags]").inner_text()
    assert not MemberTag.objects.filter(member=member, tag=tag).exists()

    # Write a service note.
    phone.fill("textarea[name=body]", "喜欢燕麦拿铁，周末到店")
    phone.click("#notes button[type=submit]")
    phone.wait_for_load_state()
    assert "喜欢燕麦拿铁，周末到店" in phone.locator("[data-testid=notes]").inner_text()
    assert ServiceNote.objects.get(member=member).author_id == org.guide_a1.pk

    # Complete the task from the tasks tab.
    phone.click("[data-testid=tab-tasks]")
    phone.wait_for_load_state()
    phone.click(f"[data-testid=task-list] a[href='/m/tasks/{task.pk}/']")
    phone.wait_for_load_state()
    _fits_the_screen(phone)
    phone.check("input[name=outcome][value=visit_booked]")
    phone.fill("textarea[name=note]", "约了周六")
    phone.click("[data-testid=task-done-form] button[type=submit]")
    phone.wait_for_load_state()
    assert phone.url == f"{live_server.url}/m/tasks/"
    task.refresh_from_db()
    assert (task.status, task.outcome, task.outcome_note) == (
        TaskStatus.DONE,
        "visit_booked",
        "约了周六",
    )
    assert phone.locator("[data-testid=tab-tasks] .m-count").count() == 0

    # My performance counts it.
    phone.click("[data-testid=tab-me]")
    phone.wait_for_load_state()
    assert phone.locator("[data-testid=perf-tasks]").inner_text() == "1"
    assert phone.locator("[data-testid=perf-customers]").inner_text() == "4"


def test_manager_hands_over_a_departed_guides_customers(
    live_server: Any, org: Org, desk: Any, phone: Any
) -> None:
    member = org.member_of_guide_a1
    note_add(member=member, author=org.guide_a1, body="对花粉过敏，推荐无香款")
    FollowUpTask.objects.create(
        member=member,
        guide=org.guide_a1,
        kind=TaskKind.HQ,
        title="新品试用回访",
        due_on=timezone.localdate(),
    )
    _sign_in(desk, live_server.url, "/hq/login/", "manager_a1")
    desk.goto(f"{live_server.url}/hq/guides/")
    desk.click(f"[data-testid=leaderboard] a[href='/hq/guides/{org.guide_a1.pk}/']")
    desk.wait_for_load_state()
    desk.click("[data-testid=departure-link]")
    desk.wait_for_load_state()
    desk.check("input[name=mode][value=spread]")
    desk.check(f"input[name=to_guides][value='{org.guide_a1_other.pk}']")
    desk.click("[data-testid=departure-submit]")
    desk.wait_for_load_state()
    assert desk.url == f"{live_server.url}/hq/guides/"
    member.refresh_from_db()
    org.guide_a1.refresh_from_db()
    assert member.guide_id == org.guide_a1_other.pk
    assert org.guide_a1.is_active is False
    assert GuideAssignment.objects.get(member=member).reason == "departure"

    # The new guide finds the customer, with the earlier guide's note and the history.
    _sign_in(phone, live_server.url, "/m/login/", "guide_a1_other")
    assert f"/m/customers/{member.pk}/" in phone.content()
    phone.goto(f"{live_server.url}/m/customers/{member.pk}/")
    assert "对花粉过敏，推荐无香款" in phone.locator("[data-testid=notes]").inner_text()
    timeline = phone.locator("[data-testid=timeline]").inner_text()
    assert str(org.guide_a1_other) in timeline
    assert "新品试用回访" in phone.content()
    _fits_the_screen(phone)
    # The departed guide can no longer sign in.
    phone.context.clear_cookies()
    _sign_in(phone, live_server.url, "/m/login/", "guide_a1")
    assert "/m/login/" in phone.url
