"""Every bad input of a provider config gets its 4xx and a message that names the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import new_key
from tests.foundation.helpers import PROVIDERS, assert_error, create_provider, provider_body
from waconnect.runtime import Runtime


async def test_mobile_number_accepts_common_forms_and_stores_digits(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for index, raw in enumerate(["+91 88895 00122", "918889500122", "+918889500122"]):
        created = await create_provider(client, auth, nickname=f"n{index}", mobile_number=raw)
        assert created["mobile_number"] == "918889500122", raw
        again = await client.get(f"{PROVIDERS}/{created['id']}", headers=auth)
        assert again.json()["mobile_number"] == "918889500122"
    patched = await client.patch(
        f"{PROVIDERS}/{created['id']}", json={"mobile_number": "+1 (650) 253-0000"}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["mobile_number"] == "16502530000"


async def test_mobile_number_rejects_invalid_with_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cases = {"12345": "too short", "not a phone": "not a number", "+91 12": "too short"}
    for raw, reason in cases.items():
        response = await client.post(PROVIDERS, json=provider_body(mobile_number=raw), headers=auth)
        assert_error(response, 422, "validation_error", field="mobile_number", says=reason)
    created = await create_provider(client, auth)
    response = await client.patch(
        f"{PROVIDERS}/{created['id']}", json={"mobile_number": "+91 1"}, headers=auth
    )
    assert_error(response, 422, "validation_error", field="mobile_number", says="too short")
    response = await client.patch(
        f"{PROVIDERS}/{created['id']}", json={"mobile_number": None}, headers=auth
    )
    assert_error(response, 422, "validation_error", field="mobile_number")
    unchanged = await client.get(f"{PROVIDERS}/{created['id']}", headers=auth)
    assert unchanged.json()["mobile_number"] == "918889500122"


async def test_request_type_is_post_only(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await create_provider(client, auth, request_type="post")
    assert created["request_type"] == "POST"
    for method in ("GET", "PUT", "patch"):
        response = await client.post(
            PROVIDERS, json=provider_body(nickname="x", request_type=method), headers=auth
        )
        assert_error(
            response, 422, "validation_error", field="request_type", says="only POST is supported"
        )
    response = await client.patch(
        f"{PROVIDERS}/{created['id']}", json={"request_type": "GET"}, headers=auth
    )
    assert_error(response, 422, field="request_type", says="only POST is supported")


async def test_endpoint_url_must_be_https_unless_loopback(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    not_http = [
        "ftp://api.example.com/send",
        "api.example.com/send",
        "https://",
        "mailto:someone@example.com",
        "http://[::1",  # unbalanced IPv6 bracket: used to be a 500
        "https://api.example.com:99999/send",  # port out of range
    ]
    for url in not_http:
        response = await client.post(PROVIDERS, json=provider_body(endpoint_url=url), headers=auth)
        assert_error(response, 422, "validation_error", field="endpoint_url", says="http(s)")
    for url in ("http://api.example.com/send", "http://10.0.0.5/send"):
        response = await client.post(PROVIDERS, json=provider_body(endpoint_url=url), headers=auth)
        assert_error(response, 422, "validation_error", field="endpoint_url", says="https")
    loopback = ["http://127.0.0.1:9091/send", "http://localhost:8080/x", "http://[::1]:9000/x"]
    for index, url in enumerate(loopback):
        created = await create_provider(client, auth, nickname=f"lo{index}", endpoint_url=url)
        assert created["endpoint_url"] == url
    response = await client.patch(
        f"{PROVIDERS}/{created['id']}",
        json={"endpoint_url": "http://api.example.com/send"},
        headers=auth,
    )
    assert_error(response, 422, field="endpoint_url", says="https")


async def test_allow_http_endpoints_setting_lets_plain_http_through(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    runtime.settings.allow_http_endpoints = True
    created = await create_provider(client, auth, endpoint_url="http://api.example.com/send")
    assert created["endpoint_url"] == "http://api.example.com/send"
    response = await client.post(
        PROVIDERS,
        json=provider_body(nickname="ftp", endpoint_url="ftp://api.example.com/send"),
        headers=auth,
    )
    assert_error(response, 422, field="endpoint_url", says="http(s)")


def test_allow_http_endpoints_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from waconnect.settings import Settings

    monkeypatch.delenv("WACONNECT_ALLOW_HTTP_ENDPOINTS", raising=False)
    assert Settings().allow_http_endpoints is False
    monkeypatch.setenv("WACONNECT_ALLOW_HTTP_ENDPOINTS", "1")
    assert Settings().allow_http_endpoints is True


async def test_generic_needs_an_endpoint_other_kinds_have_defaults(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    body = provider_body()
    del body["endpoint_url"]
    assert_error(
        await client.post(PROVIDERS, json=body, headers=auth),
        422,
        "validation_error",
        field="endpoint_url",
        says="required",
    )
    assert_error(
        await client.post(PROVIDERS, json=provider_body(endpoint_url=None), headers=auth),
        422,
        field="endpoint_url",
    )
    msg91 = await create_provider(client, auth, nickname="m", kind="msg91", endpoint_url=None)
    assert msg91["endpoint_url"].startswith("https://")
    sandbox = await create_provider(client, auth, nickname="s", kind="sandbox", endpoint_url=None)
    assert sandbox["endpoint_url"].startswith(runtime.settings.simulator_url)
    response = await client.post(PROVIDERS, json=provider_body(kind="meta"), headers=auth)
    assert_error(response, 422, field="kind")
    generic = await create_provider(client, auth, nickname="g")
    response = await client.patch(
        f"{PROVIDERS}/{generic['id']}", json={"endpoint_url": None}, headers=auth
    )
    assert_error(response, 422, field="endpoint_url", says="required")


async def test_auth_is_none_or_basic_with_a_password(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    plain = await create_provider(client, auth)
    assert plain["auth"] == {"type": "none"}
    basic = await create_provider(
        client,
        auth,
        nickname="b",
        auth={"type": "basic", "username": "acme", "password": "s3cret-password"},
    )
    assert basic["auth"]["type"] == "basic"
    assert basic["auth"]["username"] == "acme"
    bad = [
        {"type": "basic", "username": "acme"},
        {"type": "basic", "username": "acme", "password": ""},
        {"type": "basic", "password": "x"},
        {"type": "bearer", "token": "x"},
        {"type": "none", "password": "x"},
    ]
    for value in bad:
        response = await client.post(
            PROVIDERS, json=provider_body(nickname="z", auth=value), headers=auth
        )
        error = assert_error(response, 422, "validation_error")
        assert any(name.startswith("auth") for name in error["fields"]), error
    response = await client.post(
        PROVIDERS,
        json=provider_body(nickname="z", auth={"type": "basic", "username": "acme"}),
        headers=auth,
    )
    error = assert_error(response, 422)
    assert any("password" in name for name in error["fields"]), error


async def test_headers_default_to_json(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await create_provider(client, auth, headers={"X-Trace": "abc"})
    assert created["headers"] == {
        "X-Trace": "abc",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    own = await create_provider(
        client, auth, nickname="own", headers={"content-type": "application/json; charset=utf-8"}
    )
    assert own["headers"]["content-type"] == "application/json; charset=utf-8"
    assert "Content-Type" not in own["headers"]
    assert own["headers"]["Accept"] == "application/json"
    for headers in ({"Bad Name": "x"}, {"X-Ok": "line\r\nbreak"}, {"X-Big": "v" * 4097}):
        response = await client.post(
            PROVIDERS, json=provider_body(nickname="h", headers=headers), headers=auth
        )
        assert_error(response, 422, field="headers")


async def test_auto_reply_needs_text_and_at_most_4096(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    off = await create_provider(client, auth)
    assert off["auto_reply"] == {"enabled": False, "text": None}
    for value in ({"enabled": True}, {"enabled": True, "text": "   "}):
        response = await client.post(
            PROVIDERS, json=provider_body(nickname="a", auto_reply=value), headers=auth
        )
        assert_error(response, 422, field="auto_reply", says="text is required")
    response = await client.post(
        PROVIDERS,
        json=provider_body(nickname="a", auto_reply={"enabled": True, "text": "x" * 4097}),
        headers=auth,
    )
    assert_error(response, 422, field="auto_reply.text", says="4096")
    longest = await create_provider(
        client, auth, nickname="a", auto_reply={"enabled": True, "text": "x" * 4096}
    )
    assert longest["auto_reply"]["text"] == "x" * 4096
    response = await client.patch(
        f"{PROVIDERS}/{off['id']}", json={"auto_reply": {"enabled": True}}, headers=auth
    )
    assert_error(response, 422, field="auto_reply", says="text is required")


async def test_max_concurrency_between_30_and_1000(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    default = await create_provider(client, auth)
    assert default["max_concurrency"] == 100
    for value in (30, 1000):
        created = await create_provider(client, auth, nickname=f"c{value}", max_concurrency=value)
        assert created["max_concurrency"] == value
    for value in (5, 29, 1001, 0, -1, True):
        response = await client.post(
            PROVIDERS, json=provider_body(nickname="c", max_concurrency=value), headers=auth
        )
        error = assert_error(response, 422, field="max_concurrency", says="between 30 and 1000")
        assert f"got {int(value)}" in error["fields"]["max_concurrency"]
    response = await client.post(
        PROVIDERS, json=provider_body(nickname="c", max_concurrency=5), headers=auth
    )
    error = assert_error(response, 422)
    assert error["fields"]["max_concurrency"] == "must be between 30 and 1000, got 5"
    for odd in ("many", 50.5, None):
        response = await client.post(
            PROVIDERS, json=provider_body(nickname="c", max_concurrency=odd), headers=auth
        )
        assert_error(response, 422, field="max_concurrency")
    url = f"{PROVIDERS}/{default['id']}"
    response = await client.patch(url, json={"max_concurrency": 5}, headers=auth)
    assert_error(response, 422, field="max_concurrency", says="must be between 30 and 1000, got 5")
    response = await client.patch(url, json={"max_concurrency": None}, headers=auth)
    assert_error(response, 422, field="max_concurrency")
    response = await client.patch(url, json={"max_concurrency": 250}, headers=auth)
    assert response.json()["max_concurrency"] == 250
    assert (await client.get(url, headers=auth)).json()["max_concurrency"] == 250


async def test_nickname_is_unique_per_workspace(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    first = await create_provider(client, auth, nickname="main")
    response = await client.post(PROVIDERS, json=provider_body(nickname="main"), headers=auth)
    assert_error(response, 409, "conflict", says="main")
    # The failed insert left nothing behind, and the first config is still the default.
    listed = (await client.get(PROVIDERS, headers=auth)).json()
    assert [(p["id"], p["is_default"]) for p in listed] == [(first["id"], True)]

    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    in_other = await create_provider(client, other, nickname="main")
    assert in_other["nickname"] == "main"
    assert in_other["is_default"] is True

    second = await create_provider(client, auth, nickname="backup")
    response = await client.patch(
        f"{PROVIDERS}/{second['id']}", json={"nickname": "main"}, headers=auth
    )
    assert_error(response, 409, "conflict", says="main")
    assert (await client.get(f"{PROVIDERS}/{second['id']}", headers=auth)).json()[
        "nickname"
    ] == "backup"
    for nickname in ("", "   ", "n" * 101):
        response = await client.post(PROVIDERS, json=provider_body(nickname=nickname), headers=auth)
        assert_error(response, 422, field="nickname")


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(PROVIDERS, json=provider_body(colour="blue"), headers=auth)
    assert_error(response, 422, "validation_error", field="colour", says="unknown field")
    response = await client.post(
        PROVIDERS,
        json=provider_body(auto_reply={"enabled": False, "txt": "typo"}),
        headers=auth,
    )
    assert_error(response, 422, field="auto_reply.txt", says="unknown field")
    created = await create_provider(client, auth)
    patches: list[dict[str, Any]] = [{"kind": "msg91"}, {"id": 7}, {"callbacks": {}}, {"x": 1}]
    for change in patches:
        response = await client.patch(f"{PROVIDERS}/{created['id']}", json=change, headers=auth)
        name = next(iter(change))
        assert_error(response, 422, field=name, says="unknown field")
    response = await client.post(
        f"{PROVIDERS}/{created['id']}/rotate-token",
        json={"grace_hours": 1, "now": True},
        headers=auth,
    )
    assert_error(response, 422, field="now", says="unknown field")
