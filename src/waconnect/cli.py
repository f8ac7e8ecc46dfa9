"""The ``waconnect`` command (Typer). Errors exit non-zero with one clear line on stderr."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from waconnect.campaigns.cli import campaigns_app
from waconnect.cli_support import (
    DatabaseUrl,
    DataDir,
    WorkspaceName,
    _prepared,
    _settings,
    database,
    fail,
    prepare_long_run,
    run_async,
)
from waconnect.journeys.cli import journeys_app
from waconnect.runtime import Runtime
from waconnect.settings import Settings

app = typer.Typer(
    help="waconnect: self-hostable WhatsApp engagement platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)
workspaces_app = typer.Typer(help="Workspaces: one business's isolated data.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users (email and password).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
profiles_app = typer.Typer(help="Profiles: tracked customers.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
templates_app = typer.Typer(help="Templates: test sends.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(journeys_app, name="journeys")

_database = database  # the name this module's commands use


@run_async
async def _check_database(settings: Settings) -> None:
    """Migrate before the server starts, so that a bad database fails in one line, not a trace."""
    runtime = await _prepared(settings)
    await runtime.close()


# --- serve ----------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="WACONNECT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WACONNECT_PORT")] = 8000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    public_url: Annotated[str | None, typer.Option(envvar="WACONNECT_PUBLIC_URL")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only")] = False,
    with_simulator: Annotated[
        bool, typer.Option("--with-simulator", help="also run the MSG91 simulator, connected")
    ] = False,
    simulator_port: Annotated[int, typer.Option(help="the simulator's port")] = 9091,
    log_level: Annotated[str, typer.Option(envvar="WACONNECT_LOG_LEVEL")] = "info",
) -> None:
    """Run the server: dashboard, API, callbacks and (unless --no-worker) the worker."""
    import uvicorn

    from waconnect.web.app import create_app

    try:
        settings = _settings(
            data_dir, database_url, host=host, port=port, public_url=public_url, log_level=log_level
        )
        if no_worker:
            settings.run_worker = False
        background = []
        if with_simulator:
            from waconnect.sandbox import with_simulator as simulator_starter

            settings.simulator_url = f"http://127.0.0.1:{simulator_port}"
            background.append(simulator_starter(simulator_port))
        application = create_app(settings, background=background)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    _check_database(settings)
    typer.echo(f"waconnect {settings.resolved_public_url}  (API docs: /docs)", err=True)
    if with_simulator:
        typer.echo(f"MSG91 simulator on {settings.simulator_url}: provider 'Simulator'", err=True)
    prepare_long_run()
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)


@app.command()
def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(envvar="WACONNECT_LOG_LEVEL")] = "info",
) -> None:
    """Run a worker alone (dispatcher); several may run on PostgreSQL, one on SQLite."""
    import logging

    from waconnect.worker import WorkerRefused, run_forever

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        runtime = Runtime.build(_settings(data_dir, database_url))
        prepare_long_run()
        asyncio.run(run_forever(runtime))
    except WorkerRefused as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="port to listen on")] = 9091,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="delay before answering a send")] = 0,
    report_delay_ms: Annotated[float, typer.Option(help="delay before each report")] = 50,
    fail_ratio: Annotated[float, typer.Option(help="share reported failed")] = 0,
    ratio_429: Annotated[float, typer.Option("--ratio-429", help="share answered 429")] = 0,
    ratio_5xx: Annotated[float, typer.Option("--ratio-5xx", help="share answered 500")] = 0,
    ratio_timeout: Annotated[float, typer.Option(help="share accepted but answered late")] = 0,
    timeout_delay_s: Annotated[float, typer.Option(help="how late a timeout answers")] = 5.0,
    reply_ratio: Annotated[float, typer.Option(help="share of delivered that reply")] = 0,
    callbacks: Annotated[bool, typer.Option(help="post reports and replies")] = True,
    msg91_batch: Annotated[bool, typer.Option(help="post MSG91 webhooks as arrays")] = False,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    authkey: Annotated[str | None, typer.Option(help="require this Authkey header")] = None,
) -> None:
    """Run the MSG91 simulator: MSG91's wire formats on loopback, with callbacks and faults."""
    from waconnect.simulator import SimulatorOptions, run

    try:
        options = SimulatorOptions(
            latency_ms=latency_ms,
            report_delay_ms=report_delay_ms,
            fail_ratio=fail_ratio,
            ratio_429=ratio_429,
            ratio_5xx=ratio_5xx,
            ratio_timeout=ratio_timeout,
            timeout_delay_s=timeout_delay_s,
            reply_ratio=reply_ratio,
            callbacks=callbacks,
            msg91_batch=msg91_batch,
            seed=seed,
            authkey=authkey,
        )
    except (TypeError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"MSG91 simulator on http://{host}:{port}", err=True)
    try:
        run(host, port, options)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


# --- db -------------------------------------------------------------------------------------------


@db_app.command("upgrade")
@run_async
async def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply all migrations (serve does this on start too)."""
    runtime = await _prepared(_settings(data_dir, database_url))
    await runtime.close()
    typer.echo("database is up to date", err=True)


# --- workspaces -----------------------------------------------------------------------------------


@workspaces_app.command("create")
@run_async
async def workspaces_create(
    name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Create a workspace."""
    from waconnect.workspaces import service

    async with _database(data_dir, database_url) as runtime:
        async with runtime.sessions() as session:
            workspace = await service.create_workspace(session, runtime.clock, name)
            await session.commit()
        typer.echo(f"created workspace {workspace.name} (id {workspace.id})")


@workspaces_app.command("list")
@run_async
async def workspaces_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List workspaces."""
    from sqlalchemy import select

    from waconnect.workspaces.models import Workspace

    async with _database(data_dir, database_url) as runtime, runtime.sessions() as session:
        for workspace in await session.scalars(select(Workspace).order_by(Workspace.id)):
            typer.echo(f"{workspace.id}\t{workspace.name}")


# --- keys -----------------------------------------------------------------------------------------


@keys_app.command("create")
@run_async
async def keys_create(
    workspace: WorkspaceName = "default",
    label: Annotated[str, typer.Option(help="what the key is for")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key and print it alone on stdout (KEY=$(waconnect keys create))."""
    from waconnect.workspaces import service

    async with _database(data_dir, database_url) as runtime:
        async with runtime.sessions() as session:
            found = await service.workspace_by_name(session, workspace)
            _row, key = await service.create_key(session, runtime.clock, found.id, label)
            await session.commit()
        typer.echo(key)


@keys_app.command("list")
@run_async
async def keys_list(
    workspace: WorkspaceName = "default", data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List a workspace's keys (prefixes only; keys are not stored)."""
    from waconnect.workspaces import service

    async with _database(data_dir, database_url) as runtime, runtime.sessions() as session:
        found = await service.workspace_by_name(session, workspace)
        for row in await service.list_keys(session, found.id):
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            typer.echo(f"{row.id}\t{row.prefix}…\t{state}\t{row.label}")


@keys_app.command("revoke")
@run_async
async def keys_revoke(
    key_id: int,
    workspace: WorkspaceName = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key by its id (from `keys list`)."""
    from waconnect.workspaces import service

    async with _database(data_dir, database_url) as runtime:
        async with runtime.sessions() as session:
            found = await service.workspace_by_name(session, workspace)
            await service.revoke_key(session, runtime.clock, found.id, key_id)
            await session.commit()
        typer.echo(f"revoked key {key_id}", err=True)


# --- users ----------------------------------------------------------------------------------------


def _new_password(password: str | None, generate: bool) -> tuple[str, bool]:
    """The password to set, and whether it was generated (and so must be printed)."""
    from waconnect.dashboard.users import generate_password

    if password is not None and generate:
        raise fail("give --password or --generate, not both")
    if generate:
        return generate_password(), True
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password, False


@users_app.command("create")
@run_async
async def users_create(
    email: Annotated[str, typer.Option("--email", help="the login email")],
    workspace: WorkspaceName = "default",
    password: Annotated[
        str | None, typer.Option("--password", help="the password (default: prompt for it)")
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="make a password and print it alone on stdout")
    ] = False,
    if_no_users: Annotated[
        bool, typer.Option("--if-no-users", help="do nothing when any user exists already")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a dashboard user in a workspace."""
    from waconnect.dashboard import users
    from waconnect.workspaces import service

    async with _database(data_dir, database_url) as runtime:
        async with runtime.sessions() as session:
            if if_no_users and await users.has_users(session):
                typer.echo("a user exists already: nothing created", err=True)
                return
            found = await service.workspace_by_name(session, workspace)
            secret, generated = _new_password(password, generate)
            user = await users.create_user(session, runtime.clock, found.id, email, secret)
            await session.commit()
        typer.echo(f"created user {user.email} in workspace {found.name}", err=True)
        if generated:
            typer.echo(secret)


@users_app.command("list")
@run_async
async def users_list(
    workspace: WorkspaceName = "default", data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List a workspace's users."""
    from waconnect.dashboard import users
    from waconnect.workspaces import service

    async with _database(data_dir, database_url) as runtime, runtime.sessions() as session:
        found = await service.workspace_by_name(session, workspace)
        for user in await users.list_users(session, found.id):
            last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
            typer.echo(f"{user.id}\t{user.email}\tlast login {last}")


@users_app.command("set-password")
@run_async
async def users_set_password(
    email: Annotated[str, typer.Option("--email", help="the user's login email")],
    password: Annotated[
        str | None, typer.Option("--password", help="the new password (default: prompt for it)")
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="make a password and print it alone on stdout")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user a new password; their open sessions end."""
    from waconnect.dashboard import users

    async with _database(data_dir, database_url) as runtime:
        secret, generated = _new_password(password, generate)
        async with runtime.sessions() as session:
            user = await users.set_password(session, email, secret)
            await session.commit()
        typer.echo(f"new password set for {user.email}", err=True)
        if generated:
            typer.echo(secret)


# --- profiles -------------------------------------------------------------------------------------


@profiles_app.command("import")
@run_async
async def profiles_import(
    file: Annotated[Path, typer.Argument(help="a CSV file with a header row")],
    map_items: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=TARGET[:TYPE]: rename (mobile=phone), type (zip=zip:string), skip (x=-)",
        ),
    ] = None,
    workspace: WorkspaceName = "default",
    batch_size: Annotated[int, typer.Option(min=1, max=10000, help="rows per transaction")] = 5000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import profiles from CSV (streamed); rejected rows go to FILE.errors.csv."""
    from rich.console import Console

    from waconnect.profiles.import_cli import import_file

    async with _database(data_dir, database_url) as runtime:
        counts, report = await import_file(
            runtime, workspace, file, map_items or [], batch_size, Console(stderr=True)
        )
    typer.echo(counts.summary() + (f"; rejected rows in {report}" if counts.errors else ""))


# --- templates ------------------------------------------------------------------------------------


@templates_app.command("test")
@run_async
async def templates_test(
    template_id: Annotated[int, typer.Argument(help="the template's id")],
    to: Annotated[list[str] | None, typer.Option("--to", help="a phone number (repeat)")] = None,
    profile: Annotated[
        list[int] | None, typer.Option("--profile", help="a profile id (repeat)")
    ] = None,
    map_items: Annotated[
        list[str] | None,
        typer.Option("--map", help="KEY=literal:VALUE or KEY=attribute:NAME (repeat)"),
    ] = None,
    default_items: Annotated[
        list[str] | None, typer.Option("--default", help="KEY=VALUE: the default of a --map")
    ] = None,
    wait: Annotated[float, typer.Option(min=0, max=5, help="seconds to wait for answers")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the full result as JSON")] = False,
    workspace: WorkspaceName = "default",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Send a template to up to 10 phones or profiles and print the provider's answers.

    Unmapped variables take the template's sample values. Exits 1 when a recipient failed or
    was skipped. The worker (waconnect serve) does the sending.
    """
    from pydantic import ValidationError

    from waconnect.templates.cli import describe, parse_mapping, test_from_terminal
    from waconnect.web.errors import invalid_from

    mapping = parse_mapping(map_items or [], default_items or [])
    async with _database(data_dir, database_url) as runtime:
        try:
            result = await test_from_terminal(
                runtime, workspace, template_id, to or [], profile or [], mapping, wait
            )
        except ValidationError as exc:
            raise invalid_from(exc) from None
    typer.echo(result.model_dump_json(indent=2) if as_json else describe(result))
    if any(item.outcome in ("failed", "skipped") for item in result.results):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
