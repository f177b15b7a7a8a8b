from celery import shared_task


@shared_task
def send_broadcast_chunk(broadcast_id: int, low: int, high: int) -> dict[str, int]:
    """Send one range of a broadcast's deliveries. Safe to run twice, or twice at once:
    rows are taken under lock and a gateway is asked before any resend."""
    from dataclasses import asdict

    from campaigns.services.sending import send_chunk

    return asdict(send_chunk(broadcast_id=broadcast_id, low=low, high=high))


@shared_task
def post_for_guides(broadcast_id: int) -> dict[str, int]:
    """Hand a Moments or customer-group broadcast to WeCom for each of its guides."""
    from dataclasses import asdict

    from campaigns.services.sending import post_guide_tasks

    return asdict(post_guide_tasks(broadcast_id=broadcast_id))


@shared_task
def start_due_broadcasts() -> int:
    """Every minute: approved broadcasts whose time has come are planned and sent."""
    from campaigns.services.broadcasts import broadcasts_start_due

    return broadcasts_start_due()


@shared_task
def sweep_broadcasts() -> int:
    """Every minute: re-dispatch chunks whose task was lost; close finished broadcasts."""
    from campaigns.services.sending import broadcast_sweep

    return broadcast_sweep()


@shared_task
def enroll_journeys() -> int:
    """Every 10 minutes: members whose trigger fired enter the active campaigns' journeys."""
    from campaigns.services.journeys import journeys_enroll

    return journeys_enroll()


@shared_task
def advance_journeys() -> int:
    """Every minute: walk due journey enrollments on; sends go out through the day's wave."""
    from campaigns.services.journeys import journeys_advance

    return journeys_advance().moved


@shared_task
def refresh_attribution() -> dict[str, int]:
    """Every 15 minutes: credit newly recorded orders to the messages that converted them."""
    from dataclasses import asdict

    from campaigns.services.attribution import attribution_refresh
    from campaigns.services.funnel import funnel_refresh

    # The funnel's conversions come from attribution: rebuild it right after.
    stats = asdict(attribution_refresh())
    funnel = funnel_refresh()
    return {**stats, "funnel_broadcasts": funnel.broadcasts, "funnel_rows": funnel.rows}


@shared_task
def refresh_funnel_nightly() -> dict[str, int]:
    """Once a night: late refunds and clicks on broadcasts of the last 90 days."""
    from dataclasses import asdict

    from campaigns.services.funnel import funnel_refresh_nightly

    return asdict(funnel_refresh_nightly())
