"""Profiles entering a journey: trigger matching, entry rules, the run rows, the first moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.journeys.engine import Engine, RunState, new_run
from waconnect.journeys.graph import REPLIED, STATUS_EVENTS, Graph, parse_graph
from waconnect.journeys.models import ACTIVE_STATES, ACTIVE_WHERE, JourneyRun, JourneyVersion
from waconnect.journeys.store import DbWorld
from waconnect.journeys.values import conditions_hold
from waconnect.profiles.service import dialect_insert

RUNS = cast(Table, JourneyRun.__table__)
API_ENTRY = "$api"
PROFILE_CHANGED = "$profile_changed"

# Published versions never change: each is parsed once per process and database.
_graphs: dict[tuple[str, int], Graph] = {}


async def version_graph(session: AsyncSession, version_id: int) -> Graph:
    """A published version's graph."""
    key = (str(session.get_bind().engine.url), version_id)
    graph = _graphs.get(key)
    if graph is None:
        version = await session.get(JourneyVersion, version_id)
        assert version is not None, f"journey version {version_id} is gone"
        graph = parse_graph(version.definition)
        if len(_graphs) > 10_000:
            _graphs.clear()
        _graphs[key] = graph
    return graph


def trigger_matches(trigger: dict[str, Any], name: str, properties: dict[str, Any]) -> bool:
    """Does an event with ``name`` and ``properties`` start this trigger?"""
    kind = trigger.get("type")
    where = list(trigger.get("where") or [])
    if kind == "event":
        return name == trigger.get("event") and conditions_hold(where, properties)
    if kind == "api":
        return name == API_ENTRY
    if kind == "inbound":
        if name != REPLIED:
            return False
        keywords = [str(k).strip().lower() for k in trigger.get("keywords") or []]
        if keywords:
            text = str(properties.get("text") or properties.get("button_text") or "").lower()
            words = {w.strip(".,!?;:'\"()") for w in text.split()}
            if not (words & set(keywords) or text.strip() in keywords):
                return False
        return conditions_hold(where, properties)
    if kind == "message_status":
        if name != STATUS_EVENTS.get(str(trigger.get("status"))):
            return False
        template_id = trigger.get("template_id")
        if template_id is not None and properties.get("template_id") != template_id:
            return False
        return conditions_hold(where, properties)
    return False


def trigger_event_name(trigger: dict[str, Any]) -> str | None:
    """The one event name the listener must pass on for this trigger (None: see type)."""
    kind = trigger.get("type")
    if kind == "event":
        return str(trigger["event"])
    if kind == "inbound":
        return REPLIED
    if kind == "message_status":
        return STATUS_EVENTS[str(trigger["status"])]
    return None


@dataclass
class Entry:
    profile_id: int
    properties: dict[str, Any]


@dataclass
class EntryOutcome:
    profile_id: int
    status: str  # entered | already_inside | entry_limit
    run_id: int | None = None


async def _blocked(
    session: AsyncSession, journey_id: int, graph: Graph, profile_ids: list[int], now: datetime
) -> dict[int, str]:
    """Profiles that may not enter now, with why."""
    blocked: dict[int, str] = {}
    rule = graph.rules.get("entry", "once")
    for start in range(0, len(profile_ids), 500):
        chunk = profile_ids[start : start + 500]
        rows = await session.execute(
            select(
                RUNS.c.profile_id,
                func.max(RUNS.c.entered_at),
                func.sum(case((RUNS.c.state.in_(ACTIVE_STATES), 1), else_=0)),
            )
            .where(RUNS.c.journey_id == journey_id, RUNS.c.profile_id.in_(chunk))
            .group_by(RUNS.c.profile_id)
        )
        for profile_id, last, active in rows:
            if active:
                blocked[profile_id] = "already_inside"
            elif rule == "once" or (
                rule == "once_per_days"
                and last is not None
                and now - last < timedelta(days=int(graph.rules.get("entry_days", 1)))
            ):
                blocked[profile_id] = "entry_limit"
    return blocked


async def enter(
    session: AsyncSession,
    world: DbWorld,
    workspace_id: int,
    journey_id: int,
    version_id: int,
    graph: Graph,
    entries: list[Entry],
) -> tuple[list[EntryOutcome], list[RunState]]:
    """Start runs for ``entries`` (first entry per profile wins) and move them as far as they
    go now. Effects are left in ``world`` for the caller to apply with the other runs."""
    now = world.now
    unique: dict[int, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.profile_id, entry)
    blocked = await _blocked(session, journey_id, graph, list(unique), now)
    outcomes = [EntryOutcome(pid, blocked[pid]) for pid in unique if pid in blocked]
    candidates = [e for pid, e in unique.items() if pid not in blocked]
    if not candidates:
        return outcomes, []
    await world.preload([e.profile_id for e in candidates])
    candidates = [e for e in candidates if world._profiles.get(e.profile_id) is not None]
    runs = [
        new_run(workspace_id, journey_id, version_id, e.profile_id, graph, e.properties, now)
        for e in candidates
    ]
    if not runs:
        return outcomes, []
    insert = dialect_insert(session)
    statement = (
        insert(RUNS)
        .on_conflict_do_nothing(
            index_elements=["journey_id", "profile_id"],
            index_where=text(ACTIVE_WHERE),
        )
        .returning(RUNS.c.id, RUNS.c.profile_id)
    )
    by_profile = {run.profile_id: run for run in runs}
    created: dict[int, int] = {}
    for start in range(0, len(runs), 500):
        chunk = runs[start : start + 500]
        result = await session.execute(
            statement,
            [
                {
                    "workspace_id": run.workspace_id,
                    "journey_id": run.journey_id,
                    "version_id": run.version_id,
                    "profile_id": run.profile_id,
                    "state": run.state,
                    "node": run.node,
                    "visit": 0,
                    "due_at": now,
                    "context": run.context,
                    "goal_reached": False,
                    "entered_at": now,
                    "updated_at": now,
                }
                for run in chunk
            ],
        )
        created.update({pid: rid for rid, pid in result.all()})
    started: list[RunState] = []
    engine = Engine(world)
    await world.use_workspace(workspace_id)
    for profile_id, run in by_profile.items():
        run_id = created.get(profile_id)
        if run_id is None:
            outcomes.append(EntryOutcome(profile_id, "already_inside"))
            continue
        run.id = run_id
        await engine.advance(run, graph)
        started.append(run)
        outcomes.append(EntryOutcome(profile_id, "entered", run_id))
    return outcomes, started


__all__ = ["ACTIVE_WHERE", "Entry", "EntryOutcome", "enter", "trigger_matches", "version_graph"]
