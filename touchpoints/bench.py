"""`bench import`: a million-row member file and a million-row order file through the real
import job path, against django-import-export's default path and raw COPY.

Everything runs in a scratch database (created, migrated, dropped), each measured step in
its own process so its peak memory is its own.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from scrm.core.bench import BenchResult, register
from scrm.core.embedded_db import database_url

BAD_SHARE = 0.01
KNOWN_SHARE = 0.20
BASELINE_ROWS = 20_000


def phone(n: int) -> str:
    return f"139{n:08d}"


def write_member_file(path: Path, size: int, seed: int = 1) -> int:
    """A generic-template member file; every 100th row has a bad phone. Returns bad rows."""
    rng = random.Random(seed)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "姓名", "性别", "生日", "城市", "会员卡号", "注册时间"])
        for n in range(size):
            number = phone(n)
            if n % int(1 / BAD_SHARE) == 50:
                number = f"12{n:09d}"
                bad += 1
            writer.writerow(
                [
                    number if n % 3 else f"+86 {number[:3]}-{number[3:7]}-{number[7:]}",
                    f"会员{n}",
                    rng.choice("男女"),
                    f"19{rng.randrange(60, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
                    rng.choice(("上海", "北京", "杭州", "广州")),
                    f"C{n:09d}",
                    f"2024-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)} 10:00:00",
                ]
            )
    return bad


def write_order_file(path: Path, size: int, members: int, seed: int = 2) -> int:
    rng = random.Random(seed)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "渠道",
                "订单号",
                "手机号",
                "支付时间",
                "订单金额",
                "退款金额",
                "商品编码",
                "商品名称",
                "品类",
                "数量",
                "单价",
            ]
        )
        for n in range(size):
            paid = (
                f"2025-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)} 1{rng.randrange(0, 9)}:00:00"
            )
            amount = rng.choice(("99.00", "199.00", "1,299.00", "459.00"))
            if n % int(1 / BAD_SHARE) == 50:
                paid = "2025-13-45"
                bad += 1
            writer.writerow(
                [
                    "pos",
                    f"B{n:09d}",
                    phone(rng.randrange(members)),
                    paid,
                    amount,
                    "",
                    "SK-1",
                    "商品",
                    "品类",
                    "1",
                    amount,
                ]
            )
    return bad


def _step(url: str, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": os.environ.get("DEBUG", "1"),
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
    }
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    result = subprocess.run(
        [sys.executable, "manage.py", "bench_step", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench step {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@register(
    "import",
    default_size=1_000_000,
    ci_size=3_000,
    description="member and order files through the import job path, vs. "
    "django-import-export and raw COPY (rows/s, peak RSS)",
)
def import_bench(size: int) -> BenchResult:
    name = f"scrm_bench_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = database_url(connection.settings_dict, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            members_path, orders_path = Path(tmp) / "members.csv", Path(tmp) / "orders.csv"
            member_bad = write_member_file(members_path, size)
            order_bad = write_order_file(orders_path, size, members=size)
            _step(url, "migrate")
            known = _step(url, "preload", str(int(size * KNOWN_SHARE)))
            members = _step(url, "import", "members", str(members_path))
            orders = _step(url, "import", "orders", str(orders_path))
            sample = min(BASELINE_ROWS, size)
            default = _step(url, "import_export", str(members_path), str(sample))
            ceiling = _step(url, "copy", str(members_path))
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    total_rows = members["rows"] + orders["rows"]
    total_seconds = members["seconds"] + orders["seconds"]
    rate = total_rows / total_seconds
    return BenchResult(
        figures={
            "rows_per_second": round(rate),
            "members": {
                **members,
                "rows_per_second": round(members["rows"] / members["seconds"]),
                "injected_bad_rows": member_bad,
                "already_in_pool": known["rows"],
            },
            "orders": {
                **orders,
                "rows_per_second": round(orders["rows"] / orders["seconds"]),
                "injected_bad_rows": order_bad,
            },
            "peak_rss_mb": max(members["peak_rss_mb"], orders["peak_rss_mb"]),
            "rejected_equals_injected": members["rejected"] == member_bad
            and orders["rejected"] == order_bad,
        },
        baseline={
            "django_import_export_default": {
                **default,
                "rows_per_second": round(default["rows"] / default["seconds"]),
            },
            "raw_copy_ceiling": {
                **ceiling,
                "rows_per_second": round(ceiling["rows"] / ceiling["seconds"]),
            },
        },
        ratio=rate / (default["rows"] / default["seconds"]),
        ratio_means="import job rows/s ÷ django-import-export default rows/s (higher is better)",
        extra={"share_of_copy_ceiling": round(rate / (ceiling["rows"] / ceiling["seconds"]), 3)},
    )


# Registered by import: the events bench lives in its own module.
from touchpoints import events_bench  # noqa: E402, F401
