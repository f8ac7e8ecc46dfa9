"""What every command module shares: the database options, one-line failures, running an async
command, and a migrated database for a one-off command. Kept apart from ``cli.py`` so that the
capabilities' own command modules (campaigns, journeys) import it without a cycle."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.web.errors import ApiError

T = TypeVar("T")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="WACONNECT_DATA_DIR", help="data directory")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="WACONNECT_DATABASE_URL", help="SQLAlchemy async URL"),
]


def fail(message: str) -> typer.Exit:
    # One line: driver messages sometimes carry a second line (SQLAlchemy's "Background on...").
    first_line = next((line for line in message.strip().splitlines() if line.strip()), "failed")
    typer.echo(f"error: {first_line}", err=True)
    return typer.Exit(1)


def _settings(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    values: dict[str, Any] = {key: value for key, value in extra.items() if value is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)


# Allocations between young collections (CPython's default is 700). A campaign allocates
# millions of short-lived rows, dicts and tuples; at the default the collector ran ~7,000
# times in a 200,000-recipient run, 3.7 s of the event loop's ~40 s (bench/campaign.py, gc
# callbacks). Most of those objects die young anyway; cycles are still collected, later.
GC_YOUNG_THRESHOLD = 50_000
# How long the running thread keeps the GIL while another waits for it (CPython's default is
# 5 ms). The SQLite writer threads give the GIL up around each statement step and then wait to
# get it back from the busy event loop, while holding SQLite's one writer turn: at 5 ms almost
# half of the time the turn was held went to that wait (bench/campaign.py, MSG91: a 300,000
# run completed in 38-39 s, at 0.5 ms in 32-33 s).
SWITCH_INTERVAL_SECONDS = 0.0005


def prepare_long_run() -> None:
    """Tune the interpreter for the server and the worker.

    - Leave what start-up built (modules, the app, ORM mappers) out of every later collection,
      and collect the young generation less often. A long-running process otherwise walks
      those ~200,000 objects on each full collection: measured at a seventh of the server's
      time during a campaign (bench/campaign.py).
    - Hand the GIL over sooner (``SWITCH_INTERVAL_SECONDS``).
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def run_async(func: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command; turn known failures into one line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(func(*args, **kwargs))
        except ApiError as exc:
            raise fail(exc.message) from None
        except DBAPIError as exc:  # cannot connect, unknown database or role, ...
            raise fail(f"cannot use the database: {exc.orig}") from None
        except ImportError as exc:  # e.g. mysql://: a database waconnect has no driver for
            raise fail(f"cannot use the database: its driver is not installed ({exc})") from None
        except SQLAlchemyError as exc:
            raise fail(f"database error: {exc}") from None
        except (ConnectionError, TimeoutError, socket.gaierror) as exc:
            raise fail(f"cannot reach the database: {exc}") from None
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None

    return wrapper


@contextlib.asynccontextmanager
async def database(data_dir: Path | None, database_url: str | None) -> AsyncIterator[Runtime]:
    """The migrated database of a one-off command, closed when the command is done."""
    runtime = await _prepared(_settings(data_dir, database_url))
    try:
        yield runtime
    finally:
        await runtime.close()


async def _prepared(settings: Settings) -> Runtime:
    from waconnect.web.app import prepare_database

    runtime = Runtime.build(settings)
    await prepare_database(runtime)
    return runtime


WorkspaceName = Annotated[str, typer.Option("--workspace", help="workspace name")]


async def with_workspace(
    data_dir: Path | None,
    database_url: str | None,
    workspace: str,
    work: Callable[[Runtime, int], Coroutine[Any, Any, T]],
) -> T:
    """Run ``work`` on the migrated database with the id of the named workspace."""
    from waconnect.workspaces.service import workspace_by_name

    async with database(data_dir, database_url) as runtime:
        async with runtime.sessions() as session:
            workspace_id = (await workspace_by_name(session, workspace)).id
        return await work(runtime, workspace_id)
