"""SQLite's single writer, taken in turns by coroutines and by threads alike.

A process writes to SQLite from the event loop (sessions) and from threads of its own (the
dispatcher's transactions, run whole in one hop: messaging/journal.py). They take turns here,
in the order they asked, rather than in SQLite's busy handler, which sleeps in coarse steps.

The turn is handed from one holder straight to the next. A thread that waits gets it without
the event loop's help: when the loop is busy sending, the dispatcher's bookkeeping still runs
back to back instead of waiting for the loop to pass the turn along between transactions.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable


class _Waiter:
    __slots__ = ("granted", "wake")

    def __init__(self, wake: Callable[[], object]) -> None:
        self.wake = wake
        self.granted = False


class WriteTurn:
    """A first-come first-served lock that both threads and coroutines can wait for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._waiters: deque[_Waiter] = deque()

    def _try_take(self) -> bool:
        """Take the turn if it is free and nobody is waiting (call under ``_lock``)."""
        if self._held or self._waiters:
            return False
        self._held = True
        return True

    def take_blocking(self) -> None:
        """Wait in this thread (never on the event loop's thread) until it is our turn."""
        with self._lock:
            if self._try_take():
                return
            event = threading.Event()
            self._waiters.append(_Waiter(event.set))
        event.wait()

    async def take(self) -> None:
        """Wait on the event loop until it is our turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._try_take():
                return
            waiter = _Waiter(lambda: loop.call_soon_threadsafe(_resolve, future))
            self._waiters.append(waiter)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:  # handed to us as we were cancelled: pass it on
                self.give()
            raise

    def give(self) -> None:
        """End our turn: the longest waiter gets it, or it becomes free."""
        while True:
            with self._lock:
                if not self._waiters:
                    self._held = False
                    return
                waiter = self._waiters.popleft()
                waiter.granted = True  # still held: it passes straight to the waiter
            try:
                waiter.wake()
                return
            except RuntimeError:  # its event loop has closed: pass it on
                continue


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
