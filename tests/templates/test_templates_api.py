"""Templates per provider config: create, validate as a whole, PATCH, delete (both databases)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import new_key
from tests.templates.builders import (
    body,
    buttons,
    carousel_template,
    footer,
    header_text,
    offer,
    quick_reply,
    template,
)
from tests.templates.helpers import PROVIDERS, TEMPLATES, error_of, make_provider, make_template
from waconnect.runtime import Runtime
from waconnect.templates import service


@pytest.fixture
async def provider(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    return await make_provider(client, auth)


async def test_a_template_is_stored_normalized_with_its_type(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any]
) -> None:
    definition = carousel_template(
        status="pending", provider_template_id="1234567890", namespace="ns_1"
    )
    definition["components"][1]["type"] = "carousel"

    created = await make_template(client, auth, provider["id"], definition)

    assert created["type"] == "carousel"
    assert created["status"] == "PENDING"
    assert (created["provider_template_id"], created["namespace"]) == ("1234567890", "ns_1")
    assert [c["type"] for c in created["components"]] == ["BODY", "CAROUSEL"]
    fetched = await client.get(f"{TEMPLATES}/{created['id']}", headers=auth)
    assert fetched.json() == created
    listed = await client.get(f"{PROVIDERS}/{provider['id']}/templates", headers=auth)
    assert [t["id"] for t in listed.json()] == [created["id"]]


async def test_every_violation_is_reported_at_once(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any]
) -> None:
    definition = template(
        header_text("Order {{1}} of {{2}}", "A", "B"),
        body("x" * 1025),
        footer("f" * 61),
        buttons(
            quick_reply(), {"type": "URL", "text": "Go", "url": "https://x.org"}, quick_reply()
        ),
        language="en-US",
    )

    response = await client.post(
        f"{PROVIDERS}/{provider['id']}/templates", json=definition, headers=auth
    )

    error = error_of(response, 422, "validation_error")
    assert error["fields"] == {
        "language": "'en-US' is not a WhatsApp language code; use 'en_US'",
        "header": "2 variables, the limit is 1",
        "body": "1025 characters, the limit is 1024",
        "footer": "61 characters, the limit is 60",
        "buttons": "quick replies must be grouped together, before or after the other buttons; "
        "found QUICK_REPLY, URL, QUICK_REPLY",
    }
    assert "body: 1025 characters, the limit is 1024" in error["message"]
    assert error["message"].startswith("the template breaks 5 WhatsApp rules")


async def test_a_given_type_must_match_the_components(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any]
) -> None:
    response = await client.post(
        f"{PROVIDERS}/{provider['id']}/templates",
        json=template(type="limited_time_offer"),
        headers=auth,
    )

    error = error_of(response, 422, "validation_error")
    assert error["fields"] == {
        "type": "type limited_time_offer needs a LIMITED_TIME_OFFER component; the template "
        "as given is basic"
    }


async def test_name_and_language_are_unique_per_provider(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any]
) -> None:
    first = await make_template(client, auth, provider["id"], template())
    other = await make_provider(client, auth, nickname="second")

    again = await client.post(
        f"{PROVIDERS}/{provider['id']}/templates", json=template(), headers=auth
    )

    error = error_of(again, 409, "conflict")
    assert error["existing_id"] == first["id"]
    assert "'order_update' in language 'en' exists already" in error["message"]
    await make_template(client, auth, provider["id"], template(language="hi"))
    await make_template(client, auth, other["id"], template())


async def test_patch_changes_a_part_and_revalidates_the_whole(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any]
) -> None:
    created = await make_template(
        client, auth, provider["id"], template(footer(), provider_template_id="77")
    )
    url = f"{TEMPLATES}/{created['id']}"

    changed = await client.patch(
        url, json={"status": "paused", "provider_template_id": None}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "PAUSED"
    assert changed.json()["provider_template_id"] is None
    assert changed.json()["components"] == created["components"]

    # Marketing-only parts on a UTILITY template: only the whole template shows it.
    with_offer = await client.patch(
        url,
        json={"components": [*created["components"], offer()]},
        headers=auth,
    )
    error = error_of(with_offer, 422, "validation_error")
    assert set(error["fields"]) == {"limited_time_offer", "footer", "buttons"}
    unchanged = await client.get(url, headers=auth)
    assert unchanged.json()["status"] == "PAUSED"
    assert unchanged.json()["components"] == created["components"]

    too_long = await client.patch(url, json={"components": [body("y" * 1025)]}, headers=auth)
    error = error_of(too_long, 422, "validation_error")
    assert error["fields"] == {"body": "1025 characters, the limit is 1024"}

    cleared = await client.patch(url, json={"name": None, "category": "promo"}, headers=auth)
    error = error_of(cleared, 422, "validation_error")
    assert error["fields"]["name"].startswith("must not be null")
    assert error["fields"]["category"].startswith("unknown category 'PROMO'")


async def test_patch_to_a_taken_name_and_language_names_the_existing_one(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any]
) -> None:
    english = await make_template(client, auth, provider["id"], template())
    hindi = await make_template(client, auth, provider["id"], template(language="hi"))

    response = await client.patch(
        f"{TEMPLATES}/{hindi['id']}", json={"language": "en"}, headers=auth
    )

    error = error_of(response, 409, "conflict")
    assert error["existing_id"] == english["id"]
    renamed = await client.patch(
        f"{TEMPLATES}/{hindi['id']}", json={"name": "order_update_hi"}, headers=auth
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["language"]) == ("order_update_hi", "hi")


async def test_templates_of_another_workspace_are_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], provider: dict[str, Any], runtime: Runtime
) -> None:
    created = await make_template(client, auth, provider["id"], template())
    stranger = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    url = f"{TEMPLATES}/{created['id']}"

    for response in (
        await client.get(url, headers=stranger),
        await client.patch(url, json={"status": "PAUSED"}, headers=stranger),
        await client.delete(url, headers=stranger),
        await client.patch(f"{TEMPLATES}/99999999999999999999", json={}, headers=auth),
    ):
        error_of(response, 404, "not_found")


async def test_a_template_in_use_needs_force_to_change_or_delete(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    provider: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await make_template(client, auth, provider["id"], template())
    url = f"{TEMPLATES}/{created['id']}"

    # The campaigns capability will answer this; here a campaign is pretended.
    async def in_use(_session: Any, template_id: int) -> bool:
        return template_id == created["id"]

    monkeypatch.setattr(service, "template_in_use", in_use)

    error = error_of(
        await client.patch(url, json={"status": "PAUSED"}, headers=auth), 409, "conflict"
    )
    assert "?force=true" in error["message"]
    error_of(await client.delete(url, headers=auth), 409, "conflict")
    forced = await client.patch(
        url, params={"force": "true"}, json={"status": "PAUSED"}, headers=auth
    )
    assert forced.status_code == 200, forced.text
    deleted = await client.delete(url, params={"force": "true"}, headers=auth)
    assert deleted.status_code == 204
    error_of(await client.get(url, headers=auth), 404, "not_found")
