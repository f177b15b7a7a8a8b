"""Shared fixtures: an organisation of two regions with stores, managers and guides, a real
Celery worker process, and a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from scrm.core.embedded_db import database_url
from scrm.org.scoping import Role
from tests.members.factories import MemberFactory
from tests.org.factories import RegionFactory, StaffFactory, StoreFactory
from tests.phone_sweep import register_log_file

# Playwright's sync API runs an event loop in the test thread; Django's ORM would refuse to
# run there without this (the live server itself runs in its own thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass
class Org:
    """Two regions; region A has stores a1 and a2, region B has store b1."""

    region_a: Any
    region_b: Any
    a1: Any
    a2: Any
    b1: Any
    hq_admin: Any
    hq_operator: Any
    region_manager_a: Any
    store_manager_a1: Any
    guide_a1: Any
    guide_a1_other: Any
    guide_b1: Any
    member_of_guide_a1: Any
    member_of_guide_a1_other: Any
    member_a1_unassigned: Any
    member_a2: Any
    member_b1: Any


@pytest.fixture
def org(db: None) -> Org:
    return build_org()


def build_org() -> Org:
    """The organisation every role test starts from (also built once per module by tests that
    share one organisation between many requests)."""
    region_a = RegionFactory(code="east", name="华东大区")
    region_b = RegionFactory(code="north", name="华北大区")
    a1 = StoreFactory(region=region_a, code="SH001", name="上海南京西路店", city="上海")
    a2 = StoreFactory(region=region_a, code="HZ001", name="杭州湖滨店", city="杭州")
    b1 = StoreFactory(region=region_b, code="BJ001", name="北京三里屯店", city="北京")
    guide_a1 = StaffFactory(username="guide_a1", role=Role.GUIDE, stores=[a1])
    guide_a1_other = StaffFactory(username="guide_a1_other", role=Role.GUIDE, stores=[a1])
    guide_b1 = StaffFactory(username="guide_b1", role=Role.GUIDE, stores=[b1])
    return Org(
        region_a=region_a,
        region_b=region_b,
        a1=a1,
        a2=a2,
        b1=b1,
        hq_admin=StaffFactory(username="hq_admin", role=Role.HQ_ADMIN, is_staff=True),
        hq_operator=StaffFactory(username="hq_operator", role=Role.HQ_OPERATOR),
        region_manager_a=StaffFactory(
            username="region_a", role=Role.REGION_MANAGER, region=region_a
        ),
        store_manager_a1=StaffFactory(username="manager_a1", role=Role.STORE_MANAGER, stores=[a1]),
        guide_a1=guide_a1,
        guide_a1_other=guide_a1_other,
        guide_b1=guide_b1,
        member_of_guide_a1=MemberFactory(
            name="王小美", home_store=a1, guide=guide_a1, phone="+8613800001234"
        ),
        member_of_guide_a1_other=MemberFactory(name="李小红", home_store=a1, guide=guide_a1_other),
        member_a1_unassigned=MemberFactory(name="张三", home_store=a1, guide=None),
        member_a2=MemberFactory(name="赵四", home_store=a2),
        member_b1=MemberFactory(name="钱五", home_store=b1, guide=guide_b1),
    )


# --- A real Celery worker process ------------------------------------------------------------


def start_worker(log_path: Path, name: str, **extra_env: str) -> subprocess.Popen[str]:
    """`celery worker` in its own process group, on the test database and test broker."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        **extra_env,
    }
    register_log_file(log_path)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "scrm",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname={name}-{os.getpid()}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_worker(process, force=True)
            pytest.fail(f"Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return process


def stop_worker(process: subprocess.Popen[str], *, force: bool = False) -> None:
    """SIGKILL the whole process group when `force` (a crash), else a warm shutdown."""
    if process.poll() is not None:
        return
    if force:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def clear_test_broker() -> None:
    """Messages left by an earlier run would only be noise for a test worker."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        broker_dir = Path(os.environ["SCRM_BROKER_DIR"])
        shutil.rmtree(broker_dir, ignore_errors=True)
        for folder in ("queue", "processed", "control"):
            (broker_dir / folder).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def celery_worker(transactional_db: None, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    clear_test_broker()
    process = start_worker(tmp_path / "worker.log", "test-worker")
    yield process
    stop_worker(process)


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


# --- Headless Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/install-system-deps`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
