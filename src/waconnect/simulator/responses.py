"""What every simulator handler shares: the app key, JSON responses, send-request accounting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from waconnect.simulator.core import Simulator

SIMULATOR = web.AppKey("simulator", Simulator)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rejected(Exception):
    """A send the provider refuses: ``code`` is the provider's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def send_endpoint(handler: Handler) -> Handler:
    """Count a send request and how many are being served at once (arrival to response)."""

    @wraps(handler)
    async def counted(request: web.Request) -> web.StreamResponse:
        stats = request.app[SIMULATOR].stats
        stats.requests += 1
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        try:
            return await handler(request)
        finally:
            stats.in_flight -= 1

    return counted
