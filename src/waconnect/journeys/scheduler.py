"""The worker's journey scheduler: entries from signals, due timers, webhook calls, segments.

Claiming is the dispatcher's: a batch of due runs is leased (owner, expiry in real time) in one
statement; on PostgreSQL the select is ``FOR UPDATE SKIP LOCKED`` so any number of workers
share the table; on SQLite one worker runs. The leased runs are then advanced in ONE write
transaction that also queues their messages, writes their steps and hands the leases back —
so a crash at any moment either did a node's send and its move together, or neither: after a
restart every run is still there and no visit sends twice. Webhook calls are made between the
claim and that transaction (at least once: a crash in between calls again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import aiohttp
import orjson
from sqlalchemy import Select, Table, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.journeys.engine import Engine, RunState, Signal, WebhookResult
from waconnect.journeys.entries import (
    PROFILE_CHANGED,
    Entry,
    enter,
    trigger_matches,
    version_graph,
)
from waconnect.journeys.listeners import WAKE_NOW
from waconnect.journeys.models import (
    Journey,
    JourneyRun,
    JourneySegmentMember,
    JourneySignal,
)
from waconnect.journeys.store import DbWorld
from waconnect.messaging.service import wake_dispatcher
from waconnect.runtime import Runtime

log = logging.getLogger("waconnect.journeys")

RUNS = cast(Table, JourneyRun.__table__)
SIGNALS = cast(Table, JourneySignal.__table__)
JOURNEYS = cast(Table, Journey.__table__)
MEMBERS = cast(Table, JourneySegmentMember.__table__)


_SOON = 0.005  # seconds: a timer this close is due now
# The idle loop's one look, built once: a signal waiting, and the next timer of a live journey.
_LOOK = select(
    select(SIGNALS.c.id).where(SIGNALS.c.run_id.is_(None)).limit(1).scalar_subquery(),
    select(func.min(RUNS.c.due_at))
    .where(
        RUNS.c.due_at.is_not(None),
        RUNS.c.journey_id.in_(select(JOURNEYS.c.id).where(JOURNEYS.c.status == "live")),
    )
    .scalar_subquery(),
)

# What advancing a run reads (not its lease or bookkeeping times).
RUN_COLUMNS = [
    RUNS.c[name]
    for name in (
        "id",
        "workspace_id",
        "journey_id",
        "version_id",
        "profile_id",
        "state",
        "node",
        "visit",
        "context",
        "entered_at",
        "exit_reason",
        "goal_reached",
        "finished_at",
    )
]


def wall_now() -> datetime:
    """Leases are safety timers: real time, never the business clock."""
    return datetime.now(UTC)


def run_state(row: Any) -> RunState:
    return RunState(
        id=row.id,
        workspace_id=row.workspace_id,
        journey_id=row.journey_id,
        version_id=row.version_id,
        profile_id=row.profile_id,
        state=row.state,
        node=row.node,
        visit=row.visit,
        context=dict(row.context or {}),
        entered_at=row.entered_at,
        exit_reason=row.exit_reason,
        goal_reached=row.goal_reached,
        finished_at=row.finished_at,
    )


class Scheduler:
    def __init__(self, runtime: Runtime, worker_id: str | None = None) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.batch = settings.journey_batch_size
        self.poll_every = settings.journey_poll_seconds
        self.lease = timedelta(seconds=settings.journey_lease_seconds)
        self.segment_every = settings.journey_segment_check_seconds
        self.webhook_timeout = settings.journey_webhook_timeout_seconds
        self._locking = not settings.is_sqlite
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._last_segment_check = 0.0
        # version id -> its webhook nodes: a claimed run elsewhere needs no call first.
        self._webhook_nodes: dict[int, frozenset[str]] = {}
        # Figures for the benchmark and the logs.
        self.fired = 0
        self.entered = 0

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.recover()
        self._task = asyncio.create_task(self._loop(), name="journey-scheduler")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.close()
        async with self.runtime.writer() as session:
            await session.execute(
                update(RUNS)
                .where(RUNS.c.lease_owner == self.worker_id)
                .values(lease_owner=None, lease_until=None)
            )
            await session.commit()

    async def recover(self) -> None:
        """On SQLite only this worker runs: leases left by a dead process are void at once.
        On PostgreSQL they expire after the lease time."""
        if not self.runtime.settings.is_sqlite:
            return
        async with self.runtime.writer() as session:
            await session.execute(
                update(RUNS)
                .where(RUNS.c.lease_owner.is_not(None))
                .values(lease_owner=None, lease_until=None)
            )
            await session.commit()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            busy = False
            idle = self.poll_every
            try:
                signals, next_due = await self._look()
                idle = self._idle_for(next_due)
                # A round only when the look found work: an idle round costs one query.
                if signals is not None or (next_due is not None and idle <= _SOON):
                    busy = await self.tick()
                if loop.time() - self._last_segment_check >= self.segment_every:
                    self._last_segment_check = loop.time()
                    await self.check_segments()
            except Exception:
                log.exception("journey scheduler round failed")
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle)

    async def _look(self) -> tuple[Any, datetime | None]:
        """One read: a signal waiting (or None), and the next timer of a live journey."""
        async with self.runtime.sessions() as session:
            row = (await session.execute(_LOOK)).one()
        return row[0], row[1]

    def _idle_for(self, next_due: datetime | None) -> float:
        """Sleep until the next timer is due (on the business clock), at most a poll round:
        a timer fires on time instead of up to a round late."""
        if next_due is None:
            return self.poll_every
        wait = (next_due - self.runtime.clock.now()).total_seconds()
        return min(max(wait, _SOON), self.poll_every)

    async def tick(self) -> bool:
        """One round: entries waiting, then due runs. True when there was work."""
        entered = await self.process_entries()
        fired = await self.process_due()
        if entered or fired:
            wake_dispatcher(self.runtime)
        return bool(entered or fired)

    # --- entries ---------------------------------------------------------------------------------

    async def process_entries(self) -> int:
        query = (
            select(SIGNALS)
            .where(SIGNALS.c.run_id.is_(None))
            .order_by(SIGNALS.c.id)
            .limit(self.batch)
        )
        if not await self._any(query):
            return 0
        if self._locking:
            query = query.with_for_update(skip_locked=True)
        async with self.runtime.writer() as session:
            signals = (await session.execute(query)).all()
            if not signals:
                return 0
            await session.execute(delete(SIGNALS).where(SIGNALS.c.id.in_([s.id for s in signals])))
            world = DbWorld(session, self.runtime, self.runtime.clock.now())
            by_journey: dict[int, list[Any]] = defaultdict(list)
            for signal in signals:
                if signal.journey_id is not None:
                    by_journey[signal.journey_id].append(signal)
            started: list[RunState] = []
            for journey_id, items in by_journey.items():
                started.extend(await self._enter_from_signals(session, world, journey_id, items))
            await world.apply(started)
            await session.commit()
        self.entered += len(started)
        return len(signals)

    async def _enter_from_signals(
        self, session: AsyncSession, world: DbWorld, journey_id: int, signals: list[Any]
    ) -> list[RunState]:
        journey = await session.get(Journey, journey_id)
        if journey is None or journey.status != "live" or journey.live_version_id is None:
            return []
        graph = await version_graph(session, journey.live_version_id)
        entries: list[Entry] = []
        if graph.trigger.get("type") == "segment":
            changed = sorted({s.profile_id for s in signals if s.name == PROFILE_CHANGED})
            entering = await self._segment_moves(session, world, journey, graph, changed)
            entries = [Entry(pid, {}) for pid in entering]
        else:
            for signal in signals:
                properties = dict(signal.properties or {})
                if signal.message_id is not None:
                    properties.setdefault("message_id", signal.message_id)
                if trigger_matches(graph.trigger, signal.name, properties):
                    entries.append(Entry(signal.profile_id, properties))
        if not entries:
            return []
        _outcomes, started = await enter(
            session,
            world,
            journey.workspace_id,
            journey.id,
            journey.live_version_id,
            graph,
            entries,
        )
        return started

    async def _segment_moves(
        self,
        session: AsyncSession,
        world: DbWorld,
        journey: Journey,
        graph: Any,
        profile_ids: list[int] | None,
    ) -> list[int]:
        """Who moved into the journey's segment since the last check (``None``: everyone)."""
        from waconnect.profiles.compiler import ids_query
        from waconnect.profiles.models import Profile, Segment
        from waconnect.profiles.segments import compile_definition
        from waconnect.profiles.service import dialect_of

        segment = await session.get(Segment, int(graph.trigger["segment_id"]))
        if segment is None or segment.workspace_id != journey.workspace_id:
            return []
        node = await compile_definition(session, journey.workspace_id, segment.definition)
        profiles = cast(Table, Profile.__table__)
        query = ids_query(node, dialect_of(session), journey.workspace_id, world.now)
        if profile_ids is not None:
            query = query.where(profiles.c.id.in_(profile_ids))
        inside = set(await session.scalars(query))
        members_query = select(MEMBERS.c.profile_id).where(MEMBERS.c.journey_id == journey.id)
        if profile_ids is not None:
            members_query = members_query.where(MEMBERS.c.profile_id.in_(profile_ids))
        known = set(await session.scalars(members_query))
        entering = sorted(inside - known)
        leaving = sorted(known - inside)
        if entering:
            await session.execute(
                MEMBERS.insert(),
                [{"journey_id": journey.id, "profile_id": p, "since": world.now} for p in entering],
            )
        for start in range(0, len(leaving), 500):
            await session.execute(
                delete(MEMBERS).where(
                    MEMBERS.c.journey_id == journey.id,
                    MEMBERS.c.profile_id.in_(leaving[start : start + 500]),
                )
            )
        return entering

    async def check_segments(self) -> int:
        """The scheduled check of segment triggers (time-based conditions change by themselves)."""
        async with self.runtime.sessions() as session:
            journeys = list(
                await session.scalars(
                    select(JOURNEYS.c.id).where(
                        JOURNEYS.c.status == "live", JOURNEYS.c.trigger_type == "segment"
                    )
                )
            )
        total = 0
        for journey_id in journeys:
            async with self.runtime.writer() as session:
                journey = await session.get(Journey, journey_id)
                if journey is None or journey.live_version_id is None:
                    continue
                graph = await version_graph(session, journey.live_version_id)
                world = DbWorld(session, self.runtime, self.runtime.clock.now())
                entering = await self._segment_moves(session, world, journey, graph, None)
                _outcomes, started = await enter(
                    session,
                    world,
                    journey.workspace_id,
                    journey.id,
                    journey.live_version_id,
                    graph,
                    [Entry(pid, {}) for pid in entering],
                )
                await world.apply(started)
                await session.commit()
                total += len(started)
        if total:
            wake_dispatcher(self.runtime)
        return total

    # --- due runs ---------------------------------------------------------------------------------

    async def _any(self, query: Select[Any]) -> bool:
        """A look on a read session first: an idle tick does not take SQLite's writer turn,
        which the dispatcher and the campaigns need many times a second."""
        async with self.runtime.sessions() as session:
            return (await session.execute(query.limit(1))).first() is not None

    async def claim(self) -> list[Any]:
        """Lease up to a batch of due runs of live journeys: (id, version_id, node, due_at)."""
        now = self.runtime.clock.now()
        wall = wall_now()
        live = select(JOURNEYS.c.id).where(JOURNEYS.c.status == "live")
        due = (
            select(RUNS.c.id)
            .where(
                RUNS.c.due_at <= now,
                RUNS.c.journey_id.in_(live),
                or_(RUNS.c.lease_owner.is_(None), RUNS.c.lease_until < wall),
            )
            .order_by(RUNS.c.due_at)
            .limit(self.batch)
        )
        if not await self._any(due):
            return []
        if self._locking:
            due = due.with_for_update(skip_locked=True, of=RUNS)
        statement = (
            update(RUNS)
            .where(RUNS.c.id.in_(due.scalar_subquery()))
            .values(lease_owner=self.worker_id, lease_until=wall + self.lease)
            .returning(RUNS.c.id, RUNS.c.version_id, RUNS.c.node, RUNS.c.due_at)
        )
        async with self.runtime.writer() as session:
            rows = list((await session.execute(statement)).all())
            await session.commit()
        return rows

    async def process_due(self) -> int:
        claimed = await self.claim()
        if not claimed:
            return 0
        ids = [row.id for row in claimed]
        webhooks: dict[int, WebhookResult] = {}
        at_webhook = [row.id for row in claimed if self._maybe_webhook(row.version_id, row.node)]
        if at_webhook:
            webhooks = await self._call_webhooks(at_webhook)
        # Only runs an event woke (due at WAKE_NOW) can have signals waiting; a signal that
        # lands for another one meanwhile makes it due again when the batch is saved.
        woken = {row.id for row in claimed if row.due_at is not None and row.due_at <= WAKE_NOW}
        try:
            await self._advance(ids, webhooks, woken)
        except Exception:
            log.exception("a batch of %d journey runs failed; retrying them one by one", len(ids))
            for run_id in ids:
                try:
                    await self._advance([run_id], webhooks, {run_id})
                except IntegrityError:
                    # This visit's step exists: another worker advanced the run after our
                    # lease ran out. Its work stands; ours is rolled back, nothing sent twice.
                    log.warning("journey run %s was advanced by another worker", run_id)
                except Exception:
                    log.exception("journey run %s failed; it leaves its journey", run_id)
                    await self._fail_run(run_id)
        self.fired += len(ids)
        return len(ids)

    def _maybe_webhook(self, version_id: int, node: str) -> bool:
        known = self._webhook_nodes.get(version_id)
        return known is None or node in known

    async def _advance(
        self, ids: list[int], webhooks: dict[int, WebhookResult], woken: set[int]
    ) -> None:
        """Decide on a read session, then write every effect in one short write transaction:
        on SQLite the writer is shared with the dispatcher's journal, so it is held only for
        the writes. The leases keep other workers off these runs meanwhile."""
        async with self.runtime.sessions() as reader:
            rows = (
                await reader.execute(
                    select(*RUN_COLUMNS).where(
                        RUNS.c.id.in_(ids), RUNS.c.lease_owner == self.worker_id
                    )
                )
            ).all()
            signal_rows: list[Any] = []
            if woken:
                signal_rows = list(
                    (
                        await reader.execute(
                            select(SIGNALS)
                            .where(SIGNALS.c.run_id.in_(sorted(woken)))
                            .order_by(SIGNALS.c.id)
                        )
                    ).all()
                )
            signals: dict[int, list[Signal]] = defaultdict(list)
            for s in signal_rows:
                signals[s.run_id].append(
                    Signal(s.name, dict(s.properties or {}), s.ts, s.message_id)
                )
            world = DbWorld(reader, self.runtime, self.runtime.clock.now())
            runs = [run_state(row) for row in rows]
            await world.preload([run.profile_id for run in runs])
            engine = Engine(world)
            for run in sorted(runs, key=lambda r: r.workspace_id):
                await world.use_workspace(run.workspace_id)
                graph = await version_graph(reader, run.version_id)
                if run.version_id not in self._webhook_nodes:
                    self._webhook_nodes[run.version_id] = frozenset(
                        node.id for node in graph.nodes.values() if node.type == "webhook"
                    )
                for signal in signals.get(cast(int, run.id), ()):
                    await engine.advance(run, graph, signal)
                await engine.advance(run, graph, None, webhooks.get(cast(int, run.id)))
        async with self.runtime.writer() as session:
            world.session = session
            if signal_rows:
                await session.execute(
                    delete(SIGNALS).where(SIGNALS.c.id.in_([s.id for s in signal_rows]))
                )
            await world.apply(runs)
            finished = [cast(int, run.id) for run in runs if run.finished]
            if finished:
                # News that reached a run in its last moments has nobody left to read it.
                await session.execute(delete(SIGNALS).where(SIGNALS.c.run_id.in_(finished)))
            await session.commit()

    async def _fail_run(self, run_id: int) -> None:
        async with self.runtime.writer() as session:
            now = self.runtime.clock.now()
            await session.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id)
                .values(
                    state="exited",
                    exit_reason="error",
                    due_at=None,
                    lease_owner=None,
                    lease_until=None,
                    finished_at=now,
                    updated_at=now,
                )
            )
            await session.commit()

    # --- webhooks ---------------------------------------------------------------------------------

    async def _call_webhooks(self, ids: list[int]) -> dict[int, WebhookResult]:
        """Runs waiting at a webhook node get their call made now, outside any transaction."""
        calls: list[tuple[int, str, dict[str, Any], dict[str, str]]] = []
        async with self.runtime.sessions() as session:
            rows = (
                await session.execute(
                    select(RUNS).where(RUNS.c.id.in_(ids), RUNS.c.state == "waiting")
                )
            ).all()
            for row in rows:
                graph = await version_graph(session, row.version_id)
                node = graph.nodes.get(row.node)
                if node is None or node.type != "webhook":
                    continue
                body = await self._webhook_body(session, row)
                headers = {str(k): str(v) for k, v in (node.config.get("headers") or {}).items()}
                calls.append((row.id, str(node.config["url"]), body, headers))
        if not calls:
            return {}
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout)
            )
        results = await asyncio.gather(*(self._post(url, body, h) for _i, url, body, h in calls))
        return {call[0]: result for call, result in zip(calls, results, strict=True)}

    async def _webhook_body(self, session: AsyncSession, row: Any) -> dict[str, Any]:
        from waconnect.profiles.models import Profile

        profile = await session.get(Profile, row.profile_id)
        context = {
            k: v for k, v in (row.context or {}).items() if k not in ("timer_at", "arrived_at")
        }
        return {
            "journey_id": row.journey_id,
            "version_id": row.version_id,
            "run_id": row.id,
            "node": row.node,
            "profile": None
            if profile is None
            else {
                "id": profile.id,
                "identity": profile.identity,
                "phone": profile.phone,
                "attributes": profile.attributes,
            },
            "context": context,
        }

    async def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> WebhookResult:
        assert self._http is not None
        try:
            async with self._http.post(
                url,
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json", **headers},
            ) as response:
                await response.read()
                return WebhookResult(200 <= response.status < 300, response.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return WebhookResult(False, None, str(exc) or type(exc).__name__)


async def start_scheduler(runtime: Runtime) -> Scheduler:
    from waconnect.journeys import listeners

    listeners.install()
    dispatcher = runtime.extras.get("dispatcher")
    worker_id = getattr(dispatcher, "worker_id", None)
    scheduler = Scheduler(runtime, worker_id)
    await scheduler.start()
    runtime.extras["journey_scheduler"] = scheduler
    return scheduler


def wake_scheduler(runtime: Runtime) -> None:
    scheduler = runtime.extras.get("journey_scheduler")
    if scheduler is not None:
        scheduler.wake()  # type: ignore[attr-defined]
