"""`bench ledger`: the points ledger under 64 concurrent clients, against a naive
read-modify-write implementation run the same way in the same run.

The mix: 70% earn, 30% redeem; 5% of operations hit 100 hot members; 5% resend an
earlier request with the same key. The 64 clients are threads in 8 processes; each
process stands for one app-server worker with one database connection, and its clients
queue for it the way requests queue for a worker (the wait counts in each latency). One
connection per client instead put 64 backends on 2 cores and measured the scheduler:
p99 over 100 ms at the same throughput. Everything happens in a scratch database that is
dropped after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.db import connection

from scrm.core.bench import BenchResult, register
from scrm.core.embedded_db import database_url

CLIENTS = 64
PROCESSES = 8
HOT_MEMBERS = 100
START_POINTS = 200


def _command(url: str, *args: str, timeout: int = 900) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": os.environ.get("DEBUG", "1"),
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
    }
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    result = subprocess.run(
        [sys.executable, "manage.py", "ledger_bench_client", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ledger bench step {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _load(url: str, mode: str, seconds: float, members: int) -> dict[str, Any]:
    """Run PROCESSES client processes of CLIENTS / PROCESSES threads for `seconds`."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": os.environ.get("DEBUG", "1"),
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
    }
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    start_at = time.time() + 12  # all processes start together, after Django has loaded
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "ledger_bench_client",
                "load",
                mode,
                str(CLIENTS // PROCESSES),
                str(seconds),
                str(members),
                str(n),
                str(start_at),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    parts = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"ledger bench client failed:\n{err[-3000:]}")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    latencies = sorted(ms for part in parts for ms in part.pop("latencies_ms"))
    ops = len(latencies)
    wall = max(part["wall_seconds"] for part in parts)

    def pct(p: float) -> float:
        return round(latencies[min(ops - 1, int(ops * p))], 2) if ops else 0.0

    merged: dict[str, Any] = {"clients": CLIENTS, "workers": PROCESSES, "ops": ops}
    for key in ("earns", "redeems", "refused", "resent", "duplicates_seen", "errors"):
        merged[key] = sum(part[key] for part in parts)
    merged["applied_points"] = sum(part["applied_points"] for part in parts)
    merged["ops_per_second"] = round(ops / wall) if wall else 0
    merged["p50_ms"], merged["p99_ms"] = pct(0.50), pct(0.99)
    return merged


@register(
    "ledger",
    default_size=100_000,
    ci_size=2_000,
    description="points ledger ops/s and p99 under 64 clients (70% earn / 30% redeem, hot "
    "members, resent requests) vs. naive read-modify-write; invariants checked after",
)
def ledger_bench(size: int) -> BenchResult:
    seconds = 20.0 if size >= 50_000 else 4.0
    name = f"scrm_ledger_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = database_url(connection.settings_dict, name)
    try:
        _command(url, "setup", str(size), str(START_POINTS))
        ledger = _load(url, "ledger", seconds, size)
        ledger_check = _command(
            url, "check", "ledger", str(ledger["applied_points"]), str(START_POINTS)
        )
        naive = _load(url, "naive", seconds, size)
        naive_check = _command(
            url, "check", "naive", str(naive["applied_points"]), str(START_POINTS)
        )
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return BenchResult(
        figures={**ledger, **ledger_check, "members": size, "seconds": seconds},
        baseline={"naive_read_modify_write": {**naive, **naive_check}},
        ratio=ledger["ops_per_second"] / max(1, naive["ops_per_second"]),
        ratio_means="ledger ops/s ÷ naive read-modify-write ops/s (the naive path loses "
        "updates and applies duplicates; see its violations)",
    )
