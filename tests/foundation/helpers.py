"""Small helpers shared by the foundation tests: the error shape, and a valid provider body."""

from __future__ import annotations

from typing import Any

import httpx

PROVIDERS = "/api/v1/providers"
ERROR_KEYS = {"code", "message", "fields"}


def assert_error(
    response: httpx.Response,
    status: int,
    code: str | None = None,
    *,
    field: str | None = None,
    says: str | None = None,
) -> dict[str, Any]:
    """The response is ``status`` with the one error shape; ``says`` is in the field's reason
    (or in the message when no field is named). Returns the error object."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["code"], str) and error["code"], error
    if "fields" in error:
        assert error["fields"] and all(isinstance(v, str) for v in error["fields"].values())
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert field in error.get("fields", {}), error
        assert field in error["message"], error
    if says is not None:
        where = error["fields"][field] if field is not None else error["message"]
        assert says in where, error
    return error


def provider_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nickname": "main",
        "kind": "generic",
        "mobile_number": "+91 88895 00122",
        "endpoint_url": "https://api.example.com/whatsapp/send",
    }
    body.update(overrides)
    return body


async def create_provider(
    client: httpx.AsyncClient, auth: dict[str, str], /, **overrides: Any
) -> dict[str, Any]:
    """Create a provider config (a valid body with ``overrides``) and return it."""
    response = await client.post(PROVIDERS, json=provider_body(**overrides), headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
