"""`manage.py seed_demo`: the demo organisation and members, idempotent, loaded with COPY."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Exists, Min, OuterRef
from django.test import Client
from django.utils import timezone

from members.models import Identity, Member, MergeSuggestion, Order, OrderLine
from members.services.lifecycle import lifecycle_refresh_all
from members.services.orders import member_refresh_order_stats
from scrm.core.demo import DEMO_LOGINS, DEMO_PASSWORD
from scrm.org.models import Region, Staff, Store
from scrm.org.scoping import Role

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int, int]:
    return (
        Region.objects.count(),
        Store.objects.count(),
        Staff.objects.filter(role=Role.GUIDE).count(),
        Staff.objects.count(),
        Member.objects.count(),
    )


def test_seed_demo_builds_the_documented_organisation() -> None:
    out = StringIO()
    call_command("seed_demo", members=500, stdout=out)
    # 500 people, plus 3 planted duplicates (the same person registered twice) for review.
    assert _counts() == (3, 12, 40, 44, 503)
    assert MergeSuggestion.objects.filter(status="open").count() == 3
    assert "Demo data ready." in out.getvalue()
    # Every store has guides, every guide one store, and members belong to real stores.
    assert all(s.staff.filter(role=Role.GUIDE).exists() for s in Store.objects.all())
    assert not Member.objects.filter(home_store__isnull=True).exists()
    assert Member.objects.values("phone_digest").distinct().count() == 503
    phones = [m.reveal_phone() for m in Member.objects.all()]
    assert all(p.startswith("+861") and len(p) == 14 for p in phones)
    assert {m.phone_last4 for m in Member.objects.all()} == {p[-4:] for p in phones}
    # Identities hold the members' digests, never the numbers.
    assert set(Identity.objects.filter(kind="phone").values_list("value", flat=True)) == set(
        Member.objects.values_list("phone_digest", flat=True)
    )
    # Every member has a phone identity; many have WeChat ids; orders span two years.
    assert not Member.objects.exclude(identities__kind="phone").exists()
    assert Identity.objects.filter(kind="unionid").count() > 200
    assert Order.objects.count() > 500
    assert OrderLine.objects.count() >= Order.objects.count()
    first_paid = Order.objects.aggregate(first=Min("paid_at"))["first"]
    assert first_paid < timezone.now() - timedelta(days=365)
    # Stored statistics and stages agree with the orders and the rules.
    for member in Member.objects.filter(order_count__gt=0)[:50]:
        before = (member.order_count, member.total_spent, member.last_order_at)
        member_refresh_order_stats(member=member)
        member.refresh_from_db()
        assert (member.order_count, member.total_spent, member.last_order_at) == before
    assert lifecycle_refresh_all() == 0
    # A member's guide works in the member's home store.
    guided = Member.objects.exclude(guide__isnull=True)
    in_home_store = guided.filter(
        Exists(
            Staff.stores.through.objects.filter(
                staff_id=OuterRef("guide_id"), store_id=OuterRef("home_store_id")
            )
        )
    )
    assert in_home_store.count() == guided.count() > 0
    # Tags (at most one per single-choice group), sized segments, RFM facts for buyers.
    from django.db.models import Count

    from members.models import MemberRfm, MemberTag, Segment

    assert MemberTag.objects.count() > 100
    assert not (
        MemberTag.objects.filter(tag__group__choice="single")
        .values("member_id", "tag__group_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    # Four to explore, and everyone (for the demo broadcasts).
    assert Segment.objects.count() == 5
    assert not Segment.objects.filter(size__isnull=True).exists()
    assert MemberRfm.objects.count() > 0
    assert not MemberRfm.objects.filter(rfm_class="").exists()  # classed by the review


def test_seed_demo_is_idempotent_and_tops_up() -> None:
    call_command("seed_demo", members=300, stdout=StringIO())
    first = _counts()
    first_rows = set(Member.objects.values_list("name", "phone_digest", "birthday"))
    call_command("seed_demo", members=300, stdout=StringIO())
    assert _counts() == first
    call_command("seed_demo", members=400, stdout=StringIO())
    # 303 after the first run; topping up to 400 adds 97 people and 3 planted duplicates.
    assert _counts()[-1] == 403
    assert Member.objects.values("phone_digest").distinct().count() == 403
    # Topping up keeps the first 300 exactly as they were and adds 100 new people.
    assert first_rows <= set(Member.objects.values_list("name", "phone_digest", "birthday"))


def test_if_empty_leaves_an_existing_database_alone() -> None:
    call_command("seed_demo", members=10, stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", members=1000, if_empty=True, stdout=out)
    assert Member.objects.count() == 13
    assert "already has data" in out.getvalue()


def test_bad_member_count_is_refused_and_changes_nothing() -> None:
    with pytest.raises(CommandError, match="--members"):
        call_command("seed_demo", members=-5, stdout=StringIO())
    assert _counts() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(("username", "landing"), [(u, landing) for u, _r, landing in DEMO_LOGINS])
def test_demo_logins_work(client: Client, username: str, landing: str) -> None:
    call_command("seed_demo", members=50, stdout=StringIO())
    response = client.post("/login/", {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == landing
    assert client.get(landing).status_code == 200


def test_seed_demo_gives_the_reach_pages_something_to_show(client: Client) -> None:
    from campaigns.models import Broadcast, Delivery, GuideSendTask, Material

    call_command("seed_demo", members=200, stdout=StringIO())
    assert Material.objects.filter(quick_reply=True).exists()
    assert Broadcast.objects.filter(status="pending").count() == 1
    assert Delivery.objects.filter(status="sent").exists()
    guide_task = GuideSendTask.objects.get(guide__username="guide")
    assert guide_task.confirmed_at is None and guide_task.recipients > 0
    client.force_login(guide_task.guide)
    page = client.get(f"/m/broadcasts/{guide_task.pk}/")
    assert page.status_code == 200
    from campaigns.models import Campaign

    assert sorted(Campaign.objects.values_list("status", flat=True)) == [
        "active",
        "active",
        "draft",
    ]


def test_seed_demo_gives_the_funnel_figures(client: Client) -> None:
    from campaigns.models import Conversion, Delivery, FunnelFact

    call_command("seed_demo", members=200, stdout=StringIO())
    sent = Delivery.objects.filter(status="sent", broadcast__journey_step__isnull=True).count()
    facts = FunnelFact.objects.filter(broadcast__journey_step__isnull=True)
    assert sum(facts.values_list("sent", flat=True)) == sent > 0
    assert sum(facts.values_list("converted", flat=True)) == Conversion.objects.count() > 0
    assert sum(facts.values_list("opened", flat=True)) > 0
    client.force_login(Staff.objects.get(username="operator"))
    page = client.get("/hq/campaigns/compare/").content.decode()
    assert page.count('data-testid="compare-row"') == 3
