"""The segment rule language: a tree of AND / OR / NOT groups over conditions.

A rule tree is plain JSON, stored on the segment and sent by the builder page:

    {"op": "and", "rules": [
        {"field": "gender", "operator": "in", "value": ["f"]},
        {"field": "order_count", "operator": "gte", "value": 2, "days": 90},
        {"op": "not", "rules": [{"field": "tags", "operator": "any", "value": [12]}]}]}

`parse_rules()` checks a tree and returns typed nodes, or raises RuleError naming the
bad node by its path (``rules[2].rules[0]``) so the builder can point at it. Conditions
come from FIELDS; later issues add fields (RFM, behaviour events) by registering theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

MAX_DEPTH = 6
MAX_CONDITIONS = 50
MAX_LIST = 500
GROUP_OPS = ("and", "or", "not")


class RuleError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any
    days: int | None = None  # a window in days, for order and purchase conditions
    min_times: int = 1  # `bought`: at least this many orders with the product


@dataclass(frozen=True)
class Group:
    op: str  # and / or / not
    rules: tuple[Node, ...] = field(default_factory=tuple)


Node = Condition | Group


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str | Promise
    operators: tuple[str, ...]
    value: str  # choice-list / id-list / text-list / number / number-range / date-range / days
    windowed: bool = False  # takes an optional `days` window
    choices: Callable[[], list[tuple[str, str]]] | None = None
    # Inferred from behaviour (what was bought or browsed, RFM, value): personalisation
    # that needs the member's profiling consent (PIPL), unlike facts they gave us.
    profiling: bool = False


def _choices(text_choices: Any) -> Callable[[], list[tuple[str, str]]]:
    return lambda: [(str(v), str(label)) for v, label in text_choices.choices]


def _gender_choices() -> list[tuple[str, str]]:
    from members.models import Gender

    return _choices(Gender)()


def _stage_choices() -> list[tuple[str, str]]:
    from members.models import LifecycleStage

    return _choices(LifecycleStage)()


def _rfm_choices() -> list[tuple[str, str]]:
    from members.models import RfmClass

    return [(str(v), str(label)) for v, label in RfmClass.choices]


def _value_cell_choices() -> list[tuple[str, str]]:
    from members.models import ValueCell

    return _choices(ValueCell)()


def _channel_choices() -> list[tuple[str, str]]:
    from members.models import Channel

    return _choices(Channel)()


FIELDS: dict[str, FieldSpec] = {}


def register_field(spec: FieldSpec) -> None:
    FIELDS[spec.name] = spec


for _spec in (
    FieldSpec("gender", gettext_lazy("Gender"), ("in",), "choice-list", choices=_gender_choices),
    FieldSpec("age", gettext_lazy("Age"), ("between",), "number-range"),
    FieldSpec("city", gettext_lazy("City"), ("in",), "text-list"),
    FieldSpec("home_store", gettext_lazy("Home store"), ("in",), "id-list"),
    FieldSpec("tier", gettext_lazy("Tier"), ("in", "none"), "id-list"),
    FieldSpec(
        "lifecycle_stage",
        gettext_lazy("Lifecycle stage"),
        ("in",),
        "choice-list",
        choices=_stage_choices,
    ),
    FieldSpec(
        "member_since",
        gettext_lazy("Registered"),
        ("between", "within_days", "before_days"),
        "date-range",
    ),
    FieldSpec(
        "source_channel",
        gettext_lazy("Source channel"),
        ("in",),
        "choice-list",
        choices=_channel_choices,
    ),
    FieldSpec("tags", gettext_lazy("Tags"), ("any", "all", "none"), "id-list"),
    FieldSpec(
        "activity_points", gettext_lazy("Activity points"), ("gte", "lte", "between"), "number"
    ),
    FieldSpec("growth_value", gettext_lazy("Growth value"), ("gte", "lte", "between"), "number"),
    FieldSpec(
        "order_count",
        gettext_lazy("Orders"),
        ("gte", "lte", "between"),
        "number",
        windowed=True,
    ),
    FieldSpec(
        "order_amount",
        gettext_lazy("Amount spent (¥)"),
        ("gte", "lte", "between"),
        "number",
        windowed=True,
    ),
    FieldSpec(
        "last_purchase",
        gettext_lazy("Last purchase"),
        ("within_days", "not_within_days", "never"),
        "days",
    ),
    FieldSpec(
        "bought",
        gettext_lazy("Bought"),
        ("category", "sku"),
        "text",
        windowed=True,
        profiling=True,
    ),
    FieldSpec(
        "rfm_class",
        gettext_lazy("RFM class"),
        ("in", "none"),
        "choice-list",
        choices=_rfm_choices,
        profiling=True,
    ),
    FieldSpec(
        "rfm_r", gettext_lazy("RFM recency score"), ("between",), "number-range", profiling=True
    ),
    FieldSpec(
        "rfm_f", gettext_lazy("RFM frequency score"), ("between",), "number-range", profiling=True
    ),
    FieldSpec(
        "rfm_m", gettext_lazy("RFM spend score"), ("between",), "number-range", profiling=True
    ),
    FieldSpec(
        "value_matrix",
        gettext_lazy("Value matrix"),
        ("in",),
        "choice-list",
        choices=_value_cell_choices,
        profiling=True,
    ),
):
    register_field(_spec)


def rules_use_profiling(tree: Any) -> bool:
    """Whether a rule tree names a field inferred from behaviour (`FieldSpec.profiling`).
    A tree that does not parse names none."""
    try:
        root: Node = parse_rules(tree)
    except RuleError:
        return False
    pending: list[Node] = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, Group):
            pending.extend(node.rules)
        elif (spec := FIELDS.get(node.field)) is not None and spec.profiling:
            return True
    return False


# Whether member `a.id` withdrew profiling consent, as an SQL predicate. The consent
# ledger is the campaigns app's: it registers the predicate at start-up (members never
# imports campaigns). Without it a profiling rule cannot honour withdrawals, so it
# refuses to run rather than tag anyone.
_PROFILING_WITHDRAWN: list[str] = []


def register_profiling_withdrawn(sql: str) -> None:
    _PROFILING_WITHDRAWN[:] = [sql]


def profiling_withdrawn_sql() -> str:
    if not _PROFILING_WITHDRAWN:
        raise RuntimeError("No profiling consent predicate is registered.")
    return _PROFILING_WITHDRAWN[0]


def parse_rules(tree: Any) -> Group:
    """Check a rule tree; return it typed, or raise RuleError naming the bad node."""
    counter = [0]
    node = _parse(tree, "", 1, counter)
    if isinstance(node, Condition):
        return Group("and", (node,))
    return node


def _parse(raw: Any, path: str, depth: int, counter: list[int]) -> Node:
    here = path or _("the rule")
    if not isinstance(raw, dict):
        raise RuleError(path, _("%(node)s must be a group or a condition.") % {"node": here})
    if "op" in raw:
        return _parse_group(raw, path, depth, counter)
    if "field" in raw:
        counter[0] += 1
        if counter[0] > MAX_CONDITIONS:
            raise RuleError(
                path, _("A segment may have at most %(n)s conditions.") % {"n": MAX_CONDITIONS}
            )
        return _parse_condition(raw, path)
    raise RuleError(
        path, _("%(node)s needs an “op” (group) or a “field” (condition).") % {"node": here}
    )


def _parse_group(raw: dict[str, Any], path: str, depth: int, counter: list[int]) -> Group:
    op = raw.get("op")
    if op not in GROUP_OPS:
        raise RuleError(
            path, _("Unknown group “%(op)s”: use and, or or not.") % {"op": str(op)[:20]}
        )
    if depth > MAX_DEPTH:
        raise RuleError(path, _("Groups nest at most %(n)s deep.") % {"n": MAX_DEPTH})
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise RuleError(path, _("This group is empty: add a condition or remove the group."))
    if op == "not" and len(rules) != 1:
        raise RuleError(path, _("NOT takes exactly one condition or group."))
    prefix = f"{path}." if path else ""
    children = tuple(
        _parse(child, f"{prefix}rules[{index}]", depth + 1, counter)
        for index, child in enumerate(rules)
    )
    return Group(op, children)


def _parse_condition(raw: dict[str, Any], path: str) -> Condition:
    name = raw.get("field")
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise RuleError(path, _("Unknown field “%(field)s”.") % {"field": str(name)[:40]})
    operator = raw.get("operator")
    if operator not in spec.operators:
        raise RuleError(
            path,
            _("“%(label)s” takes %(ops)s, not “%(op)s”.")
            % {"label": spec.label, "ops": ", ".join(spec.operators), "op": str(operator)[:20]},
        )
    days = raw.get("days")
    if days in ("", None):
        days = None
    elif not spec.windowed:
        raise RuleError(path, _("“%(label)s” takes no time window.") % {"label": spec.label})
    else:
        days = _whole(days, path, _("The window"), low=1, high=3650)
    min_times = 1
    if spec.name == "bought" and raw.get("min_times") not in (None, ""):
        min_times = _whole(raw["min_times"], path, _("The number of times"), low=1, high=1000)
    value = _value(spec, operator, raw.get("value"), path)
    return Condition(spec.name, operator, value, days, min_times)


def _whole(value: Any, path: str, what: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RuleError(path, _("%(what)s must be a whole number.") % {"what": what})
    try:
        number = int(value)
    except ValueError:
        raise RuleError(path, _("%(what)s must be a whole number.") % {"what": what}) from None
    if not low <= number <= high:
        raise RuleError(
            path,
            _("%(what)s must be between %(low)s and %(high)s.")
            % {"what": what, "low": low, "high": high},
        )
    return number


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise RuleError(path, _("Enter a number."))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuleError(
            path, _("“%(value)s” is not a number.") % {"value": str(value)[:20]}
        ) from None
    if number != number or abs(number) > 1e12:  # NaN or absurd
        raise RuleError(path, _("“%(value)s” is not a usable number.") % {"value": value})
    return number


def _date(value: Any, path: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RuleError(
            path, _("“%(value)s” is not a date (use 2024-05-20).") % {"value": str(value)[:20]}
        ) from None


def _value(spec: FieldSpec, operator: str, value: Any, path: str) -> Any:
    if operator == "never" or (spec.name in ("tier", "rfm_class") and operator == "none"):
        return None  # "never bought", "no tier", "no class": nothing to choose
    kind = spec.value
    if kind in ("choice-list", "id-list", "text-list"):
        if not isinstance(value, list) or not value:
            raise RuleError(
                path, _("Choose at least one value for “%(label)s”.") % {"label": spec.label}
            )
        if len(value) > MAX_LIST:
            raise RuleError(path, _("At most %(n)s values per condition.") % {"n": MAX_LIST})
        if kind == "id-list":
            ids = []
            for item in value:
                if isinstance(item, bool) or not str(item).isdigit():
                    raise RuleError(
                        path, _("“%(value)s” is not an id.") % {"value": str(item)[:20]}
                    )
                ids.append(int(item))
            return tuple(sorted(set(ids)))
        texts = tuple(sorted({str(item).strip()[:100] for item in value if str(item).strip()}))
        if not texts:
            raise RuleError(
                path, _("Choose at least one value for “%(label)s”.") % {"label": spec.label}
            )
        if kind == "choice-list" and spec.choices is not None:
            allowed = {key for key, _label in spec.choices()}
            bad = [item for item in texts if item not in allowed]
            if bad:
                raise RuleError(
                    path,
                    _("Unknown value “%(value)s” for “%(label)s”.")
                    % {"value": bad[0], "label": spec.label},
                )
        return texts
    if kind == "text":
        text = str(value or "").strip()
        if not text:
            raise RuleError(path, _("Enter a value for “%(label)s”.") % {"label": spec.label})
        return text[:100]
    if kind == "days":
        return _whole(value, path, _("The number of days"), low=1, high=3650)
    if kind == "date-range":
        if operator in ("within_days", "before_days"):
            return _whole(value, path, _("The number of days"), low=1, high=36500)
        return _range(value, path, _date)
    if kind == "number-range" or operator == "between":
        return _range(value, path, _number)
    return _number(value, path)


def _range(value: Any, path: str, convert: Callable[[Any, str], Any]) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise RuleError(path, _("Give a range: [from, to] (either end may be empty)."))
    low, high = (None if v in (None, "") else convert(v, path) for v in value)
    if low is None and high is None:
        raise RuleError(path, _("Give at least one end of the range."))
    if low is not None and high is not None and low > high:
        raise RuleError(path, _("The range starts after it ends."))
    return (low, high)


def referenced_ids(tree: Group, field_name: str) -> set[int]:
    """Every id a tree names for one field (to check tags, stores and tiers exist)."""
    found: set[int] = set()
    for node in tree.rules:
        if isinstance(node, Group):
            found |= referenced_ids(node, field_name)
        elif node.field == field_name and node.value:
            found.update(node.value)
    return found


def conditions(tree: Group) -> list[Condition]:
    out: list[Condition] = []
    for node in tree.rules:
        out.extend(conditions(node) if isinstance(node, Group) else [node])
    return out
