"""Provider secrets: encrypted at rest (Fernet), shown masked, kept when sent back masked."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.foundation.helpers import PROVIDERS, assert_error, create_provider
from waconnect.crypto import MASK, SecretBox
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import plain_headers
from waconnect.runtime import Runtime

PASSWORD = "basic-pass-WXYZ9876"
SECRET_HEADERS = {
    "Authkey": "msg91-authkey-ABCD1234",
    "X-API-TOKEN": "token-value-0000-5555",
    "x-client-secret": "client-secret-value-4321",
    "Authorization": "Bearer long-bearer-value-8080",
    "x-apikey": "api-key-value-6543",
}
CALLBACK_VALUE = "callback-signature-7777"
TEMPLATE_PASSWORD = "template-pass-2468"
TEMPLATE_AUTHKEY = "template-authkey-1357"


def masked(value: str) -> str:
    return MASK + value[-4:]


async def stored(runtime: Runtime, provider_id: int) -> ProviderConfig:
    async with runtime.sessions() as session:
        config = await session.get(ProviderConfig, provider_id)
        assert config is not None
        return config


async def raw_row(runtime: Runtime, provider_id: int) -> str:
    """The row as the database holds it, every column as text."""
    async with runtime.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT * FROM provider_configs WHERE id = :id"), {"id": provider_id}
        )
        row = result.mappings().one()
    return " ".join(str(value) for value in row.values())


async def make_secret_provider(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    return await create_provider(
        client,
        auth,
        auth={"type": "basic", "username": "acme-user", "password": PASSWORD},
        headers={**SECRET_HEADERS, "X-Trace": "plain-visible-value"},
        callback_header={"name": "X-Callback-Sig", "value": CALLBACK_VALUE},
        templates={
            "url": "https://api.example.com/templates",
            "auth": {"type": "basic", "username": "tpl", "password": TEMPLATE_PASSWORD},
            "headers": {"Authkey": TEMPLATE_AUTHKEY},
        },
    )


async def test_secrets_are_returned_masked(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await make_secret_provider(client, auth)
    fetched = (await client.get(f"{PROVIDERS}/{created['id']}", headers=auth)).json()
    listed = (await client.get(PROVIDERS, headers=auth)).json()[0]
    for shown in (created, fetched, listed):
        assert shown["auth"] == {
            "type": "basic",
            "username": "acme-user",
            "password": masked(PASSWORD),
        }
        for name, value in SECRET_HEADERS.items():
            assert shown["headers"][name] == masked(value), name
        assert shown["headers"]["X-Trace"] == "plain-visible-value"
        assert shown["headers"]["Content-Type"] == "application/json"
        assert shown["callback_header"] == {
            "name": "X-Callback-Sig",
            "value": masked(CALLBACK_VALUE),
        }
        assert shown["templates"]["auth"]["password"] == masked(TEMPLATE_PASSWORD)
        assert shown["templates"]["headers"]["Authkey"] == masked(TEMPLATE_AUTHKEY)
    everything = (await client.get(PROVIDERS, headers=auth)).text
    for secret in [PASSWORD, CALLBACK_VALUE, TEMPLATE_PASSWORD, TEMPLATE_AUTHKEY]:
        assert secret not in everything
    for secret in SECRET_HEADERS.values():
        assert secret not in everything


async def test_short_secrets_show_only_the_mask(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await create_provider(
        client,
        auth,
        auth={"type": "basic", "username": "u", "password": "short1"},
        headers={"Authkey": "k1234567"},
    )
    assert created["auth"]["password"] == MASK
    assert created["headers"]["Authkey"] == MASK


async def test_secrets_are_encrypted_at_rest_with_fernet(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await make_secret_provider(client, auth)
    row = await raw_row(runtime, created["id"])
    for secret in [PASSWORD, CALLBACK_VALUE, TEMPLATE_PASSWORD, TEMPLATE_AUTHKEY]:
        assert secret not in row
    for secret in SECRET_HEADERS.values():
        assert secret not in row
    assert "plain-visible-value" in row  # the check can see the row's clear text

    config = await stored(runtime, created["id"])
    assert config.auth_password_enc is not None
    assert config.auth_password_enc.startswith("gAAAAA")  # a Fernet token
    assert runtime.secrets.decrypt(config.auth_password_enc) == PASSWORD
    assert config.callback_header_value_enc is not None
    assert runtime.secrets.decrypt(config.callback_header_value_enc) == CALLBACK_VALUE
    for name in SECRET_HEADERS:
        assert set(config.headers[name]) == {"enc"}, name
        assert config.headers[name]["enc"].startswith("gAAAAA")
    assert config.headers["X-Trace"] == {"value": "plain-visible-value"}
    plain = plain_headers(runtime.secrets, config.headers)
    assert plain == {
        **SECRET_HEADERS,
        "X-Trace": "plain-visible-value",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    # Another deployment key cannot read them.
    with pytest.raises(ValueError, match="WACONNECT_SECRET_KEY"):
        SecretBox("another-key").decrypt(config.auth_password_enc)


async def test_patch_with_masked_values_keeps_the_stored_secrets(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await make_secret_provider(client, auth)
    url = f"{PROVIDERS}/{created['id']}"
    shown = (await client.get(url, headers=auth)).json()
    # Send back what GET showed (masked), changing only non-secret parts.
    headers = {**shown["headers"], "X-Trace": "changed-trace"}
    body = {
        "auth": {**shown["auth"], "username": "new-user"},
        "headers": headers,
        "callback_header": shown["callback_header"],
        "templates": {**shown["templates"], "page_size": 100},
        "max_concurrency": 300,
    }
    response = await client.patch(url, json=body, headers=auth)
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["auth"] == {"type": "basic", "username": "new-user", "password": masked(PASSWORD)}
    assert after["headers"]["X-Trace"] == "changed-trace"
    assert after["max_concurrency"] == 300

    config = await stored(runtime, created["id"])
    plain = plain_headers(runtime.secrets, config.headers)
    for name, value in SECRET_HEADERS.items():
        assert plain[name] == value, name
    assert plain["X-Trace"] == "changed-trace"
    assert config.auth_password_enc is not None
    assert runtime.secrets.decrypt(config.auth_password_enc) == PASSWORD
    assert config.callback_header_value_enc is not None
    assert runtime.secrets.decrypt(config.callback_header_value_enc) == CALLBACK_VALUE
    template_auth = config.templates["auth"]
    assert runtime.secrets.decrypt(template_auth["password_enc"]) == TEMPLATE_PASSWORD
    template_headers = plain_headers(runtime.secrets, config.templates["headers"])
    assert template_headers["Authkey"] == TEMPLATE_AUTHKEY

    # A PATCH that does not mention the secrets at all leaves them too.
    response = await client.patch(url, json={"nickname": "renamed"}, headers=auth)
    assert response.json()["headers"]["Authkey"] == masked(SECRET_HEADERS["Authkey"])
    config = await stored(runtime, created["id"])
    assert plain_headers(runtime.secrets, config.headers)["Authkey"] == SECRET_HEADERS["Authkey"]


async def test_patch_with_new_values_changes_the_secrets(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await make_secret_provider(client, auth)
    url = f"{PROVIDERS}/{created['id']}"
    shown = (await client.get(url, headers=auth)).json()
    body = {
        "auth": {"type": "basic", "username": "acme-user", "password": "brand-new-pass-1111"},
        "headers": {**shown["headers"], "Authkey": "brand-new-authkey-2222"},
        "callback_header": {"name": "X-Callback-Sig", "value": "brand-new-callback-3333"},
    }
    response = await client.patch(url, json=body, headers=auth)
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["auth"]["password"] == masked("brand-new-pass-1111")
    assert after["headers"]["Authkey"] == masked("brand-new-authkey-2222")
    assert after["headers"]["X-API-TOKEN"] == masked(SECRET_HEADERS["X-API-TOKEN"])
    assert after["callback_header"]["value"] == masked("brand-new-callback-3333")

    config = await stored(runtime, created["id"])
    plain = plain_headers(runtime.secrets, config.headers)
    assert plain["Authkey"] == "brand-new-authkey-2222"
    assert plain["X-API-TOKEN"] == SECRET_HEADERS["X-API-TOKEN"]
    assert config.auth_password_enc is not None
    assert runtime.secrets.decrypt(config.auth_password_enc) == "brand-new-pass-1111"
    assert "brand-new" not in await raw_row(runtime, created["id"])

    # Switching auth off forgets the password; a masked one cannot bring it back.
    response = await client.patch(url, json={"auth": {"type": "none"}}, headers=auth)
    assert response.json()["auth"] == {"type": "none"}
    assert (await stored(runtime, created["id"])).auth_password_enc is None
    response = await client.patch(
        url,
        json={"auth": {"type": "basic", "username": "u", "password": after["auth"]["password"]}},
        headers=auth,
    )
    assert_error(response, 422, field="auth.password", says="masked")


async def test_a_masked_value_with_nothing_stored_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        PROVIDERS,
        json={
            "nickname": "m",
            "kind": "generic",
            "mobile_number": "918889500122",
            "endpoint_url": "https://api.example.com/send",
            "headers": {"Authkey": masked("whatever-1234")},
        },
        headers=auth,
    )
    assert_error(response, 422, field="headers.Authkey", says="masked")
