"""Random rule trees for `bench segments` and the engine-against-SQL tests: 2–12
conditions over every field, nested AND / OR / NOT up to three deep."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone


@dataclass
class Vocabulary:
    """Values that exist in the data, so conditions select someone."""

    tags: list[int]
    stores: list[int]
    tiers: list[int]
    cities: list[str]
    categories: list[str]
    skus: list[str]


def vocabulary() -> Vocabulary:
    with connection.cursor() as cursor:

        def column(sql: str) -> list[Any]:
            cursor.execute(sql)
            return [row[0] for row in cursor.fetchall()]

        return Vocabulary(
            tags=column("SELECT id FROM members_tag ORDER BY id"),
            stores=column("SELECT id FROM org_store ORDER BY id"),
            tiers=column("SELECT id FROM members_tier ORDER BY id"),
            cities=column(
                "SELECT city FROM members_member WHERE city <> '' GROUP BY city "
                "ORDER BY count(*) DESC LIMIT 20"
            ),
            categories=column(
                "SELECT category FROM members_orderline WHERE category <> '' GROUP BY category "
                "ORDER BY count(*) DESC LIMIT 20"
            ),
            skus=column(
                "SELECT sku FROM members_orderline GROUP BY sku ORDER BY count(*) DESC LIMIT 20"
            ),
        )


WINDOWS = [None, 30, 90, 180, 365]
CLASSES = ["HHH", "HLH", "LHH", "LLH", "HHL", "HLL", "LHL", "LLL"]


def random_condition(rng: random.Random, words: Vocabulary) -> dict[str, Any]:
    kinds = [
        "gender",
        "age",
        "city",
        "lifecycle_stage",
        "member_since",
        "source_channel",
        "activity_points",
        "growth_value",
        "order_count",
        "order_amount",
        "last_purchase",
        "rfm_class",
        "rfm_r",
        "value_matrix",
    ]
    if words.tags:
        kinds += ["tags", "tags", "tags"]
    if words.stores:
        kinds.append("home_store")
    if words.tiers:
        kinds.append("tier")
    if words.categories:
        kinds += ["bought"]
    kind = rng.choice(kinds)
    if kind == "gender":
        return {"field": kind, "operator": "in", "value": rng.sample(["f", "m", "u"], 1)}
    if kind == "age":
        low = rng.randrange(18, 50)
        return {"field": kind, "operator": "between", "value": [low, low + rng.randrange(5, 20)]}
    if kind == "city":
        return {"field": kind, "operator": "in", "value": rng.sample(words.cities or ["上海"], 1)}
    if kind == "lifecycle_stage":
        stages = ["prospect", "member", "new", "repeat", "loyal", "sleeping", "churned"]
        return {"field": kind, "operator": "in", "value": rng.sample(stages, rng.randrange(1, 3))}
    if kind == "member_since":
        if rng.random() < 0.5:
            return {"field": kind, "operator": "within_days", "value": rng.choice([30, 90, 365])}
        today = timezone.localdate()
        start = today - timedelta(days=rng.randrange(100, 700))
        return {
            "field": kind,
            "operator": "between",
            "value": [start.isoformat(), (start + timedelta(days=180)).isoformat()],
        }
    if kind == "source_channel":
        channels = ["store", "mini_program", "tmall", "jd", "wecom", "pos"]
        return {"field": kind, "operator": "in", "value": rng.sample(channels, 2)}
    if kind in ("activity_points", "growth_value"):
        return {"field": kind, "operator": "gte", "value": rng.choice([10, 100, 500, 2000])}
    if kind == "order_count":
        return {
            "field": kind,
            "operator": rng.choice(["gte", "lte"]),
            "value": rng.randrange(0, 6),
            "days": rng.choice(WINDOWS),
        }
    if kind == "order_amount":
        return {
            "field": kind,
            "operator": "between",
            "value": [rng.choice([0, 100, 500]), rng.choice([None, 1000, 5000])],
            "days": rng.choice(WINDOWS),
        }
    if kind == "last_purchase":
        operator = rng.choice(["within_days", "not_within_days", "never"])
        return {"field": kind, "operator": operator, "value": rng.choice([30, 60, 180])}
    if kind == "rfm_class":
        return {"field": kind, "operator": "in", "value": rng.sample(CLASSES, rng.randrange(1, 4))}
    if kind == "rfm_r":
        low = rng.randrange(1, 5)
        return {"field": kind, "operator": "between", "value": [low, 5]}
    if kind == "value_matrix":
        cells = ["core", "fans", "quiet_spenders", "ordinary"]
        return {"field": kind, "operator": "in", "value": rng.sample(cells, 1)}
    if kind == "tags":
        return {
            "field": kind,
            "operator": rng.choice(["any", "all", "none"]),
            "value": rng.sample(words.tags, min(len(words.tags), rng.randrange(1, 4))),
        }
    if kind == "home_store":
        return {"field": kind, "operator": "in", "value": rng.sample(words.stores, 1)}
    if kind == "tier":
        if rng.random() < 0.2:
            return {"field": kind, "operator": "none"}
        return {"field": kind, "operator": "in", "value": rng.sample(words.tiers, 1)}
    return {
        "field": "bought",
        "operator": "category",
        "value": rng.choice(words.categories),
        "days": rng.choice(WINDOWS),
        "min_times": rng.choice([1, 1, 2]),
    }


def random_tree(rng: random.Random, words: Vocabulary, conditions: int) -> dict[str, Any]:
    """A tree with exactly `conditions` conditions, nested up to three groups deep."""

    def build(count: int, depth: int) -> dict[str, Any]:
        if count == 1 and (depth >= 3 or rng.random() < 0.6):
            condition = random_condition(rng, words)
            return {"op": "not", "rules": [condition]} if rng.random() < 0.15 else condition
        if count == 1:
            return {"op": "not", "rules": [build(1, depth + 1)]}
        op = rng.choice(["and", "and", "or"])
        if depth >= 3:
            return {"op": op, "rules": [random_condition(rng, words) for _ in range(count)]}
        parts = min(count, rng.randrange(2, 5))
        sizes = [1] * parts
        for _ in range(count - parts):
            sizes[rng.randrange(parts)] += 1
        return {"op": op, "rules": [build(size, depth + 1) for size in sizes]}

    tree = build(conditions, 1)
    return tree if "op" in tree else {"op": "and", "rules": [tree]}
