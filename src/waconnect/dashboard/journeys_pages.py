"""Journeys: the list with its numbers, the graph with each node's counts, the definition
editor (JSON or YAML, problems shown at their node), simulation, publish / pause / stop."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard.auth import Dashboard, DashboardDep, FormDep
from waconnect.dashboard.forms import Errors, errors_of
from waconnect.dashboard.render import page
from waconnect.journeys import service
from waconnect.journeys.graph import GraphError, parse_graph
from waconnect.journeys.scheduler import wake_scheduler
from waconnect.journeys.schemas import JourneyIn, SimulateIn
from waconnect.journeys.simulate import run_simulation
from waconnect.web.deps import RuntimeDep, SessionDep
from waconnect.web.errors import ApiError, not_found

router = APIRouter(prefix="/journeys", include_in_schema=False)

ACTIONS = {"publish": "Publish", "pause": "Pause", "resume": "Resume", "stop": "Stop"}
_DONE = {
    "created": "The journey was saved as a draft. Simulate it, then publish it.",
    "saved": "The draft was saved; publish it to make it the live version.",
    "publish": "Published: new entries take this version; profiles inside keep theirs.",
    "pause": "Paused: no one enters, and profiles inside hold where they are.",
    "resume": "Resumed.",
    "stop": "Stopped: every profile inside has left and unsent messages were cancelled.",
}
EXAMPLE = """name: Welcome
trigger: {type: api}
rules: {entry: once}
start: hello
nodes:
  hello:
    type: send_template
    template: {name: order_update, language: en}
    variables:
      body.1: {attribute: first_name, default: there}
      body.2: {literal: W-1}
    next: done
  done: {type: exit}
"""


# --- drawing ----------------------------------------------------------------------------------


@dataclass
class DrawnNode:
    id: str
    type: str
    summary: str
    exits: list[tuple[str, str]]
    problems: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)


def _exits(raw: dict[str, Any]) -> list[tuple[str, str]]:
    exits = raw.get("exits")
    if isinstance(exits, dict):
        return [(str(name), str(target)) for name, target in exits.items()]
    return [("next", str(raw["next"]))] if isinstance(raw.get("next"), str) else []


def _summary(raw: dict[str, Any]) -> str:
    kind = raw.get("type")
    template = raw.get("template")
    if isinstance(template, dict):
        return f"template {template.get('name')} ({template.get('language', 'en')})"
    if kind == "wait":
        return f"wait {raw.get('duration') or 'until ' + str(raw.get('until'))}"
    if kind == "wait_for_reply":
        return f"wait up to {raw.get('timeout')} for a reply"
    if kind == "branch":
        return f"branch on {raw.get('on')} {raw.get('event') or raw.get('attribute') or ''}".strip()
    if kind == "record_event":
        return f"record {raw.get('event')}"
    if kind == "webhook":
        return f"POST {raw.get('url')}"
    return str(kind or "")


def layers(definition: dict[str, Any], problems: Errors, counts: dict[str, Any]) -> list[list[Any]]:
    """The nodes in rows by their distance from the start (unreachable ones last)."""
    found = definition.get("nodes")
    nodes: dict[str, Any] = found if isinstance(found, dict) else {}
    drawn = {
        node_id: DrawnNode(
            id=node_id,
            type=str(raw.get("type", "?")) if isinstance(raw, dict) else "?",
            summary=_summary(raw) if isinstance(raw, dict) else "",
            exits=_exits(raw) if isinstance(raw, dict) else [],
            problems=[
                f"{path.removeprefix(f'nodes.{node_id}').lstrip('.') or 'node'}: {why}"
                for path, why in problems.items()
                if path == f"nodes.{node_id}" or path.startswith(f"nodes.{node_id}.")
            ],
            counts=counts.get(node_id, {}),
        )
        for node_id, raw in nodes.items()
    }
    depth: dict[str, int] = {}
    start = str(definition.get("start"))
    queue = deque([start] if start in drawn else [])
    if start in drawn:
        depth[start] = 0
    while queue:
        current = queue.popleft()
        for _name, target in drawn[current].exits:
            if target in drawn and target not in depth:
                depth[target] = depth[current] + 1
                queue.append(target)
    rows: list[list[Any]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node_id, node in drawn.items():
        if node_id in depth:
            rows[depth[node_id]].append(node)
    unreachable = [node for node_id, node in drawn.items() if node_id not in depth]
    return rows + ([unreachable] if unreachable else [])


# --- reading the editor -------------------------------------------------------------------------


def parse_text(text: str) -> tuple[dict[str, Any] | None, Errors]:
    """The definition typed as JSON or YAML (JSON is YAML too, but its errors read better)."""
    stripped = text.strip()
    try:
        parsed = orjson.loads(stripped) if stripped.startswith("{") else yaml.safe_load(stripped)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        return None, {"definition": f"cannot be read: {exc}"}
    if not isinstance(parsed, dict):
        return None, {"definition": "a journey is an object with name, trigger, start and nodes"}
    return parsed, {}


async def _checked(
    session: SessionDep, context: Dashboard, text: str
) -> tuple[JourneyIn | None, dict[str, Any] | None, Errors]:
    parsed, errors = parse_text(text)
    if parsed is None:
        return None, None, errors
    try:
        body = JourneyIn.model_validate(parsed)
    except ValidationError as exc:
        return None, parsed, errors_of(exc)
    try:
        parse_graph(body.definition())  # the checks the service makes on save, node by node
    except GraphError as exc:
        return None, parsed, dict(exc.problems)
    return body, parsed, {}


async def _editor(
    request: Request,
    text: str,
    errors: Errors,
    parsed: dict[str, Any] | None,
    journey_id: int | None = None,
    status: int = 200,
) -> Response:
    values = {
        "text": text,
        "errors": errors,
        "journey_id": journey_id,
        "rows": layers(parsed or {}, errors, {}),
        # Problems at a node are drawn on it; the others are listed above the editor.
        "general": {k: v for k, v in errors.items() if not k.startswith("nodes.")},
    }
    return page(request, "journeys/editor.html", values, status=status)


# --- pages --------------------------------------------------------------------------------------


@router.get("")
async def journeys_list(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    found = await service.list_journeys(session, context.workspace_id, None, None, 100)
    rows = []
    for item in found.items:
        journey = await service.get_journey(session, context.workspace_id, item.id)
        rows.append((item, (await service.stats(session, journey))["journey"]))
    return page(request, "journeys/list.html", {"journeys": rows})


@router.get("/new")
async def new_journey(request: Request, context: DashboardDep) -> Response:
    return await _editor(request, EXAMPLE, {}, yaml.safe_load(EXAMPLE))


async def _save(
    request: Request,
    context: Dashboard,
    session: SessionDep,
    runtime: RuntimeDep,
    journey_id: int | None,
) -> Response:
    text = str((await request.form()).get("definition") or "")
    body, parsed, errors = await _checked(session, context, text)
    if body is not None:
        now = runtime.clock.now()
        try:
            if journey_id is None:
                journey = await service.create_journey(session, now, context.workspace_id, body)
            else:
                journey = await service.update_journey(
                    session, now, context.workspace_id, journey_id, body
                )
        except ApiError as exc:
            await session.rollback()
            errors = dict(exc.fields or {"definition": exc.message})
        else:
            await session.commit()
            done = "created" if journey_id is None else "saved"
            return RedirectResponse(f"/journeys/{journey.id}?done={done}", 303)
    return await _editor(request, text, errors, parsed, journey_id, status=422)


@router.post("/new")
async def create_journey(
    request: Request, context: FormDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    return await _save(request, context, session, runtime, None)


@router.get("/{journey_id}")
async def journey_page(
    request: Request, journey_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    journey = await service.get_journey(session, context.workspace_id, journey_id)
    out = await service.journey_out(session, journey, with_stats=True)
    numbers = out.stats or {"journey": {}, "nodes": {}}
    actions = {
        "draft": ["publish"],
        "live": ["publish", "pause", "stop"],
        "paused": ["publish", "resume", "stop"],
        "stopped": [],
    }[out.status]
    values = {
        "journey": out,
        "totals": numbers["journey"],
        "rows": layers(out.definition, {}, numbers["nodes"]),
        "actions": [(name, ACTIONS[name]) for name in actions],
        "done": _DONE.get(request.query_params.get("done", "")),
    }
    return page(request, "journeys/journey.html", values)


@router.get("/{journey_id}/edit")
async def edit_journey(
    request: Request, journey_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    journey = await service.get_journey(session, context.workspace_id, journey_id)
    definition = {"name": journey.name, **journey.definition}
    text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True)
    return await _editor(request, text, {}, definition, journey_id)


@router.post("/{journey_id}/edit")
async def save_journey(
    request: Request,
    journey_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    await service.get_journey(session, context.workspace_id, journey_id)
    return await _save(request, context, session, runtime, journey_id)


@router.post("/{journey_id}/simulate")
async def simulate_journey(
    request: Request,
    journey_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """Walk one profile through the draft (or live version) with a script; writes nothing."""
    form = await request.form()
    who = str(form.get("who") or "").strip()
    problem, result = None, None
    try:
        script_text = str(form.get("script") or "").strip() or "[]"
        script = yaml.safe_load(script_text)
        entry = yaml.safe_load(str(form.get("entry") or "").strip() or "{}")
        lookup = (
            {"profile_id": int(who)}
            if who.isdigit()
            else ({"phone": who} if who.startswith("+") else {"identity": who})
        )
        body = SimulateIn.model_validate(
            {**lookup, "version": form.get("version") or "draft", "entry": entry, "script": script}
        )
        result = await run_simulation(session, runtime, context.workspace_id, journey_id, body)
    except yaml.YAMLError as exc:
        problem = f"the script or entry cannot be read: {exc}"
    except ValidationError as exc:
        problem = "; ".join(f"{k}: {v}" for k, v in errors_of(exc).items())
    except ApiError as exc:
        if exc.status == 404 and "journey" in exc.message:
            raise
        problem = exc.message
    finally:
        await session.rollback()  # a simulation writes nothing
    return page(request, "journeys/_simulation.html", {"result": result, "problem": problem})


@router.post("/{journey_id}/{action}")
async def change_status(
    journey_id: int, action: str, context: FormDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    if action not in ACTIONS:
        raise not_found(f"journey action {action!r}")
    if action == "publish":
        await service.publish(session, runtime.clock.now(), context.workspace_id, journey_id)
    else:
        await service.set_status(session, runtime, context.workspace_id, journey_id, action)
    await session.commit()
    wake_scheduler(runtime)  # paused runs go on, stopped ones leave, at once
    return RedirectResponse(f"/journeys/{journey_id}?done={action}", 303)
