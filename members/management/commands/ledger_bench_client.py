"""One step of `bench ledger`, run in its own process against a scratch database.

Not for everyday use: `python manage.py bench ledger` drives it.
  setup SIZE START                         members with START activity points each
  load MODE THREADS SECONDS SIZE SEED AT   run clients (MODE: ledger or naive)
  check MODE APPLIED START                 the invariants after a run
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import timedelta
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

NAIVE_TABLES = """
CREATE TABLE bench_naive_account (member_id bigint PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE bench_naive_entry (
    id bigserial PRIMARY KEY, member_id bigint NOT NULL, source text NOT NULL,
    external_id text NOT NULL, amount bigint NOT NULL
);
"""


class Command(BaseCommand):
    help = "Internal: one step of `bench ledger` (setup, load, check)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step", choices=["setup", "load", "check"])
        parser.add_argument("params", nargs="*")

    def handle(self, *args: Any, step: str, **options: Any) -> None:
        params = options["params"]
        if step == "setup":
            result = self._setup(int(params[0]), int(params[1]))
        elif step == "load":
            result = self._load(
                mode=params[0],
                threads=int(params[1]),
                seconds=float(params[2]),
                size=int(params[3]),
                seed=int(params[4]),
                start_at=float(params[5]),
            )
        else:
            result = self._check(params[0], int(params[1]), int(params[2]))
        self.stdout.write(json.dumps(result))

    def _setup(self, size: int, start: int) -> dict[str, Any]:
        call_command("migrate", verbosity=0)
        now = timezone.now()
        expires = now + timedelta(days=365)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO members_member (name, gender, city, source_channel,
                    lifecycle_stage, order_count, total_spent, created_at, updated_at)
                SELECT '会员' || g, 'u', '', 'pos', 'member', 0, 0, %(now)s, %(now)s
                FROM generate_series(1, %(size)s) g
                """,
                {"now": now, "size": size},
            )
            cursor.execute(
                "INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at) "
                "SELECT id, 'activity', %s, %s FROM members_member",
                [start, now],
            )
            cursor.execute(
                """
                INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after, source,
                    external_id, reason, created_at)
                SELECT id, 'earn', balance, balance, 'bench-seed', id::text, '', %s
                FROM members_pointsaccount
                """,
                [now],
            )
            cursor.execute(
                "INSERT INTO members_pointslot (account_id, entry_id, amount, remaining, "
                "expires_at) SELECT account_id, id, amount, amount, %s FROM members_ledgerentry",
                [expires],
            )
            cursor.execute(NAIVE_TABLES)
            cursor.execute(
                "INSERT INTO bench_naive_account SELECT id, %s FROM members_member", [start]
            )
            cursor.execute(
                "ANALYZE members_member, members_pointsaccount, members_ledgerentry, "
                "members_pointslot, bench_naive_account"
            )
        return {"members": size, "start_points": start}

    def _load(
        self, *, mode: str, threads: int, seconds: float, size: int, seed: int, start_at: float
    ) -> dict[str, Any]:
        from members.services.points import PointsError, points_earn, points_redeem

        with connection.cursor() as cursor:
            cursor.execute("SELECT min(id) FROM members_member")
            (base,) = cursor.fetchone()
        connection.close()
        totals = {
            "earns": 0,
            "redeems": 0,
            "refused": 0,
            "resent": 0,
            "duplicates_seen": 0,
            "errors": 0,
            "applied_points": 0,
        }
        latencies: list[float] = []
        lock = threading.Lock()
        # The process is one app-server worker: its client threads take turns on its one
        # database connection, as requests queue for a worker. The wait counts in latency.
        gate = threading.BoundedSemaphore(
            1
        )  # wakes waiters in turn; a Lock lets one thread starve the rest
        expires = timezone.now() + timedelta(days=365)

        def naive(kind: str, member: int, amount: int, key: str) -> int:
            """Read, decide in Python, write back: what a first version often does."""
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT balance FROM bench_naive_account WHERE member_id = %s", [member]
                )
                (balance,) = cursor.fetchone()
                delta = amount if kind == "earn" else -amount
                if balance + delta < 0:
                    raise PointsError("points_insufficient", "insufficient")
                cursor.execute(
                    "UPDATE bench_naive_account SET balance = %s WHERE member_id = %s",
                    [balance + delta, member],
                )
                cursor.execute(
                    "INSERT INTO bench_naive_entry (member_id, source, external_id, amount) "
                    "VALUES (%s, %s, %s, %s)",
                    [member, kind, key, delta],
                )
            return delta

        def client(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            sent: list[tuple[str, int, int, str]] = []
            mine = dict.fromkeys(totals, 0)
            times: list[float] = []
            serial = 0
            while time.time() < start_at:
                time.sleep(0.01)
            deadline = time.time() + seconds
            try:
                while time.time() < deadline:
                    if sent and rng.random() < 0.05:
                        op = rng.choice(sent)
                        mine["resent"] += 1
                    else:
                        hot = rng.random() < 0.05
                        member = base + (rng.randrange(100) if hot else rng.randrange(size))
                        serial += 1
                        key = f"{seed}-{number}-{serial}"
                        if rng.random() < 0.70:
                            op = ("earn", member, rng.randint(1, 50), key)
                        else:
                            op = ("redeem", member, rng.randint(1, 40), key)
                        sent.append(op)
                    kind, member, amount, key = op
                    mine["earns" if kind == "earn" else "redeems"] += 1
                    began = time.perf_counter()
                    gate.acquire()
                    try:
                        if mode == "naive":
                            mine["applied_points"] += naive(kind, member, amount, key)
                        elif kind == "earn":
                            result = points_earn(
                                member_id=member,
                                kind="activity",
                                amount=amount,
                                source="bench-earn",
                                external_id=key,
                                expires_at=expires,
                            )
                        else:
                            result = points_redeem(
                                member_id=member,
                                amount=amount,
                                source="bench-redeem",
                                external_id=key,
                            )
                        if mode != "naive":
                            if result.duplicate:
                                mine["duplicates_seen"] += 1
                            else:
                                mine["applied_points"] += result.amount
                    except PointsError:
                        mine["refused"] += 1
                    except Exception:
                        mine["errors"] += 1
                    finally:
                        gate.release()
                    times.append((time.perf_counter() - began) * 1000)
            finally:
                connection.close()
                with lock:
                    for name, value in mine.items():
                        totals[name] += value
                    latencies.extend(times)

        began = time.time()
        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.time() - max(began, start_at)
        return {**totals, "latencies_ms": latencies, "wall_seconds": wall}

    def _check(self, mode: str, applied: int, start: int) -> dict[str, Any]:
        with connection.cursor() as cursor:
            if mode == "ledger":
                from members.services.points import points_invariant_violations

                cursor.execute(
                    "SELECT COALESCE(sum(amount), 0)::bigint FROM members_ledgerentry "
                    "WHERE source <> 'bench-seed'"
                )
                (recorded,) = cursor.fetchone()
                cursor.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM members_ledgerentry "
                    "GROUP BY source, external_id HAVING count(*) > 1) d"
                )
                (doubled,) = cursor.fetchone()
                violations = points_invariant_violations()
                return {
                    "invariant_violations": len(violations),
                    "negative_balances": sum(1 for v in violations if v[0] == "negative balance"),
                    "duplicates_applied_twice": doubled,
                    "points_lost_or_made": recorded - applied,
                }
            cursor.execute(
                """
                SELECT count(*) FILTER (WHERE a.balance <> %s + COALESCE(e.total, 0)),
                       COALESCE(sum(abs(a.balance - %s - COALESCE(e.total, 0))), 0)::bigint,
                       count(*) FILTER (WHERE a.balance < 0)
                FROM bench_naive_account a
                LEFT JOIN (SELECT member_id, sum(amount) AS total FROM bench_naive_entry
                           GROUP BY member_id) e ON e.member_id = a.member_id
                """,
                [start, start],
            )
            wrong, drift, negative = cursor.fetchone()
            cursor.execute(
                "SELECT COALESCE(sum(n - 1), 0)::bigint FROM (SELECT count(*) AS n "
                "FROM bench_naive_entry GROUP BY source, external_id HAVING count(*) > 1) d"
            )
            (doubled,) = cursor.fetchone()
            return {
                "accounts_with_lost_updates": wrong,
                "points_lost_or_made_by_races": drift,
                "negative_balances": negative,
                "duplicates_applied_twice": doubled,
            }
