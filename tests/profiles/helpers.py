"""Helpers for the profiles tests: batches through the API, and the one error shape."""

from __future__ import annotations

from typing import Any

import httpx

PROFILES = "/api/v1/profiles"
EVENTS = "/api/v1/events"
SEGMENTS = "/api/v1/segments"


async def upsert(
    client: httpx.AsyncClient, auth: dict[str, str], *rows: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{PROFILES}/batch", json={"profiles": list(rows)}, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def record(
    client: httpx.AsyncClient, auth: dict[str, str], *rows: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{EVENTS}/batch", json={"events": list(rows)}, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(client: httpx.AsyncClient, auth: dict[str, str], definition: Any) -> int:
    response = await client.post(f"{SEGMENTS}/count", json={"definition": definition}, headers=auth)
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


async def profile(client: httpx.AsyncClient, auth: dict[str, str], pid: int) -> dict[str, Any]:
    response = await client.get(f"{PROFILES}/{pid}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def statuses(batch: dict[str, Any]) -> list[str]:
    return [row["status"] for row in batch["results"]]


def row_error(batch: dict[str, Any], index: int) -> dict[str, Any]:
    row = batch["results"][index]
    assert row["status"] == "error", row
    error: dict[str, Any] = row["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "fields"}, error
    assert error["message"].strip()
    return error


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, says: str | None = None
) -> dict[str, Any]:
    """The one JSON error shape, with a message a person can act on."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error), error
    if code is not None:
        assert error["code"] == code, error
    if says is not None:
        assert says in error["message"], error
    return error
