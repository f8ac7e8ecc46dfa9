"""Posting delivery reports and replies back to the platform.

Every due callback sits in one heap; a single loop timer pops what is due, groups it by URL and
format, and hands each batch to a task that posts through one shared ``aiohttp.ClientSession``.
A message's next report is scheduled only once its previous one was posted (or given up), so
the receiver sees sent -> delivered -> read in order. Request handlers only push onto the heap.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import TYPE_CHECKING

import aiohttp
import orjson

from waconnect.simulator.log import FINAL_OK, INBOUND, STATUS_BITS
from waconnect.simulator.payloads import (
    Clock,
    Pending,
    generic_inbound_body,
    generic_report_body,
    msg91_inbound,
    msg91_report,
)

if TYPE_CHECKING:
    from waconnect.simulator.core import Simulator

_JSON_HEADERS = {"Content-Type": "application/json"}
# Reports due within this window are posted together, so batches fill up under load.
_COALESCE_S = 0.002

Item = tuple[Pending, int]  # a message and its stage: index into stages, or len(stages) = reply


class CallbackDispatcher:
    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator
        self._heap: list[tuple[float, int, Pending, int]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock = Clock()

    @property
    def pending(self) -> int:
        """Callbacks scheduled or being posted."""
        return len(self._heap) + len(self._tasks)

    async def start(self) -> None:
        options = self._sim.options
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=options.callback_connections),
            timeout=aiohttp.ClientTimeout(total=options.callback_timeout_s),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        self.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def clear(self) -> None:
        """Forget every scheduled callback (posts already under way finish, unrecorded)."""
        self._heap.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_due = float("inf")

    def schedule(self, pending: Pending, stage: int, delay_s: float) -> None:
        loop = self._loop
        if loop is None:  # the app has not started: nothing can be posted
            return
        due = loop.time() + delay_s
        heapq.heappush(self._heap, (due, next(self._seq), pending, stage))
        if due < self._timer_due:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(due, self._flush)
            self._timer_due = due

    def _advance(self, pending: Pending, stage: int) -> None:
        """Schedule what follows ``stage`` of ``pending``, if anything does."""
        if pending.generation != self._sim.generation:
            return
        following = stage + 1
        if following < len(pending.stages) or (
            following == len(pending.stages) and pending.reply is not None
        ):
            self.schedule(pending, following, self._sim.options.report_delay_ms / 1000)

    def _flush(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._timer_due = float("inf")
        heap = self._heap
        horizon = self._loop.time() + _COALESCE_S
        sim = self._sim
        options = sim.options
        # (url, generic format?, reply?) -> items
        groups: dict[tuple[str, bool, bool], list[Item]] = {}
        skipped: list[Item] = []
        while heap and heap[0][0] <= horizon:
            _, _, pending, stage = heapq.heappop(heap)
            if not options.callbacks or pending.generation != sim.generation:
                continue
            target = sim.target_for(pending.number)
            reply = stage == len(pending.stages)
            url = target.inbound_url if reply else target.delivery_url
            if not url:
                skipped.append((pending, stage))
                continue
            generic = (target.format or ("msg91" if pending.msg91 else "generic")) == "generic"
            group = groups.get((url, generic, reply))
            if group is None:
                groups[(url, generic, reply)] = group = []
            group.append((pending, stage))
        if heap:
            self._timer = self._loop.call_at(heap[0][0], self._flush)
            self._timer_due = heap[0][0]
        for pending, stage in skipped:
            self._advance(pending, stage)
        if groups:
            self._dispatch(groups)

    def _dispatch(self, groups: dict[tuple[str, bool, bool], list[Item]]) -> None:
        options = self._sim.options
        size = options.batch_size
        now = time.time()
        for (url, generic, reply), items in groups.items():
            if generic and not reply:
                timestamp = str(int(now))
                for start in range(0, len(items), size):
                    chunk = items[start : start + size]
                    self._post(url, generic_report_body(chunk, timestamp), chunk)
            elif generic:
                timestamp = str(int(now))
                for item in items:
                    self._post(url, generic_inbound_body(item[0], timestamp), [item])
            else:
                next_uuid = self._sim.next_uuid
                clock = self._clock
                events = [
                    msg91_inbound(pending, next_uuid(), now, clock)
                    if reply
                    else msg91_report(pending, stage, next_uuid(), now, clock)
                    for pending, stage in items
                ]
                if options.msg91_batch:
                    for start in range(0, len(items), size):
                        body = orjson.dumps(events[start : start + size])
                        self._post(url, body, items[start : start + size])
                else:
                    for event, item in zip(events, items, strict=True):
                        self._post(url, orjson.dumps(event), [item])

    def _post(self, url: str, body: bytes, items: list[Item]) -> None:
        task = asyncio.ensure_future(self._deliver(url, body, items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes, items: list[Item]) -> None:
        generation = self._sim.generation
        posted = await self._send(url, body)
        if generation != self._sim.generation:
            return
        sim = self._sim
        if posted:
            log = sim.log
            stats = sim.stats
            for pending, stage in items:
                stages = pending.stages
                if stage == len(stages):
                    log.mark(pending.idx, INBOUND)
                    stats.inbound_sent += 1
                    continue
                bits = STATUS_BITS[stages[stage]]
                if stage == len(stages) - 1:
                    bits |= FINAL_OK
                log.mark(pending.idx, bits)
                stats.reports_sent += 1
        else:
            sim.stats.callback_errors += 1
        for pending, stage in items:
            self._advance(pending, stage)

    async def _send(self, url: str, body: bytes) -> bool:
        """POST ``body``; retry 5xx, 429 and connection errors with backoff."""
        session = self._session
        if session is None:
            return False
        options = self._sim.options
        for attempt in range(options.callback_retries + 1):
            if attempt:
                await asyncio.sleep(options.callback_backoff_s * 3 ** (attempt - 1))
            try:
                async with session.post(url, data=body, headers=_JSON_HEADERS) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            if status < 400:
                return True
            if status < 500 and status != 429:
                return False  # the receiver refused it: sending again would not help
        return False
