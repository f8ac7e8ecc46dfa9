"""``waconnect journeys create|publish|pause|resume|stop|show|list``.

Definitions come from a YAML (or JSON) file, validated as the API does (errors name the node).
Commands work on the database directly; the worker of ``waconnect serve`` (or ``waconnect
worker``) moves the profiles.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from waconnect.cli_support import DatabaseUrl, DataDir, fail, run_async, with_workspace
from waconnect.cli_support import WorkspaceName as Workspace
from waconnect.journeys.schemas import JourneyIn
from waconnect.runtime import Runtime
from waconnect.web.errors import ApiError

journeys_app = typer.Typer(
    help="Journeys: automated flows per profile (trigger, waits, branches, sends).",
    no_args_is_help=True,
)

JourneyId = Annotated[int, typer.Argument(help="the journey's id")]


def _run(func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    return run_async(func)(*args)


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _api_error_line(exc: ApiError) -> str:
    if exc.fields:
        return "; ".join(f"{key}: {why}" for key, why in exc.fields.items())
    return exc.message


async def _with_workspace(
    data_dir: Path | None,
    database_url: str | None,
    workspace: str,
    work: Callable[[Runtime, int], Coroutine[Any, Any, Any]],
) -> Any:
    try:
        return await with_workspace(data_dir, database_url, workspace, work)
    except ApiError as exc:
        raise _fail(_api_error_line(exc)) from None


def read_definition(file: Path) -> JourneyIn:
    """A YAML or JSON file (JSON is YAML) as a journey definition; one clear line if not."""
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise _fail(f"{file} is not valid YAML{at}") from None
    if not isinstance(raw, dict):
        raise _fail(f"{file}: a journey is a mapping with name, trigger, start and nodes")
    try:
        return JourneyIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "journey"
        reason = "unknown field" if first.get("type") == "extra_forbidden" else first.get("msg")
        raise _fail(f"{file}: {where}: {reason}") from None


@journeys_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="the definition, YAML or JSON")],
    publish: Annotated[bool, typer.Option("--publish", help="publish it at once")] = False,
    update: Annotated[
        bool, typer.Option("--update", help="replace the draft of the journey with this name")
    ] = False,
    workspace: Workspace = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Save a journey from a YAML/JSON file (validated; errors name the node)."""
    body = read_definition(file)

    async def work(runtime: Runtime, workspace_id: int) -> None:
        from sqlalchemy import select

        from waconnect.journeys import service
        from waconnect.journeys.models import Journey

        now = runtime.clock.now()
        async with runtime.writer() as session:
            existing = await session.scalar(
                select(Journey).where(
                    Journey.workspace_id == workspace_id, Journey.name == body.name.strip()
                )
            )
            if existing is not None and not update:
                raise _fail(
                    f"a journey named {body.name.strip()!r} exists already (id {existing.id}); "
                    "use --update to replace its draft"
                )
            if existing is not None:
                journey = await service.update_journey(
                    session, now, workspace_id, existing.id, body
                )
                verb = "updated"
            else:
                journey = await service.create_journey(session, now, workspace_id, body)
                verb = "created"
            if publish:
                journey = await service.publish(session, now, workspace_id, journey.id)
            out = await service.journey_out(session, journey)
            await session.commit()
        version = f", version {out.live_version}" if out.live_version else ""
        typer.echo(f"journey {out.id} {out.name!r} {verb} ({out.status}{version})")

    _run(_with_workspace, data_dir, database_url, workspace, work)


@journeys_app.command("publish")
def publish_command(
    journey_id: JourneyId,
    workspace: Workspace = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Publish the draft as a new version; profiles inside finish on theirs."""

    async def work(runtime: Runtime, workspace_id: int) -> None:
        from waconnect.journeys import service

        async with runtime.writer() as session:
            journey = await service.publish(session, runtime.clock.now(), workspace_id, journey_id)
            out = await service.journey_out(session, journey)
            await session.commit()
        typer.echo(
            f"journey {out.id} {out.name!r} published: version {out.live_version} ({out.status})"
        )

    _run(_with_workspace, data_dir, database_url, workspace, work)


def _status_command(action: str, done: str) -> Callable[..., None]:
    def command(
        journey_id: JourneyId,
        workspace: Workspace = "default",
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        async def work(runtime: Runtime, workspace_id: int) -> None:
            from waconnect.journeys import service

            async with runtime.writer() as session:
                journey = await service.set_status(
                    session, runtime, workspace_id, journey_id, action
                )
                name, status = journey.name, journey.status
                await session.commit()
            typer.echo(f"journey {journey_id} {name!r} {done} ({status})")

        _run(_with_workspace, data_dir, database_url, workspace, work)

    command.__doc__ = {
        "pause": "Pause: no new entries, profiles inside hold where they are.",
        "resume": "Resume a paused journey.",
        "stop": "Stop: every profile inside leaves; unsent messages are cancelled.",
    }[action]
    return command


journeys_app.command("pause")(_status_command("pause", "paused"))
journeys_app.command("resume")(_status_command("resume", "resumed"))
journeys_app.command("stop")(_status_command("stop", "stopped"))


@journeys_app.command("show")
def show(
    journey_id: JourneyId,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON the API returns")] = False,
    workspace: Workspace = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The journey, its status and version, and its stats per journey and per node."""

    async def work(runtime: Runtime, workspace_id: int) -> None:
        from waconnect.journeys import service

        async with runtime.sessions() as session:
            journey = await service.get_journey(session, workspace_id, journey_id)
            out = await service.journey_out(session, journey, with_stats=True)
        if as_json:
            typer.echo(out.model_dump_json(indent=2))
            return
        _print(out.model_dump())

    _run(_with_workspace, data_dir, database_url, workspace, work)


def _print(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    totals = out["stats"]["journey"]
    version = f"version {out['live_version']}" if out["live_version"] else "not published"
    console.print(f"[bold]journey {out['id']}[/bold] {out['name']!r}: {out['status']}, {version}")
    exited = ", ".join(f"{k} {v}" for k, v in totals["exited"].items()) or "none"
    console.print(
        f"entered {totals['entered']}, inside {totals['inside']} (waiting {totals['waiting']}), "
        f"completed {totals['completed']}, goal reached {totals['goal_reached']}, left: {exited}"
    )
    table = Table("node", "type", "entered", "here now", "waiting", "exits")
    nodes = out["definition"]["nodes"]
    stats = out["stats"]["nodes"]
    for node_id, node in nodes.items():
        figures = stats.get(node_id, {"entered": 0, "here_now": 0, "waiting_now": 0, "exits": {}})
        table.add_row(
            node_id,
            str(node.get("type")),
            str(figures["entered"]),
            str(figures["here_now"]),
            str(figures["waiting_now"]),
            ", ".join(f"{k} {v}" for k, v in figures["exits"].items()),
        )
    console.print(table)


@journeys_app.command("list")
def list_command(
    workspace: Workspace = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Every journey of the workspace: id, status, live version, name."""

    async def work(runtime: Runtime, workspace_id: int) -> None:
        from waconnect.journeys import service

        async with runtime.sessions() as session:
            page = await service.list_journeys(session, workspace_id, None, None, 200)
        for item in page.items:
            version = item.live_version or "-"
            typer.echo(f"{item.id}\t{item.status}\tv{version}\t{item.name}")

    _run(_with_workspace, data_dir, database_url, workspace, work)
