"""Walking one profile through a journey with a scripted sequence of events, without sending.

The same engine as the scheduler runs on a world that reads the real database (the profile,
its subscription, templates, segments, past events) but keeps every effect in memory, on a
virtual clock that the script moves. Nothing is written, nothing is queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.journeys.engine import (
    Engine,
    ProfileView,
    RunState,
    Signal,
    Step,
    WebhookResult,
    new_run,
)
from waconnect.journeys.entries import version_graph
from waconnect.journeys.graph import REPLIED, Graph, GraphError, parse_duration, parse_graph
from waconnect.journeys.schemas import SimulateIn, SimulationOut, StepOut
from waconnect.journeys.store import DbWorld
from waconnect.runtime import Runtime
from waconnect.web.errors import conflict, invalid, not_found

MAX_TIMERS = 1000


@dataclass
class SimWorld(DbWorld):
    status: str = "delivered"
    messages: list[dict[str, Any]] = field(default_factory=list)
    attributes_set: dict[str, Any] = field(default_factory=dict)

    def send(
        self,
        run: RunState,
        provider_id: int,
        phone: str,
        kind: str,
        content: dict[str, Any],
        template_id: int | None,
    ) -> int:
        self.messages.append(
            {
                "node": run.node,
                "at": self.now.isoformat(),
                "provider_id": provider_id,
                "to": phone,
                "kind": kind,
                "template_id": template_id,
                "content": content,
            }
        )
        # The context names this "message" so a status branch can ask about it.
        run.context["last_message_id"] = -len(self.messages)
        return len(self.messages) - 1

    def set_attributes(self, run: RunState, profile: ProfileView, values: dict[str, Any]) -> None:
        self.attributes_set.update(values)

    async def message_status(self, message_id: int) -> str | None:
        return self.status


def _step_out(step: Step) -> StepOut:
    return StepOut(
        visit=step.visit,
        node=step.node,
        exit=step.exit,
        entered_at=step.entered_at,
        exited_at=step.exited_at,
        detail=step.detail,
    )


async def _pass_time(
    engine: Engine, world: SimWorld, run: RunState, graph: Graph, until: datetime
) -> None:
    """Fire the run's timers in order up to ``until``, as the scheduler would."""
    for _ in range(MAX_TIMERS):
        await _answer_webhook(engine, world, run, graph, None)
        due = run.timer_at
        if run.finished or run.state != "waiting" or due is None or due > until:
            break
        world.now = max(world.now, due)
        await engine.advance(run, graph)
    world.now = max(world.now, until)


async def _answer_webhook(
    engine: Engine, world: SimWorld, run: RunState, graph: Graph, ok: bool | None
) -> None:
    node = graph.nodes.get(run.node)
    if run.state == "waiting" and node is not None and node.type == "webhook":
        success = True if ok is None else ok
        await engine.advance(run, graph, None, WebhookResult(success, 200 if success else 500))


async def simulate(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: int,
    journey_id: int,
    version_id: int,
    graph: Graph,
    profile_id: int,
    entry: dict[str, Any],
    script: list[dict[str, Any]],
) -> SimulationOut:
    world = SimWorld(session, runtime, runtime.clock.now())
    await world.use_workspace(workspace_id)
    engine = Engine(world)
    run = new_run(workspace_id, journey_id, version_id, profile_id, graph, entry, world.now)
    run.id = 0
    await engine.advance(run, graph)
    for index, item in enumerate(script):
        if run.finished:
            break
        await _apply_item(engine, world, run, graph, index, item)
    await _answer_webhook(engine, world, run, graph, None)
    return SimulationOut(
        path=[_step_out(step) for step in world.steps],
        state=run.state,
        node=run.node,
        exit_reason=run.exit_reason,
        waiting_until=run.timer_at if run.state == "waiting" else None,
        messages=world.messages,
        attributes_set=world.attributes_set,
        events_recorded=[
            {"name": e["name"], "properties": e["properties"]}
            for e in world.events
            if not e.get("scripted")
        ],
    )


async def _apply_item(
    engine: Engine,
    world: SimWorld,
    run: RunState,
    graph: Graph,
    index: int,
    item: dict[str, Any],
) -> None:
    where = f"script.{index}"
    if not isinstance(item, dict) or not item:
        raise invalid({where: 'an object such as {"after": "2h"} or {"event": "purchase"}'})
    if "after" in item:
        try:
            seconds = parse_duration(item["after"])
        except ValueError as exc:
            raise invalid({f"{where}.after": str(exc)}) from None
        await _pass_time(engine, world, run, graph, world.now + timedelta(seconds=seconds))
    if "status" in item:
        if item["status"] not in ("sent", "delivered", "read", "failed"):
            raise invalid({f"{where}.status": "one of sent, delivered, read, failed"})
        world.status = str(item["status"])
    if "webhook" in item:
        if item["webhook"] not in ("success", "error"):
            raise invalid({f"{where}.webhook": "success or error"})
        await _answer_webhook(engine, world, run, graph, item["webhook"] == "success")
    if "event" in item:
        properties = item.get("properties") or {}
        if not isinstance(item["event"], str) or not isinstance(properties, dict):
            raise invalid({f"{where}.event": "an event name, with properties as an object"})
        world.events.append(
            {
                "workspace_id": run.workspace_id,
                "profile_id": run.profile_id,
                "name": item["event"],
                "ts": world.now,
                "properties": properties,
                "scripted": True,
            }
        )
        await engine.advance(run, graph, Signal(item["event"], dict(properties), world.now))
    if "reply" in item:
        reply = item["reply"]
        if not isinstance(reply, dict):
            raise invalid(
                {f"{where}.reply": 'an object: {"text": ..} or {"payload": .., "text": ..}'}
            )
        properties = {
            "type": "button" if "payload" in reply else "text",
            "text": reply.get("text"),
            "button_payload": reply.get("payload"),
            "button_text": reply.get("text") if "payload" in reply else None,
        }
        properties = {k: v for k, v in properties.items() if v is not None}
        await engine.advance(run, graph, Signal(REPLIED, properties, world.now))


async def run_simulation(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: int,
    journey_id: int,
    body: SimulateIn,
) -> SimulationOut:
    """Simulate ``body`` on the journey's live version or its draft definition. Writes nothing
    that is kept: the caller rolls the session back."""
    from waconnect.journeys import service  # service builds on this module's neighbours

    journey = await service.get_journey(session, workspace_id, journey_id)
    if body.version == "live":
        if journey.live_version_id is None:
            raise conflict(f"journey {journey_id} has no live version yet; publish it first")
        graph = await version_graph(session, journey.live_version_id)
        version_id = journey.live_version_id
    else:
        try:
            graph = parse_graph(journey.definition)
        except GraphError as exc:
            raise invalid(exc.problems) from None
        version_id = 0
    profile_id = await service.resolve_profile(
        session, workspace_id, body.profile_id, body.identity, body.phone
    )
    if profile_id is None:
        raise not_found("that profile")
    return await simulate(
        session,
        runtime,
        workspace_id,
        journey.id,
        version_id,
        graph,
        profile_id,
        body.entry,
        body.script,
    )
