"""``/api/v1/campaigns``: create, start, pause, resume, cancel, preview, stats, recipients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from waconnect.campaigns import service
from waconnect.campaigns.preview import preview_campaign
from waconnect.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPage,
    CampaignSummary,
    PreviewOut,
    RecipientPage,
)
from waconnect.web.deps import PrincipalDep, RuntimeDep, SessionDep

router = APIRouter(tags=["campaigns"])


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
async def create_campaign(
    body: CampaignIn, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> CampaignOut:
    """A draft campaign: a template (or A/B/C variants, or a template per attribute value) to a
    segment or an uploaded list. Start it with ``POST /campaigns/{id}/start``."""
    campaign = await service.create_campaign(session, runtime, principal.workspace_id, body)
    return await service.campaign_out(session, campaign)


@router.get("/campaigns", response_model=CampaignPage)
async def list_campaigns(
    principal: PrincipalDep,
    session: SessionDep,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CampaignPage:
    rows, next_cursor = await service.list_campaigns(
        session, principal.workspace_id, status, cursor, limit
    )
    return CampaignPage(
        items=[CampaignSummary.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    campaign_id: int, principal: PrincipalDep, session: SessionDep
) -> CampaignOut:
    """Status and statistics: every recipient counted once, at its furthest point."""
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    return await service.campaign_out(session, campaign)


@router.get("/campaigns/{campaign_id}/recipients", response_model=RecipientPage)
async def list_recipients(
    campaign_id: int,
    principal: PrincipalDep,
    session: SessionDep,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RecipientPage:
    """Who is in which state: control, skipped, or their message's status."""
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    return await service.list_recipients(session, campaign, status, cursor, limit)


@router.post("/campaigns/{campaign_id}/preview", response_model=PreviewOut)
async def preview(
    campaign_id: int, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> PreviewOut:
    """Dry run: audience size, what would be skipped and why, 5 rendered samples; sends nothing."""
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    return await preview_campaign(session, runtime, campaign)


async def _transition(
    action: str, campaign_id: int, workspace_id: int, runtime: RuntimeDep
) -> CampaignOut:
    act = {
        "start": service.start_campaign,
        "pause": service.pause_campaign,
        "resume": service.resume_campaign,
        "cancel": service.cancel_campaign,
    }[action]
    campaign = await act(runtime, workspace_id, campaign_id)
    async with runtime.sessions() as session:
        fresh = await service.get_campaign(session, workspace_id, campaign.id)
        return await service.campaign_out(session, fresh)


@router.post("/campaigns/{campaign_id}/start", response_model=CampaignOut)
async def start(campaign_id: int, principal: PrincipalDep, runtime: RuntimeDep) -> CampaignOut:
    """Draft -> running (or scheduled, when its start time is ahead)."""
    return await _transition("start", campaign_id, principal.workspace_id, runtime)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut)
async def pause(campaign_id: int, principal: PrincipalDep, runtime: RuntimeDep) -> CampaignOut:
    """Hold its queued messages: no new request starts; requests in flight finish."""
    return await _transition("pause", campaign_id, principal.workspace_id, runtime)


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignOut)
async def resume(campaign_id: int, principal: PrincipalDep, runtime: RuntimeDep) -> CampaignOut:
    """Continue where it stopped."""
    return await _transition("resume", campaign_id, principal.workspace_id, runtime)


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel(campaign_id: int, principal: PrincipalDep, runtime: RuntimeDep) -> CampaignOut:
    """Stop for good: its unsent messages become ``cancelled``."""
    return await _transition("cancel", campaign_id, principal.workspace_id, runtime)
