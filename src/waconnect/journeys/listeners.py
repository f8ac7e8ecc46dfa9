"""Hooks on the event and profile paths: cheap, inside the caller's transaction.

They only write signal rows (and mark the runs concerned due now); the scheduler does the work.
So an event recorded is never lost for a journey (same commit), and the callbacks path pays two
indexed reads and one insert per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.journeys.entries import PROFILE_CHANGED
from waconnect.journeys.models import (
    ACTIVE_WHERE,
    Journey,
    JourneyRun,
    JourneySignal,
    JourneyVersion,
)
from waconnect.messaging.journal import DriverSql

JOURNEYS = cast(Table, Journey.__table__)
RUNS = cast(Table, JourneyRun.__table__)
VERSIONS = cast(Table, JourneyVersion.__table__)
SIGNALS = cast(Table, JourneySignal.__table__)
CHUNK = 500
# A woken run is due before any timer: the scheduler claims by due time, so news resumes runs
# first, whatever the business clock says.
WAKE_NOW = datetime(2000, 1, 1, tzinfo=UTC)


def _now(rows: Sequence[Mapping[str, Any]]) -> datetime:
    return max((row["ts"] for row in rows if row.get("ts")), default=datetime.now(UTC))


async def on_events(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Every recorded event: a possible entry into live journeys, and news for runs inside."""
    if not rows:
        return
    workspaces = {row["workspace_id"] for row in rows}
    live = (
        await session.execute(
            select(
                JOURNEYS.c.id,
                JOURNEYS.c.workspace_id,
                JOURNEYS.c.trigger_type,
                JOURNEYS.c.trigger_event,
            ).where(JOURNEYS.c.workspace_id.in_(workspaces), JOURNEYS.c.status == "live")
        )
    ).all()
    created = _now(rows)
    signals: list[dict[str, Any]] = []
    segment_seen: set[tuple[int, int]] = set()
    for journey_id, workspace_id, trigger_type, trigger_event in live:
        for row in rows:
            if row["workspace_id"] != workspace_id:
                continue
            if trigger_type == "segment":
                # An event may move the profile into the segment: check it (once per batch).
                key = (journey_id, row["profile_id"])
                if key not in segment_seen:
                    segment_seen.add(key)
                    signals.append(
                        _signal(
                            row, created, journey_id=journey_id, name=PROFILE_CHANGED, properties={}
                        )
                    )
            elif trigger_event is not None and row["name"] == trigger_event:
                signals.append(_signal(row, created, journey_id=journey_id))
    signals.extend(await _run_signals(session, rows, created))
    if signals:
        await session.execute(SIGNALS.insert(), signals)


def _signal(
    row: Mapping[str, Any],
    created: datetime,
    *,
    journey_id: int | None = None,
    run_id: int | None = None,
    name: str | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "workspace_id": row["workspace_id"],
        "profile_id": row["profile_id"],
        "run_id": run_id,
        "journey_id": journey_id,
        "name": name or row["name"],
        "properties": dict(row.get("properties") or {}) if properties is None else properties,
        "message_id": row.get("message_id"),
        "ts": row.get("ts") or created,
        "created_at": created,
    }


_RUNS_INSIDE = f"""
SELECT r.id, r.profile_id, v.listens
FROM journey_runs r JOIN journey_versions v ON v.id = r.version_id
WHERE r.profile_id IN ({{ids}}) AND r.{ACTIVE_WHERE}
"""


async def _run_signals(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], created: datetime
) -> list[dict[str, Any]]:
    """Events that runs inside listen to (goal, replies, payments): queued for the run, and
    the run made due now so the scheduler resumes it at once."""
    profile_ids = sorted({row["profile_id"] for row in rows})
    signals: list[dict[str, Any]] = []
    woken: set[int] = set()
    # One statement for the batch (the ids as one parameter): this runs in the message
    # loop's write transaction, once per applied batch of thousands.
    sql = DriverSql.of(session)
    connection = await session.connection()
    inside = (
        await connection.exec_driver_sql(
            sql.sql(_RUNS_INSIDE.format(ids=sql.id_list(1))), (sql.ids(profile_ids),)
        )
    ).all()
    by_profile: dict[int, list[tuple[int, set[str]]]] = {}
    for run_id, profile_id, listens in inside:
        by_profile.setdefault(profile_id, []).append((run_id, set(sql.read_json(listens) or [])))
    for row in rows if by_profile else ():
        for run_id, listens in by_profile.get(row["profile_id"], ()):
            if row["name"] in listens:
                signals.append(_signal(row, created, run_id=run_id))
                woken.add(run_id)
    if woken:
        ids = sorted(woken)
        for start in range(0, len(ids), CHUNK):
            await session.execute(
                update(RUNS)
                .where(RUNS.c.id.in_(ids[start : start + CHUNK]))
                .values(due_at=WAKE_NOW)
            )
    return signals


async def on_profiles(session: AsyncSession, workspace_id: int, profile_ids: Sequence[int]) -> None:
    """Profiles whose attributes changed: a check for live segment-triggered journeys."""
    journeys = (
        await session.scalars(
            select(JOURNEYS.c.id).where(
                JOURNEYS.c.workspace_id == workspace_id,
                JOURNEYS.c.status == "live",
                JOURNEYS.c.trigger_type == "segment",
            )
        )
    ).all()
    if not journeys:
        return
    now = datetime.now(UTC)
    await session.execute(
        SIGNALS.insert(),
        [
            {
                "workspace_id": workspace_id,
                "profile_id": profile_id,
                "run_id": None,
                "journey_id": journey_id,
                "name": PROFILE_CHANGED,
                "properties": {},
                "message_id": None,
                "ts": now,
                "created_at": now,
            }
            for journey_id in journeys
            for profile_id in profile_ids
        ],
    )


def install() -> None:
    """Register the hooks (idempotent); done when the journeys capability is imported."""
    from waconnect.profiles.events import add_event_listener
    from waconnect.profiles.service import add_profile_listener

    # Any live journey may take an event as its trigger; any run inside may wait for one.
    add_event_listener(
        on_events,
        busy_when="SELECT 1 FROM journeys WHERE status = 'live' "
        f"UNION ALL SELECT 1 FROM journey_runs WHERE {ACTIVE_WHERE} LIMIT 1",
    )
    add_profile_listener(on_profiles)
