"""Headless Chromium at a phone's size: a guide records a customer's consent from the
customer card, confirming it first; the card then shows the new state."""

from collections.abc import Iterator
from typing import Any

import pytest

from campaigns.models import ConsentEntry, MarketingOptOut
from tests.conftest import Org
from tests.e2e.test_guides_browser import _fits_the_screen, _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    questions: list[str] = []

    def answer(dialog: Any) -> None:  # keep the question the guide was asked, and say yes
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.questions = questions
    yield page
    context.close()


def test_a_guide_records_a_withdrawal_on_the_customer_card(
    live_server: Any, org: Org, phone: Any
) -> None:
    member = org.member_of_guide_a1
    _sign_in(phone, live_server.url, "/m/login/", "guide_a1")
    phone.goto(f"{live_server.url}/m/customers/{member.pk}/")
    row = phone.locator("[data-testid=consent-marketing_sms]")
    row.wait_for()
    _fits_the_screen(phone)
    row.locator("button[type=submit]").click()  # never asked: record consent
    phone.wait_for_load_state()
    phone.locator("[data-testid=consent-marketing_sms]").wait_for()
    assert len(phone.questions) == 1 and "短信营销" in phone.questions[0]
    row = phone.locator("[data-testid=consent-marketing_sms]")
    assert "已同意" in row.inner_text()
    row.locator("select[name=channel]").select_option("wecom")
    row.locator("button[type=submit]").click()  # now withdraw
    phone.wait_for_load_state()
    phone.locator("[data-testid=consent-marketing_sms]").wait_for()
    assert "已撤回" in phone.locator("[data-testid=consent-marketing_sms]").inner_text()
    assert list(
        ConsentEntry.objects.order_by("pk").values_list("granted", "source", "channel")
    ) == [(True, "guide", "store"), (False, "guide", "wecom")]
    assert list(MarketingOptOut.objects.values_list("member_id", "channel")) == [(member.pk, "sms")]
