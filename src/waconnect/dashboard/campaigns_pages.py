"""Campaigns: the list, the create wizard, the preview, and the live campaign page.

The live page shows the status funnel (each recipient counted once, at its furthest point,
shown cumulatively: a read message was also sent and delivered), a chart of statuses over
time, failures by error code, and the pause / resume / cancel buttons.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import Integer, cast, func, select
from starlette.responses import JSONResponse, RedirectResponse, Response

from waconnect.campaigns import service
from waconnect.campaigns.preview import preview_campaign
from waconnect.campaigns.schemas import CampaignIn, CampaignOut, Stats
from waconnect.dashboard.auth import Dashboard, DashboardDep, FormDep
from waconnect.dashboard.campaign_form import (
    AUDIENCES,
    DND_CHOICES,
    CampaignForm,
    campaign_field,
)
from waconnect.dashboard.forms import Errors, errors_of
from waconnect.dashboard.render import is_htmx, page, secure
from waconnect.messaging.models import Message
from waconnect.profiles.segments import list_segments
from waconnect.providers.service import list_providers
from waconnect.templates.service import list_templates
from waconnect.web.deps import RuntimeDep, SessionDep
from waconnect.web.errors import ApiError

router = APIRouter(prefix="/campaigns", include_in_schema=False)

ACTIVE = ("scheduled", "running", "paused")
ACTIONS = {
    "start": ("draft",),
    "pause": ("scheduled", "running"),
    "resume": ("paused",),
    "cancel": ("draft", "scheduled", "running", "paused"),
}
_DONE = {
    "created": "The campaign was saved as a draft. Check the preview, then start it.",
    "start": "The campaign was started.",
    "pause": "The campaign was paused: no new message starts until you resume it.",
    "resume": "The campaign was resumed.",
    "cancel": "The campaign was cancelled: its unsent messages will not go out.",
}
CHART_POINTS = 40


@router.get("")
async def campaigns_list(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    rows, _next = await service.list_campaigns(session, context.workspace_id, None, None, 100)
    return page(request, "campaigns/list.html", {"campaigns": rows})


# --- the wizard ---------------------------------------------------------------------------------


async def _wizard(
    request: Request,
    context: Dashboard,
    session: SessionDep,
    form: CampaignForm,
    errors: Errors,
    status: int = 200,
) -> Response:
    providers = await list_providers(session, context.workspace_id)
    templates: list[tuple[str, str]] = []
    for provider in providers:
        for template in await list_templates(session, context.workspace_id, provider.id):
            label = f"{template.name} ({template.language}) · {provider.nickname}"
            if template.status != "APPROVED":
                label += f" · {template.status.lower()}"
            templates.append((str(template.id), label))
    segments = await list_segments(session, context.workspace_id)
    values = {
        "form": form,
        "errors": errors,
        "audiences": AUDIENCES,
        "dnd_choices": DND_CHOICES,
        "segments": [("", "Choose a segment")] + [(str(s.id), s.name) for s in segments],
        "providers": [("", "The default provider")]
        + [(str(p.id), f"{p.nickname} ({p.mobile_number})") for p in providers],
        "templates": [("", "Choose a template"), *templates],
        "variant_templates": [("", "No B variant"), *templates],
    }
    return page(request, "campaigns/wizard.html", values, status=status)


@router.get("/new")
async def new_campaign(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    form = CampaignForm(segment_id=request.query_params.get("segment_id", ""))
    return await _wizard(request, context, session, form, {})


_AUDIENCE_MODELS = {
    "SegmentAudience": "segment",
    "PhonesAudience": "phones",
    "IdentitiesAudience": "identities",
}


def _field_errors(found: Errors, form: CampaignForm) -> Errors:
    """Errors at the wizard's fields; of the audience union, only the kind chosen speaks."""
    errors: Errors = {}
    for raw_path, why in found.items():
        path = raw_path
        parts = raw_path.split(".")
        if len(parts) > 2 and parts[0] == "audience" and parts[1] in _AUDIENCE_MODELS:
            if _AUDIENCE_MODELS[parts[1]] != form.audience_kind:
                continue
            path = f"audience.{parts[2]}"
            why = "choose one" if why.startswith("Input should be") else why
        name = campaign_field(path)
        shown = why if name == path else f"{path}: {why}"
        errors[name] = f"{errors[name]}; {shown}" if name in errors else shown
    return errors


@router.post("/new")
async def create_campaign(
    request: Request, context: FormDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    form = CampaignForm.from_request(await request.form())
    body, errors = form.payload(context.tz)
    if not errors:
        try:
            made = await service.create_campaign(
                session, runtime, context.workspace_id, CampaignIn.model_validate(body)
            )
        except (ValidationError, ApiError) as exc:
            await session.rollback()
            errors = _field_errors(errors_of(exc), form)
        else:
            await session.commit()
            return RedirectResponse(f"/campaigns/{made.id}?done=created", 303)
    return await _wizard(request, context, session, form, errors, status=422)


# --- one campaign -------------------------------------------------------------------------------


def funnel(stats: Stats) -> list[tuple[str, int]]:
    """Cumulative steps: a read message was also sent and delivered."""
    read = stats.read
    delivered = stats.delivered + read
    sent = stats.sent + delivered
    return [
        ("targeted", stats.targeted),
        ("control", stats.control),
        ("skipped", sum(stats.skipped.values())),
        ("queued", stats.queued + stats.unknown),
        ("sent", sent),
        ("delivered", delivered),
        ("read", read),
        ("failed", sum(stats.failed.values())),
        ("expired", stats.expired),
        ("cancelled", stats.cancelled),
        ("replied", stats.replied),
        ("clicked", stats.clicked),
        ("converted", stats.conversions),
    ]


def _moving(out: CampaignOut) -> bool:
    """Whether the page should keep following the campaign."""
    stats = out.stats
    return out.status in ACTIVE or stats.queued + stats.unknown + stats.sent > 0


async def _campaign_values(session: SessionDep, context: Dashboard, campaign_id: int) -> Any:
    campaign = await service.get_campaign(session, context.workspace_id, campaign_id)
    out = await service.campaign_out(session, campaign)
    return {
        "campaign": out,
        "funnel": funnel(out.stats),
        "failures": sorted(out.stats.failed.items(), key=lambda item: -item[1]),
        "skips": sorted(out.stats.skipped.items(), key=lambda item: -item[1]),
        "actions": [name for name, states in ACTIONS.items() if out.status in states],
        "live": _moving(out),
    }


@router.get("/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    values = await _campaign_values(session, context, campaign_id)
    values["done"] = _DONE.get(request.query_params.get("done", ""))
    return page(request, "campaigns/campaign.html", values)


@router.get("/{campaign_id}/live")
async def campaign_live(
    request: Request, campaign_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    """The changing part of the campaign page: status, funnel, failures."""
    values = await _campaign_values(session, context, campaign_id)
    return page(request, "campaigns/_live.html", values)


@router.post("/{campaign_id}/preview")
async def campaign_preview(
    request: Request,
    campaign_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """The dry run: audience size, what would be skipped and why, rendered samples."""
    campaign = await service.get_campaign(session, context.workspace_id, campaign_id)
    try:
        preview = await preview_campaign(session, runtime, campaign)
        problem = None
    except ApiError as exc:
        preview, problem = None, exc.message
    values = {"preview": preview, "problem": problem}
    name = "campaigns/_preview.html" if is_htmx(request) else "campaigns/preview.html"
    return page(request, name, {**values, "campaign_id": campaign_id})


@router.post("/{campaign_id}/{action}")
async def act(campaign_id: int, action: str, context: FormDep, runtime: RuntimeDep) -> Response:
    steps = {
        "start": service.start_campaign,
        "pause": service.pause_campaign,
        "resume": service.resume_campaign,
        "cancel": service.cancel_campaign,
    }
    if action not in steps:
        raise ApiError(404, "not_found", f"there is no campaign action {action!r}")
    await steps[action](runtime, context.workspace_id, campaign_id)
    return RedirectResponse(f"/campaigns/{campaign_id}?done={action}", 303)


# --- statuses over time (the chart) -------------------------------------------------------------


def _seconds_since(column: Any, since: datetime, dialect: str) -> Any:
    """SQL for the seconds from ``since`` to ``column`` (SQLite keeps naive UTC datetimes)."""
    if dialect == "postgresql":
        return func.extract("epoch", column) - since.timestamp()
    return (func.julianday(column) - 2440587.5) * 86400.0 - since.timestamp()


async def status_series(session: SessionDep, campaign_id: int, since: datetime) -> dict[str, Any]:
    """Cumulative sent / delivered / read / failed counts at ``CHART_POINTS`` times, from the
    start to the last status change. Counted in the database by time bucket (a few rows per
    status, whatever the campaign's size), from the messages' own status times."""
    columns = {
        "sent": Message.sent_at,
        "delivered": Message.delivered_at,
        "read": Message.read_at,
        "failed": Message.failed_at,
    }
    ours = Message.campaign_id == campaign_id
    lasts = [await session.scalar(select(func.max(c)).where(ours)) for c in columns.values()]
    last = max((moment for moment in lasts if moment is not None), default=since)
    step = max((last - since).total_seconds(), 1.0) / CHART_POINTS
    dialect = session.get_bind().dialect.name
    series: dict[str, list[int]] = {}
    for name, column in columns.items():
        offset = _seconds_since(column, since, dialect) / step
        # PostgreSQL rounds a cast to integer; SQLite truncates (and may lack floor()).
        bucket = func.floor(offset) if dialect == "postgresql" else cast(offset, Integer)
        found = await session.execute(
            select(bucket, func.count()).where(ours, column.is_not(None)).group_by(bucket)
        )
        counts = [0] * CHART_POINTS
        for index, count in found.all():
            counts[min(max(int(index), 0), CHART_POINTS - 1)] += int(count)
        for index in range(1, CHART_POINTS):
            counts[index] += counts[index - 1]
        series[name] = counts
    times = [since + timedelta(seconds=step * (i + 1)) for i in range(CHART_POINTS)]
    return {"times": times, "series": series}


@router.get("/{campaign_id}/series")
async def campaign_series(campaign_id: int, context: DashboardDep, session: SessionDep) -> Response:
    campaign = await service.get_campaign(session, context.workspace_id, campaign_id)
    data = await status_series(session, campaign.id, campaign.started_at or campaign.created_at)
    labels = [moment.astimezone(context.tz).strftime("%H:%M:%S") for moment in data.pop("times")]
    return secure(JSONResponse({"labels": labels, **data}))
