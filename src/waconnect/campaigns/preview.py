"""The dry run: the same decisions the campaign loop would make, counted, nothing written."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.campaigns.models import Campaign
from waconnect.campaigns.planner import AudienceReader, Decider, decide_chunk, load_variants
from waconnect.campaigns.schemas import PreviewOut, Sample
from waconnect.runtime import Runtime
from waconnect.templates.render import render_template
from waconnect.web.errors import conflict
from waconnect.workspaces.service import get_workspace, settings_of

SAMPLES = 5


async def preview_campaign(
    session: AsyncSession, runtime: Runtime, campaign: Campaign
) -> PreviewOut:
    """Walk the whole audience in chunks (as the loop will), keeping only counts and 5 samples.

    Phones already seen are kept in a set to find duplicates: a few tens of bytes per member.
    """
    now = runtime.clock.now()
    settings = settings_of(await get_workspace(session, campaign.workspace_id))
    try:
        variants = await load_variants(session, campaign)
    except LookupError as exc:
        raise conflict(str(exc)) from None
    by_number = {v.number: v for v in variants}
    decider = Decider(campaign, variants, settings)
    reader = AudienceReader(session, campaign, settings)
    chunk = runtime.settings.campaign_chunk_size
    seen: set[str] = set()
    out = PreviewOut(audience=0, would_send=0, control=0, skipped={}, samples=[])
    cursor = 0
    while True:
        members, last = await reader.next_chunk(cursor, chunk, now)
        if last is None:
            break
        cursor = last
        for decision in await decide_chunk(session, decider, members, seen, now):
            out.audience += 1
            if decision.kind == "control":
                out.control += 1
            elif decision.kind == "skipped":
                reason = decision.reason or "unknown"
                out.skipped[reason] = out.skipped.get(reason, 0) + 1
            elif campaign.target_cap is None or out.would_send < campaign.target_cap:
                out.would_send += 1
                if len(out.samples) < SAMPLES:
                    variant = by_number[decision.variant or 0]
                    components = decision.components or []
                    text = render_template(dict(variant.personalizer.definition), components)
                    out.samples.append(
                        Sample(
                            phone=decision.member.phone,
                            profile_id=decision.member.profile_id,
                            variant=variant.name,
                            text=text.preview,
                            components=components,
                        )
                    )
    return out
