"""`bench broadcast`: a segment of `size` members, a fifth of them already at their daily
cap, sent through the sandbox gateway by real Celery workers — which the bench kills
with SIGKILL halfway and starts again — against the naive design (one task per
recipient) on a 20k sample, in the same run.

Everything runs in a scratch database and on a scratch broker (its own folder for the
filesystem transport, its own queue on a server broker), dropped after. Figures:
planning time, sends/s from dispatch to the last send (the kill and restart included),
broker messages published (and received, counted in the workers' logs), peak memory of
the planner and of any worker process, and the duplicate and missing counts (both must
be zero). Kill with SIGTERM/SIGINT and the scratch database is still dropped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from scrm.core.bench import BenchResult, register
from scrm.core.embedded_db import database_url

CAPPED_SHARE = 0.2
WORKER_CONCURRENCY = 2
KILL_AT = 0.4  # share of the messages sent when the worker is killed
FILESYSTEM_BASELINE_CAP = 2_000


class _Scratch:
    """The scratch database and broker the bench's processes share."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.queue = f"bench-broadcast-{os.getpid()}"
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "DEBUG": os.environ.get("DEBUG", "1"),
            "DJANGO_SETTINGS_MODULE": "scrm.settings",
            "SCRM_BROKER_DIR": str(tmp / "broker"),
            "SCRM_CELERY_QUEUE": self.queue,
            "SCRM_SANDBOX_LATENCY_MS": "0",
        }
        self.env.setdefault("SECRET_KEY", settings.SECRET_KEY)
        self.logs: list[Path] = []

    def step(self, *args: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "manage.py", "broadcast_bench_step", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"bench step {args[0]} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        self.logs.append(log)
        with log.open("w") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "scrm",
                    "worker",
                    "--loglevel=INFO",
                    f"--concurrency={WORKER_CONCURRENCY}",
                    "--include=campaigns.bench_tasks",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    f"--hostname={name}-{os.getpid()}@%h",
                ],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                _kill(process)
                raise RuntimeError(f"the bench worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        return process

    def received(self, task: str) -> int:
        """Messages the workers took from the broker for `task`, from their logs."""
        pattern = re.compile(rf"Task {re.escape(task)}\[[0-9a-f-]+\] received")
        return sum(len(pattern.findall(log.read_text())) for log in self.logs)

    def scalar(self, sql: str, params: list[Any] | None = None) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(sql, params or []).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # run the cleanup in `finally`


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        _kill(process)


def _group_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The largest resident set of one process in the worker's process group (the pool's
    children included), read from /proc."""
    largest = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) != process.pid:  # field 5: the process group
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    largest = max(largest, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return round(largest / 1024, 1)


def _planned(scratch: _Scratch, broadcast: int) -> int:
    return scratch.scalar(
        "SELECT count(*) FROM campaigns_delivery WHERE broadcast_id = %s AND status = 'planned'",
        [broadcast],
    )


def _wait_until_sent(
    scratch: _Scratch,
    broadcast: int,
    worker: subprocess.Popen[bytes],
    peak: list[float],
    *,
    stop_below: int = 0,
    timeout: float = 3600,
) -> None:
    """Poll until at most `stop_below` deliveries are still planned, noting peak RSS."""
    deadline = time.monotonic() + timeout
    while _planned(scratch, broadcast) > stop_below:
        if worker.poll() is not None:
            raise RuntimeError("the bench worker died on its own")
        if time.monotonic() > deadline:
            raise RuntimeError(f"broadcast {broadcast} not sent within {timeout}s")
        peak[0] = max(peak[0], _group_rss_mb(worker))
        time.sleep(0.25)


def _check(scratch: _Scratch, broadcast: int) -> dict[str, int]:
    """Duplicates: a key the outside world received twice. Missing: a delivery marked
    sent that the outside world never received, or one still planned or failed."""
    prefix = f"b{broadcast}:%"
    duplicates = scratch.scalar(
        "SELECT count(*) FROM (SELECT key FROM campaigns_sandboxcall WHERE key LIKE %s "
        "AND outcome = 'sent' GROUP BY key HAVING count(*) > 1) AS twice",
        [prefix],
    )
    received = scratch.scalar(
        "SELECT count(DISTINCT key) FROM campaigns_sandboxcall WHERE key LIKE %s "
        "AND outcome = 'sent'",
        [prefix],
    )
    sent = scratch.scalar(
        "SELECT count(*) FROM campaigns_delivery WHERE broadcast_id = %s AND status = 'sent'",
        [broadcast],
    )
    unsent = scratch.scalar(
        "SELECT count(*) FROM campaigns_delivery WHERE broadcast_id = %s "
        "AND status IN ('planned', 'failed')",
        [broadcast],
    )
    return {
        "sent": sent,
        "received": received,
        "duplicates": duplicates,
        "missing": abs(sent - received) + unsent,
    }


@register(
    "broadcast",
    default_size=1_000_000,
    ci_size=3_000,
    description="a broadcast to a segment sent by Celery workers killed halfway, vs. one "
    "task per recipient (planning s, sends/s, broker messages, duplicates)",
)
def broadcast_bench(size: int) -> BenchResult:
    previous_handler = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    baseline_size = min(20_000, max(200, size // 10))
    filesystem_broker = settings.CELERY_BROKER_URL.startswith("filesystem://")
    if filesystem_broker:
        # The filesystem transport lists its folder for every message it hands out: with
        # tens of thousands queued, that alone would dominate the baseline.
        baseline_size = min(baseline_size, FILESYSTEM_BASELINE_CAP)
    name = f"scrm_broadcast_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="scrm-broadcast-bench-"))
    scratch = _Scratch(database_url(connection.settings_dict, name), tmp)
    worker: subprocess.Popen[bytes] | None = None
    try:
        scratch.step("migrate")
        seeded = scratch.step("seed", str(size), str(baseline_size), str(CAPPED_SHARE))
        main, sample = seeded["broadcast"], seeded["baseline_broadcast"]
        plan = scratch.step("plan", str(main))
        planned = plan["planned"][str(main)]
        worker = scratch.start_worker("send-1")
        peak = [0.0]
        started = time.perf_counter()
        dispatched = scratch.step("dispatch", str(main))
        to_send = planned["to_send"]
        _wait_until_sent(scratch, main, worker, peak, stop_below=int(to_send * (1 - KILL_AT)))
        _kill(worker)  # SIGKILL mid-broadcast: chunks in hand are lost with it
        killed_at = to_send - _planned(scratch, main)
        before_kill = killed_at / (time.perf_counter() - started)
        worker = scratch.start_worker("send-2")
        # What the beat's sweep does once the lost chunks are stale (fast-forwarded).
        swept = scratch.step("sweep")
        _wait_until_sent(scratch, main, worker, peak)
        seconds = time.perf_counter() - started
        chunk_messages = scratch.received("campaigns.tasks.send_broadcast_chunk")
        check = _check(scratch, main)

        # Planned only now: the sweep above would have sent it the efficient way.
        scratch.step("plan", str(sample))
        baseline_started = time.perf_counter()
        baseline_dispatch = scratch.step("baseline_dispatch", str(sample))
        _wait_until_sent(scratch, sample, worker, [0.0])
        baseline_seconds = time.perf_counter() - baseline_started
        baseline_check = _check(scratch, sample)
        baseline_messages = scratch.received("campaigns.bench.send_one_delivery")
        _stop(worker)
        worker = None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        if worker is not None:
            _kill(worker)
        shutil.rmtree(tmp, ignore_errors=True)
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if check["duplicates"] or check["missing"] or check["sent"] != to_send:
        raise RuntimeError(f"sending was not exactly once: {check}, expected {to_send}")
    if baseline_check["duplicates"] or baseline_check["missing"]:
        raise RuntimeError(f"the baseline was not exactly once: {baseline_check}")
    rate = check["sent"] / seconds
    baseline_rate = baseline_check["sent"] / baseline_seconds
    return BenchResult(
        figures={
            "members": size,
            "planning_seconds": plan["seconds"],
            "planned_to_send": to_send,
            "suppressed": planned["suppressed"],
            "send_seconds": round(seconds, 2),
            "sends_per_second": round(rate),
            "sends_per_second_before_the_kill": round(before_kill),
            # Published: the first hand-out and the sweep's after the kill. Received: what
            # the workers had taken when the last send landed (re-sent chunks whose rows
            # were already sent are still draining, and take nothing).
            "broker_messages": dispatched["chunks"] + swept["redispatched"],
            "broker_messages_received_by_the_end": chunk_messages,
            "chunks_dispatched": dispatched["chunks"],
            "chunks_redispatched_by_sweep": swept["redispatched"],
            "killed_after_sent": killed_at,
            "duplicates": check["duplicates"],
            "missing": check["missing"],
            "peak_rss_mb": {"planner": plan["peak_rss_mb"], "worker_process": peak[0]},
            "workers": f"1 Celery worker, prefork ×{WORKER_CONCURRENCY}, killed with SIGKILL "
            f"after {round(KILL_AT * 100)}% and started again",
            "broker": settings.CELERY_BROKER_URL.split("://")[0],
        },
        baseline={
            "method": "one Celery task per recipient"
            + (" (sample capped on the filesystem broker)" if filesystem_broker else ""),
            "recipients": baseline_check["sent"],
            "seconds": round(baseline_seconds, 2),
            "sends_per_second": round(baseline_rate),
            "broker_messages": baseline_messages,
            "tasks_dispatched": baseline_dispatch["tasks"],
            "duplicates": baseline_check["duplicates"],
            "missing": baseline_check["missing"],
        },
        ratio=rate / baseline_rate,
        ratio_means="sends/s in chunks of ~1,000 ÷ sends/s with one task per recipient",
    )
