"""The ``waconnect`` command (Typer). Errors exit non-zero with one clear line on stderr."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.web.errors import ApiError

app = typer.Typer(
    help="waconnect: self-hostable WhatsApp engagement platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)
workspaces_app = typer.Typer(help="Workspaces: one business's isolated data.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(db_app, name="db")

T = TypeVar("T")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="WACONNECT_DATA_DIR", help="data directory")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="WACONNECT_DATABASE_URL", help="SQLAlchemy async URL"),
]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _settings(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    values: dict[str, Any] = {key: value for key, value in extra.items() if value is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)


def run_async(func: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command; turn known failures into one line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(func(*args, **kwargs))
        except ApiError as exc:
            raise fail(exc.message) from None
        except OperationalError as exc:
            raise fail(f"cannot use the database: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise fail(f"database error: {exc}") from None
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None

    return wrapper


async def _prepared(settings: Settings) -> Runtime:
    from waconnect.web.app import prepare_database

    runtime = Runtime.build(settings)
    await prepare_database(runtime)
    return runtime


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
        bool, typer.Option("--with-simulator", help="also run the MSG91 simulator")
    ] = False,
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
        application = create_app(settings)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    if with_simulator:
        typer.echo("the simulator comes with the message loop; starting the server alone", err=True)
    typer.echo(f"waconnect {settings.resolved_public_url}  (API docs: /docs)", err=True)
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)


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

    runtime = await _prepared(_settings(data_dir, database_url))
    try:
        async with runtime.sessions() as session:
            workspace = await service.create_workspace(session, runtime.clock, name)
            await session.commit()
        typer.echo(f"created workspace {workspace.name} (id {workspace.id})")
    finally:
        await runtime.close()


@workspaces_app.command("list")
@run_async
async def workspaces_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List workspaces."""
    from sqlalchemy import select

    from waconnect.workspaces.models import Workspace

    runtime = await _prepared(_settings(data_dir, database_url))
    try:
        async with runtime.sessions() as session:
            for workspace in await session.scalars(select(Workspace).order_by(Workspace.id)):
                typer.echo(f"{workspace.id}\t{workspace.name}")
    finally:
        await runtime.close()


# --- keys -----------------------------------------------------------------------------------------

WorkspaceName = Annotated[str, typer.Option("--workspace", help="workspace name")]


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

    runtime = await _prepared(_settings(data_dir, database_url))
    try:
        async with runtime.sessions() as session:
            found = await service.workspace_by_name(session, workspace)
            _row, key = await service.create_key(session, runtime.clock, found.id, label)
            await session.commit()
        typer.echo(key)
    finally:
        await runtime.close()


@keys_app.command("list")
@run_async
async def keys_list(
    workspace: WorkspaceName = "default", data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List a workspace's keys (prefixes only; keys are not stored)."""
    from waconnect.workspaces import service

    runtime = await _prepared(_settings(data_dir, database_url))
    try:
        async with runtime.sessions() as session:
            found = await service.workspace_by_name(session, workspace)
            for row in await service.list_keys(session, found.id):
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
                typer.echo(f"{row.id}\t{row.prefix}…\t{state}\t{row.label}")
    finally:
        await runtime.close()


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

    runtime = await _prepared(_settings(data_dir, database_url))
    try:
        async with runtime.sessions() as session:
            found = await service.workspace_by_name(session, workspace)
            await service.revoke_key(session, runtime.clock, found.id, key_id)
            await session.commit()
        typer.echo(f"revoked key {key_id}", err=True)
    finally:
        await runtime.close()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
