"""Helpers of the simulator tests: a callback receiver, request bodies, polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from waconnect.simulator import SimulatorServer

BUSINESS = "918000000001"
CUSTOMER = "919812345678"
StartSimulator = Callable[..., Awaitable[SimulatorServer]]

GENERIC_PATH = "/api/v5/whatsapp//outbound/clevertap/"
BULK_PATH = "/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
SINGLE_PATH = "/api/v5/whatsapp/whatsapp-outbound-message/"


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


class Receiver:
    """Plays the platform's callback endpoints: records every POST under ``/cb/{name}``.

    ``failures[name] = n`` answers the next n POSTs to that name with 503.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.failures: dict[str, int] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = orjson.loads(await request.read())
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            return web.json_response({"status": "error"}, status=503)
        self.calls.append((name, body))
        return web.json_response({"status": "success"})

    def endpoint(self, name: str) -> str:
        return f"{self.url}/cb/{name}"

    def bodies(self, name: str) -> list[Any]:
        return [body for called, body in self.calls if called == name]

    def statuses(self, name: str = "delivery") -> list[dict[str, Any]]:
        """Every generic A4 status received at ``name``, in arrival order."""
        return [status for body in self.bodies(name) for status in body["statuses"]]

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every MSG91 B5 object received at ``name`` (single objects or batches)."""
        out: list[dict[str, Any]] = []
        for body in self.bodies(name):
            out.extend(body if isinstance(body, list) else [body])
        return out


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    async with http.post(url, data=orjson.dumps(body), headers=headers or {}, **kwargs) as response:
        return response.status, orjson.loads(await response.read())


async def get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.get(url, **kwargs) as response:
        return response.status, orjson.loads(await response.read())


async def register(
    http: aiohttp.ClientSession,
    server: SimulatorServer,
    receiver: Receiver,
    number: str = BUSINESS,
    fmt: str | None = None,
    delivery: str = "delivery",
    inbound: str = "inbound",
) -> None:
    """Point ``number``'s callbacks at the receiver, through ``POST /_sim/config``."""
    target = {
        "delivery_url": receiver.endpoint(delivery),
        "inbound_url": receiver.endpoint(inbound),
        "format": fmt,
    }
    status, _ = await post_json(http, f"{server.url}/_sim/config", {"numbers": {number: target}})
    assert status == 200


def template_send(msg_id: str, to: str = CUSTOMER, **extra: Any) -> dict[str, Any]:
    """A generic (A2) template send with an image header, body, copy code and a quick reply."""
    body: dict[str, Any] = {
        "payloadVersion": 0.1,
        "to": to,
        "wabaNumber": BUSINESS,
        "isTemplate": True,
        "msgId": msg_id,
        "template": {"namespace": "diwali_offer", "languageCode": "en"},
        "components": [
            {
                "type": "header",
                "header": {"type": "image", "image": {"mediaURL": "https://cdn.example.org/d.jpg"}},
            },
            {
                "type": "body",
                "body": {
                    "text": "Hi Asha, 20% off ends tonight",
                    "parameters": [
                        {"type": "text", "text": "Asha"},
                        {"type": "text", "text": "20%"},
                    ],
                },
            },
            {"type": "footer", "footer": "Reply STOP to opt out"},
            {
                "type": "button",
                "index": 0,
                "subType": "copy_code",
                "buttonText": "Copy code",
                "parameters": [{"type": "coupon_code", "coupon_code": "LAMP20"}],
            },
            {
                "type": "button",
                "index": 1,
                "subType": "quickReply",
                "buttonText": "Not now",
                "parameters": [{"type": "payload", "payload": f"{msg_id}|qr1"}],
            },
            {"customProps": [{"order_id": "A-991"}]},
        ],
    }
    body.update(extra)
    return body


def bulk_send(groups: list[list[str]], name: str = "diwali_offer") -> dict[str, Any]:
    """A native (B2) bulk send: one ``to_and_components`` group per list of numbers."""
    return {
        "integrated_number": BUSINESS,
        "content_type": "template",
        "payload": {
            "messaging_product": "whatsapp",
            "type": "template",
            "template": {
                "name": name,
                "language": {"code": "en", "policy": "deterministic"},
                "namespace": None,
                "to_and_components": [
                    {
                        "to": numbers,
                        "components": {
                            "body_1": {"type": "text", "value": f"Customer {index}"},
                            "button_1": {
                                "subtype": "COPY_CODE",
                                "type": "coupon_code",
                                "coupon_code": "LAMP20",
                            },
                        },
                    }
                    for index, numbers in enumerate(groups)
                ],
            },
        },
    }
