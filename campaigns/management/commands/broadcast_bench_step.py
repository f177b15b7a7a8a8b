"""One step of `bench broadcast`, run in its own process against the bench's scratch
database and broker (so its peak memory is its own, and it publishes where the bench's
workers listen).

Not for everyday use: `python manage.py bench broadcast` drives it.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import timedelta
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

MAIN_CITY = "上海"
BASELINE_CITY = "北京"


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Command(BaseCommand):
    help = "Internal: one step of `bench broadcast` (migrate, seed, plan, dispatch, sweep…)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step")
        parser.add_argument("params", nargs="*")

    def handle(self, *args: Any, step: str, **options: Any) -> None:
        params = options["params"]
        started = time.perf_counter()
        result: dict[str, Any]
        if step == "migrate":
            call_command("migrate", verbosity=0)
            result = {}
        elif step == "seed":
            result = self._seed(int(params[0]), int(params[1]), float(params[2]))
        elif step == "plan":
            result = self._plan(params[0])
        elif step == "dispatch":
            result = self._dispatch(int(params[0]))
        elif step == "sweep":
            result = self._sweep()
        elif step == "baseline_dispatch":
            result = self._baseline_dispatch(int(params[0]))
        else:
            raise ValueError(f"unknown step {step!r}")
        result.setdefault("seconds", round(time.perf_counter() - started, 3))
        result["peak_rss_mb"] = _peak_mb()
        self.stdout.write(json.dumps(result))

    def _seed(self, members: int, baseline: int, capped_share: float) -> dict[str, Any]:
        """Members with a phone each (MAIN_CITY for the broadcast, BASELINE_CITY for the
        one-task-per-recipient sample), and a broadcast already sent today to a share of
        the main audience, so the daily cap holds those members back."""
        from campaigns.models import Broadcast, Material
        from members.models import Segment
        from scrm.org.models import Staff

        with transaction.atomic(), connection.cursor() as cursor:
            for city, count in ((MAIN_CITY, members), (BASELINE_CITY, baseline)):
                cursor.execute(
                    """
                    INSERT INTO members_member (name, phone_last4, city, source_channel,
                        lifecycle_stage, created_at, updated_at, gender, order_count,
                        total_spent)
                    SELECT '会员' || n, '', %s, 'mini_program', 'member', now(), now(), 'u', 0, 0
                    FROM generate_series(1, %s) AS n
                    """,
                    [city, count],
                )
            # Stand-in digests (md5, not the keyed HMAC): the bench only needs each member
            # to hold a phone identity, and never looks a number up or opens one.
            cursor.execute(
                """
                INSERT INTO members_identity (member_id, kind, app, value, source, created_at)
                SELECT id, 'phone', '', md5('+86139' || lpad(id::text, 8, '0')), 'bench', now()
                FROM members_member
                """
            )
            operator = Staff.objects.create_user(username="bench-operator", password=None)
            material = Material.objects.create(
                kind="text", title="会员日", body="{name}，会员日快乐！本月积分 {points}。"
            )
            segments = {
                city: Segment.objects.create(
                    name=city,
                    rules={
                        "op": "and",
                        "rules": [{"field": "city", "operator": "in", "value": [city]}],
                    },
                )
                for city in (MAIN_CITY, BASELINE_CITY)
            }
            earlier = Broadcast.objects.create(
                name="今早的群发",
                channel="sms",
                material=material,
                segment=segments[MAIN_CITY],
                status="done",
                created_by=operator,
                planned_at=timezone.now(),
            )
            cursor.execute(
                """
                INSERT INTO campaigns_delivery (broadcast_id, member_id, channel, send_day,
                    status, reason, attempts, sent_at, provider_ref, error)
                SELECT %s, id, 'sms', %s, 'sent', '', 1, now(), 'earlier', ''
                FROM members_member WHERE city = %s AND id %% %s = 0
                """,
                [earlier.pk, timezone.localdate(), MAIN_CITY, round(1 / capped_share)],
            )
            capped = cursor.rowcount
            ids = {}
            for city, segment in segments.items():
                ids[city] = Broadcast.objects.create(
                    name=f"会员日 {city}",
                    channel="sms",
                    material=material,
                    segment=segment,
                    status="approved",
                    created_by=operator,
                ).pk
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return {
            "broadcast": ids[MAIN_CITY],
            "baseline_broadcast": ids[BASELINE_CITY],
            "capped": capped,
        }

    def _plan(self, broadcast_ids: str) -> dict[str, Any]:
        from campaigns.models import Broadcast
        from campaigns.services.planning import broadcast_plan

        planned = {}
        for pk in broadcast_ids.split(","):
            preview = broadcast_plan(broadcast=Broadcast.objects.get(pk=int(pk)))
            planned[pk] = {"to_send": preview.to_send, "suppressed": preview.suppressed}
        return {"planned": planned}

    def _dispatch(self, broadcast_id: int) -> dict[str, Any]:
        from campaigns.services.sending import broadcast_dispatch

        with transaction.atomic():
            chunks = broadcast_dispatch(broadcast_id=broadcast_id)
        return {"chunks": chunks}

    def _sweep(self) -> dict[str, Any]:
        """The beat's sweep, as it runs once the lost chunks are stale."""
        from campaigns.services.sending import STALE, broadcast_sweep

        return {"redispatched": broadcast_sweep(now=timezone.now() + STALE + timedelta(1))}

    def _baseline_dispatch(self, broadcast_id: int) -> dict[str, Any]:
        """The naive design: one Celery task per recipient."""
        from campaigns.bench_tasks import send_one_delivery
        from campaigns.models import Delivery

        ids = list(
            Delivery.objects.filter(broadcast_id=broadcast_id, status="planned")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for pk in ids:
            send_one_delivery.delay(pk)
        return {"tasks": len(ids)}
