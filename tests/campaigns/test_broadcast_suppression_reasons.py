"""The broadcast page names why deliveries were not sent in the user's language, not by
their stored codes (the Chinese page showed "opted_out: 1")."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from tests.campaigns.test_funnel import deliver, make_broadcast
from tests.conftest import Org


def test_not_sent_reasons_are_labels_in_chinese(client: Client, org: Org) -> None:
    at = timezone.now() - timedelta(hours=1)
    broadcast = make_broadcast(org, "会员日短信")
    deliver(broadcast, org.member_of_guide_a1, at)
    deliver(broadcast, org.member_of_guide_a1_other, at, status="suppressed", reason="opted_out")
    deliver(broadcast, org.member_a1_unassigned, at, status="suppressed", reason="opted_out")
    deliver(broadcast, org.member_a2, at, status="suppressed", reason="no_identity")
    deliver(broadcast, org.member_b1, at, status="suppressed", reason="cancelled")
    client.force_login(org.hq_operator)
    html = client.get(f"/hq/broadcasts/{broadcast.pk}/").content.decode()
    line = html.split('data-testid="suppression-reasons">', 1)[1].split("</p>", 1)[0]
    assert line == "群发已取消: 1 · 该渠道无可用身份: 1 · 已退订: 2"
    assert "opted_out" not in html and "no_identity" not in html


def test_english_page_shows_english_labels(client: Client, org: Org) -> None:
    at = timezone.now() - timedelta(hours=1)
    broadcast = make_broadcast(org, "Member day")
    deliver(broadcast, org.member_a2, at, status="suppressed", reason="frequency_cap")
    client.force_login(org.hq_operator)
    client.cookies["scrm_language"] = "en"
    html = client.get(f"/hq/broadcasts/{broadcast.pk}/").content.decode()
    line = html.split('data-testid="suppression-reasons">', 1)[1].split("</p>", 1)[0]
    assert line == "Frequency cap: 1"
