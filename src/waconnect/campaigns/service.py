"""Campaigns: create, start, pause, resume, cancel, read their statistics and recipients.

Lifecycle: ``draft`` -> ``scheduled`` (start time ahead) -> ``running`` -> ``completed``; a
scheduled or running campaign may be ``paused`` (its queued outbox rows are ``held``: the
dispatcher claims none of them, requests already in flight finish) and resumed, or
``cancelled`` (its unsent rows become ``cancelled``). The worker's campaign loop
(campaigns/runner.py) streams the audience into the outbox and completes the campaign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.campaigns.models import (
    Campaign,
    CampaignListEntry,
    CampaignRecipient,
    CampaignVariant,
)
from waconnect.campaigns.planner import quick_reply_mapping
from waconnect.campaigns.schemas import (
    RECIPIENT_STATES,
    CampaignIn,
    CampaignOut,
    Goal,
    IdentitiesAudience,
    PhonesAudience,
    Progress,
    RecipientOut,
    RecipientPage,
    Schedule,
    SegmentAudience,
    Stats,
    TemplateChoice,
    VariantIn,
    VariantOut,
)
from waconnect.db.base import UTCDateTime, is_storable_id
from waconnect.messaging.models import Message
from waconnect.messaging.service import template_definition
from waconnect.messaging.states import Status
from waconnect.profiles.events import add_event_listener
from waconnect.profiles.segments import get_segment
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import default_provider, get_provider
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.templates.personalization import (
    MappingError,
    compile_mapping,
    mapping_error_response,
    template_slots,
)
from waconnect.templates.service import add_in_use_check
from waconnect.web.errors import ApiError, conflict, invalid, not_found

ACTIVE = ("scheduled", "running", "paused")
RECIPIENTS = cast(Table, CampaignRecipient.__table__)
LIST_ENTRIES = cast(Table, CampaignListEntry.__table__)
LETTERS = "ABC"


# --- create -------------------------------------------------------------------------------------


async def _provider(
    session: AsyncSession, workspace_id: int, provider_id: int | None
) -> ProviderConfig:
    if provider_id is None:
        found = await default_provider(session, workspace_id)
        if found is None:
            raise ApiError(
                422,
                "no_provider",
                "this workspace has no provider config yet; create one under "
                "/api/v1/providers or give provider_id",
            )
        return found
    return await get_provider(session, workspace_id, provider_id)


async def _template(
    session: AsyncSession, provider: ProviderConfig, template_id: int, field: str
) -> Template:
    template = await session.get(Template, template_id) if is_storable_id(template_id) else None
    if template is None or template.workspace_id != provider.workspace_id:
        raise invalid({field: f"no template {template_id} in this workspace"})
    if template.provider_id != provider.id:
        raise invalid(
            {
                field: f"template {template_id} ({template.name}) belongs to provider "
                f"{template.provider_id}, not to provider {provider.id} that sends this campaign"
            }
        )
    if template.status != "APPROVED":
        raise ApiError(
            409,
            "template_not_approved",
            f"template {template.name!r} ({template.language}) is {template.status}; only "
            "APPROVED templates can be sent",
            fields={field: f"status {template.status}"},
        )
    return template


def _variant_specs(body: CampaignIn) -> list[tuple[str, str, VariantIn | TemplateChoice, Any, Any]]:
    """(field path, name, choice, percent, match value) per variant, in order."""
    if body.template_id is not None:
        choice = TemplateChoice(template_id=body.template_id, variables=body.variables)
        return [("template_id", "A", choice, None, None)]
    if body.variants is not None:
        return [
            (f"variants.{i}", v.name or LETTERS[i], v, v.percent, None)
            for i, v in enumerate(body.variants)
        ]
    assert body.by_property is not None
    specs: list[tuple[str, str, VariantIn | TemplateChoice, Any, Any]] = [
        (f"by_property.cases.{value}", value[:50], choice, None, value)
        for value, choice in body.by_property.cases.items()
    ]
    if body.by_property.default is not None:
        specs.append(("by_property.default", "default", body.by_property.default, None, None))
    return specs


async def create_campaign(
    session: AsyncSession, runtime: Runtime, workspace_id: int, body: CampaignIn
) -> Campaign:
    now = runtime.clock.now()
    provider = await _provider(session, workspace_id, body.provider_id)
    spec = body.model_dump(mode="json", exclude={"audience"})
    extra = quick_reply_mapping(spec)
    variants: list[CampaignVariant] = []
    for number, (field, name, choice, percent, match) in enumerate(_variant_specs(body)):
        template = await _template(session, provider, choice.template_id, f"{field}.template_id")
        definition = template_definition(template)
        keys = {slot.key for slot in template_slots(definition)}
        payloads = {k: v for k, v in extra.items() if k in keys}
        try:
            compile_mapping(definition, {**choice.variables, **payloads})
        except MappingError as exc:
            raise mapping_error_response(exc, f"{field}.variables") from None
        variants.append(
            CampaignVariant(
                number=number,
                name=name,
                template_id=template.id,
                variables=choice.variables,
                percent=percent,
                match_value=match,
            )
        )
    audience = body.audience
    kind, segment_id = "phones", None
    if isinstance(audience, SegmentAudience):
        kind, segment_id = (
            "segment",
            (await get_segment(session, workspace_id, audience.segment_id)).id,
        )
    elif isinstance(audience, IdentitiesAudience):
        kind = "identities"
    campaign = Campaign(
        workspace_id=workspace_id,
        name=body.name,
        provider_id=provider.id,
        status="draft",
        audience_kind=kind,
        segment_id=segment_id,
        spec=spec,
        start_at=body.schedule.start_at,
        cutoff_at=body.schedule.cutoff_at,
        throttle_per_second=body.throttle_per_second,
        target_cap=body.target_cap,
        control_percent=body.control_percent,
        goal_event=body.goal.event if body.goal else None,
        goal_window_minutes=body.goal.window_minutes if body.goal else None,
        cursor=0,
        audience_done=False,
        messages_queued=0,
        recipients_seen=0,
        settled=False,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    await session.flush()
    for variant in variants:
        variant.campaign_id = campaign.id
    session.add_all(variants)
    if isinstance(audience, PhonesAudience | IdentitiesAudience):
        values = audience.phones if isinstance(audience, PhonesAudience) else audience.identities
        await session.execute(
            LIST_ENTRIES.insert(),
            [
                {"campaign_id": campaign.id, "position": i + 1, "value": str(v).strip()[:200]}
                for i, v in enumerate(values)
            ],
        )
    await session.flush()
    return campaign


# --- read ---------------------------------------------------------------------------------------


async def get_campaign(session: AsyncSession, workspace_id: int, campaign_id: int) -> Campaign:
    campaign = await session.get(Campaign, campaign_id) if is_storable_id(campaign_id) else None
    if campaign is None or campaign.workspace_id != workspace_id:
        raise not_found(f"campaign {campaign_id}")
    return campaign


async def list_campaigns(
    session: AsyncSession, workspace_id: int, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Campaign], str | None]:
    query = select(Campaign).where(Campaign.workspace_id == workspace_id)
    if status:
        query = query.where(Campaign.status == status)
    if cursor:
        if not cursor.isdigit():
            raise invalid({"cursor": "use the next_cursor of the previous page"})
        query = query.where(Campaign.id < int(cursor))
    rows = list(await session.scalars(query.order_by(Campaign.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more and rows else None)


def _fold(
    stats: Stats, kind: str, reason: str | None, status: str | None, code: str | None, n: int
) -> None:
    """Count ``n`` recipients at their furthest point."""
    stats.targeted += n
    if kind == "control":
        stats.control += n
    elif kind == "skipped":
        key = reason or "unknown"
        stats.skipped[key] = stats.skipped.get(key, 0) + n
    elif status == Status.FAILED:
        key = code or "unknown"
        stats.failed[key] = stats.failed.get(key, 0) + n
    elif status in ("queued", "unknown", "sent", "delivered", "read", "expired", "cancelled"):
        setattr(stats, status, getattr(stats, status) + n)
    else:  # a message row that is gone (its workspace data erased): say so, never drop it
        stats.skipped["message_deleted"] = stats.skipped.get("message_deleted", 0) + n


async def campaign_stats(
    session: AsyncSession, campaign_id: int
) -> tuple[Stats, dict[int, Stats], int]:
    """(total, per variant number, control conversions) in one GROUP BY over recipients."""
    r, m = CampaignRecipient, Message
    failed_code = case((m.status == Status.FAILED, m.error_code), else_=None)
    rows = await session.execute(
        select(
            r.kind,
            r.variant,
            r.skip_reason,
            m.status,
            failed_code,
            func.count(),
            func.sum(case((m.replied_count > 0, 1), else_=0)),
            func.sum(case((m.clicked_count > 0, 1), else_=0)),
            func.sum(case((r.converted_at.is_not(None), 1), else_=0)),
        )
        .select_from(r)
        .outerjoin(m, m.id == r.message_id)
        .where(r.campaign_id == campaign_id)
        .group_by(r.kind, r.variant, r.skip_reason, m.status, failed_code)
    )
    total = Stats()
    per_variant: dict[int, Stats] = {}
    control_conversions = 0
    for kind, variant, reason, status, code, n, replied, clicked, converted in rows.all():
        targets = [total]
        if variant is not None:
            targets.append(per_variant.setdefault(variant, Stats()))
        for stats in targets:
            _fold(stats, kind, reason, status, code, n)
            stats.replied += int(replied or 0)
            stats.clicked += int(clicked or 0)
            stats.conversions += int(converted or 0)
        if kind == "control":
            control_conversions += int(converted or 0)
    return total, per_variant, control_conversions


async def campaign_out(session: AsyncSession, campaign: Campaign) -> CampaignOut:
    total, per_variant, control_conversions = await campaign_stats(session, campaign.id)
    variants = list(
        await session.scalars(
            select(CampaignVariant)
            .where(CampaignVariant.campaign_id == campaign.id)
            .order_by(CampaignVariant.number)
        )
    )
    audience: dict[str, Any] = {"kind": campaign.audience_kind}
    if campaign.segment_id is not None:
        audience["segment_id"] = campaign.segment_id
    goal = None
    if campaign.goal_event and campaign.goal_window_minutes:
        goal = Goal(event=campaign.goal_event, window_minutes=campaign.goal_window_minutes)
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,  # type: ignore[arg-type]
        status_reason=campaign.status_reason,
        provider_id=campaign.provider_id,
        audience=audience,
        schedule=Schedule(start_at=campaign.start_at, cutoff_at=campaign.cutoff_at),
        throttle_per_second=campaign.throttle_per_second,
        target_cap=campaign.target_cap,
        control_percent=campaign.control_percent,
        goal=goal,
        stats=total,
        control_conversions=control_conversions,
        variants=[
            VariantOut(
                number=v.number,
                name=v.name,
                template_id=v.template_id,
                percent=v.percent,
                match_value=v.match_value,
                stats=per_variant.get(v.number, Stats()),
            )
            for v in variants
        ],
        progress=Progress(
            recipients=campaign.recipients_seen,
            messages=campaign.messages_queued,
            audience_done=campaign.audience_done,
        ),
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
    )


async def list_recipients(
    session: AsyncSession,
    campaign: Campaign,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> RecipientPage:
    r, m = CampaignRecipient, Message
    query = (
        select(r, m.status, m.error_code)
        .outerjoin(m, m.id == r.message_id)
        .where(r.campaign_id == campaign.id)
    )
    if status:
        if status not in RECIPIENT_STATES:
            raise invalid({"status": f"one of {', '.join(RECIPIENT_STATES)}"})
        if status in ("control", "skipped"):
            query = query.where(r.kind == status)
        else:
            query = query.where(r.kind == "message", m.status == status)
    if cursor:
        if not cursor.isdigit():
            raise invalid({"cursor": "use the next_cursor of the previous page"})
        query = query.where(r.id > int(cursor))
    rows = (await session.execute(query.order_by(r.id).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        RecipientOut(
            id=rec.id,
            position=rec.position,
            profile_id=rec.profile_id,
            phone=rec.phone,
            variant=rec.variant,
            status=rec.kind if rec.kind != "message" else (message_status or "deleted"),
            skip_reason=rec.skip_reason,
            skip_detail=rec.skip_detail,
            message_id=rec.message_id,
            error_code=error_code if message_status == Status.FAILED else None,
            converted_at=rec.converted_at,
        )
        for rec, message_status, error_code in rows
    ]
    return RecipientPage(items=items, next_cursor=str(rows[-1][0].id) if more and rows else None)


# --- lifecycle ----------------------------------------------------------------------------------


def _wake(runtime: Runtime) -> None:
    runner = runtime.extras.get("campaigns")
    if runner is not None:
        runner.wake()  # type: ignore[attr-defined]


async def _locked(session: AsyncSession, workspace_id: int, campaign_id: int) -> Campaign:
    """The campaign, locked against the loop's chunk writes on PostgreSQL."""
    if not is_storable_id(campaign_id):
        raise not_found(f"campaign {campaign_id}")
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    )
    if campaign is None or campaign.workspace_id != workspace_id:
        raise not_found(f"campaign {campaign_id}")
    return campaign


def _refuse(campaign: Campaign, action: str, allowed: Sequence[str]) -> ApiError:
    return conflict(
        f"campaign {campaign.id} is {campaign.status}; {action} works on a campaign that is "
        f"{' or '.join(allowed)}",
        status=campaign.status,
    )


async def start_campaign(runtime: Runtime, workspace_id: int, campaign_id: int) -> Campaign:
    async with runtime.writer() as session:
        campaign = await _locked(session, workspace_id, campaign_id)
        if campaign.status != "draft":
            raise _refuse(campaign, "start", ["draft"])
        now = runtime.clock.now()
        if campaign.cutoff_at is not None and campaign.cutoff_at <= now:
            raise conflict(
                f"the campaign's cut-off ({campaign.cutoff_at.isoformat()}) has passed; "
                "nothing could be sent"
            )
        if campaign.start_at is not None and campaign.start_at > now:
            campaign.status = "scheduled"
        else:
            campaign.status = "running"
            campaign.started_at = now
            campaign.failures_from = now
        campaign.updated_at = now
        await session.commit()
        await session.refresh(campaign)
    _wake(runtime)
    return campaign


async def pause_campaign(
    runtime: Runtime, workspace_id: int, campaign_id: int, reason: str | None = None
) -> Campaign:
    async with runtime.writer() as session:
        campaign = await _locked(session, workspace_id, campaign_id)
        if campaign.status not in ("scheduled", "running"):
            raise _refuse(campaign, "pause", ["scheduled", "running"])
        await hold_rows(session, campaign, reason or "paused through the API", runtime.clock.now())
        await session.commit()
        await session.refresh(campaign)
    return campaign


async def hold_rows(session: AsyncSession, campaign: Campaign, reason: str, now: datetime) -> None:
    """Pause: hold every queued row, leased ones too (a retry of one stays held)."""
    campaign.status = "paused"
    campaign.status_reason = reason
    campaign.updated_at = now
    await session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.status == Status.QUEUED)
        .values(held=True)
    )


async def resume_campaign(runtime: Runtime, workspace_id: int, campaign_id: int) -> Campaign:
    async with runtime.writer() as session:
        campaign = await _locked(session, workspace_id, campaign_id)
        if campaign.status != "paused":
            raise _refuse(campaign, "resume", ["paused"])
        now = runtime.clock.now()
        if (
            campaign.started_at is None
            and campaign.start_at is not None
            and campaign.start_at > now
        ):
            campaign.status = "scheduled"
        else:
            campaign.status = "running"
            campaign.started_at = campaign.started_at or now
        campaign.status_reason = None
        campaign.failures_from = now
        campaign.updated_at = now
        await session.execute(
            update(Message)
            .where(Message.campaign_id == campaign.id, Message.status == Status.QUEUED)
            .values(held=False)
        )
        await session.commit()
        await session.refresh(campaign)
    _wake(runtime)
    wake_dispatcher_of(runtime)
    return campaign


def wake_dispatcher_of(runtime: Runtime) -> None:
    from waconnect.messaging.service import wake_dispatcher

    wake_dispatcher(runtime)


async def cancel_campaign(runtime: Runtime, workspace_id: int, campaign_id: int) -> Campaign:
    async with runtime.writer() as session:
        campaign = await _locked(session, workspace_id, campaign_id)
        if campaign.status not in ("draft", *ACTIVE):
            raise _refuse(campaign, "cancel", ["draft", *ACTIVE])
        now = runtime.clock.now()
        campaign.status = "cancelled"
        campaign.status_reason = "cancelled through the API"
        campaign.finished_at = now
        campaign.updated_at = now
        await cancel_rows(session, campaign.id, now)
        await session.commit()
        await session.refresh(campaign)
    return campaign


async def cancel_rows(session: AsyncSession, campaign_id: int, now: datetime) -> int:
    """Unsent rows become ``cancelled``; leased ones (in flight) are held so no retry follows;
    the loop cancels those once their request is over. Returns the rows still leased."""
    await session.execute(
        update(Message)
        .where(
            Message.campaign_id == campaign_id,
            Message.status == Status.QUEUED,
            Message.lease_owner.is_(None),
        )
        .values(
            status=Status.CANCELLED,
            error_code="waconnect:cancelled",
            error_title="its campaign was cancelled before it was sent",
            updated_at=now,
        )
    )
    result = await session.execute(
        update(Message)
        .where(Message.campaign_id == campaign_id, Message.status == Status.QUEUED)
        .values(held=True)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- hooks: templates in use, goal conversions ---------------------------------------------------


async def template_in_use(session: AsyncSession, template_id: int) -> str | None:
    row = (
        await session.execute(
            select(Campaign.name, Campaign.status)
            .join(CampaignVariant, CampaignVariant.campaign_id == Campaign.id)
            .where(CampaignVariant.template_id == template_id, Campaign.status.in_(ACTIVE))
            .limit(1)
        )
    ).first()
    return None if row is None else f"campaign {row[0]!r} ({row[1]})"


async def record_conversions(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Event listener: a goal event inside a campaign's window converts its recipient once."""
    names = {row["name"] for row in rows}
    if not names:
        return
    goals = (
        await session.execute(
            select(Campaign.id, Campaign.goal_event, Campaign.goal_window_minutes).where(
                Campaign.goal_event.in_(names), Campaign.status != "draft"
            )
        )
    ).all()
    if not goals:
        return
    r = RECIPIENTS
    ts, since = bindparam("ts", type_=UTCDateTime()), bindparam("since", type_=UTCDateTime())
    for campaign_id, event, window in goals:
        params = [
            {
                "c_id": campaign_id,
                "p_id": row["profile_id"],
                "ts": row["ts"],
                "since": row["ts"] - timedelta(minutes=window or 0),
            }
            for row in rows
            if row["name"] == event and row.get("profile_id") is not None
        ]
        if params:
            await session.execute(
                update(r)
                .where(
                    and_(
                        r.c.campaign_id == bindparam("c_id"),
                        r.c.profile_id == bindparam("p_id"),
                        r.c.converted_at.is_(None),
                        r.c.kind != "skipped",
                        r.c.created_at <= ts,
                        r.c.created_at >= since,
                    )
                )
                .values(converted_at=ts),
                params,
            )


add_in_use_check(template_in_use)
add_event_listener(
    record_conversions,
    busy_when="SELECT 1 FROM campaigns WHERE status != 'draft' "
    "AND goal_event IN (SELECT value FROM json_each($1)) LIMIT 1",
)
