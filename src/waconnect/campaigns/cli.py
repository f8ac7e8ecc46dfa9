"""``waconnect campaigns create|start|pause|resume|cancel|show [--follow]``.

Commands work on the database directly (like every other one-off command); the worker of
``waconnect serve`` (or ``waconnect worker``) runs the campaign.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from waconnect.campaigns.schemas import CampaignIn, CampaignOut
from waconnect.cli_support import DatabaseUrl, DataDir, run_async, with_workspace
from waconnect.cli_support import WorkspaceName as Workspace
from waconnect.runtime import Runtime

campaigns_app = typer.Typer(
    help="Campaigns: a template to a segment or a list, tracked per recipient.",
    no_args_is_help=True,
)

CampaignId = Annotated[int, typer.Argument(help="the campaign's id")]
FINISHED = ("completed", "cancelled")


def _run(func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    return run_async(func)(*args)


def _body(
    name: str | None,
    template: int | None,
    segment: int | None,
    phones: list[str],
    phones_file: Path | None,
    maps: list[str],
    defaults: list[str],
    from_file: Path | None,
    options: dict[str, Any],
) -> CampaignIn:
    from waconnect.templates.cli import parse_mapping
    from waconnect.web.errors import invalid_from

    if from_file is not None:
        body: dict[str, Any] = json.loads(from_file.read_text())
    else:
        body = {}
    if name:
        body["name"] = name
    if template is not None:
        body["template_id"] = template
        body["variables"] = parse_mapping(maps, defaults)
    if segment is not None:
        body["audience"] = {"segment_id": segment}
    listed = list(phones)
    if phones_file is not None:
        listed += [line.strip() for line in phones_file.read_text().splitlines() if line.strip()]
    if listed:
        body["audience"] = {"phones": listed}
    body.update({key: value for key, value in options.items() if value is not None})
    try:
        return CampaignIn.model_validate(body)
    except ValidationError as exc:
        raise invalid_from(exc) from None


@campaigns_app.command("create")
def create(
    name: Annotated[str | None, typer.Option("--name", help="the campaign's name")] = None,
    template: Annotated[int | None, typer.Option("--template", help="template id")] = None,
    segment: Annotated[int | None, typer.Option("--segment", help="segment id")] = None,
    phone: Annotated[list[str] | None, typer.Option("--phone", help="a phone (repeat)")] = None,
    phones_file: Annotated[
        Path | None, typer.Option("--phones-file", help="a file of phones, one per line")
    ] = None,
    map_items: Annotated[
        list[str] | None,
        typer.Option("--map", help="KEY=attribute:NAME or KEY=literal:VALUE (repeat)"),
    ] = None,
    default_items: Annotated[
        list[str] | None, typer.Option("--default", help="KEY=VALUE: the default of a --map")
    ] = None,
    provider: Annotated[int | None, typer.Option("--provider", help="provider id")] = None,
    start_at: Annotated[datetime | None, typer.Option("--start-at", help="ISO time")] = None,
    cutoff_at: Annotated[datetime | None, typer.Option("--cutoff-at", help="ISO time")] = None,
    throttle: Annotated[float | None, typer.Option("--throttle", help="messages/s")] = None,
    control: Annotated[float | None, typer.Option("--control", help="control group %")] = None,
    target_cap: Annotated[int | None, typer.Option("--target-cap", help="at most N")] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="the full JSON body of POST /campaigns")
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="start it right away")] = False,
    workspace: Workspace = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a draft campaign (or give --from-file with the API's JSON body); prints its id."""

    async def work(runtime: Runtime, workspace_id: int) -> int:
        from waconnect.campaigns import service

        schedule = None
        if start_at or cutoff_at:
            schedule = {"start_at": start_at, "cutoff_at": cutoff_at}
        body = _body(
            name,
            template,
            segment,
            phone or [],
            phones_file,
            map_items or [],
            default_items or [],
            from_file,
            {
                "provider_id": provider,
                "schedule": schedule,
                "throttle_per_second": throttle,
                "control_percent": control,
                "target_cap": target_cap,
            },
        )
        async with runtime.sessions() as session:
            campaign = await service.create_campaign(session, runtime, workspace_id, body)
            await session.commit()
            campaign_id = campaign.id
        if start:
            await service.start_campaign(runtime, workspace_id, campaign_id)
        return campaign_id

    async def main() -> None:
        campaign_id = await with_workspace(data_dir, database_url, workspace, work)
        typer.echo(str(campaign_id))

    _run(main)


def _transition(action: str) -> Callable[..., None]:
    def command(
        campaign_id: CampaignId,
        workspace: Workspace = "default",
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        async def work(runtime: Runtime, workspace_id: int) -> str:
            from waconnect.campaigns import service

            act = getattr(service, f"{action}_campaign")
            campaign = await act(runtime, workspace_id, campaign_id)
            return str(campaign.status)

        async def main() -> None:
            status = await with_workspace(data_dir, database_url, workspace, work)
            typer.echo(f"campaign {campaign_id}: {status}")

        _run(main)

    command.__doc__ = {
        "start": "Start a draft campaign (scheduled when its start time is ahead).",
        "pause": "Pause: no new request starts; requests in flight finish.",
        "resume": "Resume a paused campaign where it stopped.",
        "cancel": "Cancel: unsent messages become cancelled.",
    }[action]
    return command


for _action in ("start", "pause", "resume", "cancel"):
    campaigns_app.command(_action)(_transition(_action))


def describe(out: CampaignOut) -> str:
    stats = out.stats
    lines = [
        f"campaign {out.id} {out.name!r}: {out.status}"
        + (f" ({out.status_reason})" if out.status_reason else ""),
        f"  targeted {stats.targeted}: control {stats.control}, queued {stats.queued}, "
        f"unknown {stats.unknown}, sent {stats.sent}, delivered {stats.delivered}, "
        f"read {stats.read}, failed {sum(stats.failed.values())}, expired {stats.expired}, "
        f"cancelled {stats.cancelled}, skipped {sum(stats.skipped.values())}",
        f"  replied {stats.replied}, clicked {stats.clicked}, conversions {stats.conversions}",
    ]
    if stats.skipped:
        lines.append(
            "  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.skipped.items()))
        )
    if stats.failed:
        lines.append("  failed: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.failed.items())))
    if len(out.variants) > 1:
        for variant in out.variants:
            v = variant.stats
            lines.append(
                f"  variant {variant.name}: targeted {v.targeted}, sent or beyond "
                f"{v.sent + v.delivered + v.read}, conversions {v.conversions}"
            )
    return "\n".join(lines)


@campaigns_app.command("show")
def show(
    campaign_id: CampaignId,
    follow: Annotated[
        bool, typer.Option("--follow", help="a live progress bar until it completes")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
    every: Annotated[float, typer.Option("--every", min=0.1, help="seconds between updates")] = 1.0,
    workspace: Workspace = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Status and statistics (every recipient counted once, at its furthest point)."""

    async def read(runtime: Runtime, workspace_id: int) -> CampaignOut:
        from waconnect.campaigns import service

        async with runtime.sessions() as session:
            campaign = await service.get_campaign(session, workspace_id, campaign_id)
            return await service.campaign_out(session, campaign)

    async def work(runtime: Runtime, workspace_id: int) -> CampaignOut:
        out = await read(runtime, workspace_id)
        if follow and out.status not in FINISHED:
            out = await _follow(runtime, workspace_id, read, out, every)
        return out

    async def main() -> None:
        out = await with_workspace(data_dir, database_url, workspace, work)
        typer.echo(out.model_dump_json(indent=2) if as_json else describe(out))

    _run(main)


async def _audience_size(runtime: Runtime, workspace_id: int, out: CampaignOut) -> int | None:
    """How many the campaign will reach at most: the segment's count, the list's length."""
    from sqlalchemy import func, select

    from waconnect.campaigns.models import CampaignListEntry
    from waconnect.profiles import segments

    async with runtime.sessions() as session:
        if out.audience.get("segment_id") is not None:
            segment = await segments.get_segment(session, workspace_id, out.audience["segment_id"])
            node = await segments.compile_definition(session, workspace_id, segment.definition)
            size = await segments.count(session, runtime.clock.now(), workspace_id, node)
        else:
            size = int(
                await session.scalar(
                    select(func.count()).where(CampaignListEntry.campaign_id == out.id)
                )
                or 0
            )
    return min(size, out.target_cap) if out.target_cap else size


async def _follow(
    runtime: Runtime,
    workspace_id: int,
    read: Callable[[Runtime, int], Coroutine[Any, Any, CampaignOut]],
    out: CampaignOut,
    every: float,
) -> CampaignOut:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    total = await _audience_size(runtime, workspace_id, out)
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    pause = every
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("campaign", total=total, status=out.status, detail="")
        while True:
            s = out.stats
            done = s.targeted - s.queued
            detail = (
                f"sent {s.sent} delivered {s.delivered} read {s.read} "
                f"failed {sum(s.failed.values())} skipped {sum(s.skipped.values())} "
                f"unknown {s.unknown} queued {s.queued}"
            )
            if out.progress.audience_done:
                progress.update(task, total=s.targeted)
            progress.update(task, completed=done, status=out.status, detail=detail)
            if out.status in FINISHED:
                return out
            await asyncio.sleep(pause)
            began = time.monotonic()
            out = await read(runtime, workspace_id)
            # The statistics are one GROUP BY over every recipient (seconds at a million):
            # poll no more than a third of the time, whatever --every asks.
            pause = max(every, 2 * (time.monotonic() - began))
