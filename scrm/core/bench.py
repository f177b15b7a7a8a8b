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
