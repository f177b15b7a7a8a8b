"""`bench events`: behaviour events posted through a real WSGI server (gunicorn), in batches
of 500, by a loopback load generator (wrk with a Lua script that writes a fresh batch of
unique event ids per request), against the same endpoint fed one event per request, in the
same run. Everything happens in a scratch database dropped after; the server's Celery
messages go to a scratch broker folder nobody consumes (effects are not part of ingest).

Figures: events/s over the whole run, p50/p99 per request, and the rows that reached the
table (must equal the events sent: none refused, none lost).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from members.card_bench import _free_port, _wait_until_serving
from scrm.core.bench import BenchResult, register
from scrm.core.embedded_db import database_url
from touchpoints.api.auth import key_hash

BATCH = 500
THREADS = 4
CONNECTIONS = 8
WORKERS = 4

# Each wrk thread builds its own batches: ids "<run>-<thread>-<request>-<n>" never repeat,
# and identities are drawn from the seeded members. wrk runs for a duration (a stopped
# thread still waits for it), so the batched run lasts as long as a calibration run says
# the remaining events take.
WRK_SCRIPT = """
local batch = tonumber(os.getenv("EVENTS_BENCH_BATCH"))
local members = tonumber(os.getenv("EVENTS_BENCH_MEMBERS"))
local run = os.getenv("EVENTS_BENCH_RUN")
local key = os.getenv("EVENTS_BENCH_KEY")
local now = os.getenv("EVENTS_BENCH_TIME")
local types = {"browse_product", "add_to_cart", "share", "like", "comment", "sign_in"}
local threads = {}
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
init = function(args)
  sent = 0
  math.randomseed(tid * 7919 + os.time())
end
request = function()
  sent = sent + 1
  local parts = {}
  for n = 1, batch do
    local member = math.random(members)
    parts[n] = string.format(
      '{"id":"%s-%d-%d-%d","type":"%s","time":"%s",' ..
      '"identity":[{"kind":"unionid","value":"bench-u%d"}],"properties":{"sku":"SK-%d"}}',
      run, tid, sent, n, types[math.random(#types)], now, member, math.random(500))
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "EventKey " .. key,
  }, body)
end
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"rejected":[]', 1, true) then
    print("unexpected status " .. status .. ": " .. string.sub(body, 1, 200))
  end
end
done = function(summary, latency, requests)
  io.write(string.format(
    'EVENTS_BENCH {"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"errors":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def _env(url: str, secret: str, broker: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
        "SECRET_KEY": secret,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SCRM_BROKER_DIR": broker,
        "CELERY_BROKER_URL": "filesystem://",
        **extra,
    }


def _seed(url: str, members: int, key: str) -> None:
    """Members with a unionid each, a channel and an event client, straight in SQL."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO members_member (name, phone_last4, city, source_channel, lifecycle_stage,
                                        created_at, updated_at, gender, order_count,
                                        total_spent)
            SELECT 'bench ' || n, '', '', 'mini_program', 'private', now(), now(), 'u', 0, 0
            FROM generate_series(1, %s) AS n
            """,
            [members],
        )
        conn.execute(
            """
            INSERT INTO members_identity (member_id, kind, app, value, source, created_at)
            SELECT id, 'unionid', '', 'bench-u' || row_number() OVER (ORDER BY id),
                   'bench', now()
            FROM members_member
            """
        )
        conn.execute(
            "INSERT INTO touchpoints_channel (kind, name, code, active, created_at) "
            "VALUES ('mini_program', 'bench', 'bench', true, now())"
        )
        conn.execute(
            "INSERT INTO touchpoints_eventclient (name, channel_id, key_hash, key_hint, active, "
            "created_at) SELECT 'bench', id, %s, %s, true, now() FROM touchpoints_channel",
            [key_hash(key), key[-4:]],
        )
        conn.execute("ANALYZE")


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM touchpoints_behaviourevent").fetchone()
        return int(row[0]) if row else 0


def _settled_count(url: str) -> int:
    """The table's count once the batches still in flight when wrk stopped have landed."""
    last = _count(url)
    while True:
        time.sleep(0.5)
        now = _count(url)
        if now == last:
            return now
        last = now


def _wrk(base: str, script: Path, env: dict[str, str], seconds: float) -> dict[str, Any]:
    result = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--timeout=30s",
            "-s",
            str(script),
            f"{base}/api/v1/events",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 600,
    )
    out = result.stdout
    found = re.search(r"EVENTS_BENCH (\{.*\})", out)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed:\n{out[-3000:]}\n{result.stderr[-2000:]}")
    if "unexpected status" in out:
        raise RuntimeError(f"the server refused requests:\n{out[-3000:]}")
    return json.loads(found.group(1))


def _load(
    base: str, script: Path, *, url: str, batch: int, seconds: float, members: int, key: str
) -> dict[str, Any]:
    before = _count(url)
    env = {
        **os.environ,
        "EVENTS_BENCH_BATCH": str(batch),
        "EVENTS_BENCH_MEMBERS": str(members),
        "EVENTS_BENCH_RUN": secrets.token_hex(4),
        "EVENTS_BENCH_KEY": key,
        "EVENTS_BENCH_TIME": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }
    run = _wrk(base, script, env, seconds)
    stored = _settled_count(url) - before
    return {
        "events": run["requests"] * batch,
        "stored": stored,
        "seconds": round(run["seconds"], 2),
        # Answered events over the run's time; `stored` also holds the batches still in
        # flight when wrk stopped (at most one per connection).
        "events_per_second": round(run["requests"] * batch / run["seconds"]),
        "requests": run["requests"],
        "p50_ms_per_request": round(run["p50_ms"], 2),
        "p99_ms_per_request": round(run["p99_ms"], 2),
        "errors": run["errors"],
    }


@register(
    "events",
    default_size=1_000_000,
    ci_size=5_000,
    description="POST /api/v1/events through gunicorn: batches of 500 vs. one event per "
    "request (events/s, p99 per request)",
)
def events_bench(size: int) -> BenchResult:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: run `bash .ci/install-system-deps`")
    members = max(100, size // 20)
    single_seconds = 10 if size >= 100_000 else 2
    name = f"scrm_events_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = database_url(connection.settings_dict, name)
    secret = secrets.token_urlsafe(40)
    key = "ek_" + secrets.token_urlsafe(24)
    server = None
    tmp = tempfile.mkdtemp(prefix="scrm-events-bench-")
    try:
        broker = str(Path(tmp) / "broker")
        env = _env(url, secret, broker, DEBUG="1")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            timeout=1800,
        )
        _seed(url, members, key)
        script = Path(tmp) / "events.lua"
        script.write_text(WRK_SCRIPT)
        port = _free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "scrm.wsgi",
                f"--workers={WORKERS}",
                f"--bind=127.0.0.1:{port}",
                "--log-level=warning",
            ],
            cwd=settings.BASE_DIR,
            env=_env(url, secret, broker, DEBUG="0", SECURE_COOKIES="0"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base, server)
        # Warm every worker up (imports, connections) before anything is timed.
        _load(base, script, url=url, batch=10, seconds=2, members=members, key=key)
        calibration = _load(base, script, url=url, batch=BATCH, seconds=3, members=members, key=key)
        seconds = max(1.0, (size - calibration["stored"]) / calibration["events_per_second"])
        batched = _load(
            base, script, url=url, batch=BATCH, seconds=seconds, members=members, key=key
        )
        one_by_one = _load(
            base, script, url=url, batch=1, seconds=single_seconds, members=members, key=key
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for run, batch in ((batched, BATCH), (one_by_one, 1)):
        if not run["events"] <= run["stored"] <= run["events"] + CONNECTIONS * batch:
            raise RuntimeError(f"events lost or refused: {run}")
    return BenchResult(
        figures={
            **batched,
            "events_in_table": calibration["stored"] + batched["stored"] + one_by_one["stored"],
            "batch": BATCH,
            "members": members,
            "server": f"gunicorn, {WORKERS} sync workers; wrk {THREADS} threads, "
            f"{CONNECTIONS} connections",
        },
        baseline={"one_event_per_request": one_by_one},
        ratio=batched["events_per_second"] / max(1, one_by_one["events_per_second"]),
        ratio_means="events/s in batches of 500 ÷ events/s one event per request",
    )
