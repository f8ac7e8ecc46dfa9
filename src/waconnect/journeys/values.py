"""Values a node reads from the run: literals, profile attributes, the entry event's properties,
the last reply — for set_attribute, record_event, branch conditions, payment order ids and
session message text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TEXT_VARIABLE = re.compile(r"\{\{\s*(attribute|event|reply)\.([A-Za-z0-9_ \-]+?)\s*\}\}")


class MissingValue(ValueError):
    """A value the node needs is absent and has no default."""


def resolve(
    spec: Any,
    attributes: Mapping[str, Any],
    entry: Mapping[str, Any],
    reply: Mapping[str, Any] | None,
) -> Any:
    """``spec`` is a literal, or ``{"literal": v}``, ``{"attribute": name}``,
    ``{"event_property": name}``, ``{"reply": "text" | "button_payload" | "button_text"}``,
    with optional ``"default"`` and ``"as": "number" | "string" | "boolean"``."""
    if not isinstance(spec, dict):
        return spec
    if "literal" in spec:
        value = spec["literal"]
    elif "attribute" in spec:
        value = attributes.get(str(spec["attribute"]))
    elif "event_property" in spec:
        value = entry.get(str(spec["event_property"]))
    elif "reply" in spec:
        value = (reply or {}).get(str(spec["reply"]))
    else:
        return spec
    if value is None or value == "":
        if "default" in spec:
            value = spec["default"]
        else:
            raise MissingValue(f"no value for {_describe(spec)}")
    return _convert(value, spec.get("as"))


def _describe(spec: Mapping[str, Any]) -> str:
    for key in ("attribute", "event_property", "reply"):
        if key in spec:
            return f"{key} {spec[key]!r}"
    return "the value"


def _convert(value: Any, kind: Any) -> Any:
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise MissingValue(f"{value!r} is not a number") from exc
        return int(number) if number.is_integer() else number
    if kind == "string":
        return str(value)
    if kind == "boolean":
        return str(value).strip().lower() in ("1", "true", "yes", "y")
    return value


def fill_text(
    text: str,
    attributes: Mapping[str, Any],
    entry: Mapping[str, Any],
    reply: Mapping[str, Any] | None,
) -> str:
    """``{{attribute.first_name}}``, ``{{event.order_id}}``, ``{{reply.text}}`` in session text."""

    def value(match: re.Match[str]) -> str:
        source, name = match.group(1), match.group(2).strip()
        found = {"attribute": attributes, "event": entry, "reply": reply or {}}[source].get(name)
        if found is None:
            raise MissingValue(f"no value for {source}.{name}")
        return str(found)

    return _TEXT_VARIABLE.sub(value, text)


def fill_message(
    message: Any,
    attributes: Mapping[str, Any],
    entry: Mapping[str, Any],
    reply: Mapping[str, Any] | None,
) -> Any:
    """Every string inside a session message, filled."""
    if isinstance(message, str):
        return fill_text(message, attributes, entry, reply)
    if isinstance(message, list):
        return [fill_message(item, attributes, entry, reply) for item in message]
    if isinstance(message, dict):
        return {k: fill_message(v, attributes, entry, reply) for k, v in message.items()}
    return message


def compare(actual: Any, op: str, expected: Any) -> bool:
    """A condition on one value (trigger property filters, attribute branches)."""
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if actual is None:
        return op == "ne"
    try:
        if op == "eq":
            return bool(actual == expected or str(actual) == str(expected))
        if op == "ne":
            return not (actual == expected or str(actual) == str(expected))
        if op == "in":
            return isinstance(expected, list) and (
                actual in expected or str(actual) in [str(e) for e in expected]
            )
        if op == "contains":
            if isinstance(actual, list):
                return expected in actual
            return str(expected).lower() in str(actual).lower()
        left, right = float(actual), float(expected)
    except (TypeError, ValueError):
        return False
    return {
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }.get(op, False)


def conditions_hold(conditions: list[dict[str, Any]], properties: Mapping[str, Any]) -> bool:
    return all(
        compare(properties.get(c["property"]), c.get("op", "eq"), c.get("value"))
        for c in conditions
    )
