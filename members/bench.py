"""seed_members: demo/bulk member loading with COPY against a row-by-row INSERT baseline."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from members.demo import member_rows
from members.models import Member
from members.services.bulk import MEMBER_COPY_COLUMNS, member_bulk_load
from scrm.core.bench import BenchResult, register, stopwatch
from scrm.org.models import Store


class _Rollback(Exception):
    pass


def _fixtures() -> tuple[list[Store], dict[int, list[int]]]:
    stores = list(Store.objects.order_by("pk")[:12])
    if not stores:
        from scrm.org.models import Region

        region = Region.objects.create(code="bench", name="bench")
        stores = [
            Store.objects.create(region=region, code=f"B{i:03d}", name=f"bench {i}", city="上海")
            for i in range(3)
        ]
    return stores, {store.pk: [] for store in stores}


@register(
    "seed_members",
    default_size=200_000,
    ci_size=2_000,
    description="members loaded per second by COPY vs. row-by-row ORM inserts",
)
def seed_members(size: int) -> BenchResult:
    baseline_size = max(1, min(size // 10, 5_000))
    copy_seconds = orm_seconds = 0.0
    try:
        # Everything happens in one transaction that is rolled back: the bench leaves no rows.
        with transaction.atomic():
            stores, guides = _fixtures()
            now = timezone.now()
            rows = member_rows(
                start=0, stop=size, stores=stores, guides_by_store=guides, seed=1, now=now
            )
            with stopwatch() as copy_watch:
                loaded = member_bulk_load(rows=rows)
            copy_seconds = copy_watch.seconds
            assert loaded == size
            baseline_rows = list(
                member_rows(
                    start=size,
                    stop=size + baseline_size,
                    stores=stores,
                    guides_by_store=guides,
                    seed=2,
                    now=now,
                )
            )
            with stopwatch() as orm_watch:
                for row in baseline_rows:
                    Member.objects.create(**dict(zip(MEMBER_COPY_COLUMNS, row, strict=True)))
            orm_seconds = orm_watch.seconds
            raise _Rollback
    except _Rollback:
        pass
    copy_rate = size / copy_seconds
    orm_rate = baseline_size / orm_seconds
    return BenchResult(
        figures={
            "rows": size,
            "seconds": round(copy_seconds, 3),
            "rows_per_second": round(copy_rate),
        },
        baseline={
            "method": "Member.objects.create per row",
            "rows": baseline_size,
            "seconds": round(orm_seconds, 3),
            "rows_per_second": round(orm_rate),
        },
        ratio=copy_rate / orm_rate,
        ratio_means="COPY rows/s ÷ row-by-row rows/s (higher is better)",
        extra={"projected_seconds_for_1M": round(1_000_000 / copy_rate, 1)},
    )


# Registering: importing these modules adds `bench ledger` and `bench member-card`.
from members import card_bench, ledger_bench, segment_bench  # noqa: E402, F401
