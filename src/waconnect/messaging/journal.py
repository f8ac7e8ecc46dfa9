"""Group commit for the dispatcher's bookkeeping.

Senders hand their writes (attempt begun, attempt finished) to one writer task that applies
everything pending in one transaction: thousands of messages a second cost a few commits, and
"begun" is still durable before the request that it announces is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("waconnect.journal")

Write = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]


class Journal:
    """Batches writes per kind; ``submit`` resolves once its batch is committed.

    Kinds are served in the order of ``writers``: the first kind ("begin", which a request
    waits for) always goes before the others and in its own short transaction, so a send
    never waits behind a large batch of bookkeeping that nothing waits for.
    """

    def __init__(
        self,
        sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        writers: dict[str, Write],
        max_batch: int = 2000,
    ) -> None:
        self._sessions = sessions
        self._writers = writers
        self._max_batch = max_batch
        self._pending: dict[str, list[tuple[Any, asyncio.Future[None]]]] = {k: [] for k in writers}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal")

    def submit(self, kind: str, item: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[kind].append((item, future))
        self._wakeup.set()
        return future

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    def _next_batch(self) -> tuple[str, list[tuple[Any, asyncio.Future[None]]]] | None:
        for kind, queue in self._pending.items():
            if queue:
                batch, self._pending[kind] = queue[: self._max_batch], queue[self._max_batch :]
                return kind, batch
        return None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while (taken := self._next_batch()) is not None:
                await self._commit(*taken)
            if self._closing:
                return

    async def _commit(self, kind: str, batch: list[tuple[Any, asyncio.Future[None]]]) -> None:
        try:
            async with self._sessions() as session:
                await self._writers[kind](session, [item for item, _future in batch])
                await session.commit()
        except Exception as exc:  # the senders decide what a lost write means
            log.exception("journal commit of %d %s writes failed", len(batch), kind)
            for _item, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _item, future in batch:
            if not future.done():
                future.set_result(None)
