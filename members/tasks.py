from celery import shared_task

from members.services.lifecycle import lifecycle_refresh_all


@shared_task
def refresh_lifecycle_stages() -> int:
    """Nightly: sleeping and churned depend on the date, not only on new data."""
    return lifecycle_refresh_all()


@shared_task
def expire_points() -> int:
    """Hourly: lots past their date give up their points (one entry per lot, idempotent)."""
    from members.services.points import points_expire_due

    expired = 0
    while True:
        batch = points_expire_due()
        expired += batch
        if batch < 5_000:
            return expired


@shared_task
def review_tiers() -> dict[str, int]:
    """Nightly: tiers at the end of their validity are kept, graced or dropped a level."""
    from dataclasses import asdict

    from members.services.tiers import tiers_review

    totals: dict[str, int] = {}
    while True:
        counts = asdict(tiers_review())
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        if sum(counts.values()) == 0:
            return totals


@shared_task
def expire_coupons() -> int:
    """Hourly: unused coupons past their date become expired."""
    from members.services.coupons import coupons_expire_due

    total = 0
    while batch := coupons_expire_due():
        total += batch
    return total


@shared_task
def issue_birthday_coupons() -> int:
    """Each morning: today's birthdays get their tier's gift (once a year each)."""
    from members.services.coupons import birthday_coupons_issue

    return birthday_coupons_issue()


@shared_task
def sweep_purchase_growth() -> dict[str, int]:
    """Every few minutes and after each order import: growth value for bulk orders."""
    from dataclasses import asdict

    from members.services.growth_sweep import growth_sweep_run

    return asdict(growth_sweep_run())


@shared_task
def refresh_segment_sizes() -> int:
    """Hourly: count the dynamic segments whose scheduled refresh is due (size history)."""
    from members.services.segments import segments_refresh_due

    return segments_refresh_due()


@shared_task
def recount_rfm() -> dict[str, int]:
    """Every few minutes and after order imports: recount the RFM facts of members whose
    orders changed."""
    from dataclasses import asdict

    from members.services.rfm import rfm_recount

    return asdict(rfm_recount())


@shared_task
def review_rfm() -> dict[str, int]:
    """Nightly: move the RFM window forward, refresh cut points, record class movements."""
    from members.services.rfm import rfm_nightly

    result = rfm_nightly()
    return {"left_window": result.left_window, "moved": result.moved}


@shared_task
def recompute_rfm() -> int:
    """On request (after the window length changes): rebuild every buyer's facts."""
    from members.services.rfm import rfm_full_recompute

    return rfm_full_recompute()


@shared_task
def apply_auto_tag_rules() -> int:
    """Every 15 minutes and after imports: keep every switched-on auto-tag rule in step."""
    from members.services.auto_tags import auto_tag_rules_apply

    return sum(effect.added + effect.removed for effect in auto_tag_rules_apply().values())


@shared_task
def apply_auto_tag_rule(rule_id: int) -> int:
    """Right after a rule is saved switched on."""
    from members.models import AutoTagRule
    from members.services.auto_tags import auto_tag_rule_apply

    rule = AutoTagRule.objects.filter(pk=rule_id, active=True).select_related("tag__group").first()
    if rule is None:
        return 0
    effect = auto_tag_rule_apply(rule=rule)
    return effect.added + effect.removed


@shared_task
def auto_tag_members(member_ids: list[int]) -> int:
    """After a member's new order: their tags follow the rules without waiting."""
    from members.services.auto_tags import auto_tag_rules_apply

    results = auto_tag_rules_apply(member_ids=[int(i) for i in member_ids])
    return sum(effect.added + effect.removed for effect in results.values())


@shared_task
def generate_welcome_tasks() -> int:
    """Every 10 minutes: a welcome task for each customer a guide gained in the last day
    (one per assignment, so overlapping runs create nothing new)."""
    from members.services.followups import followups_welcome

    return followups_welcome()


@shared_task
def generate_follow_ups() -> dict[str, int]:
    """Each morning: birthday, repurchase, churn and RFM-drop tasks for guides (each at
    most once, through its source key, so a second run creates nothing new)."""
    from members.services.followups import followups_daily

    return followups_daily()
