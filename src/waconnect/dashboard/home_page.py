"""The home page: how many messages are in each state, and where to start."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from waconnect.dashboard.auth import DashboardDep
from waconnect.dashboard.render import page
from waconnect.messaging.service import count_by_status
from waconnect.providers.service import list_providers
from waconnect.web.deps import SessionDep

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    counts = await count_by_status(session, context.workspace_id, None)
    providers = await list_providers(session, context.workspace_id)
    return page(
        request,
        "home.html",
        {"counts": counts, "total": sum(counts.values()), "providers": providers},
    )
