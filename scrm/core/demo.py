"""Registry of demo-data steps. Each app adds its own in `<app>/demo.py`:

    @demo_step(order=20)
    def seed_members(ctx: DemoContext) -> str: ...

Steps run in `order` inside `manage.py seed_demo`; each must be idempotent (running the
command twice leaves the same data) and return a one-line summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEMO_PASSWORD = "scrm-demo-2026"

# The logins `make run` prints: (username, role label, where they land).
DEMO_LOGINS = [
    ("admin", "HQ admin 总部管理员", "/hq/"),
    ("operator", "HQ operator 总部运营", "/hq/"),
    ("region", "Region manager 大区经理 (华东)", "/hq/"),
    ("manager", "Store manager 店长 (上海南京西路店)", "/hq/"),
    ("guide", "Guide 导购 (上海南京西路店)", "/m/"),
]


@dataclass
class DemoContext:
    members: int
    seed: int = 20261123
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoStep:
    order: int
    name: str
    run: Callable[[DemoContext], str]


DEMO_STEPS: list[DemoStep] = []


def demo_step(order: int) -> Callable[[Callable[[DemoContext], str]], Callable[[DemoContext], str]]:
    def register(func: Callable[[DemoContext], str]) -> Callable[[DemoContext], str]:
        name = f"{func.__module__}.{func.__name__}"
        if name not in {step.name for step in DEMO_STEPS}:
            DEMO_STEPS.append(DemoStep(order, name, func))
            DEMO_STEPS.sort(key=lambda step: step.order)
        return func

    return register
