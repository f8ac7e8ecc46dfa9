"""Segment definitions: the JSON shape, parsed and typed against the workspace's attributes.

    {"all": [{"attribute": "city", "op": "eq", "value": "Pune"},
             {"any": [{"event": "Added To Cart", "did": true, "min_count": 1, "within_days": 7,
                       "where": [{"property": "amount", "op": "gt", "value": 100}]},
                      {"subscription": "subscribed"}]}]}

``all`` / ``any`` / ``not`` nest freely. Every error names where it is
(``definition.all[0].op``) and what would be accepted, and is a 422 for the API.
The semantics (compiler.py turns them into SQL) are:

- a missing attribute makes every comparison false, ``ne`` included; ``exists`` asks for
  presence (``"value": false`` for absence). An event property compares only with a value of
  its own JSON type (``5`` never equals ``"5"``); another type counts as missing.
- ``contains`` is a case-sensitive substring test on strings and membership on lists.
- ``within_days: N`` means from N days before now up to now; "now" is the business clock
  (to the whole second for attribute dates, which are stored to the second).
- events: ``did`` (default true) with ``min_count`` (default 1) / ``max_count`` counts the
  profile's events of that name that match ``where`` and the time window (``within_days``, or
  ``between: [start, end]``, both ends included; a date alone as the end includes that day);
  ``did: false`` means none did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers

from waconnect.profiles.attributes import (
    MAX_SAFE_INT,
    AttrType,
    ValueProblem,
    canonical_date,
    check_name,
    describe,
    is_date_only,
    parse_datetime,
)

ATTRIBUTE_OPS = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "contains",
    "in",
    "exists",
    "before",
    "after",
    "within_days",
)
PROPERTY_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "contains", "in", "exists")
ORDER_OPS = ("lt", "le", "gt", "ge")
OPS_BY_TYPE: dict[AttrType, tuple[str, ...]] = {
    AttrType.STRING: ("eq", "ne", "lt", "le", "gt", "ge", "contains", "in", "exists"),
    AttrType.NUMBER: ("eq", "ne", "lt", "le", "gt", "ge", "in", "exists"),
    AttrType.BOOLEAN: ("eq", "ne", "in", "exists"),
    AttrType.DATE: (
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "in",
        "exists",
        "before",
        "after",
        "within_days",
    ),
    AttrType.LIST: ("contains", "exists"),
}
SUBSCRIPTION_STATES = ("subscribed", "unsubscribed")
MAX_CONDITIONS = 200
MAX_DEPTH = 12
MAX_IN_VALUES = 1000
MAX_DAYS = 36500


class DefinitionError(ValueError):
    """A definition that cannot be used; ``path`` says where (``definition.all[0].op``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# --- the parsed tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeCond:
    name: str
    type: AttrType
    op: str
    # Stored form: canonical date text for dates, a tuple for ``in``, a bool for ``exists``,
    # whole days for ``within_days``.
    value: Any


@dataclass(frozen=True)
class PropertyCond:
    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class EventCond:
    name: str
    did: bool
    min_count: int
    max_count: int | None
    within_days: int | None
    # Both ends included.
    between: tuple[datetime, datetime] | None
    where: tuple[PropertyCond, ...]


@dataclass(frozen=True)
class SubscriptionCond:
    state: str


@dataclass(frozen=True)
class CountryCond:
    countries: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class NotOf:
    item: Node


Node = AttributeCond | EventCond | SubscriptionCond | CountryCond | AllOf | AnyOf | NotOf


def truncate_now(now: datetime) -> datetime:
    """Segments read the clock to the whole second: attribute dates are stored that way."""
    return now.astimezone(UTC).replace(microsecond=0)


def window(event: EventCond, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The event's time window as (from, to), both included; None where open."""
    if event.within_days is not None:
        return now - timedelta(days=event.within_days), now
    if event.between is not None:
        return event.between
    return None, None


# --- parsing --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, registry: dict[str, AttrType]) -> None:
        self.registry = registry
        self.conditions = 0

    def node(self, raw: Any, path: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise DefinitionError(path, f"groups nest at most {MAX_DEPTH} deep")
        if not isinstance(raw, dict):
            raise DefinitionError(path, f"expected an object, got {describe(raw)}")
        kinds = [key for key in ("all", "any", "not", "attribute", "event") if key in raw]
        kinds += [key for key in ("subscription", "country") if key in raw]
        if len(kinds) != 1:
            raise DefinitionError(
                path,
                "each condition is one of {all}, {any}, {not}, {attribute, op, value}, "
                "{event, ...}, {subscription} or {country}"
                + (f"; this one has {', '.join(kinds)}" if kinds else f"; got keys {list(raw)}"),
            )
        kind = kinds[0]
        if kind in ("all", "any"):
            return self.group(raw, kind, path, depth)
        if kind == "not":
            _only(raw, {"not"}, path)
            return NotOf(self.node(raw["not"], f"{path}.not", depth + 1))
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise DefinitionError(path, f"a definition has at most {MAX_CONDITIONS} conditions")
        if kind == "attribute":
            return self.attribute(raw, path)
        if kind == "event":
            return self.event(raw, path)
        if kind == "subscription":
            return self.subscription(raw, path)
        return self.country(raw, path)

    def group(self, raw: dict[str, Any], kind: str, path: str, depth: int) -> Node:
        _only(raw, {kind}, path)
        items = raw[kind]
        if not isinstance(items, list):
            raise DefinitionError(f"{path}.{kind}", "expected a list of conditions")
        nodes = tuple(
            self.node(item, f"{path}.{kind}[{index}]", depth + 1)
            for index, item in enumerate(items)
        )
        return AllOf(nodes) if kind == "all" else AnyOf(nodes)

    def attribute(self, raw: dict[str, Any], path: str) -> AttributeCond:
        _only(raw, {"attribute", "op", "value"}, path)
        name = raw["attribute"]
        if not isinstance(name, str):
            raise DefinitionError(f"{path}.attribute", "expected an attribute name")
        op = _op(raw, path, ATTRIBUTE_OPS)
        declared = self.registry.get(name)
        if declared is None:
            known = ", ".join(sorted(self.registry)[:20]) or "none yet"
            raise DefinitionError(
                f"{path}.attribute",
                f"unknown attribute {name!r}: no profile in this workspace has it (known: {known})",
            )
        if op not in OPS_BY_TYPE[declared]:
            raise DefinitionError(
                f"{path}.op",
                f"operator {op!r} does not apply to {name!r}, a {declared} attribute; "
                f"use one of {', '.join(OPS_BY_TYPE[declared])}",
            )
        value = _attribute_value(raw, op, declared, f"{path}.value")
        return AttributeCond(name, declared, op, value)

    def event(self, raw: dict[str, Any], path: str) -> EventCond:
        allowed = {"event", "did", "min_count", "max_count", "within_days", "between", "where"}
        _only(raw, allowed, path)
        name = raw["event"]
        if not isinstance(name, str) or not name or len(name) > 200:
            raise DefinitionError(f"{path}.event", "expected an event name (1 to 200 characters)")
        did = raw.get("did", True)
        if not isinstance(did, bool):
            raise DefinitionError(f"{path}.did", "expected true or false")
        min_count = _count(raw, "min_count", path)
        max_count = _count(raw, "max_count", path)
        if not did and (min_count is not None or max_count is not None):
            raise DefinitionError(
                path, "did: false means none; min_count and max_count go with did: true"
            )
        if min_count is not None and max_count is not None and min_count > max_count:
            raise DefinitionError(f"{path}.max_count", "max_count is below min_count")
        if "within_days" in raw and "between" in raw:
            raise DefinitionError(path, "give within_days or between, not both")
        within = _days(raw["within_days"], f"{path}.within_days") if "within_days" in raw else None
        between = _between(raw["between"], f"{path}.between") if "between" in raw else None
        where = raw.get("where", [])
        if not isinstance(where, list):
            raise DefinitionError(f"{path}.where", "expected a list of property conditions")
        conditions = tuple(
            _property(item, f"{path}.where[{index}]") for index, item in enumerate(where)
        )
        return EventCond(
            name=name,
            did=did,
            min_count=1 if min_count is None else min_count,
            max_count=max_count,
            within_days=within,
            between=between,
            where=conditions,
        )

    def subscription(self, raw: dict[str, Any], path: str) -> SubscriptionCond:
        _only(raw, {"subscription"}, path)
        state = raw["subscription"]
        if state not in SUBSCRIPTION_STATES:
            raise DefinitionError(
                f"{path}.subscription", f"expected one of {', '.join(SUBSCRIPTION_STATES)}"
            )
        return SubscriptionCond(state)

    def country(self, raw: dict[str, Any], path: str) -> CountryCond:
        _only(raw, {"country"}, path)
        value = raw["country"]
        codes = value if isinstance(value, list) else [value]
        cleaned = []
        for code in codes:
            if not isinstance(code, str) or code.upper() not in phonenumbers.SUPPORTED_REGIONS:
                raise DefinitionError(
                    f"{path}.country",
                    f"expected ISO 3166 country codes such as IN or AE; got {describe(code)}",
                )
            cleaned.append(code.upper())
        return CountryCond(tuple(cleaned))


def parse_definition(raw: Any, registry: dict[str, AttrType]) -> Node:
    """The typed tree of a definition; raises DefinitionError."""
    return _Parser(registry).node(raw, "definition", 0)


def _only(raw: dict[str, Any], allowed: set[str], path: str) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise DefinitionError(
            f"{path}.{unknown[0]}",
            f"unknown key {unknown[0]!r} here; allowed: {', '.join(sorted(allowed))}",
        )


def _op(raw: dict[str, Any], path: str, ops: tuple[str, ...]) -> str:
    op = raw.get("op")
    if op not in ops:
        raise DefinitionError(
            f"{path}.op",
            f"unknown operator {op!r}; use one of {' '.join(ops)}"
            if op is not None
            else f"give an operator: one of {' '.join(ops)}",
        )
    return str(op)


def _count(raw: dict[str, Any], key: str, path: str) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise DefinitionError(f"{path}.{key}", "expected a whole number from 0 to 1000000")
    return value


def _days(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise DefinitionError(path, f"expected a whole number of days from 1 to {MAX_DAYS}")
    return value


def _date(value: Any, path: str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise DefinitionError(
            path, f"expected an ISO 8601 date such as 2024-05-01; got {describe(value)}"
        )
    return parsed


def _between(value: Any, path: str) -> tuple[datetime, datetime]:
    if not isinstance(value, list) or len(value) != 2:
        raise DefinitionError(path, "expected [start, end] as ISO 8601 dates")
    start = _date(value[0], f"{path}[0]")
    end = _date(value[1], f"{path}[1]")
    if is_date_only(value[1]):
        # "between 2024-01-01 and 2024-01-31" includes all of the 31st.
        end = end + timedelta(days=1) - timedelta(microseconds=1)
    if end < start:
        raise DefinitionError(path, "the end is before the start")
    return start, end


def _attribute_value(raw: dict[str, Any], op: str, declared: AttrType, path: str) -> Any:
    if op == "exists":
        value = raw.get("value", True)
        if not isinstance(value, bool):
            raise DefinitionError(path, "exists takes true (present) or false (absent)")
        return value
    if "value" not in raw:
        raise DefinitionError(path, f"operator {op!r} needs a value")
    value = raw["value"]
    if op == "within_days":
        return _days(value, path)
    if op in ("before", "after"):
        return canonical_date(_date(value, path))
    if op == "contains":
        if not isinstance(value, str):
            raise DefinitionError(path, f"contains takes a string; got {describe(value)}")
        return _text(value, path)
    if op == "in":
        if not isinstance(value, list) or len(value) > MAX_IN_VALUES:
            raise DefinitionError(path, f"in takes a list of up to {MAX_IN_VALUES} values")
        return tuple(_typed(item, declared, f"{path}[{index}]") for index, item in enumerate(value))
    return _typed(value, declared, path)


def _typed(value: Any, declared: AttrType, path: str) -> Any:
    """A comparison value in the stored form of the attribute's type."""
    if declared is AttrType.DATE:
        return canonical_date(_date(value, path))
    if isinstance(value, str):
        _text(value, path)
    ok = {
        AttrType.STRING: isinstance(value, str),
        AttrType.NUMBER: _is_number(value),
        AttrType.BOOLEAN: isinstance(value, bool),
    }.get(declared, False)
    if not ok:
        raise DefinitionError(
            path, f"expected a {declared} like the attribute; got {describe(value)}"
        )
    return value


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INT
    return math.isfinite(value)


def _property(raw: Any, path: str) -> PropertyCond:
    if not isinstance(raw, dict) or "property" not in raw:
        raise DefinitionError(path, 'expected {"property": NAME, "op": OP, "value": VALUE}')
    _only(raw, {"property", "op", "value"}, path)
    name = raw["property"]
    try:
        check_name(name if isinstance(name, str) else "", "property")
    except ValueProblem as exc:
        raise DefinitionError(f"{path}.property", exc.message) from None
    op = _op(raw, path, PROPERTY_OPS)
    if op == "exists":
        value = raw.get("value", True)
        if not isinstance(value, bool):
            raise DefinitionError(f"{path}.value", "exists takes true or false")
        return PropertyCond(name, op, value)
    if "value" not in raw:
        raise DefinitionError(f"{path}.value", f"operator {op!r} needs a value")
    value = raw["value"]
    if op == "in":
        if not isinstance(value, list) or len(value) > MAX_IN_VALUES:
            raise DefinitionError(f"{path}.value", f"in takes a list of up to {MAX_IN_VALUES}")
        for index, item in enumerate(value):
            _scalar(item, f"{path}.value[{index}]", allow_bool=True)
        return PropertyCond(name, op, tuple(value))
    if op == "contains" and not isinstance(value, str):
        raise DefinitionError(f"{path}.value", f"contains takes a string; got {describe(value)}")
    _scalar(value, f"{path}.value", allow_bool=op in ("eq", "ne"))
    return PropertyCond(name, op, value)


def _text(value: str, path: str) -> str:
    if "\x00" in value:
        raise DefinitionError(path, "text may not contain the NUL character (\\u0000)")
    return value


def _scalar(value: Any, path: str, allow_bool: bool) -> None:
    if isinstance(value, str):
        _text(value, path)
    if isinstance(value, bool):
        if not allow_bool:
            raise DefinitionError(path, "true/false only compare with eq, ne or in")
        return
    if not (isinstance(value, str) or _is_number(value)):
        raise DefinitionError(path, f"expected a string, number or boolean; got {describe(value)}")
