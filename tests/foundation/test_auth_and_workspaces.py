"""API keys and workspace isolation through the HTTP API (the CLI side is in test_end_to_end)."""

from __future__ import annotations

import httpx

from tests.conftest import new_key
from tests.foundation.helpers import PROVIDERS, assert_error, create_provider, provider_body
from waconnect.runtime import Runtime

KEYS = "/api/v1/keys"


async def test_missing_or_malformed_authorization_is_401(client: httpx.AsyncClient) -> None:
    requests = [
        ("GET", PROVIDERS, None),
        ("POST", PROVIDERS, provider_body()),
        ("GET", f"{PROVIDERS}/1", None),
        ("GET", "/api/v1/workspace", None),
        ("PATCH", "/api/v1/workspace", {"timezone": "UTC"}),
        ("GET", KEYS, None),
        ("POST", KEYS, {}),
        ("DELETE", f"{KEYS}/1", None),
    ]
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer "}):
        for method, url, body in requests:
            response = await client.request(method, url, json=body, headers=headers)
            assert_error(response, 401, "unauthorized", says="Authorization: Bearer")


async def test_wrong_key_is_401(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    real = auth["Authorization"].removeprefix("Bearer ")
    for header in (
        "Bearer wac_not-a-real-key",
        f"Bearer {real}x",
        f"Bearer {real[:-1]}",
        f"Basic {real}",
        f"Token {real}",
        real,
    ):
        response = await client.get(PROVIDERS, headers={"Authorization": header})
        assert_error(response, 401, "unauthorized")
    # The right key with another casing of the scheme works.
    response = await client.get(PROVIDERS, headers={"Authorization": f"bearer {real}"})
    assert response.status_code == 200


async def test_keys_are_shown_once_and_listed_by_prefix(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(KEYS, json={"label": "ci"}, headers=auth)
    assert response.status_code == 201, response.text
    created = response.json()
    key = created["key"]
    assert key.startswith("wac_") and len(key) >= 40
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < len(key) // 2
    assert created["label"] == "ci" and created["revoked_at"] is None
    new_auth = {"Authorization": f"Bearer {key}"}
    assert (await client.get(PROVIDERS, headers=new_auth)).status_code == 200

    listing = await client.get(KEYS, headers=new_auth)
    assert listing.status_code == 200
    rows = listing.json()
    assert len(rows) == 2
    assert key not in listing.text
    assert auth["Authorization"].removeprefix("Bearer ") not in listing.text
    for row in rows:
        assert set(row) == {"id", "label", "prefix", "created_at", "last_used_at", "revoked_at"}
        assert row["prefix"].startswith("wac_")
    assert created["id"] in [row["id"] for row in rows]
    response = await client.post(KEYS, json={"label": "x" * 201}, headers=auth)
    assert_error(response, 422, field="label")
    response = await client.post(KEYS, json={"labels": "x"}, headers=auth)
    assert_error(response, 422, field="labels", says="unknown field")


async def test_revoked_key_is_401(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = (await client.post(KEYS, json={"label": "temp"}, headers=auth)).json()
    temp = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get(PROVIDERS, headers=temp)).status_code == 200

    response = await client.delete(f"{KEYS}/{created['id']}", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    assert_error(await client.get(PROVIDERS, headers=temp), 401, "unauthorized", says="revoked")
    assert (await client.get(PROVIDERS, headers=auth)).status_code == 200
    rows = {row["id"]: row for row in (await client.get(KEYS, headers=auth)).json()}
    assert rows[created["id"]]["revoked_at"] is not None
    # Revoking again changes nothing; a key can revoke itself.
    assert (await client.delete(f"{KEYS}/{created['id']}", headers=auth)).status_code == 200
    own_id = next(row["id"] for row in rows.values() if row["revoked_at"] is None)
    assert (await client.delete(f"{KEYS}/{own_id}", headers=auth)).status_code == 200
    assert_error(await client.get(PROVIDERS, headers=auth), 401)


async def test_another_workspace_sees_nothing_of_this_one(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    mine = await create_provider(client, auth, nickname="mine")
    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    url = f"{PROVIDERS}/{mine['id']}"

    assert (await client.get(PROVIDERS, headers=other)).json() == []
    assert_error(await client.get(url, headers=other), 404, "not_found")
    response = await client.patch(url, json={"nickname": "stolen"}, headers=other)
    assert_error(response, 404, "not_found")
    response = await client.post(f"{url}/rotate-token", json={}, headers=other)
    assert_error(response, 404, "not_found")
    assert_error(await client.delete(url, headers=other), 404, "not_found")
    # A missing id answers exactly the same way.
    missing = await client.get(f"{PROVIDERS}/{mine['id'] + 1000}", headers=other)
    assert missing.json()["error"]["code"] == "not_found"

    unchanged = (await client.get(url, headers=auth)).json()
    assert unchanged["nickname"] == "mine"
    assert unchanged["callbacks"] == mine["callbacks"]

    theirs = await create_provider(client, other, nickname="theirs")
    assert [p["id"] for p in (await client.get(PROVIDERS, headers=auth)).json()] == [mine["id"]]
    assert [p["id"] for p in (await client.get(PROVIDERS, headers=other)).json()] == [theirs["id"]]
    assert theirs["is_default"] and unchanged["is_default"]  # one default per workspace

    assert (await client.get("/api/v1/workspace", headers=other)).json()["name"] == "other"
    assert (await client.get("/api/v1/workspace", headers=auth)).json()["name"] == "default"
    my_keys = {row["id"] for row in (await client.get(KEYS, headers=auth)).json()}
    their_keys = {row["id"] for row in (await client.get(KEYS, headers=other)).json()}
    assert my_keys and their_keys and not my_keys & their_keys
    assert_error(await client.delete(f"{KEYS}/{min(my_keys)}", headers=other), 404)
    assert (await client.get(PROVIDERS, headers=auth)).status_code == 200
