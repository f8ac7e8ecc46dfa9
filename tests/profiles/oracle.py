"""A brute-force Python evaluation of segment definitions, written from the issue's semantics
(not from the SQL compiler), to check the compiled queries against on generated data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from waconnect.profiles.definition import (
    AllOf,
    AnyOf,
    AttributeCond,
    CountryCond,
    EventCond,
    Node,
    NotOf,
    PropertyCond,
    SubscriptionCond,
)

MISSING = object()


@dataclass
class OracleEvent:
    name: str
    ts: datetime
    properties: dict[str, Any]


@dataclass
class OracleProfile:
    id: int
    attributes: dict[str, Any]
    country: str | None
    subscription: str | None
    events: list[OracleEvent] = field(default_factory=list)


def matches(node: Node, profile: OracleProfile, now: datetime) -> bool:
    if isinstance(node, AllOf):
        return all(matches(item, profile, now) for item in node.items)
    if isinstance(node, AnyOf):
        return any(matches(item, profile, now) for item in node.items)
    if isinstance(node, NotOf):
        return not matches(node.item, profile, now)
    if isinstance(node, AttributeCond):
        return _attribute(node, profile.attributes.get(node.name, MISSING), now)
    if isinstance(node, EventCond):
        return _event(node, profile.events, now)
    if isinstance(node, SubscriptionCond):
        return profile.subscription == node.state
    if isinstance(node, CountryCond):
        return profile.country in node.countries
    raise TypeError(node)


def _attribute(cond: AttributeCond, value: Any, now: datetime) -> bool:
    if cond.op == "exists":
        return (value is not MISSING) is cond.value
    if value is MISSING:
        return False  # a missing attribute makes every comparison false, ne included
    op, target = cond.op, cond.value
    if op == "contains":
        return target in value  # substring of a string, member of a list
    if op == "in":
        return any(_same(value, item) for item in target)
    if op == "within_days":
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return now - timedelta(days=target) <= moment <= now
    op = {"before": "lt", "after": "gt"}.get(op, op)
    return _compare(op, value, target)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return _same(left, right)
    if op == "ne":
        return not _same(left, right)
    return {
        "lt": left < right,
        "le": left <= right,
        "gt": left > right,
        "ge": left >= right,
    }[op]


def _same(left: Any, right: Any) -> bool:
    return _kind(left) == _kind(right) and left == right


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "other"


def _event(cond: EventCond, events: list[OracleEvent], now: datetime) -> bool:
    start: datetime | None = None
    end: datetime | None = None
    if cond.within_days is not None:
        start, end = now - timedelta(days=cond.within_days), now
    elif cond.between is not None:
        start, end = cond.between
    found = sum(
        1
        for e in events
        if e.name == cond.name
        and (start is None or e.ts >= start)
        and (end is None or e.ts <= end)
        and all(_property(p, e.properties) for p in cond.where)
    )
    if not cond.did:
        return found == 0
    return found >= cond.min_count and (cond.max_count is None or found <= cond.max_count)


def _property(cond: PropertyCond, properties: dict[str, Any]) -> bool:
    """A property compares only with a value of its own JSON type; another type is missing."""
    if cond.op == "exists":
        return (cond.name in properties) is cond.value
    value = properties.get(cond.name, MISSING)
    if value is MISSING:
        return False
    if cond.op == "contains":
        if isinstance(value, str):
            return cond.value in value
        if isinstance(value, list):
            return any(isinstance(item, str) and item == cond.value for item in value)
        return False
    if cond.op == "in":
        return any(_same(value, item) for item in cond.value)
    if _kind(value) != _kind(cond.value):
        return False
    if isinstance(cond.value, bool) and cond.op not in ("eq", "ne"):
        return False
    return _compare(cond.op, value, cond.value)
