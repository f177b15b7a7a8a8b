"""The unsubscribe page's confirming POST passes the CSRF check as a browser sends it.

Under `Referrer-Policy: no-referrer` a browser sends `Origin: null` with a form POST, and
Django's CSRF check refuses that: the link's page must keep its token to our own site
without that policy."""

import re

from django.test import Client

from campaigns.models import MarketingOptOut
from campaigns.services.consent import unsubscribe_token
from tests.conftest import Org


def _confirm_form(client: Client, url: str) -> tuple[str, str]:
    page = client.get(url)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token is not None
    return page["Referrer-Policy"], token.group(1)


def test_the_confirming_post_carries_our_origin_and_unsubscribes(org: Org) -> None:
    member = org.member_of_guide_a1
    url = f"/u/{unsubscribe_token(member_id=member.pk, channel='sms')}"
    client = Client(enforce_csrf_checks=True)
    policy, csrf = _confirm_form(client, url)
    # A same-origin POST under this policy carries the page's origin, not "null".
    assert policy == "same-origin"
    done = client.post(url, {"csrfmiddlewaretoken": csrf}, HTTP_ORIGIN="http://testserver")
    assert done.status_code == 200
    assert "已退订" in done.content.decode()
    assert list(MarketingOptOut.objects.values_list("member_id", "channel")) == [(member.pk, "sms")]


def test_a_post_with_a_null_origin_is_refused_and_writes_nothing(org: Org) -> None:
    member = org.member_of_guide_a1
    url = f"/u/{unsubscribe_token(member_id=member.pk, channel='sms')}"
    client = Client(enforce_csrf_checks=True)
    _policy, csrf = _confirm_form(client, url)
    refused = client.post(url, {"csrfmiddlewaretoken": csrf}, HTTP_ORIGIN="null")
    assert refused.status_code == 403
    assert not MarketingOptOut.objects.exists()
