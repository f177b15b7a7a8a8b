"""The member app's own profile sections."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from members import selectors
from members.models import Order
from members.profile_sections import profile_section


@profile_section(
    key="identities", title=_("Identities"), order=10, template="members/hq/profile/identities.html"
)
def identities(member: Any, user: Any) -> dict[str, Any]:
    return {"identities": list(selectors.member_identities(member))}


@profile_section(
    key="orders", title=_("Orders"), order=20, template="members/hq/profile/orders.html"
)
def orders(member: Any, user: Any) -> dict[str, Any]:
    return {
        "orders": selectors.member_orders(member),
        "order_total": Order.objects.filter(member=member).count(),
    }


@profile_section(
    key="lifecycle", title=_("Lifecycle"), order=30, template="members/hq/profile/lifecycle.html"
)
def lifecycle(member: Any, user: Any) -> dict[str, Any]:
    return {"changes": selectors.member_lifecycle_history(member)}


@profile_section(
    key="merges", title=_("Merges"), order=90, template="members/hq/profile/merges.html"
)
def merges(member: Any, user: Any) -> dict[str, Any]:
    return {"merges": selectors.member_merges(member)}


@profile_section(
    key="loyalty", title=_("Tier and points"), order=15, template="members/hq/profile/loyalty.html"
)
def loyalty(member: Any, user: Any) -> dict[str, Any]:
    from members.models import TierChange
    from members.services.points import points_balances
    from members.services.tiers import tier_card

    return {
        "card": tier_card(member_id=member.pk),
        "balances": points_balances(member_id=member.pk),
        "ledger": list(selectors.member_ledger(member)),
        "tier_changes": list(
            TierChange.objects.filter(member=member).select_related("from_tier", "to_tier")[:20]
        ),
        "can_change": getattr(user, "is_hq", False),
    }


@profile_section(
    key="coupons", title=_("Coupons"), order=16, template="members/hq/profile/coupons.html"
)
def coupons(member: Any, user: Any) -> dict[str, Any]:
    return {
        "coupons": list(selectors.member_coupons(member=member)[:30]),
        "can_change": getattr(user, "is_hq", False),
    }


@profile_section(key="tags", title=_("Tags"), order=12, template="members/hq/profile/tags.html")
def tags(member: Any, user: Any) -> dict[str, Any]:
    from itertools import groupby

    from members.models import Tag

    active = Tag.objects.filter(active=True).select_related("group")
    return {
        "member_id": member.pk,
        "tags": selectors.member_tags(member),
        "log": selectors.member_tag_log(member),
        "choices": [
            (group, list(items)) for group, items in groupby(active, key=lambda tag: tag.group)
        ],
    }


@profile_section(
    key="guide", title=_("Guide and service"), order=11, template="members/hq/profile/guide.html"
)
def guide(member: Any, user: Any) -> dict[str, Any]:
    from members.selectors import guides as guide_selectors
    from scrm.org.scoping import Role

    can_reassign = getattr(user, "can_use_hq", False) and getattr(user, "role", "") != Role.GUIDE
    return {
        "member": member,
        "can_reassign": can_reassign and member.home_store_id is not None,
        "guides": list(guide_selectors.store_guides(user=user, store_id=member.home_store_id or 0)),
        "notes": guide_selectors.member_notes(member, limit=20),
        "tasks": guide_selectors.member_open_tasks(member),
        "assignments": guide_selectors.member_assignments(member),
    }
