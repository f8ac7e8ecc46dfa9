"""Fixtures for the simulator tests: a running simulator, a callback receiver, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from waconnect.simulator import SimulatorOptions, SimulatorServer

from .helpers import Receiver, StartSimulator


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorder = Receiver()
    app = web.Application()
    app.router.add_post("/cb/{name}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield recorder
    await runner.cleanup()


@pytest.fixture
async def start_simulator() -> AsyncIterator[StartSimulator]:
    """``await start_simulator(**option_overrides)``: a simulator on a free loopback port.

    Tests default to ``report_delay_ms=0`` and a fixed seed; callbacks are retried quickly.
    """
    servers: list[SimulatorServer] = []

    async def start(**overrides: Any) -> SimulatorServer:
        settings: dict[str, Any] = {"report_delay_ms": 0, "seed": 7, "callback_backoff_s": 0.01}
        settings.update(overrides)
        server = await SimulatorServer(SimulatorOptions(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session
