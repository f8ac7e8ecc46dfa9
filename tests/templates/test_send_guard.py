"""Sending a template that is unknown or not APPROVED: 404 / 409 with its status."""

from __future__ import annotations

import httpx

from tests.templates.builders import auth_template, template
from tests.templates.helpers import TEMPLATES, error_of, make_provider, make_template


async def test_only_known_approved_templates_are_sent(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    provider = await make_provider(client, auth)
    pending = await make_template(client, auth, provider["id"], template(status="pending"))

    def send(name: str) -> dict[str, object]:
        return {
            "provider_id": provider["id"],
            "to": "+91 98000 00001",
            "template": {
                "name": name,
                "language": "en",
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}],
            },
        }

    unknown = await client.post("/api/v1/messages", json=send("nothing_here"), headers=auth)
    error = error_of(unknown, 404, "template_not_found")
    assert "'nothing_here' in language 'en'" in error["message"]

    not_approved = await client.post("/api/v1/messages", json=send("order_update"), headers=auth)
    error = error_of(not_approved, 409, "template_not_approved")
    assert error["template_status"] == "PENDING"
    assert "is PENDING" in error["message"]

    patched = await client.patch(
        f"{TEMPLATES}/{pending['id']}", json={"status": "APPROVED"}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    queued = await client.post("/api/v1/messages", json=send("order_update"), headers=auth)
    assert queued.status_code == 202, queued.text


async def test_a_kind_the_provider_cannot_carry_is_refused_when_sent(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The generic contract has no authentication templates: 422 at the API, not a failure later."""
    provider = await make_provider(client, auth)
    await make_template(client, auth, provider["id"], auth_template(status="APPROVED"))
    body = {
        "provider_id": provider["id"],
        "to": "+91 98000 00001",
        "template": {
            "name": "login_code",
            "language": "en",
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": "123456"}],
                },
            ],
        },
    }
    refused = await client.post("/api/v1/messages", json=body, headers=auth)
    error = error_of(refused, 422, "unsupported_by_provider")
    assert "authentication" in error["message"]
    assert "main" in error["message"]
    listed = await client.get("/api/v1/messages", headers=auth)
    assert listed.json()["items"] == []
