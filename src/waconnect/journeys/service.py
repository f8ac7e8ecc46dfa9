"""Journeys: definitions, validation on save, versions, lifecycle, entries, stats, paths."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.db.base import is_storable_id
from waconnect.journeys.entries import (
    Entry,
    EntryOutcome,
    enter,
    trigger_event_name,
)
from waconnect.journeys.graph import Graph, GraphError, parse_graph
from waconnect.journeys.models import (
    ACTIVE_STATES,
    Journey,
    JourneyRun,
    JourneySignal,
    JourneyStep,
    JourneyVersion,
)
from waconnect.journeys.personalize import MappingProblem, personalizer
from waconnect.journeys.schemas import (
    EntriesIn,
    EntriesOut,
    EntryResult,
    JourneyIn,
    JourneyOut,
    JourneyPage,
    ProfilePath,
    RunOut,
    StepOut,
)
from waconnect.journeys.store import DbWorld
from waconnect.messaging.models import Message
from waconnect.messaging.session import validate_session_content
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.profiles.models import Profile, Segment
from waconnect.providers.models import ProviderConfig
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.web.errors import conflict, invalid, not_found
from waconnect.workspaces.service import get_workspace, settings_of

RUNS = cast(Table, JourneyRun.__table__)
STEPS = cast(Table, JourneyStep.__table__)
MESSAGES = cast(Table, Message.__table__)
SIGNALS = cast(Table, JourneySignal.__table__)


# --- validation on save ---------------------------------------------------------------------


def _graph_or_422(definition: dict[str, Any]) -> Graph:
    try:
        return parse_graph(definition)
    except GraphError as exc:
        raise invalid(exc.problems, _summary(exc.problems)) from None


def _summary(problems: dict[str, str]) -> str:
    first_key, first_why = next(iter(problems.items()))
    more = f" (and {len(problems) - 1} more problem(s), see fields)" if len(problems) > 1 else ""
    return f"{first_key}: {first_why}{more}"


async def check_against_workspace(
    session: AsyncSession, workspace_id: int, graph: Graph
) -> list[int]:
    """Every template a node sends exists and is approved, its variables fit, segments exist.
    Returns the template ids; 422 naming each node otherwise."""
    problems: dict[str, str] = {}
    template_ids: list[int] = []
    default_provider = await session.scalar(
        select(ProviderConfig.id).where(
            ProviderConfig.workspace_id == workspace_id, ProviderConfig.is_default
        )
    )
    for node, spec in graph.template_refs():
        where = f"nodes.{node.id}.template"
        provider_id = node.config.get("provider_id", default_provider)
        if provider_id is None:
            problems[where] = "this workspace has no default provider; give provider_id"
            continue
        provider = await session.get(ProviderConfig, provider_id)
        if provider is None or provider.workspace_id != workspace_id:
            problems[f"nodes.{node.id}.provider_id"] = f"no provider config {provider_id}"
            continue
        name, language = spec["name"], spec.get("language", "en")
        template = await session.scalar(
            select(Template).where(
                Template.provider_id == provider_id,
                Template.name == name,
                Template.language == language,
            )
        )
        if template is None:
            problems[where] = (
                f"no template {name!r} in language {language!r} on provider {provider_id} "
                f"({provider.nickname})"
            )
            continue
        if template.status != "APPROVED":
            problems[where] = f"template {name!r} ({language}) is {template.status}, not APPROVED"
            continue
        template_ids.append(template.id)
        mapping = dict(node.config.get("variables") or {})
        if node.type == "payment_request":
            from waconnect.journeys.engine import PAYMENT_LINK, _url_button

            definition = _definition(template)
            button = int(node.config.get("link_button", _url_button(definition)))
            mapping[f"buttons.{button}.1"] = {"event_property": PAYMENT_LINK}
        try:
            personalizer(
                _definition(template), f"{template.id}:{template.updated_at.isoformat()}", mapping
            )
        except MappingProblem as exc:
            for key, why in exc.problems.items():
                problems[f"nodes.{node.id}.variables.{key}"] = why
    for node in graph.nodes.values():
        if node.type == "send_session":
            for path, why in validate_session_content(node.config["message"]).items():
                problems[f"nodes.{node.id}.message.{path}"] = why
        if node.type == "branch" and node.config.get("on") == "segment":
            await _check_segment(
                session, workspace_id, node.config["segment_id"], f"nodes.{node.id}", problems
            )
    if graph.trigger.get("type") == "segment":
        await _check_segment(
            session, workspace_id, graph.trigger["segment_id"], "trigger", problems
        )
    if problems:
        raise invalid(problems, _summary(problems))
    return sorted(set(template_ids))


async def _check_segment(
    session: AsyncSession, workspace_id: int, segment_id: int, where: str, problems: dict[str, str]
) -> None:
    segment = await session.get(Segment, segment_id) if is_storable_id(segment_id) else None
    if segment is None or segment.workspace_id != workspace_id:
        problems[f"{where}.segment_id"] = f"no segment {segment_id} in this workspace"


def _definition(template: Template) -> dict[str, Any]:
    definition = dict(template.definition)
    definition.update(
        name=template.name,
        language=template.language,
        category=template.category,
        namespace=template.namespace,
    )
    return definition


# --- definitions -----------------------------------------------------------------------------


async def get_journey(session: AsyncSession, workspace_id: int, journey_id: int) -> Journey:
    journey = await session.get(Journey, journey_id) if is_storable_id(journey_id) else None
    if journey is None or journey.workspace_id != workspace_id:
        raise not_found(f"journey {journey_id}")
    return journey


async def create_journey(
    session: AsyncSession, now: datetime, workspace_id: int, body: JourneyIn
) -> Journey:
    graph = _graph_or_422(body.definition())
    await check_against_workspace(session, workspace_id, graph)
    journey = Journey(
        workspace_id=workspace_id,
        name=body.name.strip(),
        status="draft",
        definition=body.definition(),
        created_at=now,
        updated_at=now,
    )
    session.add(journey)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise conflict(f"a journey named {body.name.strip()!r} exists already") from None
    return journey


async def update_journey(
    session: AsyncSession, now: datetime, workspace_id: int, journey_id: int, body: JourneyIn
) -> Journey:
    """Edit the draft; profiles inside keep their version until the next publish, and after."""
    journey = await get_journey(session, workspace_id, journey_id)
    if journey.status == "stopped":
        raise conflict(f"journey {journey_id} is stopped; create a new journey instead")
    graph = _graph_or_422(body.definition())
    await check_against_workspace(session, workspace_id, graph)
    journey.name = body.name.strip()
    journey.definition = body.definition()
    journey.updated_at = now
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise conflict(f"a journey named {body.name.strip()!r} exists already") from None
    return journey


async def publish(
    session: AsyncSession, now: datetime, workspace_id: int, journey_id: int
) -> Journey:
    """The draft becomes a new version that new entries take; runs inside keep theirs."""
    journey = await get_journey(session, workspace_id, journey_id)
    if journey.status == "stopped":
        raise conflict(f"journey {journey_id} is stopped; create a new journey instead")
    graph = _graph_or_422(journey.definition)
    template_ids = await check_against_workspace(session, workspace_id, graph)
    number = (
        await session.scalar(
            select(func.max(JourneyVersion.number)).where(JourneyVersion.journey_id == journey.id)
        )
        or 0
    ) + 1
    version = JourneyVersion(
        journey_id=journey.id,
        number=number,
        definition=journey.definition,
        listens=graph.listens(),
        template_ids=template_ids,
        published_at=now,
    )
    session.add(version)
    await session.flush()
    journey.live_version_id = version.id
    journey.trigger_type = str(graph.trigger["type"])
    journey.trigger_event = trigger_event_name(graph.trigger)
    if journey.status == "draft":
        journey.status = "live"
    journey.updated_at = now
    await session.flush()
    return journey


async def set_status(
    session: AsyncSession, runtime: Runtime, workspace_id: int, journey_id: int, action: str
) -> Journey:
    """pause: no entries, runs inside hold; resume: both go on; stop: every run inside leaves
    and its unsent messages are cancelled."""
    journey = await get_journey(session, workspace_id, journey_id)
    now = runtime.clock.now()
    if action == "pause":
        if journey.status != "live":
            raise conflict(f"journey {journey_id} is {journey.status}; only a live one pauses")
        journey.status = "paused"
    elif action == "resume":
        if journey.status != "paused":
            raise conflict(f"journey {journey_id} is {journey.status}; only a paused one resumes")
        journey.status = "live"
    elif action == "stop":
        if journey.status == "stopped":
            raise conflict(f"journey {journey_id} is stopped already")
        journey.status = "stopped"
        await _stop_runs(session, journey.id, now)
    journey.updated_at = now
    await session.flush()
    return journey


async def _stop_runs(session: AsyncSession, journey_id: int, now: datetime) -> None:
    sent = select(STEPS.c.message_id).where(
        STEPS.c.journey_id == journey_id, STEPS.c.message_id.is_not(None)
    )
    await session.execute(
        update(MESSAGES)
        .where(
            MESSAGES.c.id.in_(sent),
            MESSAGES.c.status == "queued",
            MESSAGES.c.pending_attempt.is_(False),
            MESSAGES.c.lease_owner.is_(None),
        )
        .values(status="cancelled", updated_at=now)
    )
    inside = select(RUNS.c.id).where(
        RUNS.c.journey_id == journey_id, RUNS.c.state.in_(ACTIVE_STATES)
    )
    await session.execute(delete(SIGNALS).where(SIGNALS.c.run_id.in_(inside)))
    await session.execute(
        update(RUNS)
        .where(RUNS.c.journey_id == journey_id, RUNS.c.state.in_(ACTIVE_STATES))
        .values(
            state="exited",
            exit_reason="stopped",
            due_at=None,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_until=None,
        )
    )


async def delete_journey(session: AsyncSession, workspace_id: int, journey_id: int) -> None:
    journey = await get_journey(session, workspace_id, journey_id)
    if journey.status in ("live", "paused"):
        raise conflict(f"journey {journey_id} is {journey.status}; stop it before deleting it")
    await session.delete(journey)
    await session.flush()


async def journey_out(
    session: AsyncSession, journey: Journey, with_stats: bool = False
) -> JourneyOut:
    versions = await session.execute(
        select(func.count(), func.max(JourneyVersion.number)).where(
            JourneyVersion.journey_id == journey.id
        )
    )
    count, _ = versions.one()
    live_number = None
    if journey.live_version_id is not None:
        live_number = await session.scalar(
            select(JourneyVersion.number).where(JourneyVersion.id == journey.live_version_id)
        )
    return JourneyOut(
        id=journey.id,
        name=journey.name,
        status=journey.status,  # type: ignore[arg-type]
        live_version=live_number,
        versions=int(count or 0),
        definition={"name": journey.name, **journey.definition},
        created_at=journey.created_at,
        updated_at=journey.updated_at,
        stats=await stats(session, journey) if with_stats else None,
    )


async def list_journeys(
    session: AsyncSession, workspace_id: int, status: str | None, cursor: str | None, limit: int
) -> JourneyPage:
    query = select(Journey).where(Journey.workspace_id == workspace_id)
    if status:
        query = query.where(Journey.status == status)
    if cursor:
        if not cursor.isdigit():
            raise invalid({"cursor": "use the next_cursor of the previous page"})
        query = query.where(Journey.id < int(cursor))
    rows = list(await session.scalars(query.order_by(Journey.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return JourneyPage(
        items=[await journey_out(session, row) for row in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


# --- stats and paths --------------------------------------------------------------------------


async def stats(session: AsyncSession, journey: Journey) -> dict[str, Any]:
    """Per journey: entered, inside, completed, exited by reason, goal reached. Per node:
    entered, exited by each exit, here now and waiting now (all versions; node ids persist)."""
    by_state = await session.execute(
        select(RUNS.c.state, RUNS.c.exit_reason, func.count())
        .where(RUNS.c.journey_id == journey.id)
        .group_by(RUNS.c.state, RUNS.c.exit_reason)
    )
    totals: dict[str, Any] = {
        "entered": 0,
        "inside": 0,
        "waiting": 0,
        "completed": 0,
        "exited": {},
        "goal_reached": 0,
    }
    for state, reason, count in by_state.all():
        totals["entered"] += count
        if state in ACTIVE_STATES:
            totals["inside"] += count
            if state == "waiting":
                totals["waiting"] += count
        elif state == "completed":
            totals["completed"] += count
        if state == "exited" or (state == "completed" and reason == "goal"):
            key = reason or "unknown"
            totals["exited"][key] = totals["exited"].get(key, 0) + count
    totals["goal_reached"] = int(
        await session.scalar(
            select(func.count()).where(RUNS.c.journey_id == journey.id, RUNS.c.goal_reached)
        )
        or 0
    )
    nodes: dict[str, dict[str, Any]] = {}

    def node(node_id: str) -> dict[str, Any]:
        return nodes.setdefault(
            node_id, {"entered": 0, "exits": {}, "here_now": 0, "waiting_now": 0}
        )

    steps = await session.execute(
        select(STEPS.c.node, STEPS.c.exit, func.count())
        .where(STEPS.c.journey_id == journey.id)
        .group_by(STEPS.c.node, STEPS.c.exit)
    )
    for node_id, exit_name, count in steps.all():
        entry = node(node_id)
        entry["entered"] += count
        if exit_name is not None:
            entry["exits"][exit_name] = entry["exits"].get(exit_name, 0) + count
    here = await session.execute(
        select(RUNS.c.node, RUNS.c.state, func.count())
        .where(RUNS.c.journey_id == journey.id, RUNS.c.state.in_(ACTIVE_STATES))
        .group_by(RUNS.c.node, RUNS.c.state)
    )
    for node_id, state, count in here.all():
        entry = node(node_id)
        entry["entered"] += count
        entry["here_now"] += count
        if state == "waiting":
            entry["waiting_now"] += count
    return {"journey": totals, "nodes": nodes}


async def profile_path(
    session: AsyncSession, workspace_id: int, journey_id: int, profile_id: int
) -> ProfilePath:
    journey = await get_journey(session, workspace_id, journey_id)
    runs = (
        await session.execute(
            select(RUNS, JourneyVersion.number)
            .join(JourneyVersion, JourneyVersion.id == RUNS.c.version_id)
            .where(RUNS.c.journey_id == journey.id, RUNS.c.profile_id == profile_id)
            .order_by(RUNS.c.id.desc())
            .limit(50)
        )
    ).all()
    if not runs:
        raise not_found(f"profile {profile_id} in journey {journey_id}")
    out: list[RunOut] = []
    for row in runs:
        steps = (
            await session.execute(
                select(STEPS).where(STEPS.c.run_id == row.id).order_by(STEPS.c.visit)
            )
        ).all()
        timer = (row.context or {}).get("timer_at")
        out.append(
            RunOut(
                run_id=row.id,
                version=row.number,
                state=row.state,
                node=row.node,
                waiting_until=datetime.fromisoformat(timer) if timer else None,
                entered_at=row.entered_at,
                finished_at=row.finished_at,
                exit_reason=row.exit_reason,
                goal_reached=row.goal_reached,
                steps=[
                    StepOut(
                        visit=s.visit,
                        node=s.node,
                        exit=s.exit,
                        entered_at=s.entered_at,
                        exited_at=s.exited_at,
                        message_id=s.message_id,
                        detail=s.detail or {},
                    )
                    for s in steps
                ],
            )
        )
    return ProfilePath(journey_id=journey.id, profile_id=profile_id, runs=out)


# --- entries by API -------------------------------------------------------------------------------


async def resolve_profile(
    session: AsyncSession,
    workspace_id: int,
    profile_id: int | None,
    identity: str | None,
    phone: str | None,
) -> int | None:
    if sum(x is not None for x in (profile_id, identity, phone)) != 1:
        raise invalid({"profile": "give exactly one of id (profile_id), identity or phone"})
    query = select(Profile.id).where(
        Profile.workspace_id == workspace_id, Profile.erased_at.is_(None)
    )
    if profile_id is not None:
        if not is_storable_id(profile_id):
            return None
        query = query.where(Profile.id == profile_id)
    elif identity is not None:
        query = query.where(Profile.identity == identity)
    else:
        settings = settings_of(await get_workspace(session, workspace_id))
        try:
            normalized = normalize_phone(str(phone), settings.default_country)
        except InvalidPhone as exc:
            raise invalid({"phone": str(exc)}) from None
        query = query.where(Profile.phone == normalized)
    return cast(int | None, await session.scalar(query))


async def enter_by_api(
    session: AsyncSession, runtime: Runtime, workspace_id: int, journey_id: int, body: EntriesIn
) -> EntriesOut:
    """The API trigger: put these profiles into the live version now (entry rules apply)."""
    from waconnect.journeys.entries import version_graph

    journey = await get_journey(session, workspace_id, journey_id)
    if journey.status != "live" or journey.live_version_id is None:
        raise conflict(f"journey {journey_id} is {journey.status}; profiles enter a live journey")
    graph = await version_graph(session, journey.live_version_id)
    if graph.trigger.get("type") != "api":
        raise conflict(
            f"journey {journey_id} starts on {graph.trigger.get('type')!r}, not by API call; "
            'use a trigger {"type": "api"} to enter profiles this way'
        )
    results: list[EntryResult] = []
    entries: list[tuple[int, Entry]] = []
    for index, target in enumerate(body.profiles):
        profile_id = await resolve_profile(
            session, workspace_id, target.id, target.identity, target.phone
        )
        if profile_id is None:
            results.append(EntryResult(index=index, status="not_found"))
        else:
            entries.append((index, Entry(profile_id, dict(target.properties))))
    world = DbWorld(session, runtime, runtime.clock.now())
    outcomes, started = await enter(
        session,
        world,
        workspace_id,
        journey.id,
        journey.live_version_id,
        graph,
        [entry for _i, entry in entries],
    )
    await world.apply(started)
    by_profile: dict[int, EntryOutcome] = {o.profile_id: o for o in outcomes}
    seen: set[int] = set()
    for index, entry in entries:
        outcome = by_profile[entry.profile_id]
        status = outcome.status
        if entry.profile_id in seen and status == "entered":
            status = "already_inside"  # the same profile twice in one call
        seen.add(entry.profile_id)
        results.append(
            EntryResult(
                index=index,
                status=status,
                profile_id=entry.profile_id,
                run_id=outcome.run_id if status == "entered" else None,
            )
        )
    results.sort(key=lambda r: r.index)
    return EntriesOut(entered=sum(r.status == "entered" for r in results), results=results)


# --- templates in use ---------------------------------------------------------------------------


async def template_in_use(session: AsyncSession, template_id: int) -> str | None:
    """A live or paused journey whose live version, or a version with profiles inside, sends
    the template."""
    rows = await session.execute(
        select(Journey.name, Journey.status, JourneyVersion.id, JourneyVersion.template_ids)
        .join(JourneyVersion, JourneyVersion.journey_id == Journey.id)
        .where(Journey.status.in_(("live", "paused")))
    )
    for name, status, version_id, template_ids in rows.all():
        if template_id not in (template_ids or []):
            continue
        live = await session.scalar(
            select(func.count()).where(Journey.live_version_id == version_id, Journey.name == name)
        )
        inside = await session.scalar(
            select(RUNS.c.id)
            .where(RUNS.c.version_id == version_id, RUNS.c.state.in_(ACTIVE_STATES))
            .limit(1)
        )
        if live or inside is not None:
            return f"journey {name!r} ({status})"
    return None
