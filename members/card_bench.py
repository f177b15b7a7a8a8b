"""`bench member-card`: GET /api/v1/me/ through a real WSGI server (gunicorn) under a
loopback HTTP load generator (wrk), against a plain DRF ModelSerializer endpoint with the
member's coupons nested, served by the same server in the same run.

For each endpoint, after a warm-up run, the load rises (4, 8, 16, 32, 64 connections)
and the best requests/s whose p99 stays under 50 ms is reported; statements per request
are counted separately at the driver. Everything happens in a scratch database dropped
after.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from scrm.core.bench import BenchResult, register
from scrm.core.embedded_db import database_url

P99_LIMIT_MS = 50.0
CONNECTIONS = (4, 8, 16, 32, 64)
WORKERS = 4

WRK_SCRIPT = """
local tokens = {}
for line in io.lines(os.getenv("CARD_BENCH_TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local counter = 0
setup = function(thread) counter = counter + 1; thread:set("seed", counter) end
init = function(args) math.randomseed(seed * 7919 + os.time()) end
request = function()
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. token})
end
"""


def _env(url: str, secret: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
        "SECRET_KEY": secret,
        "SCRM_ROOT_URLCONF": "members.card_bench_urls",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }


def _step(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "manage.py", "card_bench_step", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"card bench step {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited while starting")
        try:
            urllib.request.urlopen(f"{base}/api/v1/", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered (e.g. 401): serving
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not start within 60 s")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _wrk(url: str, tokens: Path, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        env={**os.environ, "CARD_BENCH_TOKENS": str(tokens)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    out = result.stdout
    if result.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed:\n{out}\n{result.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s|m)\b", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "connections": connections,
        "requests_per_second": round(rps),
        "p50_ms": round(_ms(*p50.groups()), 2) if p50 else None,
        "p99_ms": round(_ms(*p99.groups()), 2) if p99 else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _sweep(url: str, tokens: Path, script: Path, seconds: int) -> dict[str, Any]:
    # Warm up first (not reported): a freshly loaded million-member database answers its
    # first requests from disk, and a brand's live one is warm.
    warm = _wrk(url, tokens, script, 16, seconds * 2)
    runs = [_wrk(url, tokens, script, c, seconds) for c in CONNECTIONS]
    ok = [r for r in runs if r["p99_ms"] is not None and r["p99_ms"] < P99_LIMIT_MS]
    best = max(ok, key=lambda r: r["requests_per_second"]) if ok else None
    return {
        "requests_per_second_at_p99_under_50ms": best["requests_per_second"] if best else 0,
        "peak_requests_per_second": max(r["requests_per_second"] for r in runs),
        "at_connections": best["connections"] if best else None,
        "p99_ms": best["p99_ms"] if best else None,
        "non_2xx": sum(r["non_2xx"] for r in [warm, *runs]),
        "runs": runs,
    }


@register(
    "member-card",
    default_size=1_000_000,
    ci_size=2_000,
    description="GET /api/v1/me/ through gunicorn under wrk (req/s at p99 < 50 ms, queries "
    "per request) vs. a plain DRF ModelSerializer with nested coupons",
)
def member_card_bench(size: int) -> BenchResult:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: run `bash .ci/install-system-deps`")
    seconds = 8 if size >= 100_000 else 2
    name = f"scrm_card_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = database_url(connection.settings_dict, name)
    secret = secrets.token_urlsafe(40)
    server = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tokens, script = Path(tmp) / "tokens.txt", Path(tmp) / "card.lua"
            script.write_text(WRK_SCRIPT)
            data = _step(
                _env(url, secret, DEBUG="1"),
                "setup",
                str(size),
                str(min(size, 20_000)),
                str(tokens),
            )
            queries = _step(_env(url, secret, DEBUG="1"), "queries", str(tokens), "20")
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
                env=_env(url, secret, DEBUG="0", SECURE_COOKIES="0"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            base = f"http://127.0.0.1:{port}"
            _wait_until_serving(base, server)
            card = _sweep(f"{base}/api/v1/me/", tokens, script, seconds)
            plain = _sweep(f"{base}/bench/plain-card", tokens, script, seconds)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # On a loaded machine the card may never get under 50 ms either: then peaks are
    # compared (the figures say which), so a CI run still yields a meaningful ratio.
    card_rps = card["requests_per_second_at_p99_under_50ms"] or card["peak_requests_per_second"]
    # When the baseline never keeps p99 under 50 ms, compare with its peak at any latency:
    # that favours the baseline, so the ratio errs low.
    plain_rps = plain["requests_per_second_at_p99_under_50ms"] or plain["peak_requests_per_second"]
    return BenchResult(
        figures={
            **card,
            "queries_per_request": queries["card_queries_per_request"],
            "server": f"gunicorn, {WORKERS} sync workers",
            **data,
        },
        baseline={
            "plain_drf_nested_coupons": {
                **plain,
                "queries_per_request": queries["plain_queries_per_request"],
            }
        },
        ratio=card_rps / max(1, plain_rps),
        ratio_means="member card req/s at p99 < 50 ms ÷ plain DRF endpoint req/s at p99 < 50 "
        "ms (its peak at any latency when it never gets under 50 ms)",
    )
