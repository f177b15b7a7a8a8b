"""The member app's own profile sections, and their tables as downloads: every row of
the member's table (the page shows the latest), the page's columns, phones as shown."""

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members import selectors
from members.models import Order
from members.profile_sections import profile_section, profile_table

Table = tuple[Sequence[Any], Iterable[Sequence[Any]]]


def day(value: datetime | None) -> date | None:
    """A moment as the local day the page shows (`|date:"Y-m-d"`)."""
    return timezone.localdate(value) if value else None


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


# --- downloads ------------------------------------------------------------------------------


@profile_table(key="identities")
def identities_table(member: Any, user: Any) -> Table:
    def value(identity: Any) -> str:
        return str(identity.display_value)

    return (
        [_("Kind"), _("App"), _("Value"), _("Source"), _("Linked at")],
        (
            [i.get_kind_display(), i.app, value(i), i.source, i.created_at]
            for i in selectors.member_identities(member)
        ),
    )


@profile_table(key="orders")
def orders_table(member: Any, user: Any) -> Table:
    return (
        [_("Paid at"), _("Channel"), _("Order number"), _("Store"), _("Credited guide")]
        + [_("Amount"), _("Refunded"), _("Status"), _("Items")],
        (
            [
                order.paid_at,
                order.get_channel_display(),
                order.external_id,
                order.store.name if order.store else "",
                str(order.guide or ""),
                order.amount,
                order.refunded_amount or "",
                order.get_status_display(),
                "、".join(f"{line.product_name} × {line.quantity}" for line in order.lines.all()),
            ]
            for order in selectors.member_orders(member, limit=None)
        ),
    )


@profile_table(key="lifecycle")
def lifecycle_table(member: Any, user: Any) -> Table:
    return (
        [_("Changed at"), _("From"), _("To"), _("Reason")],
        (
            [c.changed_at, c.get_from_stage_display(), c.get_to_stage_display(), c.reason]
            for c in selectors.member_lifecycle_history(member, limit=None)
        ),
    )


@profile_table(key="merges")
def merges_table(member: Any, user: Any) -> Table:
    def status(merge: Any) -> str:
        if merge.undone_at:
            when = timezone.localtime(merge.undone_at).strftime("%Y-%m-%d %H:%M")
            return gettext("undone %(when)s") % {"when": when}
        return gettext("merged")

    return (
        [_("Merged at"), _("Merge"), _("By"), _("Status")],
        (
            [m.merged_at, f"#{m.dropped_id} → #{m.kept_id}", str(m.merged_by or ""), status(m)]
            for m in selectors.member_merges(member)
        ),
    )


@profile_table(key="ledger")
def ledger_table(member: Any, user: Any) -> Table:
    return (
        [_("At"), _("Account"), _("Change"), _("Points"), _("Balance"), _("Source")]
        + [_("Reason"), _("By")],
        (
            [
                e.created_at,
                e.account.get_kind_display(),
                e.get_kind_display(),
                e.amount,
                e.balance_after,
                e.source,
                e.reason,
                str(e.actor or ""),
            ]
            for e in selectors.member_ledger(member, limit=None)
        ),
    )


@profile_table(key="tier-changes")
def tier_changes_table(member: Any, user: Any) -> Table:
    from members.models import TierChange

    changes = TierChange.objects.filter(member=member).select_related("from_tier", "to_tier")
    return (
        [_("At"), _("Change"), _("From"), _("To"), _("Reason")],
        (
            [
                c.changed_at,
                c.get_kind_display(),
                c.from_tier.name if c.from_tier else "",
                c.to_tier.name if c.to_tier else "",
                c.reason,
            ]
            for c in changes
        ),
    )


@profile_table(key="coupons")
def coupons_table(member: Any, user: Any) -> Table:
    return (
        [_("Code"), _("Coupon"), _("Status"), _("Issued"), _("Valid until"), _("Source")],
        (
            [
                c.code,
                c.template.name,
                c.get_status_display(),
                day(c.issued_at),
                day(c.valid_until),
                c.source,
            ]
            for c in selectors.member_coupons(member=member)
        ),
    )


@profile_table(key="tag-log")
def tag_log_table(member: Any, user: Any) -> Table:
    return (
        [_("When"), _("Tag"), _("Change"), _("Source"), _("By")],
        (
            [
                e.at,
                e.tag.name,
                e.get_action_display() + (f" · {e.get_reason_display()}" if e.reason else ""),
                e.get_source_display(),
                str(e.actor or ""),
            ]
            for e in selectors.member_tag_log(member, limit=None)
        ),
    )


@profile_table(key="guide-history")
def guide_history_table(member: Any, user: Any) -> Table:
    from members.selectors import guides as guide_selectors

    return (
        [_("When"), _("From"), _("To"), _("Reason"), _("By"), _("Note")],
        (
            [
                a.created_at,
                str(a.from_guide or ""),
                str(a.to_guide) if a.to_guide else gettext("store pool"),
                a.get_reason_display(),
                str(a.actor or ""),
                a.note,
            ]
            for a in guide_selectors.member_assignments(member, limit=None)
        ),
    )


# Registered by import: the change-history section lives in its own module.
from members import profile_audit  # noqa: E402, F401
