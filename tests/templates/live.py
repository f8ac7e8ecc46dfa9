"""A whole deployment in the test's event loop, over real loopback HTTP: the server (API,
callbacks, the worker's dispatcher) under uvicorn, and the MSG91 simulator. Sends go out as
real requests, the simulator checks them as MSG91 would and calls back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.simulator import SimulatorOptions, SimulatorServer
from waconnect.testing.processes import free_port
from waconnect.web.app import create_app
from waconnect.worker import start_worker

NUMBER = "918000000001"
AUTHKEY = "sim-authkey-123456"
GENERIC_PATH = "/api/v5/whatsapp//outbound/clevertap/"


@dataclass
class Live:
    api: httpx.AsyncClient
    simulator: SimulatorServer
    runtime: Runtime
    url: str

    async def provider(self, kind: str, nickname: str | None = None, **extra: Any) -> dict:
        """A provider config of ``kind`` pointed at the simulator, its callbacks wired."""
        body: dict[str, Any] = {
            "nickname": nickname or kind,
            "kind": kind,
            "mobile_number": NUMBER,
        }
        if kind == "msg91":
            body["endpoint_url"] = self.simulator.url + "/api/v5/whatsapp"
            body["headers"] = {"Authkey": AUTHKEY}
        else:
            body["endpoint_url"] = self.simulator.url + GENERIC_PATH
        body.update(extra)
        created = await self.api.post("/providers", json=body)
        assert created.status_code == 201, created.text
        provider: dict[str, Any] = created.json()
        self.configure(
            numbers={
                body["mobile_number"]: {
                    "delivery_url": provider["callbacks"]["delivery_url"],
                    "inbound_url": provider["callbacks"]["inbound_url"],
                }
            }
        )
        return provider

    async def profile(self, phone: str, **attributes: Any) -> int:
        made = await self.api.post(
            "/profiles/batch", json={"profiles": [{"phone": phone, "attributes": attributes}]}
        )
        assert made.status_code == 200, made.text
        result = made.json()["results"][0]
        assert result["id"] is not None, result
        return int(result["id"])

    async def template(self, provider_id: int, definition: dict[str, Any]) -> dict[str, Any]:
        created = await self.api.post(f"/providers/{provider_id}/templates", json=definition)
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    def configure(self, **options: Any) -> None:
        """Change simulator options, as ``POST /_sim/config`` does."""
        sim = self.simulator.simulator
        if "numbers" in options:
            options["numbers"] = {**sim.options.numbers, **options["numbers"]}
        sim.set_options(sim.options.updated(options))


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll an async ``check`` until it returns something truthy; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def live_stack(settings: Settings, key: str | None = None) -> AsyncIterator[Live]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"public_url": url, "run_worker": False})
    runtime = Runtime.build(settings)
    simulator = await SimulatorServer(
        SimulatorOptions(report_delay_ms=0, seed=7, callback_backoff_s=0.01)
    ).start()
    app = create_app(runtime=runtime, background=[start_worker])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises why the server did not start
            await asyncio.sleep(0.01)
        if key is None:
            from tests.conftest import new_key

            key = await new_key(runtime)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url + "/api/v1", headers=headers, timeout=30) as api:
            yield Live(api=api, simulator=simulator, runtime=runtime, url=url)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(serving, 15)
        finally:
            await simulator.stop()
