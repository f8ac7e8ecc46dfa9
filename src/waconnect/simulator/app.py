"""The simulator as an aiohttp application, and ways to run it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType

from aiohttp import web

from waconnect.simulator import control, generic, msg91
from waconnect.simulator.core import Simulator
from waconnect.simulator.options import SimulatorOptions
from waconnect.simulator.responses import SIMULATOR

_WA = "/api/v5/whatsapp"


def build_app(options: SimulatorOptions | None = None) -> web.Application:
    """The simulator's routes around a fresh ``Simulator``; ``app[SIMULATOR]`` is its state."""
    sim = Simulator(options)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SIMULATOR] = sim
    app.cleanup_ctx.append(_callbacks_session)

    router = app.router
    for path in (f"{_WA}//outbound/clevertap", f"{_WA}/outbound/clevertap"):
        router.add_post(path + "/", generic.send)
        router.add_post(path, generic.send)
    for suffix in ("/", ""):
        router.add_post(f"{_WA}/whatsapp-outbound-message/bulk{suffix}", msg91.send_bulk)
        router.add_post(f"{_WA}/whatsapp-outbound-message{suffix}", msg91.send_single)
        router.add_get(
            f"{_WA}/get-template-client/{{integrated_number}}{suffix}", msg91.list_templates
        )
    router.add_get("/templates/import", generic.import_templates)
    router.add_get("/_sim/config", control.get_config)
    router.add_post("/_sim/config", control.post_config)
    router.add_get("/_sim/stats", control.get_stats)
    router.add_post("/_sim/reset", control.reset)
    router.add_get("/_sim/messages", control.messages)
    router.add_route("*", "/{tail:.*}", msg91.route_missing)
    return app


async def _callbacks_session(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[SIMULATOR].dispatcher
    await dispatcher.start()
    yield
    await dispatcher.close()


class SimulatorServer:
    """A simulator listening on ``host:port`` (port 0: a free one) inside the running loop.

    ``async with SimulatorServer(options) as server: server.url, server.simulator.stats``
    """

    def __init__(
        self,
        options: SimulatorOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = build_app(options)
        self.simulator = self.app[SIMULATOR]
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, without trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> SimulatorServer:
        # Stop promptly: a send held back by the timeout fault is not worth waiting for.
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=4096)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(host: str, port: int, options: SimulatorOptions | None = None) -> None:
    """Serve the simulator until cancelled."""
    server = SimulatorServer(options, host, port)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def run(host: str = "127.0.0.1", port: int = 9091, options: SimulatorOptions | None = None) -> None:
    """Serve the simulator until interrupted (Ctrl-C), on uvloop when it is installed."""
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve(host, port, options))
        else:
            uvloop.run(serve(host, port, options))
