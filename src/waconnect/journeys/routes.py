"""``/api/v1/journeys``: definitions, versions, lifecycle, entries, stats, paths, simulation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from waconnect.journeys import listeners, service
from waconnect.journeys.schemas import (
    EntriesIn,
    EntriesOut,
    JourneyIn,
    JourneyOut,
    JourneyPage,
    ProfilePath,
    SimulateIn,
    SimulationOut,
)
from waconnect.journeys.simulate import run_simulation
from waconnect.templates.service import add_in_use_check
from waconnect.web.deps import PrincipalDep, RuntimeDep, SessionDep
from waconnect.web.errors import not_found

router = APIRouter(tags=["journeys"])

# Events and profile changes feed journeys wherever they are recorded (API, callbacks, CLI).
listeners.install()
add_in_use_check(service.template_in_use)


def _wake(runtime: RuntimeDep) -> None:
    from waconnect.journeys.scheduler import wake_scheduler

    wake_scheduler(runtime)


@router.post("/journeys", response_model=JourneyOut, status_code=201)
async def create_journey(
    body: JourneyIn, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> JourneyOut:
    """Save a draft. The graph is validated (connected, every exit goes somewhere, no cycle
    without a wait, templates exist and are approved): a 422 names each bad node."""
    journey = await service.create_journey(
        session, runtime.clock.now(), principal.workspace_id, body
    )
    return await service.journey_out(session, journey)


@router.get("/journeys", response_model=JourneyPage)
async def list_journeys(
    principal: PrincipalDep,
    session: SessionDep,
    status: Literal["draft", "live", "paused", "stopped"] | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JourneyPage:
    return await service.list_journeys(session, principal.workspace_id, status, cursor, limit)


@router.get("/journeys/{journey_id}", response_model=JourneyOut)
async def get_journey(journey_id: int, principal: PrincipalDep, session: SessionDep) -> JourneyOut:
    """The journey with its stats: per journey and per node."""
    journey = await service.get_journey(session, principal.workspace_id, journey_id)
    return await service.journey_out(session, journey, with_stats=True)


@router.put("/journeys/{journey_id}", response_model=JourneyOut)
async def update_journey(
    journey_id: int,
    body: JourneyIn,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> JourneyOut:
    """Edit the draft; publish to make it the version new profiles enter."""
    journey = await service.update_journey(
        session, runtime.clock.now(), principal.workspace_id, journey_id, body
    )
    return await service.journey_out(session, journey)


@router.delete("/journeys/{journey_id}", status_code=204)
async def delete_journey(journey_id: int, principal: PrincipalDep, session: SessionDep) -> Response:
    await service.delete_journey(session, principal.workspace_id, journey_id)
    return Response(status_code=204)


@router.post("/journeys/{journey_id}/publish", response_model=JourneyOut)
async def publish_journey(
    journey_id: int, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> JourneyOut:
    """The draft becomes a new version; profiles already inside finish on theirs."""
    journey = await service.publish(
        session, runtime.clock.now(), principal.workspace_id, journey_id
    )
    return await service.journey_out(session, journey)


@router.post("/journeys/{journey_id}/entries", response_model=EntriesOut)
async def enter_profiles(
    journey_id: int,
    body: EntriesIn,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> EntriesOut:
    """The API trigger: up to 1,000 profiles (by id, identity or phone) enter now."""
    result = await service.enter_by_api(session, runtime, principal.workspace_id, journey_id, body)
    from waconnect.messaging.service import wake_dispatcher

    wake_dispatcher(runtime)
    return result


@router.get("/journeys/{journey_id}/profiles/{profile_id}", response_model=ProfilePath)
async def profile_path(
    journey_id: int, profile_id: int, principal: PrincipalDep, session: SessionDep
) -> ProfilePath:
    """The path of one profile: each run, the node it is at, every step with its exit."""
    return await service.profile_path(session, principal.workspace_id, journey_id, profile_id)


@router.post("/journeys/{journey_id}/simulate", response_model=SimulationOut)
async def simulate_journey(
    journey_id: int,
    body: SimulateIn,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> SimulationOut:
    """Walk one profile and a scripted sequence of events / replies / time through the graph,
    without sending anything; returns the path it takes."""
    result = await run_simulation(session, runtime, principal.workspace_id, journey_id, body)
    await session.rollback()  # a simulation writes nothing
    return result


# Last: its path parameter would otherwise catch /entries and /simulate.
@router.post("/journeys/{journey_id}/{action}", response_model=JourneyOut)
async def change_status(
    journey_id: int,
    action: str,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> JourneyOut:
    """``pause`` (no entries, runs hold), ``resume``, ``stop`` (every run leaves)."""
    if action not in ("pause", "resume", "stop"):
        raise not_found(f"journey action {action!r} (use pause, resume, stop, publish)")
    journey = await service.set_status(session, runtime, principal.workspace_id, journey_id, action)
    out = await service.journey_out(session, journey)
    _wake(runtime)
    return out
