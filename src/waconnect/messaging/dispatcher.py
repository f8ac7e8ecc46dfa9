"""The dispatcher: the only code that sends a message to a provider.

How "never twice" holds (design.md, "In doubt, never twice"):

1. A row is claimed by one worker at a time (``lease_owner``; on PostgreSQL the claim is
   ``FOR UPDATE SKIP LOCKED``, on SQLite only one worker process may run).
2. Before a request is written, its attempt is committed as begun (``pending_attempt``), with
   its own reference ``<message id>-<attempt number>`` that the provider echoes in reports.
3. When the outcome is known it is committed and the lease released. A request that may have
   reached the provider but gave no clear answer (timeout, broken connection, a 2xx we cannot
   read) makes the message ``unknown``; it is never resent by the dispatcher.
4. If a worker dies, its leases are recovered only after its heartbeat expired (longer than the
   HTTP timeout): rows with an attempt begun become ``unknown`` (the request may be out), rows
   never begun are simply claimable again.
5. An ``unknown`` message is settled by a report for its attempt; past the workspace's wait,
   the in-doubt policy decides: ``hold`` keeps it unknown (no customer gets it twice),
   ``resend`` queues a new attempt (a late report may mean a duplicate — the user chose it).

Concurrency: each provider config is a lane with a limiter sized by this worker's share of the
config's budget (messaging/budget.py), so requests in flight never exceed ``max_concurrency``
across all workers. Where the provider takes many recipients per request (MSG91 bulk), the
lane batches; the limit counts requests.

Pipelining: a request's attempt is begun (committed) before it waits for a slot, so a slot is
never idle while a commit is on its way. A few requests per lane may be begun ahead of a free
slot (``_ahead``); a crash then leaves those few ``unknown`` although they never left, which
point 4 already allows for every request in flight. A clean stop records them as ``not_sent``
and queues the messages again.

Outcomes are recorded in batches after the requests (``Journal``): while more than
``UNWRITTEN_OUTCOMES`` of them wait to be written, no new request starts. A crash leaves those
rows ``unknown`` (their requests went out), so the bound also bounds what a crash leaves in
doubt, and the memory the waiting outcomes take.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
from sqlalchemy import and_, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging import budget
from waconnect.messaging.journal import Bulk, DriverSql, Journal, sqlite_numbered
from waconnect.messaging.models import DUE_WHERE, IN_DOUBT_WHERE, Attempt, Message, Worker
from waconnect.messaging.retry import Fail, RetryPolicy
from waconnect.messaging.service import PRIORITY_BULK
from waconnect.messaging.states import Status
from waconnect.profiles.events import quick_send_outcomes, record_send_outcomes
from waconnect.providers.adapters import (
    OutboundItem,
    ProviderAdapter,
    ProviderEndpoint,
    SessionSend,
    TemplateSend,
    UnsupportedContent,
    get_adapter,
)
from waconnect.providers.errors import ErrorFamily, ProviderError, make_error
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import endpoint_for
from waconnect.providers.transport import (
    AiohttpTransport,
    HttpResponse,
    InDoubt,
    NotSent,
    Transport,
)
from waconnect.runtime import Runtime, follow_test_clock
from waconnect.templates.models import Template
from waconnect.templates.render import RenderError

log = logging.getLogger("waconnect.dispatcher")

RESPONSE_KEEP = 2000  # characters of a provider's answer kept on the attempt
CLAIM_MAX = 2000  # rows per claim statement
BACKLOG_MAX = 4000  # claimed rows a lane holds at most: a claim skips the leased rows it meets
SCAN_MAX = 4  # a batch looks at most this many times its size for rows of other phones
EXPIRE_EVERY = 30.0  # seconds between the sweeps that look for rows past their cut-off
IN_CHUNK = 5000  # ids per IN (...) list
# Rows whose outcome is known but not yet written, at most, before the lanes wait: about two
# seconds of sends at 10,000 recipients/s.
UNWRITTEN_OUTCOMES = 20_000

# --- the statements of the hot path, in the driver's terms (journal.DriverSql) ----------------

# The literal DUE_WHERE matches the partial index ix_messages_due (a bound one would not).
_DUE = f"""
    SELECT id FROM messages
    WHERE provider_id = $2 AND {DUE_WHERE}
        AND next_attempt_at <= $3 AND (expires_at IS NULL OR expires_at > $3)
    ORDER BY priority, next_attempt_at, id
    LIMIT $4
"""
# What a claim reads of each row, in the order ``Claimed`` takes it.
_CLAIMED = (
    "id, workspace_id, to_phone, kind, {content}, template_id, attempt_count, "
    "transient_failures, priority, next_attempt_at"
)
_CLAIM = f"""
UPDATE messages SET lease_owner = $1
WHERE id IN ({_DUE}{{lock}})
RETURNING {_CLAIMED.format(content="content")}
"""
# SQLite, in one hop: the same claim, its rows handed back as one JSON array. A RETURNING row
# is one statement step, and the writer thread gives up the GIL around each step and waits to
# get it back while it holds the writer turn: a 1,000-row claim held it three times as long.
_SQLITE_DUE = sqlite_numbered(f"SELECT json_group_array(id) FROM ({_DUE})")
_SQLITE_LEASE = "UPDATE messages SET lease_owner = ?1 WHERE id IN (SELECT value FROM json_each(?2))"
_SQLITE_LEASED = f"""
SELECT json_group_array(json_array({_CLAIMED.format(content="json(content)")}))
FROM messages WHERE id IN (SELECT value FROM json_each(?1))
"""
_BEGIN_ATTEMPT = Bulk("""
INSERT INTO message_attempts (message_id, number, reference, worker_id, began_at, request)
VALUES ($1, $2, $3, $4, $5, $6)
""")
_BEGIN_MESSAGE = Bulk(
    "UPDATE messages SET attempt_count = $1, pending_attempt = true WHERE id = $2"
)
_HELD = "SELECT id FROM messages WHERE id IN ({ids}) AND held = true"
_GIVE_BACK = Bulk(
    "UPDATE messages SET lease_owner = NULL "
    "WHERE lease_owner = $1 AND id = $2 AND pending_attempt = false"
)
_FINISH_ATTEMPT = Bulk("""
UPDATE message_attempts SET outcome = $1, finished_at = $2, http_status = $3, response = $4,
    error_code = $5, error_title = $6, provider_request_id = $7
WHERE message_id = $8 AND number = $9
""")
# Every message statement below ends the attempt it names, and only if that attempt is still
# the message's current one. A report may have raced ahead of the provider's answer: never
# move a message back, and a throttled "failed" report that already requeued it (a later
# next_attempt_at) wins. $1 is the time of the outcome.
_DONE = "pending_attempt = false, lease_owner = NULL, updated_at = $1"
_UNTOUCHED = "status = 'queued' AND next_attempt_at <= $1"
_FINISH_MESSAGE_SQL = {
    "accepted": f"""
UPDATE messages SET
    status = CASE WHEN {_UNTOUCHED} THEN 'sent' ELSE status END,
    sent_at = COALESCE(sent_at, $1),
    error_code = CASE WHEN {_UNTOUCHED} THEN NULL ELSE error_code END,
    error_title = CASE WHEN {_UNTOUCHED} THEN NULL ELSE error_title END,
    {_DONE}
WHERE id = $2 AND attempt_count = $3
""",
    "retry": f"""
UPDATE messages SET next_attempt_at = $4, transient_failures = transient_failures + $5,
    error_code = $6, error_title = $7, {_DONE}
WHERE id = $2 AND attempt_count = $3
""",
    "rejected": f"""
UPDATE messages SET
    status = CASE WHEN status IN ('queued', 'unknown', 'sent') THEN 'failed' ELSE status END,
    failed_at = $1, error_code = $4, error_title = $5, {_DONE}
WHERE id = $2 AND attempt_count = $3
""",
    "in_doubt": f"""
UPDATE messages SET
    status = CASE WHEN {_UNTOUCHED} THEN 'unknown' ELSE status END,
    unknown_reason = CASE WHEN {_UNTOUCHED} THEN $4 ELSE unknown_reason END,
    in_doubt_since = CASE WHEN {_UNTOUCHED} THEN $1 ELSE in_doubt_since END,
    {_DONE}
WHERE id = $2 AND attempt_count = $3
""",
    # Begun, then the worker stopped before a slot came: the request never left.
    "not_sent": f"UPDATE messages SET {_DONE} WHERE id = $2 AND attempt_count = $3",
}
_FINISH_MESSAGE = {outcome: Bulk(statement) for outcome, statement in _FINISH_MESSAGE_SQL.items()}


@dataclass(slots=True)
class Claimed:
    """A leased row; ``item`` is what the adapter sends, built once the row is claimed."""

    id: int
    workspace_id: int
    to_phone: str
    kind: str
    content: dict[str, Any]
    template_id: int | None
    attempt_count: int
    transient_failures: int
    order: tuple[Any, ...]  # the claim's order: priority, due time, id
    number: int = 0
    reference: str = ""
    item: OutboundItem | None = None

    def __post_init__(self) -> None:
        self.number = self.attempt_count + 1
        self.reference = f"{self.id}-{self.number}"


class Backlog:
    """A lane's claimed rows, kept in the claim's order within groups of rows that may share
    a request (the adapter's ``batch_key``); a lane sending one per request keeps one group."""

    def __init__(self, adapter: ProviderAdapter, size: int) -> None:
        self.adapter = adapter
        self.size = size
        self._groups: dict[Hashable, deque[Claimed]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def extend(self, rows: Iterable[Claimed]) -> None:
        for row in rows:
            assert row.item is not None
            key = None if self.size == 1 else self.adapter.batch_key(row.item)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = deque()
            group.append(row)
            self._count += 1

    def drain(self) -> list[Claimed]:
        rows = sorted((row for group in self._groups.values() for row in group), key=_claim_order)
        self._groups.clear()
        self._count = 0
        return rows

    def take(self) -> list[Claimed]:
        """The next request's rows: the group whose first row comes first, at most ``size``
        rows, a phone at most once (reports are matched by request id + phone)."""
        groups = self._groups
        key = next(iter(groups)) if len(groups) == 1 else min(groups, key=_head_order(groups))
        group = groups[key]
        if self.size == 1:
            batch = [group.popleft()]
        else:
            batch, phones, other_phone = [], set(), []
            budget_left = self.size * SCAN_MAX
            while group and len(batch) < self.size and budget_left:
                budget_left -= 1
                row = group.popleft()
                if row.to_phone in phones:
                    other_phone.append(row)
                else:
                    phones.add(row.to_phone)
                    batch.append(row)
            group.extendleft(reversed(other_phone))
        if not group:
            del groups[key]
        self._count -= len(batch)
        return batch


def _head_order(groups: dict[Hashable, deque[Claimed]]) -> Callable[[Hashable], tuple[Any, ...]]:
    return lambda key: groups[key][0].order


@dataclass
class Lane:
    """One provider config inside this worker.

    ``limiter`` holds the requests in flight (this worker's share of the budget); ``ahead``
    bounds the requests begun or being begun on top of those, so at most a few wait for a slot.
    """

    provider_id: int
    version: datetime
    adapter: ProviderAdapter
    endpoint: ProviderEndpoint
    transport: Transport
    limiter: budget.Limiter
    ahead: budget.Limiter
    max_concurrency: int
    backlog: Backlog
    share: int = 0  # slots recorded in provider_shares
    pump: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def per_request(self) -> int:
        return self.backlog.size

    @property
    def target(self) -> int:
        """Rows to hold so the lane never runs dry: about four rounds of its limit."""
        return min(self.limiter.capacity * 4 * self.per_request, BACKLOG_MAX)


@dataclass(frozen=True, slots=True)
class Finish:
    """What became of one attempt (also read by profiles/events.py as a ``SendOutcome``)."""

    message_id: int
    number: int
    outcome: str  # accepted | rejected | throttled | transient | in_doubt | not_sent
    at: datetime
    http_status: int | None = None
    response: str | None = None
    error: ProviderError | None = None
    provider_request_id: str | None = None
    retry_at: datetime | None = None
    counts: bool = False  # a transient failure that counts against the limit
    reason: str | None = None  # why in doubt


TransportFactory = Callable[[ProviderConfig], Transport]


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        transport_factory: TransportFactory | None = None,
        policy: RetryPolicy | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.http_timeout = settings.http_timeout_seconds
        # A dead worker's share and leases come back only after this: longer than any request.
        self.heartbeat_ttl = settings.http_timeout_seconds + settings.heartbeat_grace_seconds
        self.heartbeat_every = settings.heartbeat_seconds
        self.poll_every = settings.poll_seconds
        self.policy = policy or RetryPolicy(max_transient=settings.max_transient_failures)
        self._transport_factory = transport_factory or self._aiohttp_transport
        self._locking = not settings.is_sqlite
        self._sql = DriverSql(runtime.engine, runtime.write_turn)
        self._claim_sql = _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED" if self._locking else "")
        self.lanes: dict[int, Lane] = {}
        self._templates: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self.journal = Journal({"begin": self._write_begins, "finish": self._write_finishes})
        self.unwritten_limit = UNWRITTEN_OUTCOMES
        self._unwritten = 0
        self._room = asyncio.Event()  # set while fewer than unwritten_limit wait
        self._room.set()

    # --- lifecycle -------------------------------------------------------------------------

    def _aiohttp_transport(self, config: ProviderConfig) -> Transport:
        return AiohttpTransport(config.max_concurrency, self.http_timeout)

    def wake(self) -> None:
        """New work was queued in this process: claim now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        await self._register()
        self.journal.start()
        await self.recover(startup=True)
        await self._refresh_lanes()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="dispatcher-heartbeat"),
            asyncio.create_task(self._claim_loop(), name="dispatcher-claim"),
            asyncio.create_task(self._sweep_loop(), name="dispatcher-sweep"),
        ]

    async def stop(self) -> None:
        """Stop claiming, let requests in flight finish and be recorded, hand leases back."""
        self._stop.set()
        self._wake.set()
        for lane in self.lanes.values():
            lane.ready.set()
        for task in self._tasks:
            task.cancel()
        for lane in self.lanes.values():
            if lane.pump is not None:
                lane.pump.cancel()
        await asyncio.gather(
            *self._tasks,
            *(lane.pump for lane in self.lanes.values() if lane.pump),
            return_exceptions=True,
        )
        # Requests begun but still waiting for a slot are not sent now (recorded not_sent).
        for lane in self.lanes.values():
            lane.limiter.close()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        await self.journal.close()
        await self._sql.close()
        async with self.runtime.writer() as session:
            # Claimed but never begun: give them back at once.
            await session.execute(
                update(Message)
                .where(Message.lease_owner == self.worker_id, Message.pending_attempt.is_(False))
                .values(lease_owner=None)
            )
            await session.execute(
                delete(budget.ProviderShare).where(budget.ProviderShare.worker_id == self.worker_id)
            )
            await session.execute(delete(Worker).where(Worker.id == self.worker_id))
            await session.commit()
        for lane in self.lanes.values():
            await lane.transport.close()

    async def _register(self) -> None:
        async with self.runtime.writer() as session:
            now = budget.wall_now()
            session.add(
                Worker(
                    id=self.worker_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )
            await session.commit()

    # --- budget and lanes ----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                async with self.runtime.writer() as session:
                    await session.execute(
                        update(Worker)
                        .where(Worker.id == self.worker_id)
                        .values(heartbeat_at=budget.wall_now())
                    )
                    await session.commit()
                await self._refresh_lanes()
                follow_test_clock(self.runtime)
            except Exception:
                log.exception("heartbeat failed")
            await _sleep_or(self._stop, self.heartbeat_every)

    async def _refresh_lanes(self) -> None:
        async with self.runtime.sessions() as session:
            configs = list(await session.scalars(select(ProviderConfig)))
            alive = await budget.alive_workers(session, self.heartbeat_ttl)
        seen = set()
        for config in configs:
            seen.add(config.id)
            lane = self.lanes.get(config.id)
            if lane is None or lane.version != config.updated_at:
                lane = await self._make_lane(config, lane)
            await self._rebalance(lane, alive)
        for provider_id in set(self.lanes) - seen:
            lane = self.lanes.pop(provider_id)
            if lane.pump is not None:
                lane.pump.cancel()
            await lane.transport.close()

    async def _make_lane(self, config: ProviderConfig, old: Lane | None) -> Lane:
        endpoint = endpoint_for(self.runtime, config)
        adapter = get_adapter(config.kind)
        size = max(adapter.max_batch(endpoint), 1)
        if old is not None:
            # Settings changed: keep the limiter (requests in flight count) and the backlog,
            # regrouped when what may share a request changed.
            old.version, old.endpoint = config.updated_at, endpoint
            old.adapter, old.max_concurrency = adapter, config.max_concurrency
            if old.backlog.adapter is not adapter or old.backlog.size != size:
                rows = old.backlog.drain()
                old.backlog = Backlog(adapter, size)
                old.backlog.extend(rows)
            return old
        lane = Lane(
            provider_id=config.id,
            version=config.updated_at,
            adapter=adapter,
            endpoint=endpoint,
            transport=self._transport_factory(config),
            limiter=budget.Limiter(0),
            ahead=budget.Limiter(0),
            max_concurrency=config.max_concurrency,
            backlog=Backlog(adapter, size),
        )
        lane.pump = asyncio.create_task(self._pump(lane), name=f"lane-{config.id}")
        self.lanes[config.id] = lane
        return lane

    async def _set_capacity(self, lane: Lane, slots: int) -> None:
        await lane.limiter.set_capacity(slots)
        # Begun ahead of a slot: enough to cover a commit's wait, few enough that a crash
        # leaves only a handful of never-sent rows in doubt (about half the slots in rows).
        ahead = max(1, slots // (2 * lane.per_request)) if slots > 0 else 0
        await lane.ahead.set_capacity(slots + ahead)

    async def _rebalance(self, lane: Lane, alive: list[str]) -> None:
        target = budget.fair_share(lane.max_concurrency, alive, self.worker_id)
        if target < lane.share:
            # Shrink locally first; record the smaller share once in-flight fits under it.
            await self._set_capacity(lane, target)
            if lane.limiter.in_flight <= target:
                async with self.runtime.writer() as session:
                    await budget.shrink_share(session, lane.provider_id, self.worker_id, target)
                    await session.commit()
                lane.share = target
        elif target > lane.share or lane.limiter.capacity < lane.share:
            async with self.runtime.writer() as session:
                granted = await budget.grow_share(
                    session,
                    lane.provider_id,
                    self.worker_id,
                    target,
                    self.heartbeat_ttl,
                    self._locking,
                )
                await session.commit()
            lane.share = granted
            await self._set_capacity(lane, granted)

    # --- claiming --------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        """Keep every lane's backlog filled; sleep until woken when there is nothing due."""
        while not self._stop.is_set():
            found_work = False
            try:
                for lane in list(self.lanes.values()):
                    want = min(lane.target - len(lane.backlog), CLAIM_MAX)
                    if want < max(lane.limiter.capacity, lane.target // 4, 1):
                        continue  # enough in hand; the pump wakes us when it runs low
                    rows = await self.claim(lane.provider_id, want)
                    if rows:
                        found_work = True
                        lane.backlog.extend(await self._with_items(rows))
                        lane.ready.set()
            except Exception:
                log.exception("claim failed")
            if not found_work:
                self._wake.clear()
                await _sleep_or(self._wake, self.poll_every)

    async def claim(self, provider_id: int, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due rows of one provider: priority first, then due time."""
        sql = self._sql
        now = sql.time(self.runtime.clock.now())
        values = (self.worker_id, provider_id, now, limit)
        if sql.hopping:  # contents come decoded with the rows
            rows = orjson.loads(await sql.call(partial(_sqlite_claim, values)) or "[]")
        else:
            rows = await sql.fetch(self.runtime.writer, self._claim_sql, values)
        claimed = [
            Claimed(
                row[0],
                row[1],
                row[2],
                row[3],
                sql.read_json(row[4]),
                row[5],
                row[6],
                row[7],
                (row[8], row[9], row[0]),
            )
            for row in rows
        ]
        claimed.sort(key=_claim_order)
        return claimed

    async def _with_items(self, rows: list[Claimed]) -> list[Claimed]:
        """Build each row's outbound item; rows whose template is gone fail without a send."""
        templates = {
            template_id: await self._template(template_id)
            for template_id in {row.template_id for row in rows if row.kind != "session"}
            if template_id is not None
        }
        sendable: list[Claimed] = []
        missing: list[Claimed] = []
        for row in rows:
            if row.kind == "session":
                row.item = SessionSend(row.reference, row.to_phone, row.content)
            else:
                template = templates.get(row.template_id) if row.template_id else None
                if template is None:
                    missing.append(row)
                    continue
                content = row.content
                row.item = TemplateSend(
                    row.reference,
                    row.to_phone,
                    template,
                    content.get("components") or (),
                    content.get("custom_props"),
                )
            sendable.append(row)
        if missing:
            await self._fail_unsent(missing, "its template was deleted before it was sent")
        return sendable

    async def _template(self, template_id: int) -> dict[str, Any] | None:
        cached = self._templates.get(template_id)
        if cached is not None and time.monotonic() - cached[0] < 10:
            return cached[1]
        async with self.runtime.sessions() as session:
            template = await session.get(Template, template_id)
        definition = None
        if template is not None:
            definition = dict(template.definition)
            definition.update(
                name=template.name,
                language=template.language,
                category=template.category,
                namespace=template.namespace,
            )
        self._templates[template_id] = (time.monotonic(), definition)
        return definition

    # --- sending ---

    async def _pump(self, lane: Lane) -> None:
        """Turn the lane's backlog into requests, as fast as its limits allow."""
        while not self._stop.is_set():
            if not lane.backlog:
                lane.ready.clear()
                await lane.ready.wait()
                continue
            await self._room.wait()  # outcomes are being written behind: let them catch up
            await lane.ahead.acquire()
            if self._stop.is_set() or not lane.backlog:
                await lane.ahead.release()
                continue
            batch = lane.backlog.take()
            if len(lane.backlog) < lane.target // 2:
                self._wake.set()  # running low: claim more before the lane runs dry
            task = asyncio.create_task(self._send(lane, batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, lane: Lane, rows: list[Claimed]) -> None:
        """Begin the attempts, then send once a slot is free, then record the outcome."""
        begun = holding = False
        try:
            items = [row.item for row in rows if row.item is not None]
            try:
                request = lane.adapter.build_request(lane.endpoint, items)
            except (UnsupportedContent, RenderError, ValueError) as exc:
                await self._fail_unsent(rows, str(exc))
                return
            # Durable before the request is written: a crash from here on is "in doubt".
            # Only campaigns hold rows (pause), and campaigns send at bulk priority.
            pausable = rows[0].order[0] == PRIORITY_BULK
            held = await self.journal.submit(
                "begin", [(pausable, self._begin_rows(rows, request.masked_json()))]
            )
            if any(row.id in held for row in rows):
                return  # its campaign was paused: given back unbegun, claimable after resume
            begun = True
            try:
                await lane.limiter.acquire()
            except budget.Closed:
                self._record(self._not_sent(rows))
                return
            holding = True
            try:
                response: HttpResponse | None = await lane.transport.send(request)
                failure: Exception | None = None
            except (NotSent, InDoubt) as exc:
                response, failure = None, exc
            await lane.limiter.release()
            holding = False
            self._record(self._outcomes(lane, rows, items, response, failure))
        except Exception:
            log.exception("sending to provider %s failed unexpectedly", lane.provider_id)
            if not begun:
                await self._give_back(rows)
            else:
                # Begun and then lost track: the request may be out, so never resend blindly.
                reason = "in doubt: the worker lost track of this request"
                now = self.runtime.clock.now()
                self._record([Finish(r.id, r.number, "in_doubt", now, reason=reason) for r in rows])
        finally:
            if holding:
                await lane.limiter.release()
            await lane.ahead.release()

    def _record(self, finishes: Sequence[Finish]) -> None:
        """Queue outcomes to be written; counted until they are (``UNWRITTEN_OUTCOMES``)."""
        count = len(finishes)
        self._unwritten += count
        if self._unwritten >= self.unwritten_limit:
            self._room.clear()
        written = self.journal.submit("finish", finishes)
        written.add_done_callback(lambda future: self._written(future, count))

    def _written(self, future: asyncio.Future[Any], count: int) -> None:
        if not future.cancelled():
            future.exception()  # a failed write was logged by the journal
        self._unwritten -= count
        if self._unwritten < self.unwritten_limit:
            self._room.set()

    def _begin_rows(self, rows: Sequence[Claimed], request: str) -> list[tuple[Any, ...]]:
        """Attempt rows: the first carries the request as sent, the others point to it."""
        began = self._sql.time(self.runtime.clock.now())
        first = rows[0]
        shared = f'{{"batch_of": "{first.reference}"}}'
        return [
            (
                row.id,
                row.number,
                row.reference,
                self.worker_id,
                began,
                request if row is first else shared,
            )
            for row in rows
        ]

    async def _give_back(self, rows: Sequence[Claimed]) -> None:
        """Rows whose attempt was never begun: claimable again (best effort)."""
        with contextlib.suppress(Exception):
            async with self.runtime.writer() as session:
                await session.execute(
                    update(Message)
                    .where(
                        Message.id.in_([row.id for row in rows]),
                        Message.lease_owner == self.worker_id,
                        Message.pending_attempt.is_(False),
                    )
                    .values(lease_owner=None)
                )
                await session.commit()

    def _not_sent(self, rows: Sequence[Claimed]) -> list[Finish]:
        now = self.runtime.clock.now()
        return [Finish(row.id, row.number, "not_sent", now) for row in rows]

    def _outcomes(
        self,
        lane: Lane,
        rows: Sequence[Claimed],
        items: Sequence[OutboundItem],
        response: HttpResponse | None,
        failure: Exception | None,
    ) -> list[Finish]:
        now = self.runtime.clock.now()
        if isinstance(failure, InDoubt):
            reason = f"in doubt: {failure}; the provider may have received it"
            return [Finish(r.id, r.number, "in_doubt", now, reason=reason) for r in rows]
        if isinstance(failure, NotSent) or response is None:
            error = make_error("net", "connect", str(failure))
            return [self._retry_or_fail(r, now, error, None, None, None) for r in rows]
        text = response.body[:RESPONSE_KEEP].decode("utf-8", "replace")
        results = lane.adapter.parse_response(response.status, response.body, items)
        finishes = []
        for row, result in zip(rows, results, strict=True):
            if result.accepted:
                finishes.append(
                    Finish(
                        row.id,
                        row.number,
                        "accepted",
                        now,
                        response.status,
                        text,
                        provider_request_id=result.provider_request_id,
                    )
                )
            elif result.in_doubt or result.error is None:
                finishes.append(
                    Finish(
                        row.id,
                        row.number,
                        "in_doubt",
                        now,
                        response.status,
                        text,
                        reason="in doubt: the provider's answer could not be read",
                    )
                )
            else:
                finishes.append(
                    self._retry_or_fail(
                        row, now, result.error, response.status, text, result.provider_request_id
                    )
                )
        return finishes

    def _retry_or_fail(
        self,
        row: Claimed,
        now: datetime,
        error: ProviderError,
        status: int | None,
        text: str | None,
        request_id: str | None,
    ) -> Finish:
        transient = error.family is ErrorFamily.TRANSIENT
        failures = row.transient_failures + (1 if transient else 0)
        throttles = max(row.attempt_count - row.transient_failures, 0) + 1
        decision = self.policy.decide(error, now, failures, throttles)
        if isinstance(decision, Fail):
            return Finish(row.id, row.number, "rejected", now, status, text, error, request_id)
        outcome = "throttled" if error.family is ErrorFamily.THROTTLED else "transient"
        return Finish(
            row.id,
            row.number,
            outcome,
            now,
            status,
            text,
            error,
            request_id,
            retry_at=decision.at,
            counts=decision.counts,
        )

    async def _fail_unsent(self, rows: Sequence[Claimed], why: str) -> None:
        """Messages that can never be sent as they are: failed without an attempt."""
        now = self.runtime.clock.now()
        async with self.runtime.writer() as session:
            await session.execute(
                update(Message)
                .where(Message.id.in_([r.id for r in rows]), Message.status == Status.QUEUED)
                .values(
                    status=Status.FAILED,
                    error_code="waconnect:unsendable",
                    error_title=why,
                    failed_at=now,
                    updated_at=now,
                    lease_owner=None,
                )
            )
            await session.commit()

    # --- journal writers -------------------------------------------------------------------------

    async def _write_begins(
        self, sends: Sequence[tuple[bool, Sequence[tuple[Any, ...]]]]
    ) -> set[int]:
        """Begin the attempts of each send (one item per request); a send with a row that
        is held now (its campaign was paused after the claim) is not begun but given back.
        Returns the held ids. A pause that lands after this read finds the request in flight.
        Only sends at bulk priority (campaigns) are looked at: nothing else is ever held.
        """
        pausable = [row[0] for may_hold, send in sends if may_hold for row in send]
        held = await self._held(pausable) if pausable else set()
        rows: list[tuple[Any, ...]] = []
        given_back: list[tuple[Any, ...]] = []
        for _may_hold, send in sends:
            stopped = any(row[0] in held for row in send)
            (given_back if stopped else rows).extend(send)
        marks = [(row[1], row[0]) for row in rows]
        back = [(self.worker_id, row[0]) for row in given_back]
        await self._sql.write(
            self.runtime.writer,
            [(_BEGIN_ATTEMPT, rows), (_BEGIN_MESSAGE, marks), (_GIVE_BACK, back)],
        )
        return held

    async def _held(self, ids: Sequence[int]) -> set[int]:
        sql = self._sql
        async with self.runtime.sessions() as session:
            connection = await session.connection()
            result = await connection.exec_driver_sql(
                sql.sql(_HELD.format(ids=sql.id_list(1))), (sql.ids(ids),)
            )
            return {row[0] for row in result.all()}

    async def _write_finishes(self, finishes: Sequence[Finish]) -> None:
        sql = self._sql
        times: dict[datetime, Any] = {}  # a response's rows share one time: encode it once

        def at(moment: datetime) -> Any:
            encoded = times.get(moment)
            if encoded is None:
                encoded = times[moment] = sql.time(moment)
            return encoded

        attempts = []
        messages: dict[str, list[tuple[Any, ...]]] = {}
        for f in finishes:
            error = f.error
            code, title = (error.code, error.title) if error is not None else (None, None)
            attempts.append(
                (
                    f.outcome,
                    at(f.at),
                    f.http_status,
                    f.response,
                    code,
                    title,
                    f.provider_request_id,
                    f.message_id,
                    f.number,
                )
            )
            row: tuple[Any, ...] = (at(f.at), f.message_id, f.number)
            if f.outcome in ("throttled", "transient"):
                assert f.retry_at is not None
                row += (at(f.retry_at), 1 if f.counts else 0, code, title)
                messages.setdefault("retry", []).append(row)
            elif f.outcome == "rejected":
                messages.setdefault("rejected", []).append((*row, code, title))
            elif f.outcome == "in_doubt":
                messages.setdefault("in_doubt", []).append((*row, f.reason))
            else:
                messages.setdefault(f.outcome, []).append(row)
        steps: list[tuple[Bulk, Sequence[tuple[Any, ...]]]] = [(_FINISH_ATTEMPT, attempts)]
        steps.extend((_FINISH_MESSAGE[outcome], rows) for outcome, rows in messages.items())
        # SQLite: the statuses and their profile events in one hop when no listener has work.
        quick = quick_send_outcomes(finishes) if sql.hopping else None
        if quick is not None:
            writes: list[tuple[Bulk | str, Any]] = list(steps)
            if quick.insert is not None:
                writes.append(quick.insert)
            if await sql.write_unless(quick.checks, writes):
                return
        async with self.runtime.writer() as session:
            await sql.execute(session, steps)
            # WhatsApp Sent / Failed on the profiles the messages went to (profiles/events.py).
            await record_send_outcomes(session, finishes)
            await session.commit()

    # --- sweeps: expiry, dead workers, the in-doubt wait ---

    async def _sweep_loop(self) -> None:
        expired_at = time.monotonic()
        while not self._stop.is_set():
            await _sleep_or(self._stop, self.runtime.settings.sweep_seconds)
            try:
                # Expiry reads every queued row (no index serves it): not every sweep. A row
                # past its cut-off is never claimed meanwhile; marking it is bookkeeping.
                expire = time.monotonic() - expired_at >= EXPIRE_EVERY
                await self.recover(expire=expire)
                if expire:
                    expired_at = time.monotonic()
            except Exception:
                log.exception("sweep failed")

    async def recover(self, startup: bool = False, expire: bool = True) -> None:
        """Expire what passed its cut-off, recover dead workers' leases, settle the in-doubt.

        What needs a scan of the outbox is found by reading first, outside the writer's turn
        (a read does not block the sends' bookkeeping); the writes then touch those rows.
        """
        now = self.runtime.clock.now()
        async with self.runtime.sessions() as session:
            expiring = await self._expiring(session, now) if expire else []
            dead = await self._dead_lease_owners(session, startup)
        async with self.runtime.writer() as session:
            for chunk in _chunks(expiring, IN_CHUNK):
                await self._expire(session, now, chunk)
            if dead is not None:
                await self._recover_dead_leases(session, now, dead)
            await self._settle_in_doubt(session, now)
            await budget.forget_dead(session, self.heartbeat_ttl)
            await session.commit()

    async def _expiring(self, session: AsyncSession, now: datetime) -> list[int]:
        query = select(Message.id).where(
            Message.status == Status.QUEUED,
            Message.lease_owner.is_(None),
            Message.expires_at <= now,
        )
        return list(await session.scalars(query))

    async def _expire(self, session: AsyncSession, now: datetime, ids: Sequence[int]) -> None:
        await session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.status == Status.QUEUED,  # checked again: claimed since the read
                Message.lease_owner.is_(None),
                Message.expires_at <= now,
            )
            .values(
                status=Status.EXPIRED,
                error_code="waconnect:expired",
                error_title="not sent before its cut-off",
                updated_at=now,
            )
        )

    async def _dead_lease_owners(self, session: AsyncSession, startup: bool) -> Any:
        """Which leases belong to dead workers, as a condition; None when no worker died."""
        if startup and not self._locking:
            # SQLite allows one worker process: every lease not ours is a dead process's.
            return and_(Message.lease_owner.is_not(None), Message.lease_owner != self.worker_id)
        if startup:
            alive = await budget.alive_workers(session, self.heartbeat_ttl)
            alive.append(self.worker_id)
            return and_(Message.lease_owner.is_not(None), Message.lease_owner.not_in(alive))
        # After startup a worker that dies leaves its row (deleted only at 3x the ttl, by
        # which time a sweep has long recovered its leases): look at the outbox only then.
        dead = await budget.expired_workers(session, self.heartbeat_ttl)
        dead = [worker for worker in dead if worker != self.worker_id]
        return Message.lease_owner.in_(dead) if dead else None

    async def _recover_dead_leases(self, session: AsyncSession, now: datetime, dead: Any) -> None:
        reason = "in doubt: the worker stopped while the request may have been out"
        await session.execute(
            update(Attempt)
            .where(
                Attempt.outcome.is_(None),
                Attempt.message_id.in_(
                    select(Message.id).where(dead, Message.pending_attempt.is_(True))
                ),
            )
            .values(outcome="in_doubt", finished_at=now)
        )
        await session.execute(
            update(Message)
            .where(dead, Message.pending_attempt.is_(True), Message.status == Status.QUEUED)
            .values(
                status=Status.UNKNOWN, unknown_reason=reason, in_doubt_since=now, updated_at=now
            )
        )
        await session.execute(
            update(Message).where(dead).values(lease_owner=None, pending_attempt=False)
        )

    async def _settle_in_doubt(self, session: AsyncSession, now: datetime) -> None:
        from waconnect.workspaces.models import Workspace
        from waconnect.workspaces.service import settings_of

        workspace_ids = list(
            await session.scalars(
                select(Message.workspace_id)
                .where(text(IN_DOUBT_WHERE), Message.in_doubt_since.is_not(None))
                .distinct()
            )
        )
        for workspace_id in workspace_ids:
            workspace = await session.get(Workspace, workspace_id)
            if workspace is None:
                continue
            policy = settings_of(workspace)
            cutoff = now - timedelta(minutes=policy.in_doubt_wait_minutes)
            waited = and_(
                Message.workspace_id == workspace_id,
                text(IN_DOUBT_WHERE),  # literal: the partial index ix_messages_in_doubt
                Message.in_doubt_since <= cutoff,
            )
            if policy.in_doubt_policy == "resend":
                await session.execute(
                    update(Message)
                    .where(waited)
                    .values(
                        status=Status.QUEUED,
                        next_attempt_at=now,
                        in_doubt_since=None,
                        unknown_reason=None,
                        updated_at=now,
                    )
                )
            else:
                await session.execute(
                    update(Message)
                    .where(waited)
                    .values(
                        in_doubt_since=None,
                        unknown_reason=Message.unknown_reason
                        + f" — no report within {policy.in_doubt_wait_minutes} minutes; held, "
                        "not resent (in-doubt policy: hold)",
                        updated_at=now,
                    )
                )


def _sqlite_claim(values: tuple[Any, ...], connection: sqlite3.Connection) -> str | None:
    """The claim's rows as one JSON array text, committed; None (nothing written) when no
    row was due."""
    ids = connection.execute(_SQLITE_DUE, values).fetchone()[0]
    if ids == "[]":
        return None
    connection.execute(_SQLITE_LEASE, (values[0], ids))
    return str(connection.execute(_SQLITE_LEASED, (ids,)).fetchone()[0])


def _claim_order(row: Claimed) -> tuple[Any, ...]:
    return row.order


def _chunks(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
