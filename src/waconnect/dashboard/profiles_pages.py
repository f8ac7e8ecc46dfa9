"""Profiles: search, a profile with its timeline, and CSV import with its progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from waconnect.dashboard.auth import DashboardDep, FormDep
from waconnect.dashboard.forms import Errors, errors_of, pager
from waconnect.dashboard.render import is_htmx, page
from waconnect.profiles import jobs, service
from waconnect.profiles.schemas import ProfilePage
from waconnect.web.deps import ClockDep, RuntimeDep, SessionDep
from waconnect.web.errors import ApiError

router = APIRouter(prefix="/profiles", include_in_schema=False)

PAGE_SIZE = 50
_SEARCH = ("phone", "identity", "attribute", "value")


@router.get("")
async def profiles_list(
    request: Request, context: DashboardDep, session: SessionDep, clock: ClockDep
) -> Response:
    filters = {name: request.query_params.get(name, "").strip() for name in _SEARCH}
    cursor = request.query_params.get("cursor") or None
    errors: Errors = {}
    if filters["value"] and not filters["attribute"]:
        errors["attribute"] = "name the attribute whose value you search for"
    result = ProfilePage(items=[], next_cursor=None)
    if not errors:
        try:
            result = await service.list_profiles(
                session,
                clock.now(),
                context.workspace_id,
                filters["phone"] or None,
                filters["identity"] or None,
                filters["attribute"] or None,
                filters["value"] or None,
                cursor,
                PAGE_SIZE,
            )
        except ApiError as exc:
            errors = errors_of(exc)
    values: dict[str, Any] = {
        "profiles": result.items,
        "filters": filters,
        "searching": any(filters.values()),
        "errors": errors,
        "attribute_options": [
            (a.name, f"{a.name} ({a.type})")
            for a in await service.list_attributes(session, context.workspace_id)
        ],
        **pager("/profiles", filters, cursor, result.next_cursor),
    }
    return page(request, "profiles/list.html", values, status=422 if errors else 200)


# --- CSV import ---------------------------------------------------------------------------------


@router.get("/import")
async def import_form(request: Request, context: DashboardDep) -> Response:
    return page(request, "profiles/import.html", {"errors": {}, "map_text": ""})


@router.post("/import")
async def start_import(request: Request, context: FormDep, runtime: RuntimeDep) -> Response:
    form = await request.form()
    map_text = str(form.get("map") or "")
    items = [line.strip() for line in map_text.replace(",", "\n").splitlines() if line.strip()]
    try:
        job = await jobs.receive_upload(request, runtime, context.workspace_id, items, "upload.csv")
    except ApiError as exc:
        errors = {("map" if name == "map" else "file"): why for name, why in errors_of(exc).items()}
        values = {"errors": errors, "map_text": map_text}
        return page(request, "profiles/import.html", values, status=exc.status)
    return RedirectResponse(f"/profiles/import/{job.id}", 303)


async def _job_values(runtime: RuntimeDep, workspace_id: int, job_id: int) -> dict[str, Any]:
    job = jobs.job_out(await jobs.get_job(runtime, workspace_id, job_id))
    return {"job": job, "live": job.state in ("queued", "running")}


@router.get("/import/{job_id}")
async def import_job(
    request: Request, job_id: int, context: DashboardDep, runtime: RuntimeDep
) -> Response:
    values = await _job_values(runtime, context.workspace_id, job_id)
    name = "profiles/_job.html" if is_htmx(request) else "profiles/job.html"
    return page(request, name, values)


@router.get("/import/{job_id}/errors")
async def import_errors(
    job_id: int, context: DashboardDep, runtime: RuntimeDep
) -> StreamingResponse:
    job = await jobs.get_job(runtime, context.workspace_id, job_id)
    return StreamingResponse(
        jobs.error_report(runtime, job),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}.errors.csv"'},
    )


# --- one profile --------------------------------------------------------------------------------


@router.get("/{profile_id}")
async def profile_page(
    request: Request, profile_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    detail = await service.profile_detail(session, context.workspace_id, profile_id, 100)
    return page(request, "profiles/profile.html", {"profile": detail})
