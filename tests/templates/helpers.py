"""Helpers of the template API tests: the error shape, providers, templates."""

from __future__ import annotations

from typing import Any

import httpx

PROVIDERS = "/api/v1/providers"
TEMPLATES = "/api/v1/templates"


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one JSON error shape with ``status`` and ``code``; returns the error object."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    return error


async def make_provider(
    client: httpx.AsyncClient, auth: dict[str, str], nickname: str = "main", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nickname": nickname,
        "kind": "generic",
        "mobile_number": "918000000001",
        "endpoint_url": "https://bsp.example.org/send",
    }
    body.update(extra)
    response = await client.post(PROVIDERS, json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def make_template(
    client: httpx.AsyncClient, auth: dict[str, str], provider_id: int, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{PROVIDERS}/{provider_id}/templates", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
