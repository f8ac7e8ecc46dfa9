"""Provider callbacks: delivery reports and inbound messages (design.md, "Callbacks").

The request path does as little as it can, because providers send thousands of statuses a
second during a campaign:

1. the token (and the optional callback header) is checked against a short-lived cache of
   provider configs — a wrong one is a 401 and nothing else happens;
2. the raw body is stored (state ``stored``), group-committed with every other callback
   arriving at that moment: the body is durable before we answer, one commit serves hundreds;
3. the body is parsed by the provider kind's adapter — unreadable, the record keeps its error
   and the answer is 400;
4. the parsed items go to the applier's queue and the answer is ``200 {"status": "success"}``.

The applier (one per process, ``runtime.extras["callback_applier"]``) applies everything
pending in one transaction and marks each record ``applied`` with its ``items`` and
``unmatched`` counts. Records left ``stored`` (a crash between store and apply, or a failed
apply) are swept up and applied again: applying is idempotent, every (attempt, status) counts
once and inbound messages are de-duplicated by the provider's event id. A record with unmatched
reports is applied again a few times over the next half minute (``UNMATCHED_RETRY_SECONDS``):
a report can overtake the write of its own send's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from waconnect.db.base import is_storable_id
from waconnect.db.engine import make_engine, make_sessionmaker
from waconnect.messaging import inbound
from waconnect.messaging.models import Attempt, CallbackRecord, Message, MessageEvent
from waconnect.messaging.retry import RetryPolicy
from waconnect.messaging.service import wake_dispatcher
from waconnect.messaging.states import Status, failure_allowed, forward_move
from waconnect.profiles import events as system_events
from waconnect.profiles.events import SystemEvent, failure_properties, record_system_events
from waconnect.providers.adapters import CallbackParseError, get_adapter
from waconnect.providers.adapters.base import (
    DeliveryReport,
    InboundMessage,
    is_secret_header,
    mask_secret,
)
from waconnect.providers.errors import ErrorFamily, ProviderError, make_error
from waconnect.providers.models import ProviderConfig
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.web.errors import error_body
from waconnect.web.limits import read_body as read_limited_body

log = logging.getLogger("waconnect.callbacks")

APPLIER_KEY = "callback_applier"
DELIVERY = "delivery"
INBOUND = "inbound"

CALLBACKS = cast(Table, CallbackRecord.__table__)
MESSAGES = cast(Table, Message.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
EVENTS = cast(Table, MessageEvent.__table__)
TEMPLATES = cast(Table, Template.__table__)

# A rotated token or a changed callback header reaches other processes within this (real) time;
# in this process ``forget_provider`` makes it immediate.
PROVIDER_CACHE_SECONDS = 2.0
# Raw bodies per commit, and parsed items per apply transaction.
MAX_STORE_BATCH = 2000
MAX_APPLY_ITEMS = 5000
# A commit costs as much as storing dozens of bodies, and an apply transaction as much as
# applying hundreds of reports: under load, each writer waits until this long (real time)
# after its previous start so that a burst gathers, instead of committing a few at a time.
# When traffic is light the previous write is long past and nothing waits.
STORE_EVERY_SECONDS = 0.004
APPLY_EVERY_SECONDS = 0.1
# Records left ``stored`` are looked for at start and then this often (real time).
SWEEP_SECONDS = 30.0
# A record still ``stored`` this long after it came (business time) is an orphan: its process
# died or failed to apply it. Younger ones may be in another process's hands.
ORPHAN_AGE = timedelta(seconds=60)
# A report can come before its send's outcome is committed: an MSG91 report without a template
# name is matched by the request id that the outcome records. A record with unmatched reports
# is applied again after each of these delays (real time, counted from the previous apply);
# what still matches nothing after the last stays counted in ``unmatched``.
UNMATCHED_RETRY_SECONDS = (1.0, 5.0, 30.0)
# The in-doubt reconciliation looks this far back for a message a report may be about.
RECONCILE_LOOKBACK = timedelta(days=7)
IN_CLAUSE = 500  # ids per IN (...), well under SQLite's variable limit

_SUCCESS = orjson.dumps({"status": "success"})


# --- the provider configs a callback may name ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackProvider:
    """What the request path needs of a provider config; secrets already decrypted."""

    id: int
    workspace_id: int
    kind: str
    token: str
    previous_token: str | None
    previous_expires_at: datetime | None
    header_name: str | None
    header_value: str | None
    loaded: float  # time.monotonic() when read

    def accepts_token(self, token: str, now: datetime) -> bool:
        """The current token, or the previous one within its grace period (business time)."""
        if secrets.compare_digest(self.token.encode(), token.encode()):
            return True
        return bool(
            self.previous_token
            and self.previous_expires_at is not None
            and now < self.previous_expires_at
            and secrets.compare_digest(self.previous_token.encode(), token.encode())
        )

    def accepts_headers(self, headers: Mapping[str, str]) -> bool:
        """``headers``: names in lower case."""
        if not self.header_name or self.header_value is None:
            return True
        got = headers.get(self.header_name.lower()) or ""
        return secrets.compare_digest(self.header_value.encode(), got.encode())


class ProviderCache:
    """Provider configs by id for a few seconds, so a callback costs no database read.

    A token that the cached copy does not accept is checked against the database before it is
    refused, so a token rotated a moment ago works at once.
    """

    def __init__(self, runtime: Runtime, ttl: float = PROVIDER_CACHE_SECONDS) -> None:
        self.runtime = runtime
        self.ttl = ttl
        self._entries: dict[int, CallbackProvider] = {}
        # One read per provider at a time: when an entry expires under load, the requests
        # arriving meanwhile share the read instead of each making its own.
        self._loading: dict[int, asyncio.Future[CallbackProvider | None]] = {}

    def forget(self, provider_id: int | None = None) -> None:
        if provider_id is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(provider_id, None)
            self._loading.pop(provider_id, None)

    async def authorized(self, provider_id: int, token: str) -> CallbackProvider | None:
        now = self.runtime.clock.now()
        entry = self._entries.get(provider_id)
        fresh = entry is not None and time.monotonic() - entry.loaded < self.ttl
        if fresh and entry is not None and entry.accepts_token(token, now):
            return entry
        entry = await self._load(provider_id)
        if entry is None or not entry.accepts_token(token, now):
            return None
        return entry

    async def _load(self, provider_id: int) -> CallbackProvider | None:
        if not is_storable_id(provider_id):
            return None
        loading = self._loading.get(provider_id)
        if loading is None:
            loading = asyncio.ensure_future(self._read(provider_id))
            self._loading[provider_id] = loading

            def done(_future: object, loading: object = loading) -> None:
                if self._loading.get(provider_id) is loading:
                    del self._loading[provider_id]

            loading.add_done_callback(done)
        return await asyncio.shield(loading)

    async def _read(self, provider_id: int) -> CallbackProvider | None:
        async with self.runtime.sessions() as session:
            config = await session.get(ProviderConfig, provider_id)
        if config is None:
            self._entries.pop(provider_id, None)
            return None
        header_value = None
        if config.callback_header_name and config.callback_header_value_enc:
            header_value = self.runtime.secrets.decrypt(config.callback_header_value_enc)
        entry = CallbackProvider(
            id=config.id,
            workspace_id=config.workspace_id,
            kind=config.kind,
            token=config.callback_token,
            previous_token=config.previous_callback_token,
            previous_expires_at=config.previous_token_expires_at,
            header_name=config.callback_header_name,
            header_value=header_value,
            loaded=time.monotonic(),
        )
        self._entries[provider_id] = entry
        return entry


# --- the applier -------------------------------------------------------------------------------


@dataclass(slots=True)
class Pending:
    """One stored callback, parsed, waiting to be applied."""

    record_id: int
    provider_id: int
    workspace_id: int
    kind: str  # delivery | inbound
    received_at: datetime
    items: Sequence[DeliveryReport | InboundMessage]


@dataclass(slots=True)
class _Store:
    provider_id: int
    workspace_id: int
    kind: str
    headers: dict[str, str]
    body: bytes
    future: asyncio.Future[tuple[int, datetime]]  # of the caller's loop


@dataclass(slots=True)
class _Error:
    record_id: int
    text: str
    future: asyncio.Future[None]  # of the caller's loop


class _Wake:
    """An event of the writer's loop that other threads can set cheaply: only the first set
    since the writer last looked crosses threads."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.poked = False

    def poke(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.poked:
            self.poked = True
            loop.call_soon_threadsafe(self.event.set)

    async def wait(self) -> None:
        await self.event.wait()
        self.event.clear()
        # Cleared before the queue is read: a poke from now on crosses threads again.
        self.poked = False


class CallbackApplier:
    """Stores raw callbacks in group commits and applies parsed ones in bulk.

    The writing happens on a thread of its own with its own event loop and database engine:
    a transaction's many round trips then take the time the database needs, not the time the
    busy request loop takes to get back to them — on SQLite that is how long the single write
    lock is held, which every ``store`` waits for. The request side only appends to queues
    (``deque`` operations are atomic) and awaits futures the writer resolves.

    ``store`` resolves once the raw body is committed; ``submit`` only queues. On SQLite the
    two writers take turns (one write lock, no busy waiting); on PostgreSQL they run side by
    side.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.providers = ProviderCache(runtime)
        self._sqlite = runtime.settings.is_sqlite
        # Shared with the writer thread.
        self._stores: deque[_Store] = deque()
        self._errors: deque[_Error] = deque()
        self._pending: deque[Pending] = deque()
        self._drains: deque[asyncio.Future[None]] = deque()
        self._closing = False
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._caller: asyncio.AbstractEventLoop | None = None
        # The writer's own; made in its thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._connection: AsyncConnection | None = None
        self._binds: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None
        self._store_wake: _Wake | None = None
        self._apply_wake: _Wake | None = None
        self._write_lock: asyncio.Lock | None = None
        # Stored here and not yet applied (id -> when, monotonic): the sweep leaves them alone,
        # unless their request never submitted them (it failed between store and submit).
        self._mine: dict[int, float] = {}
        # Records with unmatched reports, to apply again: a heap of (when, record id, pending),
        # and how many times each was applied again so far. The writer's own.
        self._retries: list[tuple[float, int, Pending]] = []
        self._retried: dict[int, int] = {}
        self._busy = 0
        self._sweep_up_to = 0
        self._last_store = 0.0
        self._last_apply = 0.0

    # --- lifecycle (caller's loop) ---

    async def start(self) -> None:
        self._caller = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="callback-writer", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failure is not None:
            raise RuntimeError(f"the callback writer did not start: {self._failure}")

    async def stop(self) -> None:
        """Finish what was accepted: store what is waiting, apply what is queued."""
        self._closing = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # its loop ended meanwhile
                loop.call_soon_threadsafe(self._wake_all)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def drain(self) -> None:
        """Wait until everything submitted so far (and the start-up sweep) is applied."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drains.append(future)
        self._poke_apply()
        await future

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closing

    # --- the request path (caller's loop) ---

    async def store(
        self,
        provider: CallbackProvider,
        kind: str,
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, datetime]:
        """Store the raw callback; returns (record id, received at) once it is committed.

        The callbacks committed together share one ``received_at`` (business time): the moment
        they were taken, within milliseconds of their arrival.
        """
        self._check_running()
        future: asyncio.Future[tuple[int, datetime]] = asyncio.get_running_loop().create_future()
        self._stores.append(_Store(provider.id, provider.workspace_id, kind, headers, body, future))
        self._poke_store()
        return await future

    async def mark_error(self, record_id: int, error: str) -> None:
        self._check_running()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._errors.append(_Error(record_id, error, future))
        self._poke_store()
        await future

    def submit(self, pending: Pending) -> None:
        self._pending.append(pending)
        self._poke_apply()

    def _check_running(self) -> None:
        if self._failure is not None or self._loop is None:
            raise RuntimeError("the callback writer is not running")

    def _poke_store(self) -> None:
        if self._loop is not None and self._store_wake is not None:
            self._store_wake.poke(self._loop)

    def _poke_apply(self) -> None:
        if self._loop is not None and self._apply_wake is not None:
            self._apply_wake.poke(self._loop)

    # --- the writer thread ---

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the callers, then logged
            log.exception("the callback writer stopped")
            self._failure = exc
        finally:
            self._ready.set()
            self._fail_outstanding()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        url = self.runtime.settings.resolved_database_url
        pool: dict[str, Any] = {} if self._sqlite else {"pool_size": 2, "max_overflow": 2}
        engine = self._engine = make_engine(url, **pool)
        self._sessions = make_sessionmaker(engine)
        self._store_wake, self._apply_wake = _Wake(), _Wake()
        self._write_lock = asyncio.Lock() if self._sqlite else None
        try:
            async with self._sessions() as session:
                top = await session.scalar(
                    select(CALLBACKS.c.id).order_by(CALLBACKS.c.id.desc()).limit(1)
                )
            # Records stored before this start are orphans of an earlier run, or (PostgreSQL)
            # of other processes when old enough; see _sweep.
            self._sweep_up_to = top or 0
            self._busy += 1  # the start-up sweep, done by the apply loop first
            self._ready.set()
            sweeper = asyncio.create_task(self._sweep_timer(), name="callbacks-sweep")
            await asyncio.gather(self._store_loop(), self._apply_loop())
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        finally:
            self._resolve_drains(force=True)
            await self._drop_store_connection()
            await engine.dispose()

    def _wake_all(self) -> None:
        for wake in (self._store_wake, self._apply_wake):
            if wake is not None:
                wake.event.set()

    def _settle_all(
        self, outcomes: Sequence[tuple[asyncio.Future[Any], Any, BaseException | None]]
    ) -> None:
        """Resolve futures of the callers' loops from the writer's: one hop per loop, not one
        per future (a commit answers hundreds of requests)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, batch in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is gone: nobody waits
                loop.call_soon_threadsafe(_resolve, batch)

    def _fail_outstanding(self) -> None:
        error = RuntimeError("the callback writer stopped")
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        while self._stores:
            outcomes.append((self._stores.popleft().future, None, error))
        while self._errors:
            outcomes.append((self._errors.popleft().future, None, error))
        self._settle_all(outcomes)
        self._resolve_drains(force=True)

    def _resolve_drains(self, force: bool = False) -> None:
        idle = not (self._stores or self._errors or self._pending or self._busy)
        if (idle or force) and self._drains:
            waiting = [self._drains.popleft() for _ in range(len(self._drains))]
            self._settle_all([(future, None, None) for future in waiting])

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
        else:
            async with self._write_lock:
                yield

    def _session(self) -> AsyncSession:
        assert self._sessions is not None
        return self._sessions()

    async def _gather(self, last: float, every: float, queue: deque[Any]) -> None:
        wait = last + every - time.monotonic()
        if wait > 0 and not self._closing and len(queue) < MAX_STORE_BATCH:
            await asyncio.sleep(wait)

    async def _store_loop(self) -> None:
        assert self._store_wake is not None
        while True:
            if not (self._stores or self._errors):
                if self._closing:
                    return
                await self._store_wake.wait()
                continue
            await self._gather(self._last_store, STORE_EVERY_SECONDS, self._stores)
            self._last_store = time.monotonic()
            stores = [
                self._stores.popleft() for _ in range(min(len(self._stores), MAX_STORE_BATCH))
            ]
            errors = [self._errors.popleft() for _ in range(len(self._errors))]
            self._busy += 1
            try:
                await self._write_stores(stores, errors)
            finally:
                self._busy -= 1
            self._resolve_drains()
            if self._closing and self._apply_wake is not None:
                self._apply_wake.event.set()  # it may be waiting for this last batch

    async def _write_stores(self, stores: list[_Store], errors: list[_Error]) -> None:
        received_at = self.runtime.clock.now()
        try:
            async with self._writing():
                connection = await self._store_connection()
                async with connection.begin():
                    ids = await self._insert_raw(connection, stores, received_at)
                    if errors:
                        await connection.execute(
                            update(CALLBACKS)
                            .where(CALLBACKS.c.id == bindparam("b_id"))
                            .values(state="error", error=bindparam("b_error")),
                            [{"b_id": e.record_id, "b_error": e.text} for e in errors],
                        )
        except Exception as exc:
            log.exception("storing %d callbacks failed", len(stores))
            await self._drop_store_connection()
            self._settle_all(
                [(s.future, None, exc) for s in stores] + [(e.future, None, exc) for e in errors]
            )
            return
        now = time.monotonic()
        self._mine.update((record_id, now) for record_id in ids)
        for e in errors:
            self._mine.pop(e.record_id, None)
        self._settle_all(
            [
                (s.future, (record_id, received_at), None)
                for s, record_id in zip(stores, ids, strict=True)
            ]
            + [(e.future, None, None) for e in errors]
        )

    async def _store_connection(self) -> AsyncConnection:
        """One connection kept for the store writer: a commit of a few bodies then costs a
        begin, one insert and a commit — not a session and a pool checkout."""
        if self._connection is None:
            assert self._engine is not None
            self._connection = await self._engine.connect()
        return self._connection

    async def _drop_store_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _insert_raw(
        self, connection: AsyncConnection, stores: list[_Store], received_at: datetime
    ) -> list[int]:
        """Insert the records; their ids in the order of ``stores``."""
        if not stores:
            return []
        if not self._sqlite:
            result = await connection.execute(
                CALLBACKS.insert().returning(CALLBACKS.c.id, sort_by_parameter_order=True),
                [_store_row(s, received_at) for s in stores],
            )
            return [row[0] for row in result.all()]
        # SQLite: one multi-row INSERT ... RETURNING per chunk, values converted by the
        # columns' own SQLAlchemy types. SQLite gives rowids in the order the rows are
        # inserted, so the sorted ids pair with the rows. (Through the ORM/Core executemany
        # this costs twice the CPU; asking SQLAlchemy to keep the order makes it insert row
        # by row, 8x slower — both measured.)
        stamp, to_json = self._sqlite_binds()
        when = stamp(received_at)
        ids: list[int] = []
        for start in range(0, len(stores), _SQLITE_ROWS_PER_INSERT):
            chunk = stores[start : start + _SQLITE_ROWS_PER_INSERT]
            params: list[Any] = []
            for s in chunk:
                params += (s.provider_id, s.workspace_id, s.kind, when, to_json(s.headers), s.body)
            result = await connection.exec_driver_sql(_sqlite_insert_sql(len(chunk)), tuple(params))
            ids.extend(sorted(row[0] for row in result.all()))
        return ids

    def _sqlite_binds(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        if self._binds is None:
            assert self._engine is not None
            dialect = self._engine.dialect

            def processor(column: Any) -> Callable[[Any], Any]:
                found = column.type.dialect_impl(dialect).bind_processor(dialect)
                return found if found is not None else (lambda value: value)

            self._binds = (
                processor(CALLBACKS.c.received_at),
                processor(CALLBACKS.c.headers),
            )
        return self._binds

    async def _apply_loop(self) -> None:
        assert self._apply_wake is not None
        try:
            await self._sweep(startup=True)
        except Exception:
            log.exception("re-applying stored callbacks at start failed")
        finally:
            self._busy -= 1
        while True:
            self._resolve_drains()
            self._retry_due()
            if not self._pending:
                # Closing: stop once the store loop has nothing left that could be submitted.
                if self._closing and not (self._stores or self._busy):
                    return
                await self._wait_for_work()
                continue
            await self._gather(self._last_apply, APPLY_EVERY_SECONDS, self._pending)
            self._last_apply = time.monotonic()
            batch = self._take_batch()
            self._busy += 1
            try:
                await self._apply(batch)
            finally:
                self._busy -= 1
                for pending in batch:
                    self._mine.pop(pending.record_id, None)

    def _take_batch(self) -> list[Pending]:
        batch: list[Pending] = []
        taken = 0
        while self._pending:
            size = len(self._pending[0].items)
            if batch and taken + size > MAX_APPLY_ITEMS:
                break
            batch.append(self._pending.popleft())
            taken += size
        return batch

    async def _apply(self, batch: list[Pending]) -> None:
        """Apply in one transaction; on failure, one by one so one bad record cannot block
        the others. A record that still fails stays ``stored`` for the next sweep."""
        try:
            await self._apply_once(batch)
            return
        except Exception:
            if len(batch) == 1:
                log.exception("applying callback %s failed; it stays stored", batch[0].record_id)
                return
            log.warning("applying %d callbacks together failed; applying one by one", len(batch))
        for pending in batch:
            try:
                await self._apply_once([pending])
            except Exception:
                log.exception("applying callback %s failed; it stays stored", pending.record_id)

    async def _apply_once(self, batch: list[Pending]) -> None:
        async with self._writing(), self._session() as session:
            applied = await apply_pending(session, self.runtime, batch)
            await session.commit()
        if applied.woke and self._caller is not None:
            with contextlib.suppress(RuntimeError):
                self._caller.call_soon_threadsafe(wake_dispatcher, self.runtime)
        for pending in batch:
            self._plan_retry(pending, applied.unmatched.get(pending.record_id, 0))

    # --- unmatched reports: applied again a little later ---

    def _plan_retry(self, pending: Pending, unmatched: int) -> None:
        tries = self._retried.pop(pending.record_id, 0)
        if unmatched and tries < len(UNMATCHED_RETRY_SECONDS):
            self._retried[pending.record_id] = tries + 1
            when = time.monotonic() + UNMATCHED_RETRY_SECONDS[tries]
            heapq.heappush(self._retries, (when, pending.record_id, pending))

    def _retry_due(self) -> None:
        """Queue again the records whose retry is due."""
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            self._pending.append(heapq.heappop(self._retries)[2])

    async def _wait_for_work(self) -> None:
        """Until something is submitted, or the next retry is due."""
        assert self._apply_wake is not None
        if not self._retries or self._closing:
            await self._apply_wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            wait = max(self._retries[0][0] - time.monotonic(), 0)
            await asyncio.wait_for(self._apply_wake.wait(), wait)

    # --- the sweep: records left stored ---

    async def _sweep_timer(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self._busy += 1
            try:
                await self._sweep(startup=False)
            except Exception:
                log.exception("sweeping stored callbacks failed")
            finally:
                self._busy -= 1
                self._resolve_drains()

    async def _sweep(self, startup: bool) -> None:
        after = 0
        while True:
            query = (
                select(CallbackRecord)
                .where(CallbackRecord.state == "stored", CallbackRecord.id > after)
                .order_by(CallbackRecord.id)
                .limit(200)
            )
            if startup:
                query = query.where(CallbackRecord.id <= self._sweep_up_to)
            if not (startup and self._sqlite):
                # Another process may be about to apply a young record: only old ones are
                # orphans. (At start on SQLite, whose callbacks one process receives, every
                # record already stored is one.)
                young = self.runtime.clock.now() - ORPHAN_AGE
                query = query.where(CallbackRecord.received_at <= young)
            async with self._session() as session:
                records = list(await session.scalars(query))
                if not records:
                    return
                kinds = dict(
                    (
                        await session.execute(
                            select(ProviderConfig.id, ProviderConfig.kind).where(
                                ProviderConfig.id.in_({r.provider_id for r in records})
                            )
                        )
                    ).all()
                )
            after = records[-1].id
            batch: list[Pending] = []
            for record in records:
                taken = self._mine.get(record.id)
                if taken is not None and time.monotonic() - taken < ORPHAN_AGE.total_seconds():
                    continue
                self._mine.pop(record.id, None)
                kind = kinds.get(record.provider_id)
                if kind is None:
                    await self._set_error(record.id, "its provider config no longer exists")
                    continue
                try:
                    items = parse(kind, record.kind, record.body)
                except Exception as exc:
                    await self._set_error(record.id, _parse_error_text(exc))
                    continue
                batch.append(
                    Pending(
                        record.id,
                        record.provider_id,
                        record.workspace_id,
                        record.kind,
                        record.received_at,
                        items,
                    )
                )
            if batch:
                log.info("re-applying %d stored callbacks", len(batch))
                await self._apply(batch)

    async def _set_error(self, record_id: int, text: str) -> None:
        async with self._writing(), self._session() as session:
            await session.execute(
                update(CALLBACKS)
                .where(CALLBACKS.c.id == record_id)
                .values(state="error", error=text)
            )
            await session.commit()


def _resolve(outcomes: Sequence[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():
            continue  # its request was cancelled (the client went away)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


_SQLITE_ROWS_PER_INSERT = 500  # 6 values a row, well under SQLite's 32,766 variables


@functools.lru_cache(maxsize=64)
def _sqlite_insert_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, 'stored', 0, 0)"] * rows)
    return (
        "INSERT INTO callback_records (provider_id, workspace_id, kind, received_at, headers, "
        f"body, state, items, unmatched) VALUES {values} RETURNING id"
    )


def _store_row(store: _Store, received_at: datetime) -> dict[str, Any]:
    return {
        "provider_id": store.provider_id,
        "workspace_id": store.workspace_id,
        "kind": store.kind,
        "received_at": received_at,
        "headers": store.headers,
        "body": store.body,
        "state": "stored",
        "items": 0,
        "unmatched": 0,
    }


# Kinds whose webhooks may bring delivery reports and customer messages to either URL (MSG91
# lets each webhook event have its own URL, so the two are easily swapped or shared).
_MIXED_WEBHOOKS = frozenset({"msg91"})


def parse(provider_kind: str, kind: str, body: bytes) -> list[DeliveryReport | InboundMessage]:
    """The items of a callback body; raises ``CallbackParseError`` when it cannot be read."""
    adapter = get_adapter(provider_kind)
    items: list[DeliveryReport | InboundMessage] = []
    if kind == DELIVERY:
        items.extend(adapter.parse_delivery(body))
        if provider_kind in _MIXED_WEBHOOKS:
            items.extend(adapter.parse_inbound(body))
    else:
        items.extend(adapter.parse_inbound(body))
        if provider_kind in _MIXED_WEBHOOKS:
            items.extend(adapter.parse_delivery(body))
    return items


def _parse_error_text(exc: Exception) -> str:
    if isinstance(exc, CallbackParseError):
        return str(exc)
    return f"could not be read ({type(exc).__name__}): {exc}"


# --- lifecycle hooks for the app -------------------------------------------------------------


async def start_callback_applier(runtime: Runtime) -> Callable[[], Awaitable[None]]:
    """Start this process's applier; returns the function that stops it.

    Idempotent: when one runs already, the returned stopper does nothing.
    """
    if runtime.extras.get(APPLIER_KEY) is not None:

        async def _nothing() -> None:
            return None

        return _nothing
    applier = CallbackApplier(runtime)
    await applier.start()
    runtime.extras[APPLIER_KEY] = applier

    async def stop() -> None:
        await applier.stop()
        if runtime.extras.get(APPLIER_KEY) is applier:
            del runtime.extras[APPLIER_KEY]

    return stop


def applier_of(runtime: Runtime) -> CallbackApplier | None:
    found = runtime.extras.get(APPLIER_KEY)
    return found if isinstance(found, CallbackApplier) else None


def forget_provider(runtime: Runtime, provider_id: int | None = None) -> None:
    """A provider config changed (token rotated, header set, deleted): stop trusting the
    cached copy in this process."""
    applier = applier_of(runtime)
    if applier is not None:
        applier.providers.forget(provider_id)


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(tags=["callbacks"])


# Asked for every header of every callback; providers send the same few names.
_is_secret_header = functools.lru_cache(maxsize=512)(is_secret_header)


def _stored_headers(headers: Mapping[str, str], provider: CallbackProvider) -> dict[str, str]:
    secret = (provider.header_name or "").lower()
    return {
        name: mask_secret(value) if name == secret or _is_secret_header(name) else value
        for name, value in headers.items()
    }


async def receive_callback(
    runtime: Runtime,
    provider_id: str,
    token: str,
    kind: str,
    headers: Mapping[str, str],
    read_body: Callable[[], Awaitable[bytes]],
) -> tuple[int, bytes]:
    """One callback, whatever serves it: (HTTP status, JSON body) to answer.

    ``headers``: names in lower case. The body is read only once the URL's token (and the
    callback header) is accepted."""
    applier = applier_of(runtime)
    if applier is None or not applier.running:
        return _error(
            503,
            "unavailable",
            "callbacks are not being received right now (the callback applier is not running)",
        )
    provider = None
    if provider_id.isdigit() and len(provider_id) < 20:
        provider = await applier.providers.authorized(int(provider_id), token)
    if provider is None or not provider.accepts_headers(headers):
        return _error(
            401, "unauthorized", "this callback URL is not valid (wrong or expired token)"
        )
    body = await read_body()
    record_id, received_at = await applier.store(
        provider, kind, _stored_headers(headers, provider), body
    )
    try:
        items = parse(provider.kind, kind, body)
    except Exception as exc:
        if not isinstance(exc, CallbackParseError):
            log.exception("callback %s could not be parsed", record_id)
        await applier.mark_error(record_id, _parse_error_text(exc))
        return _error(
            400,
            "bad_callback",
            f"the body could not be read: {_parse_error_text(exc)} (it was kept as callback "
            f"{record_id})",
        )
    applier.submit(Pending(record_id, provider.id, provider.workspace_id, kind, received_at, items))
    return 200, _SUCCESS


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps(error_body(code, message))


async def _receive(request: Request, provider_id: str, token: str, kind: str) -> Response:
    headers = {name.lower(): value for name, value in request.headers.items()}
    status, body = await receive_callback(
        request.app.state.runtime, provider_id, token, kind, headers, request.body
    )
    return Response(body, status_code=status, media_type="application/json")


async def delivery_callback(request: Request) -> Response:
    """Where a provider posts message statuses (contracts.md A4, B5)."""
    params = request.path_params
    return await _receive(request, params["provider_id"], params["token"], DELIVERY)


async def inbound_callback(request: Request) -> Response:
    """Where a provider posts customers' messages (contracts.md A5, B5)."""
    params = request.path_params
    return await _receive(request, params["provider_id"], params["token"], INBOUND)


# --- the fast path: callbacks answered before the framework ------------------------------------

_CALLBACK_PATH = re.compile(r"/callbacks/([^/]+)/([^/]+)/(delivery|inbound)")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class CallbacksFirstApp(FastAPI):
    """The app, answering ``POST /callbacks/...`` itself before FastAPI's and Starlette's
    machinery (middleware, routing, request objects): at one status per POST that machinery
    cost more than storing the callback. Everything else goes to FastAPI as usual; the plain
    routes below serve the same URLs for anything that calls the app another way."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = _CALLBACK_PATH.fullmatch(scope["path"])
            if found is not None:
                await _serve_callback(self.state.runtime, found, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _serve_callback(
    runtime: Runtime, found: re.Match[str], scope: Scope, receive: Receive, send: Send
) -> None:
    limit = runtime.settings.callback_body_limit
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }
    length = headers.get("content-length", "")
    too_big = _error(413, "payload_too_large", f"the body is over {limit} bytes")

    async def read_body() -> bytes:
        body = await read_limited_body(receive, limit)
        if body is None:
            raise _TooBig()
        return body

    try:
        if length.isdigit() and int(length) > limit:
            status, body = too_big
        else:
            provider_id, token, kind = found.groups()
            status, body = await receive_callback(
                runtime, provider_id, token, kind, headers, read_body
            )
    except _TooBig:
        status, body = too_big
    except Exception:
        log.exception("unhandled error on POST %s", scope["path"])
        status, body = _error(
            500,
            "internal_error",
            "something went wrong on our side; the error was logged on the server",
        )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooBig(Exception):
    pass


# Plain routes, not FastAPI endpoints: no dependencies or validation to solve on the hottest
# path of the app (providers post thousands of these a second).
router.add_route(
    "/callbacks/{provider_id}/{token}/delivery",
    delivery_callback,
    methods=["POST"],
    name="delivery_callback",
    include_in_schema=False,
)
router.add_route(
    "/callbacks/{provider_id}/{token}/inbound",
    inbound_callback,
    methods=["POST"],
    name="inbound_callback",
    include_in_schema=False,
)


# --- applying --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    woke: bool  # messages were queued (auto-replies): the dispatcher should be woken
    unmatched: dict[int, int]  # record id -> its reports that matched no message


async def apply_pending(
    session: AsyncSession, runtime: Runtime, batch: Sequence[Pending]
) -> Applied:
    """Apply parsed callbacks in the session's transaction. Commits nothing."""
    # A write first: on SQLite it takes the write lock, so what is read below cannot change
    # before this transaction commits (on PostgreSQL the messages are locked FOR UPDATE).
    await session.execute(
        update(CALLBACKS).where(CALLBACKS.c.id == batch[0].record_id).values(state="applied")
    )
    # A record's items are usually of its URL's kind, but an MSG91 webhook may carry either.
    unmatched: dict[int, int] = {}
    woke = False
    if any(isinstance(item, DeliveryReport) for p in batch for item in p.items):
        unmatched = await apply_delivery_reports(session, runtime, batch)
    if any(isinstance(item, InboundMessage) for p in batch for item in p.items):
        woke = await inbound.apply_inbound(session, runtime, batch)
    counts = {p.record_id: (len(p.items), unmatched.get(p.record_id, 0)) for p in batch}
    # Most records have the same counts (one status, matched): one statement per distinct pair.
    by_counts: dict[tuple[int, int], list[int]] = {}
    for record_id, pair in counts.items():
        by_counts.setdefault(pair, []).append(record_id)
    for (items, missed), record_ids in by_counts.items():
        for chunk in _chunks(record_ids):
            await session.execute(
                update(CALLBACKS)
                .where(CALLBACKS.c.id.in_(chunk))
                .values(state="applied", items=items, unmatched=missed, error=None)
            )
    return Applied(woke, unmatched)


@dataclass(frozen=True, slots=True)
class _Target:
    """The attempt a report is about."""

    attempt_id: int
    message_id: int
    number: int


@dataclass(slots=True)
class _State:
    """What the moves need of a message's row, as locked for this transaction.

    Times are only known as present or not (reading them back costs more than the rest of the
    apply); ``changes`` holds the columns to write.
    """

    id: int
    status: str
    attempt_count: int
    transient_failures: int
    has_sent: bool
    has_delivered: bool
    has_read: bool
    in_doubt: bool
    changes: dict[str, Any] = field(default_factory=dict)
    clicks: int = 0

    def move(self, status: str) -> None:
        if status != self.status:
            self.status = self.changes["status"] = status

    def settle(self) -> None:
        """The message is no longer in doubt."""
        if self.in_doubt:
            self.in_doubt = False
            self.changes.update(in_doubt_since=None, unknown_reason=None)


_STATE_COLUMNS = (
    MESSAGES.c.id,
    MESSAGES.c.status,
    MESSAGES.c.attempt_count,
    MESSAGES.c.transient_failures,
    MESSAGES.c.sent_at.is_not(None),
    MESSAGES.c.delivered_at.is_not(None),
    MESSAGES.c.read_at.is_not(None),
    or_(MESSAGES.c.in_doubt_since.is_not(None), MESSAGES.c.unknown_reason.is_not(None)),
)
_REPORTED = frozenset({Status.SENT, Status.DELIVERED, Status.READ})
# The rule of states.py, remembered: it is asked once per report.
_forward = functools.lru_cache(maxsize=128)(forward_move)
_MAY_REQUEUE = frozenset({Status.QUEUED, Status.UNKNOWN, Status.SENT})
_POLICY = RetryPolicy()
# Only the generic contract lets a failure come without a code (MSG91's adapter always names one).
_UNKNOWN_FAILURE = make_error(
    "generic", "unknown", "the provider reported a failure without a code"
)


def _chunks(values: Sequence[Any], size: int = IN_CLAUSE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True, slots=True)
class RowsInsert:
    """An INSERT whose rows go to the driver's executemany as tuples, in ``columns`` order,
    with each value converted by its column's type (as SQLAlchemy would, minus its per-row
    bookkeeping, which cost more than the database's own work at thousands of rows a second).
    ``tail``: what follows the VALUES (an ON CONFLICT clause)."""

    table: Table
    columns: tuple[str, ...]
    tail: str = ""

    def sql(self, paramstyle: str) -> str:
        count = len(self.columns)
        if paramstyle == "qmark":
            marks = ", ".join("?" * count)
        else:  # asyncpg's numeric_dollar
            marks = ", ".join(f"${n}" for n in range(1, count + 1))
        return (
            f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) VALUES ({marks}) "
            f"{self.tail}"
        )


_converters: dict[tuple[str, str, str], Callable[[Any], Any] | None] = {}


def _converter(table: Table, column: str, dialect: Any) -> Callable[[Any], Any] | None:
    key = (dialect.name, table.name, column)
    if key not in _converters:
        kind = table.c[column].type
        _converters[key] = kind.dialect_impl(dialect).bind_processor(dialect)
    return _converters[key]


async def insert_rows(
    session: AsyncSession, statement: RowsInsert, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Run ``statement`` for every row, in the session's transaction."""
    connection = await session.connection()
    dialect = connection.dialect
    converters = [_converter(statement.table, name, dialect) for name in statement.columns]
    if any(converters):
        # The rows of a batch share most of their converted values (received at the same
        # moment): each distinct value is converted once.
        seen: list[dict[Any, Any]] = [{} for _ in converters]

        def converted(index: int, value: Any) -> Any:
            convert = converters[index]
            if convert is None or value is None:
                return value
            known = seen[index]
            if value not in known:
                known[value] = convert(value)
            return known[value]

        rows = [tuple(converted(i, value) for i, value in enumerate(row)) for row in rows]
    await connection.exec_driver_sql(statement.sql(dialect.paramstyle), list(rows))


_EVENTS_INSERT = RowsInsert(
    EVENTS,
    (
        "message_id",
        "attempt_id",
        "status",
        "occurred_at",
        "received_at",
        "callback_id",
        "error_code",
        "effect",
    ),
    "ON CONFLICT (attempt_id, status) DO NOTHING",
)


async def apply_delivery_reports(
    session: AsyncSession, runtime: Runtime, batch: Sequence[Pending]
) -> dict[int, int]:
    """Match each report to an attempt, move messages (design.md, "Moves"), add events.

    Returns how many reports of each callback record matched no message.
    """
    now = runtime.clock.now()
    flat: list[tuple[Pending, DeliveryReport]] = [
        (p, r) for p in batch for r in p.items if isinstance(r, DeliveryReport)
    ]
    targets = await _match(session, now, flat)

    message_ids = sorted({t.message_id for t in targets if t is not None})
    states: dict[int, _State] = {}
    for chunk in _chunks(message_ids):
        query = select(*_STATE_COLUMNS).where(MESSAGES.c.id.in_(chunk)).order_by(MESSAGES.c.id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        for row in await session.execute(query):
            states[row[0]] = _State(*row[:4], *(bool(flag) for flag in row[4:]))
    attempt_ids = sorted({t.attempt_id for t in targets if t is not None})
    seen: set[tuple[int, str]] = set()
    for chunk in _chunks(attempt_ids):
        rows = await session.execute(
            select(EVENTS.c.attempt_id, EVENTS.c.status).where(EVENTS.c.attempt_id.in_(chunk))
        )
        seen.update((attempt_id, status) for attempt_id, status in rows)

    unmatched: dict[int, int] = {}
    events: list[tuple[Any, ...]] = []
    # The profiles' side (WhatsApp Sent / Delivered / ...), recorded with one call per batch.
    profile_events: list[SystemEvent] = []
    once: set[tuple[int, str]] = set()
    # The time a move sets on its message: when the batch's newest report arrived (live, the
    # others came a fraction of a second before). One time lets one UPDATE move every message
    # that did the same thing; each event keeps the time its own report came.
    moved_at = max(p.received_at for p in batch)
    for (pending, report), target in zip(flat, targets, strict=True):
        state = states.get(target.message_id) if target is not None else None
        if target is None or state is None:
            unmatched[pending.record_id] = unmatched.get(pending.record_id, 0) + 1
            continue
        status = report.status[:12]
        if (target.attempt_id, status) in seen:
            continue  # the same status of the same attempt again: nothing changes twice
        seen.add((target.attempt_id, status))
        error = None
        if status == Status.FAILED:
            error = report.error or _UNKNOWN_FAILURE
        reached = (state.has_sent, state.has_delivered, state.has_read)
        effect = _apply_report(state, target, status, error, moved_at)
        _add_profile_events(
            profile_events, once, state, reached, status, effect, report, error, pending
        )
        events.append(
            (
                target.message_id,
                target.attempt_id,
                status,
                report.timestamp,
                pending.received_at,
                pending.record_id,
                error.code[:64] if error else None,
                effect,
            )
        )

    if events:
        await insert_rows(session, _EVENTS_INSERT, events)
    # Reports that did the same thing at the same time (the usual case: a batch of
    # "delivered") write the same values: one UPDATE ... WHERE id IN (...) per kind of change.
    groups: dict[tuple[Any, ...], list[int]] = {}
    for state in states.values():
        if state.changes or state.clicks:
            key = (*sorted(state.changes.items()), ("clicks", state.clicks))
            groups.setdefault(key, []).append(state.id)
    for key, ids in groups.items():
        values: dict[str, Any] = dict(key[:-1])
        clicks = key[-1][1]
        if clicks:
            values["clicked_count"] = MESSAGES.c.clicked_count + clicks
        values["updated_at"] = now
        for chunk in _chunks(ids):
            await session.execute(update(MESSAGES).where(MESSAGES.c.id.in_(chunk)).values(values))
    await record_system_events(session, None, profile_events)
    return unmatched


# The message times a report may set, in the order of _State's flags, and their events.
_TIME_EVENTS = (
    (Status.SENT, system_events.SENT),
    (Status.DELIVERED, system_events.DELIVERED),
    (Status.READ, system_events.READ),
)


def _add_profile_events(
    into: list[SystemEvent],
    once: set[tuple[int, str]],
    state: _State,
    reached: tuple[bool, bool, bool],
    status: str,
    effect: str,
    report: DeliveryReport,
    error: ProviderError | None,
    pending: Pending,
) -> None:
    """The profile events of one applied report: the status it moved the message to (or found
    it in), every time it set on the message (a read report without a delivered one before it
    says the message was delivered too), a failure that failed the message, a counted click."""
    at = pending.received_at
    if effect == "counted":
        url = report.extra.get("url")
        properties = {"url": url} if isinstance(url, str) else {}
        into.append(
            SystemEvent(system_events.CLICKED, at, message_id=state.id, properties=properties)
        )
        return
    names: list[str] = []
    if status == Status.FAILED:
        if effect == "moved":
            names.append(system_events.FAILED)
    elif effect in ("moved", "duplicate"):
        now = (state.has_sent, state.has_delivered, state.has_read)
        names.extend(
            name
            for (reported, name), was, is_now in zip(_TIME_EVENTS, reached, now, strict=True)
            if reported == status or (is_now and not was)
        )
    for name in names:
        if (state.id, name) in once:
            continue
        once.add((state.id, name))
        properties = failure_properties(error) if name == system_events.FAILED else {}
        into.append(SystemEvent(name, at, message_id=state.id, properties=properties))


def _apply_report(
    state: _State, target: _Target, status: str, error: ProviderError | None, at: datetime
) -> str:
    """Move one message for one report; returns the effect recorded on its event."""
    if status == "clicked":
        state.clicks += 1
        return "counted"
    if target.number != state.attempt_count:
        return "ignored"  # a late report about an earlier attempt never moves the message
    changes = state.changes
    if status in _REPORTED:
        moves = _forward(state.status, status)
        if not moves and state.status != status:
            return "ignored"
        if moves:
            state.move(status)
            state.settle()  # a report settles a message that was in doubt
        # Times are kept from the first report that brought them (a sent report on a sent
        # message only adds its time when there was none).
        if not state.has_sent:
            state.has_sent, changes["sent_at"] = True, at
        if status in (Status.DELIVERED, Status.READ) and not state.has_delivered:
            state.has_delivered, changes["delivered_at"] = True, at
        if status == Status.READ and not state.has_read:
            state.has_read, changes["read_at"] = True, at
        return "moved" if moves else "duplicate"
    if status == Status.FAILED and error is not None:
        if error.family is ErrorFamily.THROTTLED and state.status in _MAY_REQUEUE:
            # "Slow down", not a final failure: the provider did not deliver this attempt, so
            # a new one later is safe (design.md, "Retries").
            throttles = max(state.attempt_count - state.transient_failures, 1)
            state.move(Status.QUEUED)
            state.settle()
            if state.has_sent:
                state.has_sent, changes["sent_at"] = False, None
            changes.update(
                next_attempt_at=at + timedelta(seconds=_POLICY.backoff(throttles)),
                error_code=error.code[:64],
                error_title=error.title,
            )
            return "requeued"
        if failure_allowed(state.status):
            state.move(Status.FAILED)
            state.settle()
            changes.update(failed_at=at, error_code=error.code[:64], error_title=error.title)
            return "moved"
    return "ignored"


async def _match(
    session: AsyncSession, now: datetime, flat: Sequence[tuple[Pending, DeliveryReport]]
) -> list[_Target | None]:
    """The attempt of each report, in order, never outside the report's provider config.

    1. ``reference`` = the attempt's reference (the generic ``msgId``);
    2. else ``provider_request_id`` + ``phone`` (MSG91 bulk: one request, one event per number);
    3. else provider + phone + template name among recent messages whose current attempt never
       learned its request id (a timed-out MSG91 request, in doubt). The request id the report
       carries is then recorded on that attempt, so later reports find it by 2.
    """
    by_reference: dict[str, tuple[int, _Target]] = {}
    references = sorted({r.reference for _p, r in flat if r.reference})
    for chunk in _chunks(references):
        rows = await session.execute(
            select(
                ATTEMPTS.c.reference,
                MESSAGES.c.provider_id,
                ATTEMPTS.c.id,
                ATTEMPTS.c.message_id,
                ATTEMPTS.c.number,
            )
            .join_from(ATTEMPTS, MESSAGES, MESSAGES.c.id == ATTEMPTS.c.message_id)
            .where(ATTEMPTS.c.reference.in_(chunk))
        )
        for reference, provider_id, attempt_id, message_id, number in rows:
            by_reference[reference] = (provider_id, _Target(attempt_id, message_id, number))

    def by_ref(pending: Pending, report: DeliveryReport) -> _Target | None:
        hit = by_reference.get(report.reference or "")
        return hit[1] if hit is not None and hit[0] == pending.provider_id else None

    rest = [(p, r) for p, r in flat if by_ref(p, r) is None and r.phone]
    by_request: dict[tuple[int, str, str], _Target] = {}
    request_ids = sorted({r.provider_request_id for _p, r in rest if r.provider_request_id})
    for chunk in _chunks(request_ids):
        by_request_rows = await session.execute(
            select(
                MESSAGES.c.provider_id,
                ATTEMPTS.c.provider_request_id,
                MESSAGES.c.to_phone,
                ATTEMPTS.c.id,
                ATTEMPTS.c.message_id,
                ATTEMPTS.c.number,
            )
            .join_from(ATTEMPTS, MESSAGES, MESSAGES.c.id == ATTEMPTS.c.message_id)
            .where(ATTEMPTS.c.provider_request_id.in_(chunk))
        )
        for provider_id, request_id, phone, attempt_id, message_id, number in by_request_rows:
            by_request[(provider_id, request_id, phone)] = _Target(attempt_id, message_id, number)

    doubtful = [
        (p, r)
        for p, r in rest
        if r.template_name
        and (p.provider_id, r.provider_request_id or "", r.phone or "") not in by_request
    ]
    in_doubt = await _in_doubt_candidates(session, now, doubtful)

    targets: list[_Target | None] = []
    learned: list[dict[str, Any]] = []
    for pending, report in flat:
        target = by_ref(pending, report)
        if target is None and report.phone:
            key = (pending.provider_id, report.provider_request_id or "", report.phone)
            target = by_request.get(key)
            if target is None and report.template_name:
                target = in_doubt.get((pending.provider_id, report.phone, report.template_name))
                if target is not None and report.provider_request_id:
                    by_request[key] = target
                    learned.append({"b_id": target.attempt_id, "b_rid": report.provider_request_id})
        targets.append(target)
    if learned:
        await session.execute(
            update(ATTEMPTS)
            .where(ATTEMPTS.c.id == bindparam("b_id"), ATTEMPTS.c.provider_request_id.is_(None))
            .values(provider_request_id=bindparam("b_rid")),
            learned,
        )
    return targets


async def _in_doubt_candidates(
    session: AsyncSession, now: datetime, reports: Sequence[tuple[Pending, DeliveryReport]]
) -> dict[tuple[int, str, str], _Target]:
    """(provider, phone, template name) -> the current attempt of the best candidate message:
    one in ``unknown`` first, then the newest."""
    if not reports:
        return {}
    providers = sorted({p.provider_id for p, _r in reports})
    phones = sorted({r.phone for _p, r in reports if r.phone})
    names = sorted({r.template_name for _p, r in reports if r.template_name})
    found: dict[tuple[int, str, str], tuple[bool, int, _Target]] = {}
    for chunk in _chunks(phones):
        rows = await session.execute(
            select(
                MESSAGES.c.provider_id,
                MESSAGES.c.to_phone,
                TEMPLATES.c.name,
                MESSAGES.c.status,
                MESSAGES.c.id,
                ATTEMPTS.c.id,
                ATTEMPTS.c.number,
            )
            .join_from(MESSAGES, TEMPLATES, TEMPLATES.c.id == MESSAGES.c.template_id)
            .join(
                ATTEMPTS,
                and_(
                    ATTEMPTS.c.message_id == MESSAGES.c.id,
                    ATTEMPTS.c.number == MESSAGES.c.attempt_count,
                ),
            )
            .where(
                MESSAGES.c.provider_id.in_(providers),
                MESSAGES.c.to_phone.in_(chunk),
                TEMPLATES.c.name.in_(names),
                MESSAGES.c.status.in_([Status.UNKNOWN, Status.QUEUED, Status.SENT]),
                MESSAGES.c.created_at >= now - RECONCILE_LOOKBACK,
                ATTEMPTS.c.provider_request_id.is_(None),
            )
        )
        for provider_id, phone, name, status, message_id, attempt_id, number in rows:
            rank = (status == Status.UNKNOWN, message_id)
            key = (provider_id, phone, name)
            best = found.get(key)
            if best is None or rank > best[:2]:
                found[key] = (*rank, _Target(attempt_id, message_id, number))
    return {key: value[2] for key, value in found.items()}


# Kept for readers of the timeline: which statuses a report may carry and what they did.
EFFECTS = ("moved", "ignored", "requeued", "duplicate", "counted")

__all__ = [
    "APPLIER_KEY",
    "EFFECTS",
    "Applied",
    "CallbackApplier",
    "CallbackProvider",
    "CallbacksFirstApp",
    "Pending",
    "ProviderCache",
    "applier_of",
    "apply_delivery_reports",
    "apply_pending",
    "forget_provider",
    "router",
    "start_callback_applier",
]
