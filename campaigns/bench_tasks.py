"""The naive sending design `bench broadcast` measures against: one Celery task per
recipient, each sending its one message and committing its one row. Only the bench's
workers load this module (`celery worker --include campaigns.bench_tasks`)."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone


@shared_task(name="campaigns.bench.send_one_delivery")
def send_one_delivery(delivery_id: int) -> str:
    from campaigns.gateways import gateway_for, send_one
    from campaigns.models import Delivery
    from campaigns.services.content import render
    from campaigns.services.sending import delivery_key

    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .select_related("broadcast__material", "member")
            .get(pk=delivery_id)
        )
        if delivery.status != "planned":
            return delivery.status
        material = delivery.broadcast.material
        content = render(
            material.body, {"name": delivery.member.name, "tier": "", "points": 0, "guide": ""}
        )
        result = send_one(
            gateway_for(delivery.channel),
            key=delivery_key(delivery.broadcast_id, delivery.member_id),
            member_id=delivery.member_id,
            content=content,
        )
        delivery.status = "sent" if result.status == "sent" else "failed"
        delivery.sent_at = timezone.now()
        delivery.attempts += 1
        delivery.save(update_fields=["status", "sent_at", "attempts"])
        return delivery.status
