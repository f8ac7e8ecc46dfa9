"""``/_sim/*``: configure the simulator at runtime and read what it saw."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from waconnect.simulator.core import Simulator
from waconnect.simulator.options import CallbackTarget
from waconnect.simulator.responses import SIMULATOR, json_response

_MAX_PAGE = 10_000


def _error(message: str, status: int = 400) -> web.Response:
    return json_response(orjson.dumps({"error": message}), status)


def config_state(sim: Simulator) -> dict[str, Any]:
    options = sim.options.to_json()
    return {"numbers": options.pop("numbers"), "options": options}


async def get_config(request: web.Request) -> web.StreamResponse:
    return json_response(orjson.dumps(config_state(request.app[SIMULATOR])))


async def post_config(request: web.Request) -> web.StreamResponse:
    """Merge callback targets per number (``null`` removes one) and change option knobs.

    Body: ``{"numbers": {"918000000001": {"delivery_url": .., "inbound_url": .., "format": ..}},
    "options": {"latency_ms": 20, ...}}``; answers the resulting state, or 400 naming the fault.
    """
    sim = request.app[SIMULATOR]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error("body must be JSON")
    if not isinstance(body, dict) or set(body) - {"numbers", "options"}:
        return _error('body must be {"numbers": {...}, "options": {...}}')
    changes = body.get("options") or {}
    numbers_in = body.get("numbers") or {}
    if not isinstance(changes, dict) or not isinstance(numbers_in, dict):
        return _error("numbers and options must be objects")
    try:
        if numbers_in:
            base = changes.get("numbers", sim.options.numbers)
            if not isinstance(base, dict):
                raise ValueError("options.numbers must be an object")
            numbers = dict(base)
            for number, target in numbers_in.items():
                if target is None:
                    numbers.pop(number, None)
                else:
                    numbers[number] = CallbackTarget.from_json(target)
            changes = {**changes, "numbers": numbers}
        options = sim.options.updated(changes)
    except (TypeError, ValueError) as error:
        return _error(str(error))
    sim.set_options(options)
    return json_response(orjson.dumps(config_state(sim)))


async def get_stats(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR]
    stats = sim.stats.to_json()
    stats["callbacks_pending"] = sim.dispatcher.pending
    return json_response(orjson.dumps(stats))


async def reset(request: web.Request) -> web.StreamResponse:
    request.app[SIMULATOR].reset()
    return json_response(b'{"status":"ok"}')


async def messages(request: web.Request) -> web.StreamResponse:
    """Accepted messages oldest first: ``?offset=`` (default 0) ``&limit=`` (default 100)."""
    sim = request.app[SIMULATOR]
    try:
        offset = max(0, int(request.query.get("offset", "0")))
        limit = min(_MAX_PAGE, max(0, int(request.query.get("limit", "100"))))
    except ValueError:
        return _error("offset and limit must be integers")
    log = sim.log
    body = {
        "total": len(log),
        "dropped": log.base,
        "offset": offset,
        "messages": log.page(offset, limit),
    }
    return json_response(orjson.dumps(body))
