"""Headless Chromium: a store manager uploads a list of phones from the segments page, reads
the summary, downloads the rejected rows, and finds the new segment holding only their
store's member."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from members.models import Segment, SegmentMember
from tests.conftest import Org
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield context.new_page()
    context.close()


def test_store_manager_uploads_a_phone_list(
    live_server: Any, org: Org, desktop: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    page = desktop
    page.context.add_cookies([{"name": "scrm_language", "value": "en", "url": live_server.url}])
    page.goto(f"{live_server.url}/hq/login/")
    page.fill("#id_username", "manager_a1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/hq/segments/")
    page.click("[data-testid=segment-upload]")
    page.wait_for_load_state()
    assert page.input_value("#id_store") == str(org.a1.pk)  # their only store, chosen
    page.fill("#id_name", "门店回访名单")
    lines = [
        "手机号",
        "138 0000 1234",
        "+86 13800001234",
        org.member_b1.reveal_phone(),
        "13999999999",
    ]
    content = ("\n".join(lines) + "\n").encode()
    page.set_input_files(
        "#id_file", {"name": "回访.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.click("[data-testid=upload-submit]")
    page.wait_for_load_state()

    segment = Segment.objects.get()
    assert page.url == f"{live_server.url}/hq/segments/{segment.pk}/upload/"
    assert page.text_content("[data-testid=count-rows]") == "4"
    assert page.text_content("[data-testid=count-matched]") == "1"
    assert page.text_content("[data-testid=count-duplicates]") == "1"
    assert page.text_content("[data-testid=count-not-found]") == "2"
    assert page.text_content("[data-testid=count-invalid]") == "0"
    assert page.locator("[data-testid=rejected-rows] tbody tr").count() == 3

    with page.expect_download() as download_info:
        page.click("[data-testid=rejected-download]")
    report = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert report.splitlines() == [
        "Row,Value,Reason",
        # Phones are reported masked, like every phone in a page or file.
        "3,*******1234,Duplicate of row 2 (counted once).",
        f"4,{org.member_b1.masked_phone},No member you can see matches it.",
        "5,*******9999,No member you can see matches it.",
    ]
    assert list(SegmentMember.objects.values_list("member_id", flat=True)) == [
        org.member_of_guide_a1.pk
    ]
    assert segment.store == org.a1
