"""The campaign loop, run by the worker beside the dispatcher.

Each turn it starts scheduled campaigns whose time came, moves every running campaign one
chunk further (audience -> recipients + outbox rows, one transaction with the cursor), completes
campaigns with nothing left queued, auto-pauses a campaign after too many consecutive provider
failures, and finishes cancelling rows that were in flight when their campaign was cancelled.

Durability: a chunk's recipients, their messages and the advanced cursor commit together, and a
recipient is unique by (campaign, position); a crash loses at most an uncommitted chunk, which
the next turn redoes from the persisted cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.campaigns.models import Campaign
from waconnect.campaigns.planner import (
    AudienceReader,
    Decider,
    Decision,
    Variant,
    decide_chunk,
    load_variants,
    phones_reached,
)
from waconnect.campaigns.service import cancel_rows, hold_rows
from waconnect.messaging import pacing
from waconnect.messaging.journal import Bulk, DriverSql
from waconnect.messaging.models import DUE_WHERE, Message
from waconnect.messaging.service import (
    PRIORITY_BULK,
    NewMessage,
    enqueue,
    sqlite_insert_messages,
    sqlite_new_messages,
    wake_dispatcher,
)
from waconnect.messaging.states import Status
from waconnect.runtime import Runtime, follow_test_clock
from waconnect.web.errors import ApiError
from waconnect.workspaces.schemas import DndWindow, WorkspaceSettings
from waconnect.workspaces.service import get_workspace, settings_of

log = logging.getLogger("waconnect.campaigns")

SENT_OR_BEYOND = (Status.SENT, Status.DELIVERED, Status.READ)
FIRST_CHUNK = 100
# Chunks of one campaign written in a row before the turn's other checks come round again:
# the per-turn reads (campaigns, workspace settings, variants, segment) are paid once for them.
CHUNKS_PER_TURN = 10
# A chunk moves the cursor only if the campaign is still where its plan started.
_MOVE_CURSOR = """
UPDATE campaigns SET cursor = $1, audience_done = $2, recipients_seen = recipients_seen + $3,
    messages_queued = messages_queued + $4, next_slot_at = $5, updated_at = $6
WHERE id = $7 AND status = 'running' AND audience_done = false AND cursor = $8
"""
# Written at the driver level, as the dispatcher writes its bookkeeping: SQLAlchemy's
# per-parameter work for a 1,000-row chunk was most of the time the writer turn was held.
_INSERT_RECIPIENTS = """
INSERT INTO campaign_recipients (campaign_id, position, profile_id, phone, kind, variant,
    skip_reason, skip_detail, message_id, created_at)"""
_NEW_RECIPIENTS = Bulk(f"{_INSERT_RECIPIENTS}\nVALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
# SQLite, in a chunk's one hop: the recipients, made before the writer turn is taken. A
# message recipient carries its message's place among the chunk's new messages, whose ids are
# consecutive from the first (service.inserted_ids).
_SQLITE_NEW_RECIPIENTS = f"""{_INSERT_RECIPIENTS}
SELECT {", ".join(f"json_extract(value, '$[{n}]')" for n in range(8))},
    ?2 + json_extract(value, '$[8]'), json_extract(value, '$[9]')
FROM json_each(?1)
"""


@dataclass
class Context:
    """What the chunks of one campaign share within a turn, read for its first chunk."""

    settings: WorkspaceSettings
    variants: list[Variant]
    segment: Any = None  # the compiled segment (planner.AudienceReader)


@dataclass
class Plan:
    """One chunk, decided on a read session, to be written if nothing moved meanwhile."""

    campaign: Campaign  # as this chunk leaves it, once written: the next chunk starts there
    now: datetime
    cursor_from: int
    cursor_to: int
    next_slot_at: datetime | None
    done: bool = False
    waiting: bool = False  # the dispatcher has enough to do: read more later
    decisions: list[Decision] = field(default_factory=list)
    rows: list[NewMessage] = field(default_factory=list)
    settings: WorkspaceSettings | None = None
    phones: set[str] = field(default_factory=set)  # reached by this chunk: not twice after it


class CampaignRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.chunk = settings.campaign_chunk_size
        self.ahead = settings.campaign_read_ahead
        self.poll_every = settings.campaign_poll_seconds
        self.failure_limit = settings.campaign_auto_pause_failures
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checked: dict[tuple[str, int], float] = {}
        # SQLite: a chunk's write runs whole on a writer thread of its own (journal.SqliteHop).
        self._sql = DriverSql(runtime.engine, runtime.write_turn)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="campaigns")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._sql.close()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            follow_test_clock(self.runtime)
            busy = False
            try:
                busy = await self.turn()
            except Exception:
                log.exception("campaign turn failed")
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_every)
            else:
                await asyncio.sleep(0)  # let the dispatcher and the API have the loop

    def _due(self, what: str, campaign_id: int, every: float) -> bool:
        now = time.monotonic()
        if now - self._checked.get((what, campaign_id), 0.0) < every:
            return False
        self._checked[(what, campaign_id)] = now
        return True

    async def turn(self) -> bool:
        """One pass over every active campaign; True when a chunk was written."""
        await self._start_scheduled()
        async with self.runtime.sessions() as session:
            running = (
                await session.execute(
                    select(Campaign.id, Campaign.audience_done).where(Campaign.status == "running")
                )
            ).all()
            cancelled = list(
                await session.scalars(
                    select(Campaign.id).where(
                        Campaign.status == "cancelled", Campaign.settled.is_(False)
                    )
                )
            )
        busy = False
        for campaign_id, audience_done in running:
            checking = self.failure_limit and self._due("failures", campaign_id, 0.5)
            if checking and await self._pause_on_failures(campaign_id):
                continue
            if not audience_done:
                busy = await self._run_chunks(campaign_id) or busy
            elif self._due("complete", campaign_id, 0.3):
                await self._complete_if_done(campaign_id)
        for campaign_id in cancelled:
            if self._due("cancel", campaign_id, 0.5):
                await self._settle_cancelled(campaign_id)
        return busy

    async def _start_scheduled(self) -> None:
        now = self.runtime.clock.now()
        async with self.runtime.sessions() as session:
            due = await session.scalar(
                select(Campaign.id)
                .where(Campaign.status == "scheduled", Campaign.start_at <= now)
                .limit(1)
            )
        if due is None:
            return
        async with self.runtime.writer() as session:
            await session.execute(
                update(Campaign)
                .where(Campaign.status == "scheduled", Campaign.start_at <= now)
                .values(status="running", started_at=now, failures_from=now, updated_at=now)
            )
            await session.commit()

    # --- one chunk --------------------------------------------------------------------------

    async def _run_chunks(self, campaign_id: int) -> bool:
        """Up to CHUNKS_PER_TURN chunks of one campaign; True when one was written.

        Each chunk is planned while the one before it is being written (one write in flight):
        the writes wait for SQLite's writer turn, and the reads and the deciding need not wait
        with them. A plan made on a chunk that then fails to write is dropped unwritten.
        """
        contexts: dict[int, Context] = {}
        writing: asyncio.Task[bool] | None = None
        previous: Plan | None = None
        written = False
        try:
            for _ in range(CHUNKS_PER_TURN):
                if self._stop.is_set():
                    break
                plan = await self._next_plan(campaign_id, contexts, previous)
                if writing is not None:
                    ok, writing = await writing, None
                    written = written or ok
                    if not ok:  # the campaign moved meanwhile: this plan followed a void chunk
                        break
                if plan is None:
                    break
                writing = asyncio.create_task(self._write(campaign_id, plan))
                if plan.done:
                    break
                previous = plan
                await asyncio.sleep(0)  # let the dispatcher and the API have the loop
            if writing is not None:
                ok, writing = await writing, None
                written = written or ok
        finally:
            if writing is not None:  # cancelled (stopping): the write finishes on its own
                writing.add_done_callback(_quietly)
        return written

    async def _next_plan(
        self, campaign_id: int, contexts: dict[int, Context], previous: Plan | None
    ) -> Plan | None:
        """The next chunk, decided on a read session; None when there is nothing to write now.

        ``previous``: the chunk before it, perhaps still being written; this one is planned
        from where that one leaves the campaign. The write is conditional on the campaign
        still running with the cursor the plan started from: a pause, a cancel or another
        worker in between makes it write nothing (the next turn plans again). On SQLite the
        writer lock is held only for the writes, so the dispatcher's commits are not kept
        waiting while the audience is read.
        """
        now = self.runtime.clock.now()
        async with self.runtime.sessions() as session:
            campaign = previous.campaign if previous else await session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "running" or campaign.audience_done:
                return None
            if previous is None:
                # Planning moves it on in memory only: never to be flushed by a later read.
                session.expunge(campaign)
            try:
                plan = await self._plan(session, campaign, now, contexts, previous)
            except LookupError as exc:  # a variant's template was deleted
                problem = str(exc)
            except ApiError as exc:  # its segment was deleted, or no longer compiles
                problem = exc.message
            else:
                return None if plan.waiting else plan
        async with self.runtime.writer() as session:
            fresh = await session.get(Campaign, campaign_id)
            if fresh is not None and fresh.status == "running":
                await hold_rows(session, fresh, f"auto-paused: {problem}", now)
                await session.commit()
        return None

    async def _write(self, campaign_id: int, plan: Plan) -> bool:
        """The chunk's cursor, messages and recipients in one transaction; False when the
        campaign moved meanwhile (nothing written)."""
        if self._sql.hopping and all(row.contact_id for row in plan.rows):
            written = await self._write_in_one_hop(campaign_id, plan)
        else:
            written = await self._write_in_session(campaign_id, plan)
        if written and plan.rows:
            wake_dispatcher(self.runtime)
        return written

    async def _write_in_session(self, campaign_id: int, plan: Plan) -> bool:
        now = plan.now
        async with self.runtime.writer() as session:
            sql = DriverSql.of(session)
            connection = await session.connection()
            moved = await connection.exec_driver_sql(
                sql.sql(_MOVE_CURSOR), _move_values(sql, campaign_id, plan, now)
            )
            if not moved.rowcount:
                await session.rollback()
                return False
            ids = await enqueue(
                session, self.runtime, plan.campaign.workspace_id, plan.rows, plan.settings
            )
            if plan.decisions:
                rows = _recipient_rows(sql, campaign_id, plan.decisions, iter(ids), now)
                await sql.execute(session, [(_NEW_RECIPIENTS, rows)])
            await session.commit()
        return True

    async def _write_in_one_hop(self, campaign_id: int, plan: Plan) -> bool:
        """SQLite, every row with its contact: the same transaction, run whole on the writer
        thread. Through a session each statement waited for the busy event loop while the
        writer turn was held."""
        sql, now = self._sql, plan.now
        move = _move_values(sql, campaign_id, plan, now)
        messages = None
        if plan.rows:  # planned with the workspace's settings
            assert plan.settings is not None
            expires = now + timedelta(hours=plan.settings.message_expiry_hours)
            messages = sqlite_new_messages(plan.campaign.workspace_id, plan.rows, {}, now, expires)
        places = itertools.count()  # of each message among the chunk's (ids come in the hop)
        recipients = _recipient_rows(sql, campaign_id, plan.decisions, places, now)
        recipients_json = orjson.dumps(recipients).decode()

        def write(connection: sqlite3.Connection) -> bool | None:
            if not connection.execute(sql.sql(_MOVE_CURSOR), move).rowcount:
                return None  # paused, cancelled or moved on meanwhile: write nothing
            ids = sqlite_insert_messages(connection, messages) if messages else []
            if recipients:
                first = ids[0] if ids else 0
                connection.execute(_SQLITE_NEW_RECIPIENTS, (recipients_json, first))
            return True

        return bool(await sql.call(write))

    async def _plan(
        self,
        session: AsyncSession,
        campaign: Campaign,
        now: datetime,
        contexts: dict[int, Context],
        previous: Plan | None = None,
    ) -> Plan:
        """``contexts``: this turn's, by campaign; read here for a campaign's first chunk.
        ``campaign`` is advanced in memory to where the plan leaves it."""
        plan = Plan(
            campaign,
            now,
            campaign.cursor,
            campaign.cursor,
            campaign.next_slot_at,
        )
        if campaign.target_cap is not None and campaign.messages_queued >= campaign.target_cap:
            plan.done = True
            return plan
        if await self._backlog_full(session, campaign, now):
            plan.waiting = True
            return plan
        context = contexts.get(campaign.id)
        if context is None:
            settings = settings_of(await get_workspace(session, campaign.workspace_id))
            context = contexts[campaign.id] = Context(
                settings, await load_variants(session, campaign)
            )
        settings, variants = context.settings, context.variants
        plan.settings = settings
        reader = AudienceReader(session, campaign, settings, context.segment)
        # A small first chunk: the first messages leave while the rest is read.
        size = self.chunk if campaign.recipients_seen else min(self.chunk, FIRST_CHUNK)
        members, last = await reader.next_chunk(campaign.cursor, size, now)
        context.segment = reader.segment
        if last is None:
            plan.done = True
            campaign.audience_done = True
            return plan
        phones = [m.phone for m in members if m.phone]
        already = await phones_reached(session, campaign.id, phones)
        if previous is not None:  # its recipients may not be committed yet
            already.update(phone for phone in phones if phone in previous.phones)
        decisions = await decide_chunk(
            session, Decider(campaign, variants, settings), members, already, now
        )
        if campaign.target_cap is not None:
            room = campaign.target_cap - campaign.messages_queued
            decisions, capped_at = _within_cap(decisions, room)
            if capped_at is not None:
                last = capped_at
                plan.done = True
        sending = [d for d in decisions if d.kind == "message"]
        templates = {v.number: v.template_id for v in variants}
        plan.rows = self._messages(campaign, settings, sending, templates, now)
        plan.decisions = decisions
        plan.phones = {d.member.phone for d in decisions if d.member.phone}
        plan.cursor_to = last
        plan.next_slot_at = campaign.next_slot_at
        _advance(campaign, plan)
        return plan

    async def _backlog_full(self, session: AsyncSession, campaign: Campaign, now: datetime) -> bool:
        """Enough bulk rows already due for this provider: stream more when the dispatcher
        has drained some, so the audience is read at the pace it is sent and the CPU the
        reading takes is spread over the run instead of delaying the first messages."""
        due = (
            select(Message.id)
            .where(
                Message.provider_id == campaign.provider_id,
                text(DUE_WHERE),  # waiting to be claimed: the partial index ix_messages_due
                Message.priority == PRIORITY_BULK,
                Message.next_attempt_at <= now,
            )
            .limit(self.ahead)
            .subquery()
        )
        return int(await session.scalar(select(func.count()).select_from(due)) or 0) >= self.ahead

    def _messages(
        self,
        campaign: Campaign,
        settings: WorkspaceSettings,
        sending: Sequence[Decision],
        templates: dict[int, int],
        now: datetime,
    ) -> list[NewMessage]:
        spec = campaign.spec
        dnd: DndWindow | None = None
        if not spec.get("ignore_dnd"):
            dnd = DndWindow(**spec["dnd"]) if spec.get("dnd") else settings.dnd
        rate = campaign.throttle_per_second
        base = max(now, campaign.next_slot_at or now)
        expiry = timedelta(hours=settings.message_expiry_hours)
        custom_props = spec.get("custom_props") or None
        rows = []
        for k, decision in enumerate(sending):
            due = base + timedelta(seconds=k / rate) if rate else now
            if dnd is not None:
                tz = pacing.zone(decision.member.timezone, settings.timezone)
                due = pacing.next_allowed(due, dnd, tz)
            content: dict[str, Any] = {"components": decision.components or []}
            if custom_props:
                content["custom_props"] = custom_props
            rows.append(
                NewMessage(
                    provider_id=campaign.provider_id,
                    to_phone=decision.member.phone or "",
                    kind="template",
                    content=content,
                    template_id=templates[decision.variant or 0],
                    source="campaign",
                    priority=PRIORITY_BULK,
                    campaign_id=campaign.id,
                    contact_id=decision.member.contact_id,
                    next_attempt_at=due if due > now else None,
                    expires_at=campaign.cutoff_at or due + expiry,
                )
            )
        if rate:
            campaign.next_slot_at = base + timedelta(seconds=len(sending) / rate)
        return rows

    # --- completion, failures, cancellation -----------------------------------------------

    async def _complete_if_done(self, campaign_id: int) -> None:
        async with self.runtime.sessions() as session:
            workspace_id = await session.scalar(
                select(Campaign.workspace_id).where(Campaign.id == campaign_id)
            )
            # Any queued row, claimed and held ones too, by (workspace, status): the index
            # walks only the workspace's queued rows, cheap even when the campaign has a
            # million sent ones.
            waiting = await session.scalar(
                select(Message.id)
                .where(
                    Message.workspace_id == workspace_id,
                    Message.status == Status.QUEUED,
                    Message.campaign_id == campaign_id,
                )
                .limit(1)
            )
        if waiting is not None:
            return
        # A campaign whose last messages all failed is paused with the reason, not completed.
        if self.failure_limit and await self._pause_on_failures(campaign_id):
            return
        now = self.runtime.clock.now()
        async with self.runtime.writer() as session:
            await session.execute(
                update(Campaign)
                .where(
                    Campaign.id == campaign_id,
                    Campaign.status == "running",
                    Campaign.audience_done.is_(True),
                )
                .values(status="completed", finished_at=now, updated_at=now)
            )
            await session.commit()
        log.info("campaign %s completed", campaign_id)

    async def _pause_on_failures(self, campaign_id: int) -> bool:
        """Pause a running campaign whose last ``limit`` outcomes were all failures."""
        limit = self.failure_limit
        async with self.runtime.sessions() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "running":
                return False
            since = campaign.failures_from or campaign.created_at
            # The campaign's most recent outcomes, newest message first: walked backwards on
            # the campaign's index, past the rows still queued, it stops after ``limit`` rows.
            outcomes = (
                await session.execute(
                    select(Message.status, Message.error_code, Message.error_title)
                    .where(
                        Message.campaign_id == campaign_id,
                        Message.status.in_((Status.FAILED, Status.UNKNOWN, *SENT_OR_BEYOND)),
                        Message.updated_at >= since,
                    )
                    .order_by(Message.id.desc())
                    .limit(limit)
                )
            ).all()
        if len(outcomes) < limit or any(row[0] != Status.FAILED for row in outcomes):
            return False
        failures = outcomes
        _status, code, title = failures[0]
        reason = (
            f"auto-paused after {limit} consecutive provider failures "
            f"(last: {code}{' ' + title if title else ''}); fix the cause, then resume"
        )
        async with self.runtime.writer() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is not None and campaign.status == "running":
                await hold_rows(session, campaign, reason, self.runtime.clock.now())
                await session.commit()
                log.warning("campaign %s %s", campaign_id, reason)
        return True

    async def _settle_cancelled(self, campaign_id: int) -> None:
        now = self.runtime.clock.now()
        async with self.runtime.writer() as session:
            leased = await cancel_rows(session, campaign_id, now)
            if not leased:
                await session.execute(
                    update(Campaign).where(Campaign.id == campaign_id).values(settled=True)
                )
            await session.commit()


def _recipient_rows(
    sql: DriverSql,
    campaign_id: int,
    decisions: Sequence[Decision],
    message_ids: Iterator[int],
    now: datetime,
) -> list[tuple[Any, ...]]:
    created = sql.time(now)
    return [
        (
            campaign_id,
            d.member.position,
            d.member.profile_id,
            d.member.phone,
            d.kind,
            d.variant,
            d.reason,
            d.detail[:500] if d.detail else None,
            next(message_ids) if d.kind == "message" else None,
            created,
        )
        for d in decisions
    ]


def _move_values(sql: DriverSql, campaign_id: int, plan: Plan, now: datetime) -> tuple[Any, ...]:
    slot = sql.time(plan.next_slot_at) if plan.next_slot_at is not None else None
    seen, queued = len(plan.decisions), len(plan.rows)
    return (
        plan.cursor_to,
        plan.done,
        seen,
        queued,
        slot,
        sql.time(now),
        campaign_id,
        plan.cursor_from,
    )


def _advance(campaign: Campaign, plan: Plan) -> None:
    """The campaign, in memory, as it stands once ``plan`` is written (``_MOVE_CURSOR``)."""
    campaign.cursor = plan.cursor_to
    campaign.audience_done = plan.done
    campaign.recipients_seen += len(plan.decisions)
    campaign.messages_queued += len(plan.rows)


def _quietly(task: asyncio.Task[Any]) -> None:
    """Retrieve a task's outcome nobody awaits any more, so none is reported as lost."""
    if not task.cancelled():
        task.exception()


def _within_cap(decisions: list[Decision], room: int) -> tuple[list[Decision], int | None]:
    """Decisions up to the one that fills the target cap; the position to stop at, if reached."""
    taken = 0
    for index, decision in enumerate(decisions):
        if decision.kind == "message":
            taken += 1
            if taken == room:
                return decisions[: index + 1], decision.member.position
    return decisions, None


async def start_campaign_loop(runtime: Runtime) -> CampaignRunner:
    runner = CampaignRunner(runtime)
    await runner.start()
    runtime.extras["campaigns"] = runner
    return runner
