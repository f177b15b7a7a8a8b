"""The demo data carries consent decisions, so the profile's consent section, the guide's
card and suppression show real data on `make run`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from campaigns.models import ConsentEntry, Delivery, MarketingOptOut
from campaigns.selectors.consent import consent_state
from scrm.org.models import Staff

pytestmark = pytest.mark.django_db


def test_the_demo_has_consent_across_purposes_channels_and_a_child(client: Client) -> None:
    seeded = StringIO()
    call_command("seed_demo", members=500, stdout=seeded)
    assert "seed_consents: 21 consent decisions for 9 customers" in seeded.getvalue()
    entries = ConsentEntry.objects.all()
    assert entries.count() == 21
    assert set(entries.values_list("purpose", flat=True)) == {
        "marketing_inbox",
        "marketing_sms",
        "marketing_wecom",
        "marketing_subscription",
        "profiling",
        "sensitive",
    }
    assert set(entries.values_list("source", flat=True)) == {
        "mini_program",
        "guide",
        "hq",
        "sms_reply",
        "unsubscribe_link",
    }
    assert entries.filter(granted=False).count() == 6
    guide = Staff.objects.get(username="guide")
    assert set(entries.values_list("member__home_store", flat=True)) == {guide.stores.get().pk}
    # Withdrawals reached the sender: the demo SMS broadcast left them out.
    assert MarketingOptOut.objects.filter(channel="sms").count() == 3
    sms_withdrawn = MarketingOptOut.objects.filter(channel="sms").values("member_id")
    assert set(
        Delivery.objects.filter(member_id__in=sms_withdrawn, channel="sms").values_list(
            "reason", flat=True
        )
    ) <= {"opted_out"}
    # One child, whose guardian consented: profiling counts for them.
    child = next(m for m in {e.member for e in entries} if m.is_child)
    assert consent_state(member=child, purpose="sensitive").granted is True
    assert consent_state(member=child, purpose="profiling").effective is True
    client.force_login(Staff.objects.get(username="manager"))
    page = client.get(f"/hq/members/{child.pk}/").content.decode()
    assert 'data-testid="consent-child"' in page and "监护人（母亲）到店签署" in page

    out = StringIO()
    call_command("seed_demo", members=500, stdout=out)
    assert ConsentEntry.objects.count() == 21  # idempotent
