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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging import budget
from waconnect.messaging.journal import Journal
from waconnect.messaging.models import Attempt, Message, Worker
from waconnect.messaging.retry import Fail, RetryPolicy
from waconnect.messaging.states import Status
from waconnect.profiles.events import record_send_outcomes
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

MESSAGES = cast(Table, Message.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
RESPONSE_KEEP = 2000  # characters of a provider's answer kept on the attempt
CLAIM_MAX = 2000  # rows per claim statement


@dataclass(slots=True)
class Claimed:
    id: int
    workspace_id: int
    to_phone: str
    kind: str
    content: dict[str, Any]
    template_id: int | None
    attempt_count: int
    transient_failures: int
    priority: int
    next_attempt_at: datetime

    @property
    def number(self) -> int:
        return self.attempt_count + 1

    @property
    def reference(self) -> str:
        return f"{self.id}-{self.number}"


@dataclass
class Lane:
    """One provider config inside this worker."""

    provider_id: int
    version: datetime
    adapter: ProviderAdapter
    endpoint: ProviderEndpoint
    transport: Transport
    limiter: budget.Limiter
    max_concurrency: int
    backlog: deque[Claimed] = field(default_factory=deque)
    share: int = 0  # slots recorded in provider_shares
    pump: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class Begin:
    message_id: int
    number: int
    reference: str
    worker_id: str
    began_at: datetime
    request: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Finish:
    message_id: int
    number: int
    outcome: str  # accepted | rejected | throttled | transient | in_doubt
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
        self.lanes: dict[int, Lane] = {}
        self._templates: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self.journal = Journal(
            runtime.writer, {"begin": self._write_begins, "finish": self._write_finishes}
        )

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
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        await self.journal.close()
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
        if old is not None:
            # Settings changed: keep the limiter (requests in flight count) and backlog.
            old.version, old.endpoint = config.updated_at, endpoint
            old.adapter, old.max_concurrency = get_adapter(config.kind), config.max_concurrency
            return old
        lane = Lane(
            provider_id=config.id,
            version=config.updated_at,
            adapter=get_adapter(config.kind),
            endpoint=endpoint,
            transport=self._transport_factory(config),
            limiter=budget.Limiter(0),
            max_concurrency=config.max_concurrency,
        )
        lane.pump = asyncio.create_task(self._pump(lane), name=f"lane-{config.id}")
        self.lanes[config.id] = lane
        return lane

    async def _rebalance(self, lane: Lane, alive: list[str]) -> None:
        target = budget.fair_share(lane.max_concurrency, alive, self.worker_id)
        if target < lane.share:
            # Shrink locally first; record the smaller share once in-flight fits under it.
            await lane.limiter.set_capacity(target)
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
            await lane.limiter.set_capacity(granted)

    # --- claiming --------------------------------------------------------------------------------

    def _wanted(self, lane: Lane) -> int:
        """Rows to claim so the lane never runs dry: about four rounds of its limit."""
        per_request = max(lane.adapter.max_batch(lane.endpoint), 1)
        return min(lane.limiter.capacity * 4 * per_request - len(lane.backlog), CLAIM_MAX)

    async def _claim_loop(self) -> None:
        """Keep every lane's backlog filled; sleep until woken when there is nothing due."""
        while not self._stop.is_set():
            found_work = False
            try:
                for lane in list(self.lanes.values()):
                    want = self._wanted(lane)
                    if want < max(lane.limiter.capacity, 1):
                        continue  # enough in hand; the pump wakes us when it runs low
                    rows = await self.claim(lane.provider_id, want)
                    if rows:
                        found_work = True
                        lane.backlog.extend(rows)
                        lane.ready.set()
            except Exception:
                log.exception("claim failed")
            if not found_work:
                self._wake.clear()
                await _sleep_or(self._wake, self.poll_every)

    async def claim(self, provider_id: int, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due rows of one provider: priority first, then due time."""
        now = self.runtime.clock.now()
        due = (
            select(Message.id)
            .where(
                Message.provider_id == provider_id,
                Message.status == Status.QUEUED,
                Message.held.is_(False),
                Message.lease_owner.is_(None),
                Message.next_attempt_at <= now,
                or_(Message.expires_at.is_(None), Message.expires_at > now),
            )
            .order_by(Message.priority, Message.next_attempt_at, Message.id)
            .limit(limit)
        )
        if self._locking:
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(MESSAGES)
            .where(MESSAGES.c.id.in_(due.scalar_subquery()))
            .values(lease_owner=self.worker_id)
            .returning(
                MESSAGES.c.id,
                MESSAGES.c.workspace_id,
                MESSAGES.c.to_phone,
                MESSAGES.c.kind,
                MESSAGES.c.content,
                MESSAGES.c.template_id,
                MESSAGES.c.attempt_count,
                MESSAGES.c.transient_failures,
                MESSAGES.c.priority,
                MESSAGES.c.next_attempt_at,
            )
        )
        async with self.runtime.writer() as session:
            rows = (await session.execute(statement)).all()
            await session.commit()
        claimed = [Claimed(*row) for row in rows]
        claimed.sort(key=lambda c: (c.priority, c.next_attempt_at, c.id))
        return claimed

    # --- sending ---

    async def _pump(self, lane: Lane) -> None:
        """Turn the lane's backlog into requests, as fast as its limiter allows."""
        while not self._stop.is_set():
            if not lane.backlog:
                lane.ready.clear()
                await lane.ready.wait()
                continue
            await lane.limiter.acquire()
            if self._stop.is_set():
                await lane.limiter.release()
                return
            batch = self._take_batch(lane)
            if len(lane.backlog) < lane.limiter.capacity * 2:
                self._wake.set()  # running low: claim more before the lane runs dry
            task = asyncio.create_task(self._send(lane, batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _take_batch(self, lane: Lane) -> list[Claimed]:
        size = max(lane.adapter.max_batch(lane.endpoint), 1)
        first = lane.backlog.popleft()
        batch = [first]
        if size == 1:
            return batch
        key = self._batch_key(lane, first)
        phones = {first.to_phone}
        rest: deque[Claimed] = deque()
        while lane.backlog and len(batch) < size:
            row = lane.backlog.popleft()
            # One request carries a phone once: reports are matched by request id + phone.
            if self._batch_key(lane, row) == key and row.to_phone not in phones:
                batch.append(row)
                phones.add(row.to_phone)
            else:
                rest.append(row)
        rest.extend(lane.backlog)
        lane.backlog = rest
        return batch

    def _batch_key(self, lane: Lane, row: Claimed) -> Any:
        # Rows of one template (and kind) may share a request; the adapter refines it.
        return (row.kind, row.template_id)

    async def _send(self, lane: Lane, rows: list[Claimed]) -> None:
        released = False
        try:
            items, sendable = await self._items(lane, rows)
            if not sendable:
                return
            try:
                request = lane.adapter.build_request(lane.endpoint, items)
            except (UnsupportedContent, RenderError, ValueError) as exc:
                await self._fail_unsent(sendable, str(exc))
                return
            masked = request.masked()
            begun_at = self.runtime.clock.now()
            begins = [
                Begin(
                    row.id,
                    row.number,
                    row.reference,
                    self.worker_id,
                    begun_at,
                    masked if i == 0 else {"batch_of": sendable[0].reference},
                )
                for i, row in enumerate(sendable)
            ]
            # Durable before the request is written: a crash from here on is "in doubt".
            await asyncio.gather(*(self.journal.submit("begin", b) for b in begins))
            try:
                response: HttpResponse | None = await lane.transport.send(request)
                failure: Exception | None = None
            except (NotSent, InDoubt) as exc:
                response, failure = None, exc
            await lane.limiter.release()
            released = True
            finishes = self._outcomes(lane, sendable, items, response, failure)
            for finish in finishes:
                self.journal.submit("finish", finish)
        except Exception:
            log.exception("sending to provider %s failed unexpectedly", lane.provider_id)
        finally:
            if not released:
                await lane.limiter.release()

    async def _items(
        self, lane: Lane, rows: list[Claimed]
    ) -> tuple[list[OutboundItem], list[Claimed]]:
        items: list[OutboundItem] = []
        sendable: list[Claimed] = []
        missing: list[Claimed] = []
        for row in rows:
            if row.kind == "session":
                items.append(SessionSend(row.reference, row.to_phone, row.content))
                sendable.append(row)
                continue
            template = await self._template(row.template_id)
            if template is None:
                missing.append(row)
                continue
            items.append(
                TemplateSend(
                    row.reference,
                    row.to_phone,
                    template,
                    row.content.get("components") or (),
                    row.content.get("custom_props"),
                )
            )
            sendable.append(row)
        if missing:
            await self._fail_unsent(missing, "its template was deleted before it was sent")
        return items, sendable

    async def _template(self, template_id: int | None) -> dict[str, Any] | None:
        if template_id is None:
            return None
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

    async def _write_begins(self, session: AsyncSession, begins: Sequence[Begin]) -> None:
        await session.execute(
            ATTEMPTS.insert(),
            [
                {
                    "message_id": b.message_id,
                    "number": b.number,
                    "reference": b.reference,
                    "worker_id": b.worker_id,
                    "began_at": b.began_at,
                    "request": b.request,
                }
                for b in begins
            ],
        )
        await session.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("b_id"))
            .values(attempt_count=bindparam("b_n"), pending_attempt=True),
            [{"b_id": b.message_id, "b_n": b.number} for b in begins],
        )

    async def _write_finishes(self, session: AsyncSession, finishes: Sequence[Finish]) -> None:
        await session.execute(
            update(ATTEMPTS)
            .where(
                ATTEMPTS.c.message_id == bindparam("b_id"), ATTEMPTS.c.number == bindparam("b_n")
            )
            .values(
                outcome=bindparam("b_outcome"),
                finished_at=bindparam("b_at"),
                http_status=bindparam("b_status"),
                response=bindparam("b_response"),
                error_code=bindparam("b_code"),
                error_title=bindparam("b_title"),
                provider_request_id=bindparam("b_request_id"),
            ),
            [_attempt_params(f) for f in finishes],
        )
        groups: dict[str, list[Finish]] = {}
        for finish in finishes:
            groups.setdefault(finish.outcome, []).append(finish)
        current = and_(
            MESSAGES.c.id == bindparam("b_id"), MESSAGES.c.attempt_count == bindparam("b_n")
        )
        done: dict[str, Any] = {
            "pending_attempt": False,
            "lease_owner": None,
            "updated_at": bindparam("b_at"),
        }
        # A report may have raced ahead of this answer: never move a message back, and a
        # throttled "failed" report that already requeued it (a later next_attempt_at) wins.
        untouched = and_(
            MESSAGES.c.status == Status.QUEUED, MESSAGES.c.next_attempt_at <= bindparam("b_at")
        )
        if accepted := groups.get("accepted"):
            await session.execute(
                update(MESSAGES)
                .where(current)
                .values(
                    status=case((untouched, Status.SENT), else_=MESSAGES.c.status),
                    sent_at=func.coalesce(MESSAGES.c.sent_at, bindparam("b_at")),
                    error_code=case((untouched, None), else_=MESSAGES.c.error_code),
                    error_title=case((untouched, None), else_=MESSAGES.c.error_title),
                    **done,
                ),
                [{"b_id": f.message_id, "b_n": f.number, "b_at": f.at} for f in accepted],
            )
        retries = groups.get("throttled", []) + groups.get("transient", [])
        if retries:
            await session.execute(
                update(MESSAGES)
                .where(current)
                .values(
                    next_attempt_at=bindparam("b_retry"),
                    transient_failures=MESSAGES.c.transient_failures + bindparam("b_counts"),
                    error_code=bindparam("b_code"),
                    error_title=bindparam("b_title"),
                    **done,
                ),
                [
                    {
                        "b_id": f.message_id,
                        "b_n": f.number,
                        "b_at": f.at,
                        "b_retry": f.retry_at,
                        "b_counts": 1 if f.counts else 0,
                        "b_code": f.error.code if f.error else None,
                        "b_title": f.error.title if f.error else None,
                    }
                    for f in retries
                ],
            )
        if rejected := groups.get("rejected"):
            await session.execute(
                update(MESSAGES)
                .where(current)
                .values(
                    status=case(
                        (
                            MESSAGES.c.status.in_([Status.QUEUED, Status.UNKNOWN, Status.SENT]),
                            Status.FAILED,
                        ),
                        else_=MESSAGES.c.status,
                    ),
                    failed_at=bindparam("b_at"),
                    error_code=bindparam("b_code"),
                    error_title=bindparam("b_title"),
                    **done,
                ),
                [
                    {
                        "b_id": f.message_id,
                        "b_n": f.number,
                        "b_at": f.at,
                        "b_code": f.error.code if f.error else None,
                        "b_title": f.error.title if f.error else None,
                    }
                    for f in rejected
                ],
            )
        if doubtful := groups.get("in_doubt"):
            await session.execute(
                update(MESSAGES)
                .where(current)
                .values(
                    status=case((untouched, Status.UNKNOWN), else_=MESSAGES.c.status),
                    unknown_reason=case(
                        (untouched, bindparam("b_reason")), else_=MESSAGES.c.unknown_reason
                    ),
                    in_doubt_since=case(
                        (untouched, bindparam("b_at")), else_=MESSAGES.c.in_doubt_since
                    ),
                    **done,
                ),
                [
                    {"b_id": f.message_id, "b_n": f.number, "b_at": f.at, "b_reason": f.reason}
                    for f in doubtful
                ],
            )
        # WhatsApp Sent / Failed on the profiles the messages went to (profiles/events.py).
        await record_send_outcomes(session, finishes)

    # --- sweeps: expiry, dead workers, the in-doubt wait ---

    async def _sweep_loop(self) -> None:
        while not self._stop.is_set():
            await _sleep_or(self._stop, self.runtime.settings.sweep_seconds)
            try:
                await self.recover()
            except Exception:
                log.exception("sweep failed")

    async def recover(self, startup: bool = False) -> None:
        now = self.runtime.clock.now()
        async with self.runtime.writer() as session:
            await self._expire(session, now)
            await self._recover_dead_leases(session, now, startup)
            await self._settle_in_doubt(session, now)
            await budget.forget_dead(session, self.heartbeat_ttl)
            await session.commit()

    async def _expire(self, session: AsyncSession, now: datetime) -> None:
        await session.execute(
            update(Message)
            .where(
                Message.status == Status.QUEUED,
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

    async def _recover_dead_leases(
        self, session: AsyncSession, now: datetime, startup: bool
    ) -> None:
        if startup and not self._locking:
            # SQLite allows one worker process: every lease not ours is a dead process's.
            alive = [self.worker_id]
        else:
            alive = await budget.alive_workers(session, self.heartbeat_ttl)
            alive.append(self.worker_id)
        dead = and_(Message.lease_owner.is_not(None), Message.lease_owner.not_in(alive))
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
                .where(Message.status == Status.UNKNOWN, Message.in_doubt_since.is_not(None))
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
                Message.status == Status.UNKNOWN,
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


def _attempt_params(finish: Finish) -> dict[str, Any]:
    return {
        "b_id": finish.message_id,
        "b_n": finish.number,
        "b_outcome": finish.outcome,
        "b_at": finish.at,
        "b_status": finish.http_status,
        "b_response": finish.response,
        "b_code": finish.error.code if finish.error else None,
        "b_title": finish.error.title if finish.error else None,
        "b_request_id": finish.provider_request_id,
    }


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
