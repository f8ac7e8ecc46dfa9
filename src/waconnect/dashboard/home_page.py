"""The home page: where to start, how many messages are in each state, recent campaigns."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from waconnect.campaigns.service import list_campaigns
from waconnect.dashboard.auth import DashboardDep
from waconnect.dashboard.render import page
from waconnect.messaging.service import count_by_status
from waconnect.profiles.segments import list_segments
from waconnect.profiles.service import list_profiles
from waconnect.providers.service import list_providers
from waconnect.templates.service import list_templates
from waconnect.web.deps import ClockDep, SessionDep

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(
    request: Request, context: DashboardDep, session: SessionDep, clock: ClockDep
) -> Response:
    counts = await count_by_status(session, context.workspace_id, None)
    providers = await list_providers(session, context.workspace_id)
    campaigns, _next = await list_campaigns(session, context.workspace_id, None, None, 5)
    has_template = False
    for provider in providers:
        has_template = has_template or bool(
            await list_templates(session, context.workspace_id, provider.id)
        )
    profiles = await list_profiles(
        session, clock.now(), context.workspace_id, None, None, None, None, None, 1
    )
    steps = [
        ("Connect a WhatsApp provider", "/connect/new", bool(providers)),
        ("Enter or import its templates", "/templates", has_template),
        ("Import your customers' profiles", "/profiles/import", bool(profiles.items)),
        (
            "Build a segment",
            "/segments/new",
            bool(await list_segments(session, context.workspace_id)),
        ),
        ("Run a campaign", "/campaigns/new", bool(campaigns)),
    ]
    return page(
        request,
        "home.html",
        {
            "counts": counts,
            "total": sum(counts.values()),
            "providers": providers,
            "campaigns": campaigns,
            "steps": steps,
        },
    )
