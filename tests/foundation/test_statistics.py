"""PostgreSQL: the worker keeps the hot tables' planner statistics fresh, so plans cached on a
new, empty database do not keep scanning tables that grew (db/statistics.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from tests.conftest import new_key
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.web.app import create_app


@pytest.fixture
async def worker_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings.run_worker = True
    settings.statistics_seconds = 0.2
    runtime = Runtime.build(settings)
    app = create_app(runtime=runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://waconnect.test") as c:
            yield c, runtime
    await runtime.close()


async def _analyzed(runtime: Runtime, table: str) -> bool:
    async with runtime.sessions() as session:
        found = await session.scalar(
            text(
                "SELECT coalesce(last_analyze, last_autoanalyze) IS NOT NULL "
                "FROM pg_stat_user_tables WHERE relname = :table"
            ),
            {"table": table},
        )
    return bool(found)


async def test_a_table_that_grew_is_analyzed_by_the_worker(
    worker_client: tuple[httpx.AsyncClient, Runtime], db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's planner statistics; SQLite has none to keep")
    client, runtime = worker_client
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    # A fresh database: nothing analyzed yet, and a few rows change nothing.
    assert not await _analyzed(runtime, "profiles")
    for start in (0, 1000):
        rows = [
            {"identity": f"s{n}", "phone": str(919700000000 + n)}
            for n in range(start, start + 1000)
        ]
        answer = await client.post("/api/v1/profiles/batch", json={"profiles": rows}, headers=auth)
        assert answer.status_code == 200, answer.text
    # 2,000 new rows: past the floor of 1,000 changes, so the worker analyzes the table.
    for _ in range(150):
        if await _analyzed(runtime, "profiles"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the worker did not analyze profiles within 15 s")
