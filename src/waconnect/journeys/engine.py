"""Walking one profile's run through a journey graph.

The engine decides; a ``World`` answers questions (the profile, its subscription, the 24-hour
window, events since entry, segment membership, a message's status) and takes the effects
(messages to queue, attributes to set, events to record, steps of the path). The scheduler's
world reads and writes the database in one transaction per batch; the simulation's world
reads the database and records effects without sending.

A run moves from node to node in one go until it reaches a node where time must pass (a wait,
a wait for a reply or a payment, a webhook call, a send held back by DND hours) or the end.
Each node visit has a number; the step that leaves it is keyed by (run, visit) and is written
in the same transaction as that node's message, so a visit sends at most once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from waconnect.journeys.graph import (
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    REPLIED,
    Graph,
    Node,
    parse_duration,
    parse_offset,
    parse_time_of_day,
)
from waconnect.journeys.values import MissingValue, compare, fill_message, resolve

MAX_MOVES = 100  # nodes one run may pass in one go (the graph has no cycle without a wait)
RETRY = "__retry__"
PAYMENT_LINK = "__payment_link"


@dataclass
class Signal:
    """An event that reached a run: a reply, a payment, the goal, anything it listens to."""

    name: str
    properties: dict[str, Any]
    ts: datetime
    message_id: int | None = None


@dataclass
class WebhookResult:
    ok: bool
    status: int | None
    error: str | None = None


@dataclass
class RunState:
    id: int | None
    workspace_id: int
    journey_id: int
    version_id: int
    profile_id: int
    state: str
    node: str
    visit: int
    context: dict[str, Any]
    entered_at: datetime
    exit_reason: str | None = None
    goal_reached: bool = False
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "exited")

    @property
    def timer_at(self) -> datetime | None:
        raw = self.context.get("timer_at")
        return datetime.fromisoformat(raw) if raw else None


@dataclass
class ProfileView:
    id: int
    identity: str | None
    phone: str | None
    attributes: dict[str, Any]
    timezone: str | None


@dataclass
class TemplateRef:
    provider_id: int
    template_id: int
    definition: dict[str, Any]
    version_key: str


@dataclass
class Step:
    run: RunState
    visit: int
    node: str
    exit: str | None
    entered_at: datetime
    exited_at: datetime
    send_ref: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    message_id: int | None = None


class World(Protocol):
    now: datetime
    workspace_timezone: str

    async def profile(self, profile_id: int) -> ProfileView | None: ...
    async def subscribed(self, workspace_id: int, phone: str) -> bool: ...
    async def window_open(self, workspace_id: int, provider_id: int | None, phone: str) -> bool: ...
    async def provider(self, workspace_id: int, provider_id: int | None) -> int | str: ...
    async def template(
        self, workspace_id: int, provider_id: int | None, name: str, language: str
    ) -> TemplateRef | str: ...
    async def hold_until(self, workspace_id: int, profile: ProfileView) -> datetime | None: ...
    async def capped(self, workspace_id: int, phone: str) -> bool: ...
    async def event_since(
        self, profile_id: int, name: str, since: datetime, where: list[dict[str, Any]]
    ) -> bool: ...
    async def in_segment(self, workspace_id: int, profile_id: int, segment_id: int) -> bool: ...
    async def message_status(self, message_id: int) -> str | None: ...
    def send(
        self,
        run: RunState,
        provider_id: int,
        phone: str,
        kind: str,
        content: dict[str, Any],
        template_id: int | None,
    ) -> int: ...
    def set_attributes(
        self, run: RunState, profile: ProfileView, values: dict[str, Any]
    ) -> None: ...
    def record_event(self, run: RunState, name: str, properties: dict[str, Any]) -> None: ...
    def step(self, step: Step) -> None: ...


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _arrived(run: RunState, now: datetime) -> datetime:
    raw = run.context.get("arrived_at")
    return datetime.fromisoformat(raw) if raw else now


def new_run(
    workspace_id: int,
    journey_id: int,
    version_id: int,
    profile_id: int,
    graph: Graph,
    entry: dict[str, Any],
    now: datetime,
) -> RunState:
    return RunState(
        id=None,
        workspace_id=workspace_id,
        journey_id=journey_id,
        version_id=version_id,
        profile_id=profile_id,
        state="active",
        node=graph.start,
        visit=0,
        context={"entry": entry, "arrived_at": _iso(now)},
        entered_at=now,
    )


class Engine:
    def __init__(self, world: World) -> None:
        self.world = world

    @property
    def now(self) -> datetime:
        return self.world.now

    # --- moving ---------------------------------------------------------------------------------

    async def advance(
        self,
        run: RunState,
        graph: Graph,
        signal: Signal | None = None,
        webhook: WebhookResult | None = None,
    ) -> None:
        """Apply ``signal`` (or the passing of time) to the run, then move it as far as it goes."""
        if run.finished:
            return
        if (
            signal is not None
            and run.state == "waiting"
            and run.timer_at is not None
            and run.timer_at <= signal.ts
        ):
            # The timer ran out before this news arrived: the timeout is taken first, and the
            # news then meets the run where the timeout led it.
            await self.advance(run, graph)
            if run.finished:
                return
        if signal is not None and graph.goal_event and signal.name == graph.goal_event:
            self._finish(run, "goal", goal=True, exit_name="goal")
            return
        node = graph.nodes.get(run.node)
        if node is None:  # cannot happen with a validated version; never loop on it
            self._finish(run, "invalid_node")
            return
        if run.state == "waiting":
            exit_name = await self._resolve_wait(run, node, signal, webhook)
            if exit_name is None:
                return
            if exit_name == RETRY:
                run.state = "active"
            elif node.type == "payment_request":
                # The visit's send was made on arrival; its step is written now, with its exit.
                detail = dict(run.context.pop("payment_detail", None) or {})
                message_id = run.context.pop("payment_message_id", None)
                run.context.pop("payment_send", None)
                self._take(run, graph, node, exit_name, None, detail, message_id)
            else:
                self._take(run, graph, node, exit_name)
        elif signal is not None:
            return  # news for a run that is not waiting for anything: nothing to do
        for _ in range(MAX_MOVES):
            if run.finished or run.state == "waiting":
                return
            node = graph.nodes[run.node]
            outcome = await self._arrive(run, graph, node)
            if outcome is None:
                return
            exit_name, send_ref, detail = outcome
            self._take(run, graph, node, exit_name, send_ref, detail)
        self._finish(run, "too_many_moves")

    def _take(
        self,
        run: RunState,
        graph: Graph,
        node: Node,
        exit_name: str,
        send_ref: int | None = None,
        detail: dict[str, Any] | None = None,
        message_id: int | None = None,
    ) -> None:
        now = self.now
        self.world.step(
            Step(
                run,
                run.visit,
                node.id,
                exit_name,
                _arrived(run, now),
                now,
                send_ref,
                detail or {},
                message_id,
            )
        )
        run.visit += 1
        run.node = node.exits[exit_name]
        run.state = "active"
        run.context["arrived_at"] = _iso(now)
        run.context.pop("timer_at", None)

    def _wait(self, run: RunState, until: datetime | None, **extra: Any) -> None:
        run.state = "waiting"
        if until is None:
            run.context.pop("timer_at", None)
        else:
            run.context["timer_at"] = _iso(until)
        run.context.update(extra)

    def _finish(
        self, run: RunState, reason: str, goal: bool = False, exit_name: str | None = None
    ) -> None:
        now = self.now
        self.world.step(
            Step(
                run, run.visit, run.node, exit_name, _arrived(run, now), now, detail={"end": reason}
            )
        )
        run.visit += 1
        run.state = "completed" if reason in ("completed", "goal") else "exited"
        run.exit_reason = reason
        run.goal_reached = goal
        run.finished_at = now
        run.context.pop("timer_at", None)

    # --- waiting ---------------------------------------------------------------------------------

    async def _resolve_wait(
        self, run: RunState, node: Node, signal: Signal | None, webhook: WebhookResult | None
    ) -> str | None:
        due = run.timer_at
        timed_out = due is not None and self.now >= due
        if node.type == "wait":
            return "next" if timed_out else None
        if node.type in ("send_template", "send_session", "payment_request") and run.context.get(
            "held"
        ):
            if timed_out:
                run.context.pop("held", None)
                return RETRY
            return None
        if node.type == "wait_for_reply":
            if signal is not None and signal.name == REPLIED:
                exit_name = match_reply(node, signal.properties)
                if exit_name is not None:
                    run.context["reply"] = _reply_view(signal.properties)
                    return exit_name
                return None
            return "timeout" if timed_out else None
        if node.type == "payment_request":
            order = run.context.get("order_id")
            if (
                signal is not None
                and signal.name in (PAYMENT_COMPLETED, PAYMENT_FAILED)
                and str(signal.properties.get("order_id")) == str(order)
            ):
                run.context["payment"] = dict(signal.properties)
                return "completed" if signal.name == PAYMENT_COMPLETED else "failed"
            return "timeout" if timed_out else None
        if node.type == "webhook":
            if webhook is None:
                return None
            run.context["webhook"] = {"status": webhook.status, "error": webhook.error}
            return "success" if webhook.ok else "error"
        return None

    # --- arriving at a node ---------------------------------------------------------------

    async def _arrive(
        self, run: RunState, graph: Graph, node: Node
    ) -> tuple[str, int | None, dict[str, Any]] | None:
        """The exit taken now, with the send and detail of the visit; None when the run waits
        or ended here."""
        kind = node.type
        if kind == "exit":
            self._finish(run, "completed")
            return None
        if kind == "wait":
            profile = await self.world.profile(run.profile_id)
            until = self._wait_until(node, profile, run)
            if until is None:
                return "next", None, {"skipped": "no_moment"}
            self._wait(run, until)
            return None
        if kind in ("send_template", "send_session", "payment_request"):
            return await self._send_node(run, node)
        if kind == "wait_for_reply":
            timeout = parse_duration(node.config["timeout"])
            self._wait(run, self.now + timedelta(seconds=timeout))
            return None
        if kind == "webhook":
            self._wait(run, self.now)
            return None
        if kind == "branch":
            return await self._branch(run, node), None, {}
        if kind == "set_attribute":
            return await self._set_attributes(run, node)
        if kind == "record_event":
            return await self._record_event(run, node)
        self._finish(run, "invalid_node")
        return None

    def _wait_until(
        self, node: Node, profile: ProfileView | None, run: RunState
    ) -> datetime | None:
        if "duration" in node.config:
            return self.now + timedelta(seconds=parse_duration(node.config["duration"]))
        if isinstance(node.config["until"], dict):
            return self._moment(node.config["until"], profile, run)
        hour, minute = parse_time_of_day(node.config["until"])
        zone = _zone((profile.timezone if profile else None) or self.world.workspace_timezone)
        local = self.now.astimezone(zone)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target = target + timedelta(days=1)
            # Rebuild in the zone: a DST change between today and tomorrow moves the offset.
            target = target.replace(tzinfo=None).replace(tzinfo=zone)
        return target.astimezone(self.now.tzinfo)

    def _moment(
        self, spec: dict[str, Any], profile: ProfileView | None, run: RunState
    ) -> datetime | None:
        """The moment named by an event property or attribute (ISO 8601 or epoch seconds),
        shifted by ``offset``; None when the profile carries none."""
        if "event_property" in spec:
            raw = (run.context.get("entry") or {}).get(spec["event_property"])
        else:
            raw = (profile.attributes if profile else {}).get(spec["attribute"])
        moment = as_moment(raw)
        if moment is None:
            return None
        return moment + timedelta(seconds=parse_offset(spec.get("offset", 0) or 0))

    async def _send_node(
        self, run: RunState, node: Node
    ) -> tuple[str, int | None, dict[str, Any]] | None:
        world = self.world
        profile = await world.profile(run.profile_id)
        if profile is None:
            self._finish(run, "profile_erased")
            return None
        if not profile.phone:
            return self._not_sent(node, "no_phone")
        if not await world.subscribed(run.workspace_id, profile.phone):
            self._finish(run, "unsubscribed")
            return None
        provider_id = node.config.get("provider_id")
        if node.type == "send_session" and not await world.window_open(
            run.workspace_id, provider_id, profile.phone
        ):
            return "window_closed", None, {"skipped": "window_closed"}
        held = await world.hold_until(run.workspace_id, profile)
        if held is not None:
            self._wait(run, held, held=True)
            return None
        if await world.capped(run.workspace_id, profile.phone):
            return self._not_sent(node, "frequency_capped")
        entry = run.context.get("entry") or {}
        detail: dict[str, Any] = {}
        if node.type == "send_session":
            try:
                content = fill_message(
                    node.config["message"], profile.attributes, entry, run.context.get("reply")
                )
            except MissingValue as exc:
                return self._not_sent(node, f"missing_variable:{exc}")
            template_id = None
            found = await world.provider(run.workspace_id, provider_id)
            if isinstance(found, str):
                return self._not_sent(node, found)
            target_provider = found
            kind = "session"
        else:
            spec = node.config["template"]
            ref = await world.template(
                run.workspace_id, provider_id, spec["name"], spec.get("language", "en")
            )
            if isinstance(ref, str):
                return self._not_sent(node, ref)
            mapping = dict(node.config.get("variables") or {})
            if node.type == "payment_request":
                try:
                    order_id = resolve(
                        node.config.get("order_id", {"event_property": "order_id"}),
                        profile.attributes,
                        entry,
                        run.context.get("reply"),
                    )
                except MissingValue:
                    return "failed", None, {"skipped": "no_order_id"}
                link = str(node.config["link_pattern"]).replace("{order_id}", str(order_id))
                button = int(node.config.get("link_button", _url_button(ref.definition)))
                # The link rides as an event property: the mapping stays one per node, compiled
                # once, whatever the order.
                mapping[f"buttons.{button}.1"] = {"event_property": PAYMENT_LINK}
                entry = {**entry, PAYMENT_LINK: link}
                run.context["order_id"] = str(order_id)
                detail.update(order_id=str(order_id), link=link)
            from waconnect.journeys.personalize import MappingProblem, fill, personalizer

            # A published version's node never changes: its compiled mapping is found by name
            # (a draft being simulated, version 0, may change: found by its content).
            cache_key = (run.journey_id, run.version_id, node.id) if run.version_id else None
            try:
                compiled = personalizer(ref.definition, ref.version_key, mapping, cache_key)
                components = fill(compiled, profile.attributes, entry)
            except MissingValue as exc:
                reason = str(exc)
                if not reason.startswith("missing_variable"):
                    reason = f"missing_variable:{reason}"
                return self._not_sent(node, reason)
            except MappingProblem as exc:
                return self._not_sent(node, f"bad_variables:{exc}")
            content = {"components": components}
            template_id = ref.template_id
            target_provider = ref.provider_id
            kind = "template"
        send_ref = world.send(run, target_provider, profile.phone, kind, content, template_id)
        run.context["last_send"] = send_ref
        if node.type == "payment_request":
            # The send happens; the run then waits for the order's payment events here.
            timeout = parse_duration(node.config["timeout"])
            self._wait(run, self.now + timedelta(seconds=timeout))
            run.context["payment_send"] = send_ref
            run.context["payment_detail"] = detail
            return None
        return "next", send_ref, detail

    def _not_sent(self, node: Node, reason: str) -> tuple[str, None, dict[str, Any]]:
        if node.type == "payment_request":
            return "failed", None, {"skipped": reason}
        return ("not_sent" if "not_sent" in node.exits else "next"), None, {"skipped": reason}

    async def _branch(self, run: RunState, node: Node) -> str:
        config = node.config
        on = config["on"]
        if on == "ab_split":
            return ab_exit(run, node)
        if on == "message_status":
            message_id = run.context.get("last_message_id")
            status = await self.world.message_status(message_id) if message_id else None
            return status_exit(node, status)
        if on == "attribute":
            profile = await self.world.profile(run.profile_id)
            actual = (profile.attributes if profile else {}).get(config["attribute"])
            return "yes" if compare(actual, config.get("op", "eq"), config.get("value")) else "no"
        if on == "event":
            since = run.entered_at
            done = await self.world.event_since(
                run.profile_id, config["event"], since, list(config.get("where") or [])
            )
            return "yes" if done else "no"
        if on == "segment":
            inside = await self.world.in_segment(
                run.workspace_id, run.profile_id, int(config["segment_id"])
            )
            return "yes" if inside else "no"
        return "no"

    async def _set_attributes(
        self, run: RunState, node: Node
    ) -> tuple[str, int | None, dict[str, Any]] | None:
        profile = await self.world.profile(run.profile_id)
        if profile is None:
            self._finish(run, "profile_erased")
            return None
        values: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for name, spec in node.config["attributes"].items():
            try:
                values[name] = resolve(
                    spec,
                    profile.attributes,
                    run.context.get("entry") or {},
                    run.context.get("reply"),
                )
            except MissingValue as exc:
                skipped[name] = str(exc)
        if values:
            self.world.set_attributes(run, profile, values)
            profile.attributes.update(values)
        detail: dict[str, Any] = {"set": values}
        if skipped:
            detail["skipped"] = skipped
        return "next", None, detail

    async def _record_event(
        self, run: RunState, node: Node
    ) -> tuple[str, int | None, dict[str, Any]] | None:
        profile = await self.world.profile(run.profile_id)
        if profile is None:
            self._finish(run, "profile_erased")
            return None
        properties: dict[str, Any] = {}
        for name, spec in (node.config.get("properties") or {}).items():
            try:
                properties[name] = resolve(
                    spec,
                    profile.attributes,
                    run.context.get("entry") or {},
                    run.context.get("reply"),
                )
            except MissingValue:
                continue
        properties.setdefault("journey_id", run.journey_id)
        self.world.record_event(run, node.config["event"], properties)
        return "next", None, {"event": node.config["event"], "properties": properties}


def as_moment(raw: Any) -> datetime | None:
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        if isinstance(raw, int | float):
            return datetime.fromtimestamp(float(raw), UTC)
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _url_button(definition: dict[str, Any]) -> int:
    """The first URL button with a variable: where the payment link goes."""
    for component in definition.get("components") or []:
        if str(component.get("type", "")).upper() == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if str(button.get("type", "")).upper() == "URL" and "{{" in str(
                    button.get("url", "")
                ):
                    return index
    return 0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _reply_view(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        key: properties.get(key)
        for key in ("text", "button_payload", "button_text", "type", "message_id")
        if properties.get(key) is not None
    }


def _words(text: str) -> set[str]:
    return {word.strip(".,!?;:'\"()").lower() for word in text.split()}


def match_reply(node: Node, properties: dict[str, Any]) -> str | None:
    """The exit of a reply: by quick-reply payload, button / message text, or keyword."""
    payload = properties.get("button_payload")
    shown = properties.get("button_text") or properties.get("text") or ""
    shown_norm = str(shown).strip().lower()
    for reply in node.config.get("replies") or []:
        if "payload" in reply and payload is not None and str(payload) == str(reply["payload"]):
            return str(reply["exit"])
        if "text" in reply and shown_norm == str(reply["text"]).strip().lower():
            return str(reply["exit"])
        keywords = reply.get("keywords")
        if isinstance(keywords, list) and _words(str(shown)) & {
            str(k).strip().lower() for k in keywords
        }:
            return str(reply["exit"])
    if "reply" in node.exits:
        return "reply"
    return None


def ab_exit(run: RunState, node: Node) -> str:
    """A stable split: the same run always takes the same exit."""
    split = node.config["split"]
    digest = hashlib.sha256(f"{run.journey_id}:{run.profile_id}:{node.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * 100
    total = 0.0
    for name, share in split.items():
        total += float(share)
        if point < total:
            return str(name)
    return str(list(split)[-1])


def status_exit(node: Node, status: str | None) -> str:
    exits = node.exits
    if status == "read":
        for name in ("read", "delivered"):
            if name in exits:
                return name
    if status in ("delivered", "failed") and status in exits:
        return status
    return "else"
