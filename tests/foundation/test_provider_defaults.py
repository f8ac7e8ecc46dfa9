"""The default provider config: exactly one per workspace that has any."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.foundation.helpers import PROVIDERS, assert_error, create_provider
from waconnect.runtime import Runtime


async def defaults(client: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    listed = (await client.get(PROVIDERS, headers=auth)).json()
    return [p["nickname"] for p in listed if p["is_default"]]


async def test_first_config_is_the_default(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    first = await create_provider(client, auth, nickname="first", is_default=False)
    assert first["is_default"] is True
    second = await create_provider(client, auth, nickname="second")
    assert second["is_default"] is False
    assert await defaults(client, auth) == ["first"]


async def test_a_new_default_clears_the_old_one(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await create_provider(client, auth, nickname="first")
    second = await create_provider(client, auth, nickname="second", is_default=True)
    assert second["is_default"] is True
    assert await defaults(client, auth) == ["second"]
    await create_provider(client, auth, nickname="third", is_default=True)
    assert await defaults(client, auth) == ["third"]


async def test_patch_moves_the_default_and_never_makes_two(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await create_provider(client, auth, nickname="first")
    second = await create_provider(client, auth, nickname="second")
    response = await client.patch(
        f"{PROVIDERS}/{second['id']}", json={"is_default": True}, headers=auth
    )
    assert response.status_code == 200 and response.json()["is_default"] is True
    assert await defaults(client, auth) == ["second"]
    # Making the default the default again changes nothing.
    response = await client.patch(
        f"{PROVIDERS}/{second['id']}", json={"is_default": True}, headers=auth
    )
    assert response.status_code == 200
    assert await defaults(client, auth) == ["second"]
    response = await client.patch(
        f"{PROVIDERS}/{first['id']}", json={"is_default": True, "max_concurrency": 40}, headers=auth
    )
    assert response.status_code == 200
    assert await defaults(client, auth) == ["first"]
    # "Not the default" on a non-default is a no-op.
    response = await client.patch(
        f"{PROVIDERS}/{second['id']}", json={"is_default": False}, headers=auth
    )
    assert response.status_code == 200 and response.json()["is_default"] is False
    assert await defaults(client, auth) == ["first"]


async def test_unsetting_the_default_is_409(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await create_provider(client, auth, nickname="first")
    await create_provider(client, auth, nickname="second")
    response = await client.patch(
        f"{PROVIDERS}/{first['id']}", json={"is_default": False, "nickname": "x"}, headers=auth
    )
    assert_error(response, 409, "conflict", says="default")
    after = (await client.get(f"{PROVIDERS}/{first['id']}", headers=auth)).json()
    assert after["is_default"] is True
    assert after["nickname"] == "first"  # the whole PATCH was refused
    assert await defaults(client, auth) == ["first"]


async def test_the_database_refuses_two_defaults(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await create_provider(client, auth, nickname="first")
    second = await create_provider(client, auth, nickname="second")
    with pytest.raises(IntegrityError):
        async with runtime.engine.begin() as connection:
            await connection.execute(
                text("UPDATE provider_configs SET is_default = :yes WHERE id = :id"),
                {"yes": True, "id": second["id"]},
            )
    assert await defaults(client, auth) == ["first"]


async def test_deleting_the_default_promotes_the_oldest_remaining(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    a = await create_provider(client, auth, nickname="a")
    await create_provider(client, auth, nickname="b")
    c = await create_provider(client, auth, nickname="c", is_default=True)
    d = await create_provider(client, auth, nickname="d")
    assert await defaults(client, auth) == ["c"]

    response = await client.delete(f"{PROVIDERS}/{d['id']}", headers=auth)
    assert response.status_code == 204 and response.content == b""
    assert await defaults(client, auth) == ["c"]  # deleting a non-default changes nothing

    assert (await client.delete(f"{PROVIDERS}/{c['id']}", headers=auth)).status_code == 204
    assert await defaults(client, auth) == ["a"]
    assert (await client.delete(f"{PROVIDERS}/{a['id']}", headers=auth)).status_code == 204
    assert await defaults(client, auth) == ["b"]
    assert_error(await client.get(f"{PROVIDERS}/{a['id']}", headers=auth), 404)
    assert_error(await client.delete(f"{PROVIDERS}/{a['id']}", headers=auth), 404)

    last = (await client.get(PROVIDERS, headers=auth)).json()[0]
    assert (await client.delete(f"{PROVIDERS}/{last['id']}", headers=auth)).status_code == 204
    assert (await client.get(PROVIDERS, headers=auth)).json() == []
    fresh = await create_provider(client, auth, nickname="fresh")
    assert fresh["is_default"] is True
