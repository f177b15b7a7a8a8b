"""One step of `bench member-card`, run in its own process against a scratch database.

Not for everyday use: `python manage.py bench member-card` drives it.
  setup SIZE SAMPLE TOKENS_FILE   members with points, tiers and 0–20 coupons each;
                                  sessions for SAMPLE of them, access tokens to the file
  queries TOKENS_FILE N           database queries per request, both endpoints
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone


class Command(BaseCommand):
    help = "Internal: one step of `bench member-card` (setup, queries)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step", choices=["setup", "queries"])
        parser.add_argument("params", nargs="*")

    def handle(self, *args: Any, step: str, **options: Any) -> None:
        params = options["params"]
        if step == "setup":
            result = self._setup(int(params[0]), int(params[1]), Path(params[2]))
        else:
            result = self._queries(Path(params[0]), int(params[1]))
        self.stdout.write(json.dumps(result))

    def _setup(self, size: int, sample: int, tokens_file: Path) -> dict[str, Any]:
        from django.core import signing

        from members.demo import DEMO_TIERS
        from members.services.auth import ACCESS_SALT

        call_command("migrate", verbosity=0)
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO members_member (name, gender, phone_last4, city, source_channel,
                    lifecycle_stage, order_count, total_spent, member_since, created_at,
                    updated_at)
                SELECT '会员' || g, 'u', lpad((g %% 10000)::text, 4, '0'), '上海', 'pos',
                       'member', 0, (g * 37) %% 30000, %(now)s, %(now)s, %(now)s
                FROM generate_series(1, %(size)s) g
                """,
                {"now": now, "size": size},
            )
            for name, rank, enter, keep, multiplier, discount, free, priority in DEMO_TIERS:
                cursor.execute(
                    "INSERT INTO members_tier (name, rank, threshold, window_days, valid_days, "
                    "retain_threshold, grace_days, points_multiplier, discount_rate, "
                    "free_delivery, priority_service) "
                    "VALUES (%s, %s, %s, 365, 365, %s, 30, %s, %s, %s, %s)",
                    [name, rank, enter, keep, multiplier, discount, free, priority],
                )
            cursor.execute(
                "INSERT INTO members_coupontemplate (name, kind, amount_off, min_spend, "
                "valid_days, issued_count, active, gift) "
                "VALUES ('满200减20', 'amount_off', 20, 200, 30, 0, true, '') RETURNING id"
            )
            (template,) = cursor.fetchone()
            cursor.execute(
                """
                INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at)
                SELECT id, 'growth', floor(total_spent)::bigint, %(now)s FROM members_member
                WHERE total_spent >= 1
                UNION ALL
                SELECT id, 'activity', 100 + (id %% 9) * 40, %(now)s FROM members_member
                """,
                {"now": now},
            )
            cursor.execute(
                "INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after, "
                "source, external_id, reason, created_at) SELECT id, 'earn', balance, balance, "
                "'bench', kind || ':' || member_id, '', %s FROM members_pointsaccount",
                [now],
            )
            cursor.execute(
                """
                INSERT INTO members_pointslot (account_id, entry_id, amount, remaining,
                    expires_at)
                SELECT e.account_id, e.id, e.amount, e.amount,
                       CASE a.kind WHEN 'activity'
                            THEN %s + make_interval(days => (5 + a.member_id %% 300)::int) END
                FROM members_ledgerentry e JOIN members_pointsaccount a ON a.id = e.account_id
                """,
                [now],
            )
            cursor.execute(
                """
                INSERT INTO members_membertier (member_id, tier_id, achieved_at, valid_until,
                    manual_reason)
                SELECT a.member_id,
                       (SELECT t.id FROM members_tier t WHERE t.threshold <= a.balance
                        ORDER BY t.rank DESC LIMIT 1),
                       %(now)s, %(now)s + interval '365 days', ''
                FROM members_pointsaccount a WHERE a.kind = 'growth'
                """,
                {"now": now},
            )
            # 0–20 coupons each (spread by member id), a quarter of them used or expired.
            cursor.execute(
                """
                INSERT INTO members_coupon (template_id, member_id, code, status, source,
                    source_ref, issued_at, valid_until)
                SELECT %(template)s, m.id, 'B' || m.id || 'N' || n,
                       CASE WHEN n %% 4 = 0 THEN 'used' ELSE 'issued' END,
                       'bench', m.id || ':' || n, %(now)s, %(now)s + interval '30 days'
                FROM members_member m
                CROSS JOIN LATERAL generate_series(1, (m.id * 7919) %% 21) n
                """,
                {"template": template, "now": now},
            )
            coupons = cursor.rowcount
            cursor.execute(
                "ANALYZE members_member, members_pointsaccount, members_ledgerentry, "
                "members_pointslot, members_membertier, members_coupon, members_tier"
            )
            cursor.execute(
                """
                INSERT INTO members_membersession (member_id, app, refresh_token_hash,
                    created_at, expires_at)
                SELECT id, 'bench', md5(id::text), %(now)s, %(now)s + interval '30 days'
                FROM members_member ORDER BY random() LIMIT %(sample)s
                RETURNING id
                """,
                {"now": now, "sample": sample},
            )
            sessions = [row[0] for row in cursor.fetchall()]
        # A freshly loaded table is vacuumed by autovacuum in the background for minutes;
        # do it now so the measurement does not share the CPU with it (a live database has
        # long been vacuumed).
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM (ANALYZE) members_member, members_pointsaccount, members_ledgerentry, "
                "members_pointslot, members_membertier, members_coupon, members_membersession"
            )
        tokens_file.write_text(
            "\n".join(signing.dumps({"sid": sid}, salt=ACCESS_SALT) for sid in sessions) + "\n"
        )
        return {"members": size, "coupons": coupons, "sessions": len(sessions)}

    def _queries(self, tokens_file: Path, sample: int) -> dict[str, Any]:
        """Statements sent to PostgreSQL per request, counted at the driver (psycopg), so
        raw and prepared statements count as well as the ORM's."""
        import psycopg

        tokens = tokens_file.read_text().split()
        rng = random.Random(7)
        client = Client(HTTP_HOST="127.0.0.1")
        counts: dict[str, list[int]] = {"card": [], "plain": []}
        sent = [0]
        original = psycopg.Cursor.execute

        def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
            sent[0] += 1
            return original(self, *args, **kwargs)

        # One request each first: opening the connection sends its own set-up statements.
        for url in ("/api/v1/me/", "/bench/plain-card"):
            client.get(url, HTTP_AUTHORIZATION=f"Bearer {tokens[0]}")
        psycopg.Cursor.execute = counting  # type: ignore[method-assign]
        try:
            for token in rng.sample(tokens, min(sample, len(tokens))):
                for name, url in (("card", "/api/v1/me/"), ("plain", "/bench/plain-card")):
                    sent[0] = 0
                    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
                    assert response.status_code == 200, response.content[:300]
                    counts[name].append(sent[0])
        finally:
            psycopg.Cursor.execute = original  # type: ignore[method-assign]
        return {
            f"{name}_queries_per_request": max(values) if values else 0
            for name, values in counts.items()
        } | {"sampled_requests": len(counts["card"])}
