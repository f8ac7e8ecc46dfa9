"""Fresh planner statistics for the tables the message loop grows fast (PostgreSQL only).

PostgreSQL caches a prepared statement's generic plan, chosen on the statistics of the moment.
On a new deployment the outbox tables are analyzed while empty, so a plan that reads them whole
is the cheap one, and it stays cached until the table is analyzed again: autovacuum does that a
minute later at best, and never where it is turned off. Measured with `bench/campaign.py
--postgres` (autovacuum off): 341 recipients/s, against 4,365/s with the tables analyzed as
they grew. So the worker analyzes a hot table itself once it changed by a tenth since its last
analysis, as autovacuum's own rule would, but within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text

from waconnect.runtime import Runtime

log = logging.getLogger("waconnect.statistics")

# Written by the message loop, campaigns and journeys thousands of times a second.
HOT_TABLES = (
    "messages",
    "message_attempts",
    "contacts",
    "profiles",
    "events",
    "campaign_recipients",
    "journey_runs",
    "journey_signals",
)
# One worker of a deployment analyzes at a time (the others find the lock taken and skip).
_LOCK_KEY = 0x57AC0A1A
_STALE = text("""
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables)
    AND s.n_mod_since_analyze > :floor + 0.1 * GREATEST(c.reltuples, 0)
""")


async def analyze_stale_tables(runtime: Runtime, floor: int = 1000) -> list[str]:
    """ANALYZE the hot tables changed by more than ``floor`` rows plus a tenth since their
    last analysis; returns their names (none when another worker is at it)."""
    async with runtime.sessions() as session:
        if not await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({_LOCK_KEY})")):
            return []
        stale = list(await session.scalars(_STALE, {"tables": list(HOT_TABLES), "floor": floor}))
        for table in stale:  # names from HOT_TABLES only
            await session.execute(text(f"ANALYZE {table}"))
        await session.commit()
    if stale:
        log.info("analyzed %s", ", ".join(stale))
    return stale


async def start_statistics_keeper(runtime: Runtime) -> asyncio.Task[None] | None:
    """On PostgreSQL, a task that keeps the hot tables' statistics fresh; None on SQLite."""
    if runtime.settings.is_sqlite:
        return None
    every = runtime.settings.statistics_seconds

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await analyze_stale_tables(runtime)
            except Exception:
                log.exception("refreshing table statistics failed")

    return asyncio.create_task(keep(), name="statistics")


async def stop_statistics_keeper(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
