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
    """Batches items per kind of write; ``submit`` resolves once the batch is committed."""

    def __init__(
        self,
        sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        writers: dict[str, Write],
        max_batch: int = 2000,
    ) -> None:
        self._sessions = sessions
        self._writers = writers
        self._max_batch = max_batch
        self._pending: list[tuple[str, Any, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal")

    def submit(self, kind: str, item: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((kind, item, future))
        self._wakeup.set()
        return future

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = (
                    self._pending[: self._max_batch],
                    self._pending[self._max_batch :],
                )
                await self._commit(batch)
            if self._closing and not self._pending:
                return

    async def _commit(self, batch: list[tuple[str, Any, asyncio.Future[None]]]) -> None:
        by_kind: dict[str, list[Any]] = {}
        for kind, item, _future in batch:
            by_kind.setdefault(kind, []).append(item)
        try:
            async with self._sessions() as session:
                # Order matters: a message's "begun" must land before its "finished".
                for kind, writer in self._writers.items():
                    if kind in by_kind:
                        await writer(session, by_kind[kind])
                await session.commit()
        except Exception as exc:  # the senders decide what a lost write means
            log.exception("journal commit failed for %d writes", len(batch))
            for _kind, _item, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _kind, _item, future in batch:
            if not future.done():
                future.set_result(None)
