"""The worker: the dispatcher (and, as later capabilities land, the scheduler) in one loop.

``waconnect serve`` runs it inside the server process by default; ``waconnect worker`` runs it
alone. On SQLite only one worker process may run (SQLite has one writer, and the dispatcher's
claim relies on it); a second is refused with a clear message. On PostgreSQL, any number.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from waconnect.campaigns.runner import start_campaign_loop
from waconnect.db.statistics import start_statistics_keeper, stop_statistics_keeper
from waconnect.messaging.dispatcher import Dispatcher, TransportFactory
from waconnect.runtime import Runtime

log = logging.getLogger("waconnect.worker")


class WorkerRefused(RuntimeError):
    """Another worker already runs on this SQLite database."""


def _sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def _lock_sqlite(runtime: Runtime) -> IO[str] | None:
    if not runtime.settings.is_sqlite:
        return None
    path = _sqlite_path(runtime.settings.resolved_database_url).with_suffix(".worker.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise WorkerRefused(
            "another waconnect worker is already running on this SQLite database; SQLite allows "
            "one worker process (use PostgreSQL to run several)"
        ) from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


async def start_worker(
    runtime: Runtime, transport_factory: TransportFactory | None = None
) -> Callable[[], Awaitable[None]]:
    """Start the dispatcher; returns the coroutine function that stops it cleanly."""
    lock = _lock_sqlite(runtime)
    dispatcher = Dispatcher(runtime, transport_factory=transport_factory)
    await dispatcher.start()
    runtime.extras["dispatcher"] = dispatcher
    campaigns = await start_campaign_loop(runtime)
    from waconnect.journeys.scheduler import start_scheduler

    journeys = await start_scheduler(runtime)
    statistics = await start_statistics_keeper(runtime)

    async def stop() -> None:
        await stop_statistics_keeper(statistics)
        await journeys.stop()
        runtime.extras.pop("journey_scheduler", None)
        await campaigns.stop()
        runtime.extras.pop("campaigns", None)
        await dispatcher.stop()
        runtime.extras.pop("dispatcher", None)
        if lock is not None:
            lock.close()

    return stop


async def run_forever(runtime: Runtime) -> None:
    """``waconnect worker``: run until SIGINT/SIGTERM, then stop cleanly."""
    from waconnect.web.app import prepare_database

    await prepare_database(runtime)
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop_event.set)
    stop = await start_worker(runtime)
    log.info("worker started")
    try:
        await stop_event.wait()
    finally:
        await stop()
        await runtime.close()
