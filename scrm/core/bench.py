"""Registry behind `python manage.py bench <name> [--size N]`.

A bench measures one heavy path and a baseline in the same run, and returns
`BenchResult`; the command prints it as one JSON line. Absolute times on small
machines are noisy; the ratio between the two, measured together, is what counts.
Apps register benches in `<app>/bench.py` with `@register(...)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchResult:
    figures: dict[str, Any]
    baseline: dict[str, Any]
    ratio: float
    ratio_means: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    name: str
    run: Callable[[int], BenchResult]
    default_size: int
    ci_size: int
    description: str


BENCHES: dict[str, Bench] = {}


def register(
    name: str, *, default_size: int, ci_size: int, description: str
) -> Callable[[Callable[[int], BenchResult]], Callable[[int], BenchResult]]:
    def add(func: Callable[[int], BenchResult]) -> Callable[[int], BenchResult]:
        BENCHES[name] = Bench(name, func, default_size, ci_size, description)
        return func

    return add


class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


@contextmanager
def scratch_database(name: str) -> Iterator[None]:
    """Point the default connection at a new, migrated database `name` for the duration,
    then back at the original one, and drop it — even when the bench fails."""
    import dj_database_url
    from django.core.management import call_command
    from django.db import connection, connections

    from scrm.core.embedded_db import database_url

    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    original = dict(connections.databases["default"])
    try:
        connections["default"].close()
        url = database_url(original, name)
        connections.databases["default"].update(
            {k: v for k, v in dj_database_url.parse(url).items() if k in original}
        )
        call_command("migrate", verbosity=0)
        yield
    finally:
        connections["default"].close()
        connections.databases["default"].clear()
        connections.databases["default"].update(original)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
