"""Several workers share one provider's budget on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from waconnect.db.engine import make_engine
from waconnect.messaging.models import Attempt
from waconnect.testing.stack import wait_until

pytestmark = pytest.mark.slow


def test_three_workers_share_one_budget(make_stack, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("several workers need PostgreSQL; SQLite allows one worker process")
    stack = make_stack("--latency-ms", "20", "--no-callbacks")
    stack.create_key()
    stack.start_server("--no-worker")
    provider = stack.add_provider(max_concurrency=30)
    for _ in range(3):
        stack.start_worker()

    stack.send(provider["id"], 3000)

    wait_until(lambda: stack.counts()["sent"] == 3000, 180, "3,000 messages accepted")
    stats = stack.sim_stats()
    assert stats["max_in_flight"] <= 30
    assert stats["messages_accepted"] == 3000  # nothing left behind
    assert stats["duplicates"] == 0  # nothing sent twice
    counts = stack.counts()
    assert counts["queued"] == 0 and counts["unknown"] == 0
    # Every worker did part of the work.
    assert len(asyncio.run(_workers_that_sent(db_url))) == 3


async def _workers_that_sent(url: str) -> set[str]:
    engine = make_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(select(Attempt.worker_id).distinct())
        found = {row[0] for row in rows}
    await engine.dispose()
    return found


def test_second_worker_on_sqlite_is_refused(make_stack, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the one-worker rule is SQLite's")
    stack = make_stack("--no-callbacks")
    stack.create_key()
    stack.start_server("--no-worker")
    first = stack.start_worker()
    wait_until(lambda: "worker started" in first.log(), 30, "the first worker to start")
    second = stack.start_worker()
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 1
    assert "another waconnect worker is already running" in second.log()
    assert "Traceback" not in second.log()
