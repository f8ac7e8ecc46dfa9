"""Callback URLs and token rotation; the grace period is moved by the business clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.foundation.helpers import PROVIDERS, create_provider
from waconnect.providers.service import provider_for_callback
from waconnect.runtime import Runtime

HOUR = 3600


def token_of(provider: dict[str, Any]) -> str:
    inbound = provider["callbacks"]["inbound_url"]
    delivery = provider["callbacks"]["delivery_url"]
    token = inbound.split("/")[-2]
    assert inbound.endswith(f"/{token}/inbound")
    assert delivery.endswith(f"/{token}/delivery")
    return token


async def accepts(runtime: Runtime, provider_id: int, token: str) -> bool:
    async with runtime.sessions() as session:
        found = await provider_for_callback(session, runtime, provider_id, token)
    assert found is None or found.id == provider_id
    return found is not None


async def rotate(
    client: httpx.AsyncClient, auth: dict[str, str], provider_id: int, **body: float
) -> dict[str, Any]:
    response = await client.post(
        f"{PROVIDERS}/{provider_id}/rotate-token", json=body or None, headers=auth
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_callback_urls_carry_the_config_and_its_token(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    first = await create_provider(client, auth, nickname="first")
    second = await create_provider(client, auth, nickname="second")
    base = runtime.settings.resolved_public_url
    for provider in (first, second):
        token = token_of(provider)
        assert len(token) >= 20
        assert provider["callbacks"]["inbound_url"] == (
            f"{base}/callbacks/{provider['id']}/{token}/inbound"
        )
        assert provider["callbacks"]["previous_token_valid_until"] is None
    assert token_of(first) != token_of(second)
    assert await accepts(runtime, first["id"], token_of(first))
    # A token only opens its own config; a wrong or missing one opens nothing.
    assert not await accepts(runtime, second["id"], token_of(first))
    assert not await accepts(runtime, first["id"], token_of(first) + "x")
    assert not await accepts(runtime, first["id"], "")
    assert not await accepts(runtime, 10_000, token_of(first))
    assert not await accepts(runtime, 10**20, token_of(first))


async def test_rotation_keeps_the_old_token_for_24_hours_by_default(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await create_provider(client, auth)
    old = token_of(created)
    before = runtime.clock.now()
    rotated = await rotate(client, auth, created["id"])
    new = token_of(rotated)
    assert new != old
    assert rotated["callbacks"]["inbound_url"] != created["callbacks"]["inbound_url"]
    assert rotated["callbacks"]["delivery_url"] != created["callbacks"]["delivery_url"]
    valid_until = datetime.fromisoformat(rotated["callbacks"]["previous_token_valid_until"])
    assert before + timedelta(hours=24) <= valid_until <= runtime.clock.now() + timedelta(hours=24)
    fetched = (await client.get(f"{PROVIDERS}/{created['id']}", headers=auth)).json()
    assert token_of(fetched) == new

    assert await accepts(runtime, created["id"], new)
    assert await accepts(runtime, created["id"], old)
    runtime.clock.advance(23 * HOUR + 59 * 60)
    assert await accepts(runtime, created["id"], old)
    runtime.clock.advance(2 * 60)
    assert not await accepts(runtime, created["id"], old)
    assert await accepts(runtime, created["id"], new)
    # Once the old URL stops working, the provider page stops mentioning it.
    fetched = (await client.get(f"{PROVIDERS}/{created['id']}", headers=auth)).json()
    assert fetched["callbacks"]["previous_token_valid_until"] is None


async def test_grace_hours_zero_cuts_the_old_token_at_once(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await create_provider(client, auth)
    old = token_of(created)
    rotated = await rotate(client, auth, created["id"], grace_hours=0)
    assert rotated["callbacks"]["previous_token_valid_until"] is None
    assert not await accepts(runtime, created["id"], old)
    assert await accepts(runtime, created["id"], token_of(rotated))


async def test_grace_hours_given_and_from_settings(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await create_provider(client, auth)
    old = token_of(created)
    await rotate(client, auth, created["id"], grace_hours=2)
    runtime.clock.advance(2 * HOUR - 60)
    assert await accepts(runtime, created["id"], old)
    runtime.clock.advance(120)
    assert not await accepts(runtime, created["id"], old)

    runtime.settings.token_grace_hours = 0.5  # WACONNECT_TOKEN_GRACE_HOURS
    middle = token_of((await client.get(f"{PROVIDERS}/{created['id']}", headers=auth)).json())
    rotated = await rotate(client, auth, created["id"])
    assert await accepts(runtime, created["id"], middle)
    runtime.clock.advance(31 * 60)
    assert not await accepts(runtime, created["id"], middle)
    assert await accepts(runtime, created["id"], token_of(rotated))


def test_default_grace_is_24_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    from waconnect.settings import Settings

    monkeypatch.delenv("WACONNECT_TOKEN_GRACE_HOURS", raising=False)
    assert Settings().token_grace_hours == 24
