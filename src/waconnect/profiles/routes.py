"""``/api/v1/profiles``, ``/api/v1/events``, ``/api/v1/attributes``, ``/api/v1/segments``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from waconnect.db.base import is_storable_id
from waconnect.profiles import erasure, events, jobs, segments, service
from waconnect.profiles.models import Segment
from waconnect.profiles.schemas import (
    AttributeDeclare,
    AttributeOut,
    Erased,
    EventBatchIn,
    EventBatchOut,
    ImportJobOut,
    ProfileBatchIn,
    ProfileBatchOut,
    ProfileDetail,
    ProfilePage,
    RowResult,
    SegmentCount,
    SegmentDefinitionIn,
    SegmentIn,
    SegmentOut,
    SegmentPreview,
)
from waconnect.profiles.service import Outcome
from waconnect.web.deps import ClockDep, PrincipalDep, RuntimeDep, SessionDep
from waconnect.web.errors import not_found

router = APIRouter()


def _results(outcomes: list[Outcome]) -> list[RowResult]:
    return [
        RowResult(
            index=index,
            status=outcome.status,  # type: ignore[arg-type]
            id=outcome.id,
            error=outcome.error.body() if outcome.error else None,
        )
        for index, outcome in enumerate(outcomes)
    ]


# --- profiles -------------------------------------------------------------------------------


@router.post("/profiles/batch", response_model=ProfileBatchOut, tags=["profiles"])
async def upsert_profiles(
    body: ProfileBatchIn, principal: PrincipalDep, runtime: RuntimeDep
) -> ProfileBatchOut:
    """Upsert up to 1,000 profiles, matched by identity, else by phone. Each row answers
    created / updated / error; good rows are written even when others fail."""
    outcomes = await service.upsert_api_rows(runtime, principal.workspace_id, body.profiles)
    results = _results(outcomes)
    return ProfileBatchOut(
        created=sum(r.status == "created" for r in results),
        updated=sum(r.status == "updated" for r in results),
        rejected=sum(r.status == "error" for r in results),
        results=results,
    )


@router.get("/profiles", response_model=ProfilePage, tags=["profiles"])
async def list_profiles(
    principal: PrincipalDep,
    session: SessionDep,
    clock: ClockDep,
    phone: str | None = None,
    identity: str | None = None,
    attribute: Annotated[str | None, Query(description="with value: equals; alone: has it")] = None,
    value: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ProfilePage:
    """Newest first; search by phone (any common form), identity, or one attribute's value."""
    return await service.list_profiles(
        session,
        clock.now(),
        principal.workspace_id,
        phone,
        identity,
        attribute,
        value,
        cursor,
        limit,
    )


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/profiles/import",
    response_model=ImportJobOut,
    status_code=202,
    tags=["profiles"],
    openapi_extra=_UPLOAD_BODY,
)
async def import_profiles(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    map: Annotated[
        list[str] | None,
        Query(description="COLUMN=TARGET[:TYPE], as `waconnect profiles import --map`"),
    ] = None,
    filename: Annotated[str, Query(max_length=300)] = "upload.csv",
) -> ImportJobOut:
    """Upload a CSV (body as text/csv, or multipart field ``file``); it imports in the
    background. Follow it at ``GET /api/v1/profiles/import/{id}``."""
    job = await jobs.receive_upload(request, runtime, principal.workspace_id, map or [], filename)
    return jobs.job_out(job)


@router.get("/profiles/import/{job_id}", response_model=ImportJobOut, tags=["profiles"])
async def import_status(job_id: int, principal: PrincipalDep, runtime: RuntimeDep) -> ImportJobOut:
    return jobs.job_out(await jobs.get_job(runtime, principal.workspace_id, job_id))


@router.get(
    "/profiles/import/{job_id}/errors",
    response_class=StreamingResponse,
    tags=["profiles"],
    responses={200: {"content": {"text/csv": {}}}},
)
async def import_errors(
    job_id: int, principal: PrincipalDep, runtime: RuntimeDep
) -> StreamingResponse:
    """The rejected rows as CSV: line, error, message, then the file's own columns."""
    job = await jobs.get_job(runtime, principal.workspace_id, job_id)
    return StreamingResponse(
        jobs.error_report(runtime, job),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}.errors.csv"'},
    )


@router.get("/profiles/{profile_id}", response_model=ProfileDetail, tags=["profiles"])
async def get_profile(
    profile_id: int,
    principal: PrincipalDep,
    session: SessionDep,
    timeline_limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ProfileDetail:
    """The profile with its timeline: events, messages and their statuses, inbound replies."""
    return await service.profile_detail(session, principal.workspace_id, profile_id, timeline_limit)


@router.delete("/profiles/{profile_id}", response_model=Erased, tags=["profiles"])
async def erase_profile(profile_id: int, principal: PrincipalDep, runtime: RuntimeDep) -> Erased:
    """Erase the profile's personal data (replaced by hashes); anonymous counts stay."""
    if not is_storable_id(profile_id):
        raise not_found(f"profile {profile_id}")
    return await erasure.erase_profile(runtime, principal.workspace_id, profile_id)


# --- events and attributes ------------------------------------------------------------------


@router.post("/events/batch", response_model=EventBatchOut, tags=["events"])
async def record_events(
    body: EventBatchIn, principal: PrincipalDep, runtime: RuntimeDep
) -> EventBatchOut:
    """Record up to 1,000 events on profiles named by identity or phone."""
    outcomes = await events.record_events(runtime, principal.workspace_id, body.events)
    results = _results(outcomes)
    recorded = sum(r.status == "recorded" for r in results)
    return EventBatchOut(recorded=recorded, rejected=len(results) - recorded, results=results)


@router.get("/attributes", response_model=list[AttributeOut], tags=["profiles"])
async def list_attributes(principal: PrincipalDep, session: SessionDep) -> list[AttributeOut]:
    """The workspace's attribute types (set by each attribute's first value, or declared)."""
    rows = await service.list_attributes(session, principal.workspace_id)
    return [AttributeOut.model_validate(row, from_attributes=True) for row in rows]


@router.put("/attributes/{name}", response_model=AttributeOut, tags=["profiles"])
async def declare_attribute(
    name: str, body: AttributeDeclare, principal: PrincipalDep, runtime: RuntimeDep
) -> AttributeOut:
    """Declare an attribute's type before its first value (409 if it has another type)."""
    row = await service.declare_attribute(runtime, principal.workspace_id, name, body.type)
    return AttributeOut.model_validate(row, from_attributes=True)


# --- segments -------------------------------------------------------------------------------


def _segment_out(segment: Segment) -> SegmentOut:
    return SegmentOut.model_validate(segment, from_attributes=True)


@router.post("/segments", response_model=SegmentOut, status_code=201, tags=["segments"])
async def create_segment(
    body: SegmentIn, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> SegmentOut:
    segment = await segments.create_segment(
        session, clock.now(), principal.workspace_id, body.name, body.definition
    )
    return _segment_out(segment)


@router.get("/segments", response_model=list[SegmentOut], tags=["segments"])
async def list_segments(principal: PrincipalDep, session: SessionDep) -> list[SegmentOut]:
    return [_segment_out(s) for s in await segments.list_segments(session, principal.workspace_id)]


@router.post("/segments/count", response_model=SegmentCount, tags=["segments"])
async def count_definition(
    body: SegmentDefinitionIn, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> SegmentCount:
    """Count a definition without saving it."""
    node = await segments.compile_definition(session, principal.workspace_id, body.definition)
    return SegmentCount(
        count=await segments.count(session, clock.now(), principal.workspace_id, node)
    )


@router.get("/segments/{segment_id}", response_model=SegmentOut, tags=["segments"])
async def get_segment(segment_id: int, principal: PrincipalDep, session: SessionDep) -> SegmentOut:
    return _segment_out(await segments.get_segment(session, principal.workspace_id, segment_id))


@router.delete("/segments/{segment_id}", status_code=204, tags=["segments"])
async def delete_segment(segment_id: int, principal: PrincipalDep, session: SessionDep) -> Response:
    await segments.delete_segment(session, principal.workspace_id, segment_id)
    return Response(status_code=204)


@router.get("/segments/{segment_id}/count", response_model=SegmentCount, tags=["segments"])
async def count_segment(
    segment_id: int, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> SegmentCount:
    segment = await segments.get_segment(session, principal.workspace_id, segment_id)
    node = await segments.compile_definition(session, principal.workspace_id, segment.definition)
    return SegmentCount(
        count=await segments.count(session, clock.now(), principal.workspace_id, node)
    )


@router.get("/segments/{segment_id}/preview", response_model=SegmentPreview, tags=["segments"])
async def preview_segment(
    segment_id: int,
    principal: PrincipalDep,
    session: SessionDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SegmentPreview:
    """The count and the newest ``limit`` matching profiles."""
    segment = await segments.get_segment(session, principal.workspace_id, segment_id)
    node = await segments.compile_definition(session, principal.workspace_id, segment.definition)
    now = clock.now()
    total = await segments.count(session, now, principal.workspace_id, node)
    items = await segments.preview(session, now, principal.workspace_id, node, limit)
    return SegmentPreview(count=total, items=items)
