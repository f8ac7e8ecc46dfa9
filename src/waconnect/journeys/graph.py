"""A journey's definition: its trigger, rules and graph of nodes with named exits.

Parsing is pure (no database): every problem is reported with the path that names the node,
e.g. ``nodes.remind.exits.next``. Checks that need the database (templates exist and are
approved, segments exist) are in journeys/service.py.

Shape (JSON, or YAML from the CLI)::

    {"name": "Abandoned cart",
     "trigger": {"type": "event", "event": "cart_abandoned", "where": [...]},
     "rules": {"entry": "once", "goal": {"event": "purchase"}},
     "start": "wait",
     "nodes": {"wait": {"type": "wait", "duration": "1h", "next": "remind"}, ...}}
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

REPLIED = "WhatsApp Replied"
PAYMENT_COMPLETED = "payment_completed"
PAYMENT_FAILED = "payment_failed"
STATUS_EVENTS = {
    "delivered": "WhatsApp Delivered",
    "read": "WhatsApp Read",
    "failed": "WhatsApp Failed",
    "sent": "WhatsApp Sent",
}

TRIGGERS = ("event", "inbound", "segment", "message_status", "api")
ENTRY_RULES = ("once", "once_per_days", "unlimited")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists", "in")
# Nodes where a profile stops and time passes: a cycle must go through one of them.
WAITING_TYPES = frozenset({"wait", "wait_for_reply", "payment_request"})
NODE_TYPES = (
    "send_template",
    "send_session",
    "wait",
    "wait_for_reply",
    "branch",
    "set_attribute",
    "record_event",
    "payment_request",
    "webhook",
    "exit",
)
BRANCH_ON = ("message_status", "attribute", "event", "segment", "ab_split")
STATUS_EXITS = ("read", "delivered", "failed", "else")
SESSION_TYPES = ("text", "image", "video", "document", "audio", "interactive")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_NODE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
MAX_NODES = 200
MAX_WAIT_SECONDS = 366 * 86400


class GraphError(ValueError):
    """Every problem found, keyed by the path that names the node: ``nodes.<id>.<field>``."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '2h', '30m', '3d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        unit = match.group(2).lower() if match.group(2) else None
        seconds = float(match.group(1)) * _UNITS[unit]
    else:
        raise ValueError(f"{value!r} is not a duration; write e.g. 90, '30m', '2h', '3d'")
    if seconds <= 0 or seconds > MAX_WAIT_SECONDS:
        raise ValueError("a duration is more than 0 and at most 366 days")
    return seconds


def parse_time_of_day(value: Any) -> tuple[int, int]:
    if not isinstance(value, str) or not (match := _HHMM.match(value)):
        raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 09:30")
    return int(match.group(1)), int(match.group(2))


def _check_moment(spec: dict[str, Any]) -> None:
    """``until: {"event_property" | "attribute": name, "offset": "-1h"}``: a moment the
    profile carries (an appointment, a delivery slot), optionally shifted."""
    if not any(isinstance(spec.get(key), str) for key in ("event_property", "attribute")):
        raise ValueError(
            'name where the moment is: {"event_property": "slot_at"} or {"attribute": "renews_at"}'
        )
    if "offset" in spec:
        parse_offset(spec["offset"])


def parse_offset(value: Any) -> float:
    """Signed seconds: ``"-1h"``, ``"30m"``, ``-3600``; 0 for none."""
    if value in (0, "0", None, ""):
        return 0.0
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value)
    return parse_duration(value)


@dataclass
class Node:
    id: str
    type: str
    exits: dict[str, str]
    config: dict[str, Any]

    @property
    def waits(self) -> bool:
        return self.type in WAITING_TYPES


@dataclass
class Graph:
    """A parsed, valid definition."""

    trigger: dict[str, Any]
    rules: dict[str, Any]
    start: str
    nodes: dict[str, Node]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def goal_event(self) -> str | None:
        goal = self.rules.get("goal") or {}
        return goal.get("event") if isinstance(goal, dict) else None

    def listens(self) -> list[str]:
        """Event names a run inside reacts to: the goal, replies, payments."""
        names: set[str] = set()
        if self.goal_event:
            names.add(self.goal_event)
        for node in self.nodes.values():
            if node.type == "wait_for_reply":
                names.add(REPLIED)
            if node.type == "payment_request":
                names.update((PAYMENT_COMPLETED, PAYMENT_FAILED))
        return sorted(names)

    def template_refs(self) -> Iterator[tuple[Node, dict[str, Any]]]:
        for node in self.nodes.values():
            if node.type in ("send_template", "payment_request"):
                yield node, node.config["template"]


def _exits_for(node_id: str, raw: Mapping[str, Any], problems: dict[str, str]) -> list[str]:
    """The exit names a node of this type must (and may) have."""
    kind = raw["type"]
    where = f"nodes.{node_id}"
    if kind in ("send_template", "set_attribute", "record_event", "wait"):
        return ["next"]
    if kind == "send_session":
        return ["next", "window_closed"]
    if kind == "wait_for_reply":
        replies = raw.get("replies") or []
        if not isinstance(replies, list):
            problems[f"{where}.replies"] = "a list of {exit, payload | text | keywords}"
            return ["timeout"]
        names = []
        for index, reply in enumerate(replies):
            if not isinstance(reply, dict) or not isinstance(reply.get("exit"), str):
                problems[f"{where}.replies.{index}"] = (
                    "each reply names its exit and what it matches: "
                    '{"exit": "good", "payload": "5"} (or "text", or "keywords")'
                )
                continue
            if not any(key in reply for key in ("payload", "text", "keywords")):
                problems[f"{where}.replies.{index}"] = "give payload, text or keywords to match"
            names.append(reply["exit"])
        if raw.get("any_reply") or not names:
            names.append("reply")
        return [*names, "timeout"]
    if kind == "branch":
        on = raw.get("on")
        if on not in BRANCH_ON:
            problems[f"{where}.on"] = f"branch on one of {', '.join(BRANCH_ON)}"
            return []
        if on == "message_status":
            given = set((raw.get("exits") or {}).keys())
            wanted = [name for name in STATUS_EXITS if name in given] or ["else"]
            if "else" not in wanted:
                wanted.append("else")
            return wanted
        if on == "ab_split":
            split = raw.get("split")
            if not isinstance(split, dict) or not split:
                problems[f"{where}.split"] = 'percentages per exit, e.g. {"a": 50, "b": 50}'
                return []
            if (
                any(
                    not isinstance(v, int | float) or isinstance(v, bool) or v < 0
                    for v in split.values()
                )
                or abs(sum(float(v) for v in split.values()) - 100) > 1e-6
            ):
                problems[f"{where}.split"] = "percentages that add up to 100"
            return list(split)
        return ["yes", "no"]
    if kind == "payment_request":
        return ["completed", "failed", "timeout"]
    if kind == "webhook":
        return ["success", "error"]
    return []  # exit


def _check_config(node_id: str, raw: Mapping[str, Any], problems: dict[str, str]) -> None:
    kind = raw["type"]
    where = f"nodes.{node_id}"
    if kind in ("send_template", "payment_request"):
        template = raw.get("template")
        if (
            not isinstance(template, dict)
            or not isinstance(template.get("name"), str)
            or not isinstance(template.get("language", "en"), str)
        ):
            problems[f"{where}.template"] = 'name the template: {"name": "...", "language": "en"}'
        mapping = raw.get("variables", {})
        if not isinstance(mapping, dict):
            problems[f"{where}.variables"] = 'a mapping such as {"body.1": {"attribute": "name"}}'
    if kind == "send_session":
        message = raw.get("message")
        if not isinstance(message, dict) or message.get("type") not in SESSION_TYPES:
            problems[f"{where}.message"] = (
                f"a session message with a type among {', '.join(SESSION_TYPES)}"
            )
    if kind == "wait":
        if ("duration" in raw) == ("until" in raw):
            problems[where] = (
                'a wait has a "duration" (e.g. "2h") or an "until": a time of day "09:00", or '
                'a moment the profile carries {"event_property": "slot_at", "offset": "-1h"}'
            )
        try:
            if "duration" in raw:
                parse_duration(raw["duration"])
            if isinstance(raw.get("until"), dict):
                _check_moment(raw["until"])
            elif "until" in raw:
                parse_time_of_day(raw["until"])
        except ValueError as exc:
            problems[f"{where}.{'duration' if 'duration' in raw else 'until'}"] = str(exc)
    if kind in ("wait_for_reply", "payment_request"):
        try:
            parse_duration(raw.get("timeout"))
        except ValueError as exc:
            problems[f"{where}.timeout"] = f"required: how long to wait; {exc}"
    if kind == "payment_request":
        pattern = raw.get("link_pattern")
        if not isinstance(pattern, str) or "{order_id}" not in pattern:
            problems[f"{where}.link_pattern"] = (
                "the payment link with the order id in it, e.g. "
                "'https://pay.example.com/o/{order_id}'"
            )
        if not isinstance(raw.get("order_id", {"event_property": "order_id"}), dict):
            problems[f"{where}.order_id"] = (
                'where the order id comes from: {"event_property": "order_id"} or '
                '{"attribute": "last_order"}'
            )
    if kind == "branch":
        on = raw.get("on")
        if on == "attribute" and not isinstance(raw.get("attribute"), str):
            problems[f"{where}.attribute"] = "name the profile attribute to test"
        if on in ("attribute",) and raw.get("op", "eq") not in OPERATORS:
            problems[f"{where}.op"] = f"one of {', '.join(OPERATORS)}"
        if on == "event" and not isinstance(raw.get("event"), str):
            problems[f"{where}.event"] = "name the event to look for since entry"
        if on == "segment" and not isinstance(raw.get("segment_id"), int):
            problems[f"{where}.segment_id"] = "the id of a saved segment"
    if kind == "set_attribute" and (
        not isinstance(raw.get("attributes"), dict) or not raw["attributes"]
    ):
        problems[f"{where}.attributes"] = (
            'the attributes to set, e.g. {"csat": {"reply": "button_payload", "as": "number"}}'
        )
    if kind == "record_event" and not isinstance(raw.get("event"), str):
        problems[f"{where}.event"] = "name the event to record"
    if kind == "webhook":
        url = raw.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems[f"{where}.url"] = "an http(s) URL to POST the profile and context to"


def _check_trigger(trigger: Any, problems: dict[str, str]) -> None:
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGERS:
        problems["trigger.type"] = f"one of {', '.join(TRIGGERS)}"
        return
    kind = trigger["type"]
    if kind == "event" and not isinstance(trigger.get("event"), str):
        problems["trigger.event"] = "name the event that starts the journey"
    if kind == "segment" and not isinstance(trigger.get("segment_id"), int):
        problems["trigger.segment_id"] = "the id of a saved segment"
    if kind == "message_status" and trigger.get("status") not in STATUS_EVENTS:
        problems["trigger.status"] = f"one of {', '.join(STATUS_EVENTS)}"
    if kind == "inbound":
        keywords = trigger.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            problems["trigger.keywords"] = "a list of words (empty: any inbound message)"
    where = trigger.get("where", [])
    if not isinstance(where, list) or not all(
        isinstance(c, dict) and isinstance(c.get("property"), str) for c in where
    ):
        problems["trigger.where"] = 'a list of {"property": .., "op": .., "value": ..}'
    else:
        for index, condition in enumerate(where):
            if condition.get("op", "eq") not in OPERATORS:
                problems[f"trigger.where.{index}.op"] = f"one of {', '.join(OPERATORS)}"


def _check_rules(rules: Any, problems: dict[str, str]) -> None:
    if not isinstance(rules, dict):
        problems["rules"] = "an object"
        return
    entry = rules.get("entry", "once")
    if entry not in ENTRY_RULES:
        problems["rules.entry"] = f"one of {', '.join(ENTRY_RULES)}"
    if entry == "once_per_days":
        days = rules.get("entry_days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            problems["rules.entry_days"] = "how many days before a profile may enter again"
    goal = rules.get("goal")
    if goal is not None and (not isinstance(goal, dict) or not isinstance(goal.get("event"), str)):
        problems["rules.goal"] = 'the goal event: {"event": "purchase"}'


def _normalize_exits(node_id: str, raw: Mapping[str, Any], problems: dict[str, str]) -> dict:
    exits: dict[str, Any] = {}
    if "next" in raw:
        exits["next"] = raw["next"]
    given = raw.get("exits", {})
    if not isinstance(given, dict):
        problems[f"nodes.{node_id}.exits"] = "an object of exit name -> node id"
        return exits
    exits.update(given)
    return exits


def parse_graph(definition: Any) -> Graph:
    """A valid graph, or GraphError naming each bad node.

    Valid: every exit a node has goes to an existing node; every node is reachable from the
    start (the graph is connected); a cycle passes through a waiting node (else a profile
    would loop without end in one instant).
    """
    problems: dict[str, str] = {}
    if not isinstance(definition, dict):
        raise GraphError({"definition": "an object with trigger, start and nodes"})
    _check_trigger(definition.get("trigger"), problems)
    _check_rules(definition.get("rules", {}), problems)
    raw_nodes = definition.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        problems["nodes"] = "an object of node id -> node, with at least one node"
        raise GraphError(problems)
    if len(raw_nodes) > MAX_NODES:
        problems["nodes"] = f"at most {MAX_NODES} nodes"
    nodes: dict[str, Node] = {}
    for node_id, raw in raw_nodes.items():
        where = f"nodes.{node_id}"
        if not _NODE_ID.match(str(node_id)):
            problems[where] = "node ids are letters, digits, - and _ (at most 100)"
            continue
        if not isinstance(raw, dict) or raw.get("type") not in NODE_TYPES:
            problems[f"{where}.type"] = f"one of {', '.join(NODE_TYPES)}"
            continue
        exits = _normalize_exits(node_id, raw, problems)
        wanted = _exits_for(node_id, raw, problems)
        _check_config(node_id, raw, problems)
        # A send may also name where a profile goes when its message cannot be sent
        # (missing variable, frequency cap...); without it the profile goes on via "next".
        optional = ["not_sent"] if raw["type"] in ("send_template", "send_session") else []
        for name in exits:
            if name not in wanted and name not in optional:
                allowed = ", ".join(wanted + optional) or "none (an exit node ends the journey)"
                problems[f"{where}.exits.{name}"] = (
                    f"{raw['type']} has no exit {name!r}; its exits: {allowed}"
                )
        for name in wanted:
            if name not in exits:
                problems[f"{where}.exits.{name}"] = (
                    f"exit {name!r} goes nowhere; point it at a node "
                    "(an 'exit' node ends the journey)"
                )
        config = {k: v for k, v in raw.items() if k not in ("exits", "next")}
        nodes[str(node_id)] = Node(
            str(node_id), raw["type"], {k: str(v) for k, v in exits.items()}, config
        )
    for node in nodes.values():
        for name, target in node.exits.items():
            if target not in raw_nodes:
                problems[f"nodes.{node.id}.exits.{name}"] = (
                    f"goes to {target!r}, which is not a node"
                )
    start = definition.get("start")
    if not isinstance(start, str) or start not in raw_nodes:
        problems["start"] = "the id of the first node"
    if problems:
        raise GraphError(problems)
    assert isinstance(start, str)
    _check_reachable(start, nodes, problems)
    _check_cycles(nodes, problems)
    if problems:
        raise GraphError(problems)
    return Graph(
        trigger=definition["trigger"],
        rules=definition.get("rules", {}) or {},
        start=start,
        nodes=nodes,
        raw=definition,
    )


def _check_reachable(start: str, nodes: dict[str, Node], problems: dict[str, str]) -> None:
    seen = {start}
    todo = [start]
    while todo:
        for target in nodes[todo.pop()].exits.values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for node_id in nodes:
        if node_id not in seen:
            problems[f"nodes.{node_id}"] = (
                f"cannot be reached from the start node {start!r}; connect it or remove it"
            )


def _check_cycles(nodes: dict[str, Node], problems: dict[str, str]) -> None:
    """A cycle among non-waiting nodes: a profile would spin forever in one instant."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(nodes, white)

    def visit(node_id: str, path: list[str]) -> None:
        color[node_id] = grey
        path.append(node_id)
        for target in nodes[node_id].exits.values():
            if nodes[target].waits:
                continue
            if color[target] == grey:
                cycle = path[path.index(target) :]
                problems[f"nodes.{target}"] = (
                    "is on a cycle without a wait (" + " -> ".join([*cycle, target]) + "); "
                    "put a wait or wait_for_reply on it"
                )
            elif color[target] == white:
                visit(target, path)
        path.pop()
        color[node_id] = black

    for node_id, node in nodes.items():
        if color[node_id] == white and not node.waits:
            visit(node_id, [])
