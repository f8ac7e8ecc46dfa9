"""Campaign test helpers: a provider with templates, profiles and segments through the API, the
campaign loop turned in-process, and the real dispatcher answered by an in-process provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.callbacks.helpers import FakeProvider
from waconnect.campaigns.runner import CampaignRunner
from waconnect.messaging.dispatcher import Dispatcher
from waconnect.runtime import Runtime

CAMPAIGNS = "/api/v1/campaigns"

GREETING: dict[str, Any] = {
    "name": "greeting",
    "language": "en",
    "category": "MARKETING",
    "status": "APPROVED",
    "components": [
        {"type": "BODY", "text": "Hi {{1}}, 20% off today.", "example": {"body_text": [["Asha"]]}},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]},
    ],
}
FAREWELL: dict[str, Any] = {
    **GREETING,
    "name": "farewell",
    "components": [{"type": "BODY", "text": "Bye {{1}}.", "example": {"body_text": [["Asha"]]}}],
}
NAME = {"body.1": {"attribute": "first_name"}}


async def provider_with_templates(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str = "generic"
) -> tuple[dict[str, Any], dict[str, int]]:
    body: dict[str, Any] = {
        "nickname": f"p-{time.monotonic_ns()}",
        "kind": kind,
        "mobile_number": "+91 88895 00122",
    }
    if kind == "generic":
        body["endpoint_url"] = "https://api.example.com/whatsapp/send"
    answer = await client.post("/api/v1/providers", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    provider = answer.json()
    templates = {}
    for template in (GREETING, FAREWELL):
        made = await client.post(
            f"/api/v1/providers/{provider['id']}/templates", json=template, headers=auth
        )
        assert made.status_code == 201, made.text
        templates[template["name"]] = made.json()["id"]
    return provider, templates


async def add_profiles(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    count: int,
    first_phone: int = 919800000000,
    make: Callable[[int], dict[str, Any]] | None = None,
) -> None:
    for start in range(0, count, 1000):
        rows = []
        for n in range(start, min(start + 1000, count)):
            row: dict[str, Any] = {
                "identity": f"u{n}",
                "phone": str(first_phone + n),
                "attributes": {"first_name": f"P{n}"},
            }
            if make is not None:
                row.update(make(n))
            rows.append(row)
        answer = await client.post("/api/v1/profiles/batch", json={"profiles": rows}, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rejected"] == 0, answer.json()


async def segment(
    client: httpx.AsyncClient, auth: dict[str, str], definition: dict[str, Any] | None = None
) -> int:
    answer = await client.post(
        "/api/v1/segments",
        json={"name": f"s-{time.monotonic_ns()}", "definition": definition or {"all": []}},
        headers=auth,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


async def create(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Diwali")
    answer = await client.post(CAMPAIGNS, json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def act(
    client: httpx.AsyncClient, auth: dict[str, str], campaign_id: int, action: str
) -> dict[str, Any]:
    answer = await client.post(f"{CAMPAIGNS}/{campaign_id}/{action}", headers=auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def show(client: httpx.AsyncClient, auth: dict[str, str], campaign_id: int) -> dict[str, Any]:
    answer = await client.get(f"{CAMPAIGNS}/{campaign_id}", headers=auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def recipients(
    client: httpx.AsyncClient, auth: dict[str, str], campaign_id: int, status: str | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        answer = await client.get(
            f"{CAMPAIGNS}/{campaign_id}/recipients", params=params, headers=auth
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def run_loop(runtime: Runtime, turns: int = 10_000) -> None:
    """Turn the campaign loop until it has no chunk left to write."""
    runner = CampaignRunner(runtime)
    for _ in range(turns):
        if not await runner.turn():
            return


async def finish(runtime: Runtime) -> None:
    """One more turn past the completion check's pacing."""
    runner = CampaignRunner(runtime)
    await runner.turn()


def sum_identity(stats: dict[str, Any]) -> int:
    return (
        stats["control"]
        + sum(stats["skipped"].values())
        + stats["queued"]
        + stats["unknown"]
        + stats["sent"]
        + stats["delivered"]
        + stats["read"]
        + sum(stats["failed"].values())
        + stats["expired"]
        + stats["cancelled"]
    )


class Sending:
    """The real dispatcher, its provider answered in-process (FakeProvider)."""

    def __init__(self, runtime: Runtime, kind: str = "generic") -> None:
        self.runtime = runtime
        self.provider = FakeProvider(kind)
        self.dispatcher = Dispatcher(runtime, transport_factory=lambda _config: self.provider)

    async def __aenter__(self) -> Sending:
        await self.dispatcher.start()
        self.runtime.extras["dispatcher"] = self.dispatcher
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.dispatcher.stop()
        self.runtime.extras.pop("dispatcher", None)


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")
