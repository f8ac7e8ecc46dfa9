"""SQLite's writer turn (db/turn.py): first come first served, threads and coroutines alike."""

from __future__ import annotations

import asyncio
import threading
import time

from waconnect.db.turn import WriteTurn


def _until_queued(turn: WriteTurn, waiters: int) -> None:
    deadline = time.monotonic() + 10
    while len(turn._waiters) < waiters:
        assert time.monotonic() < deadline, "the waiters never queued"
        time.sleep(0.001)


async def test_waiters_get_the_turn_in_the_order_they_asked() -> None:
    turn = WriteTurn()
    await turn.take()
    order: list[str] = []

    def thread_writer(name: str) -> None:
        turn.take_blocking()
        order.append(name)
        turn.give()

    async def loop_writer(name: str) -> None:
        await turn.take()
        order.append(name)
        turn.give()

    first = threading.Thread(target=thread_writer, args=("thread-1",))
    first.start()
    await asyncio.to_thread(_until_queued, turn, 1)
    second = asyncio.create_task(loop_writer("loop-2"))
    await asyncio.sleep(0.01)
    third = threading.Thread(target=thread_writer, args=("thread-3",))
    third.start()
    await asyncio.to_thread(_until_queued, turn, 3)
    assert order == []  # nobody writes while the turn is held
    turn.give()
    await second
    await asyncio.to_thread(first.join)
    await asyncio.to_thread(third.join)
    assert order == ["thread-1", "loop-2", "thread-3"]
    await asyncio.wait_for(turn.take(), 1)  # free again
    turn.give()


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    turn = WriteTurn()
    await turn.take()
    waiting = asyncio.create_task(turn.take())
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    turn.give()
    await asyncio.wait_for(turn.take(), 1)  # nobody was left holding it
    turn.give()


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    turn = WriteTurn()
    await turn.take()
    waiting = asyncio.create_task(turn.take())
    await asyncio.sleep(0.01)
    turn.give()  # handed to the waiter, which has not run yet
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    await asyncio.wait_for(turn.take(), 1)
    turn.give()
