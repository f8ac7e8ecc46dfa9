"""The HTTP edge: malformed JSON, content types, body size, unknown routes, and the one error
shape for all of them, never a 500 or a stack trace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.foundation.helpers import PROVIDERS, assert_error, create_provider, provider_body

LIMIT = 1_000_000  # WACONNECT_API_BODY_LIMIT's default: "1 MB"


async def test_malformed_json_is_400(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await create_provider(client, auth)
    json_headers = {**auth, "Content-Type": "application/json"}
    targets = [
        ("POST", PROVIDERS),
        ("PATCH", f"{PROVIDERS}/{created['id']}"),
        ("POST", f"{PROVIDERS}/{created['id']}/rotate-token"),
        ("PATCH", "/api/v1/workspace"),
        ("POST", "/api/v1/keys"),
    ]
    for method, url in targets:
        for body in (b'{"nickname": ', b"{'single': 'quotes'}", b"\xff\xfe\x00", b"{,}"):
            response = await client.request(method, url, content=body, headers=json_headers)
            assert_error(response, 400, "malformed_json", says="not valid JSON")


async def test_json_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for body in ([], [provider_body()], "text", 42, None):
        response = await client.post(PROVIDERS, json=body, headers=auth)
        assert_error(response, 422, "validation_error", field="body")


async def test_wrong_content_type_is_415(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await create_provider(client, auth)
    payload = json.dumps(provider_body(nickname="x")).encode()
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        for method, url in (("POST", PROVIDERS), ("PATCH", f"{PROVIDERS}/{created['id']}")):
            response = await client.request(
                method, url, content=payload, headers={**auth, "Content-Type": content_type}
            )
            assert_error(response, 415, "unsupported_media_type", says="application/json")
    # Forms and multipart get past the guard (uploads use them) but not into a JSON endpoint.
    response = await client.post(PROVIDERS, data={"nickname": "x"}, headers=auth)
    assert_error(response, 415, "unsupported_media_type")
    response = await client.post(
        PROVIDERS, files={"file": ("p.json", payload, "application/json")}, headers=auth
    )
    assert_error(response, 415, "unsupported_media_type")
    # JSON with a charset parameter is JSON.
    response = await client.post(
        PROVIDERS,
        content=payload,
        headers={**auth, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


async def test_body_over_1mb_is_413(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    too_big = json.dumps(provider_body(nickname="n" * (LIMIT + 10))).encode()
    response = await client.post(
        PROVIDERS, content=too_big, headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    # Refused before authentication too: nobody can make the server read a huge body.
    response = await client.post(
        PROVIDERS, content=too_big, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    # Under the limit the body goes through and is validated as usual.
    fits = json.dumps(provider_body(nickname="n" * (LIMIT - 1000))).encode()
    assert len(fits) <= LIMIT
    response = await client.post(
        PROVIDERS, content=fits, headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 422, field="nickname")


async def _chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_chunked_body_over_1mb_is_413(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    too_big = json.dumps(provider_body(nickname="n" * (LIMIT + 10))).encode()
    request = client.build_request(
        "POST",
        PROVIDERS,
        content=_chunked(too_big),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_error(await client.send(request), 413, "payload_too_large")
    # A chunked body under the limit is put back together and reaches the endpoint.
    body = provider_body(nickname="chunked", headers={"X-Pad": "p" * 4000})
    request = client.build_request(
        "POST",
        PROVIDERS,
        content=_chunked(json.dumps(body).encode(), size=1000),
        headers={**auth, "Content-Type": "application/json"},
    )
    response = await client.send(request)
    assert response.status_code == 201, response.text
    assert response.json()["nickname"] == "chunked"


async def test_unknown_route_is_json_404_and_wrong_method_json_405(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for url in ("/nope", "/api/v1/nope", "/api/v2/providers", "/static/nope.js"):
        assert_error(await client.get(url, headers=auth), 404, "not_found")
    response = await client.post("/api/v1/nope", json={}, headers=auth)
    assert_error(response, 404, "not_found")
    assert_error(await client.put(PROVIDERS, json={}, headers=auth), 405, "method_not_allowed")
    assert_error(await client.delete("/api/v1/workspace", headers=auth), 405)


async def test_odd_ids_are_404_or_422_never_500(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    huge = "99999999999999999999"  # past 64 bits: used to overflow inside the driver
    for provider_id in ("0", "-1", "9223372036854775807", "9223372036854775808", huge):
        base = f"{PROVIDERS}/{provider_id}"
        assert_error(await client.get(base, headers=auth), 404, "not_found")
        assert_error(await client.delete(base, headers=auth), 404, "not_found")
        response = await client.patch(base, json={"nickname": "x"}, headers=auth)
        assert_error(response, 404, "not_found")
        response = await client.post(f"{base}/rotate-token", json={}, headers=auth)
        assert_error(response, 404, "not_found")
    for key_id in ("0", huge):
        assert_error(await client.delete(f"/api/v1/keys/{key_id}", headers=auth), 404)
    assert_error(await client.get(f"{PROVIDERS}/abc", headers=auth), 422, field="provider_id")
    assert_error(await client.get(f"{PROVIDERS}/1.5", headers=auth), 422, field="provider_id")


NASTY: list[Any] = [
    {"nickname": None},
    {"nickname": 12},
    {"nickname": ["a"]},
    {"kind": None},
    {"mobile_number": None},
    {"mobile_number": ""},
    {"mobile_number": "+" + "9" * 200},
    {"mobile_number": "\u0000"},
    {"endpoint_url": 5},
    {"endpoint_url": "https://exa mple.com:-1/"},
    {"endpoint_url": "https://" + "a" * 5000 + ".com:0x50/"},
    {"endpoint_url": "http://[fe80::1%25eth0]:80/"},
    {"headers": None},
    {"headers": ["Authkey"]},
    {"headers": {"Authkey": None}},
    {"headers": {"": "x"}},
    {"headers": {"Authkey": "••••"}},
    {"auth": None},
    {"auth": "basic"},
    {"auth": {"type": "basic", "username": "u", "password": "••••1234"}},
    {"callback_header": {"name": "X-Sig", "value": "••••abcd"}},
    {"callback_header": {"name": "bad name", "value": "x"}},
    {"templates": {"url": "ftp://example.com"}},
    {"templates": {"auth": {"type": "basic", "username": "u", "password": "••••"}}},
    {"templates": {"page_size": 10}},
    {"is_default": "yes please"},
    {"auto_reply": None},
    {"auto_reply": {"enabled": "sometimes"}},
    {"max_concurrency": 10**30},
    {"max_concurrency": "1e3"},
    {"options": {"batch_size": 0}},
    {"options": {"unknown": 1}},
]


async def test_nasty_inputs_get_a_4xx_in_the_error_shape(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await create_provider(client, auth)
    url = f"{PROVIDERS}/{created['id']}"
    for index, change in enumerate(NASTY):
        response = await client.post(
            PROVIDERS, json={**provider_body(nickname=f"nasty{index}"), **change}, headers=auth
        )
        if response.status_code != 201:
            assert_error(response, response.status_code)
            assert 400 <= response.status_code < 500, (change, response.text)
        response = await client.patch(url, json=change, headers=auth)
        if response.status_code != 200:
            assert_error(response, response.status_code)
            assert 400 <= response.status_code < 500, (change, response.text)
    # The first config survived all of it.
    assert (await client.get(url, headers=auth)).status_code == 200
    for body in ({"grace_hours": -1}, {"grace_hours": 10**9}, {"grace_hours": "soon"}):
        response = await client.post(f"{url}/rotate-token", json=body, headers=auth)
        assert_error(response, 422, field="grace_hours")
