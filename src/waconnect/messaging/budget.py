"""The concurrency budget of each provider config, shared by every live worker.

Invariant: for every provider config, the ``slots`` of all workers whose heartbeat has not
expired add up to at most ``max_concurrency``, and a worker never has more requests in flight
than its slots. Hence in-flight requests across all workers never exceed the maximum.

- A worker grows its share only inside a transaction that reads the others' shares (on
  PostgreSQL under a row lock of the provider config), so two workers cannot both take the
  same free slots.
- It shrinks its local limit first and writes the smaller share only once its in-flight count
  is under it, so the recorded share is always ≥ what it really uses.
- A dead worker's share is ignored only after its heartbeat expires; the expiry is longer than
  the HTTP timeout, so its last requests are over by then.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging.models import ProviderShare, Worker
from waconnect.providers.models import ProviderConfig


def wall_now() -> datetime:
    """Real time for heartbeats and leases: never the business clock, which tests move."""
    return datetime.now(UTC)


class Closed(Exception):
    """The limiter was closed (the worker is stopping): no more slots are handed out."""


class Limiter:
    """At most ``capacity`` holders at once; the capacity can change while in use.

    Waiters are served first come, first served, and a release wakes only the waiter that
    takes the freed slot: at thousands of requests a second, waking every waiter to re-check
    (a Condition's ``notify_all``) cost more than the sends.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    async def acquire(self) -> None:
        """Take a slot, waiting for one; raises :class:`Closed` once the limiter is closed."""
        if self.closed:
            raise Closed
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()  # given up while waiting
        if self.in_flight < self.capacity and not self._waiters:
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot was counted for us by _hand_over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.in_flight -= 1  # handed a slot while being cancelled: give it back
                self._hand_over()
            raise

    async def release(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    async def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity
        self._hand_over()

    def close(self) -> None:
        """Refuse every waiter and every later acquire; holders still release as usual."""
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Closed())

    def _hand_over(self) -> None:
        while self._waiters and self.in_flight < self.capacity and not self.closed:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    @property
    def free(self) -> int:
        return max(self.capacity - self.in_flight, 0)


def fair_share(maximum: int, alive_ids: list[str], me: str) -> int:
    """Split the maximum evenly across live workers; the first ones take the remainder."""
    ordered = sorted(set(alive_ids) | {me})
    count = len(ordered)
    index = ordered.index(me)
    return maximum // count + (1 if index < maximum % count else 0)


async def alive_workers(session: AsyncSession, ttl: float) -> list[str]:
    cutoff = wall_now() - timedelta(seconds=ttl)
    rows = await session.scalars(select(Worker.id).where(Worker.heartbeat_at > cutoff))
    return list(rows)


async def expired_workers(session: AsyncSession, ttl: float) -> list[str]:
    """Workers whose heartbeat expired (dead, or about to be forgotten)."""
    cutoff = wall_now() - timedelta(seconds=ttl)
    rows = await session.scalars(select(Worker.id).where(Worker.heartbeat_at <= cutoff))
    return list(rows)


async def grow_share(
    session: AsyncSession, provider_id: int, worker_id: str, wanted: int, ttl: float, locking: bool
) -> int:
    """Take up to ``wanted`` slots of what the live others leave free; returns the new share."""
    query = select(ProviderConfig.max_concurrency).where(ProviderConfig.id == provider_id)
    if locking:
        query = query.with_for_update()
    maximum = await session.scalar(query)
    if maximum is None:
        return 0
    cutoff = wall_now() - timedelta(seconds=ttl)
    others = await session.scalar(
        select(func.coalesce(func.sum(ProviderShare.slots), 0))
        .join(Worker, Worker.id == ProviderShare.worker_id)
        .where(
            ProviderShare.provider_id == provider_id,
            ProviderShare.worker_id != worker_id,
            Worker.heartbeat_at > cutoff,
        )
    )
    granted = max(0, min(wanted, maximum - int(others or 0)))
    await _write_share(session, provider_id, worker_id, granted)
    return granted


async def _write_share(session: AsyncSession, provider_id: int, worker_id: str, slots: int) -> None:
    result = await session.execute(
        update(ProviderShare)
        .where(ProviderShare.provider_id == provider_id, ProviderShare.worker_id == worker_id)
        .values(slots=slots)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(ProviderShare(provider_id=provider_id, worker_id=worker_id, slots=slots))
        await session.flush()


async def shrink_share(session: AsyncSession, provider_id: int, worker_id: str, slots: int) -> None:
    await _write_share(session, provider_id, worker_id, slots)


async def forget_dead(session: AsyncSession, ttl: float) -> None:
    """Drop the shares and rows of workers whose heartbeat expired long ago."""
    cutoff = wall_now() - timedelta(seconds=ttl * 3)
    dead = select(Worker.id).where(Worker.heartbeat_at <= cutoff)
    await session.execute(delete(ProviderShare).where(ProviderShare.worker_id.in_(dead)))
    await session.execute(delete(Worker).where(Worker.heartbeat_at <= cutoff))
