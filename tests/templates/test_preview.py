"""Seeing a template as the customer will: plain text, WhatsApp components, and the request
its provider kind would get, filled from sample values, a profile, or event properties."""

from __future__ import annotations

import httpx

from tests.templates.builders import auth_template, body, template
from tests.templates.helpers import TEMPLATES, error_of, make_provider, make_template

ORDER = template(body("Hi {{1}}, order {{2}} is on its way.", "Asha", "A-1"))


async def test_preview_in_both_wire_formats(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    generic = await make_provider(client, auth)
    msg91 = await make_provider(
        client, auth, "native", kind="msg91", endpoint_url="https://api.msg91.com/api/v5/whatsapp"
    )
    made = await client.post(
        "/api/v1/profiles/batch",
        json={"profiles": [{"phone": "919812345678", "attributes": {"first_name": "Ravi"}}]},
        headers=auth,
    )
    profile_id = made.json()["results"][0]["id"]
    mapping = {"body.1": {"attribute": "first_name"}, "body.2": {"event_property": "order"}}
    for provider in (generic, msg91):
        created = await make_template(client, auth, provider["id"], ORDER)
        answer = await client.post(
            f"{TEMPLATES}/{created['id']}/preview",
            json={"mapping": mapping, "profile_id": profile_id, "event_properties": {"order": 7}},
            headers=auth,
        )
        assert answer.status_code == 200, answer.text
        shown = answer.json()
        assert shown["preview"] == "Hi Ravi, order 7 is on its way."
        assert shown["components"] == [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ravi"}, {"type": "text", "text": "7"}],
            }
        ]
        sent = shown["request"]["body"]
        if provider["kind"] == "generic":
            assert sent["components"][0]["body"]["text"] == "Hi Ravi, order 7 is on its way."
        else:
            groups = sent["payload"]["template"]["to_and_components"]
            assert groups == [
                {
                    "to": ["919999999999"],
                    "components": {
                        "body_1": {"type": "text", "value": "Ravi"},
                        "body_2": {"type": "text", "value": "7"},
                    },
                }
            ]

    missing = await client.post(
        f"{TEMPLATES}/{created['id']}/preview",
        json={"mapping": {"body.1": {"attribute": "first_name"}}},
        headers=auth,
    )
    error = error_of(missing, 422, "missing_variable")
    assert error["key"] == "body.1" and error["reason"] == "missing_variable:body.1"
    no_events = await client.post(
        f"{TEMPLATES}/{created['id']}/preview", json={"mapping": mapping}, headers=auth
    )
    assert "mapping.body.2" in error_of(no_events, 422, "invalid_mapping")["fields"]

    otp = await make_template(client, auth, generic["id"], auth_template())
    refused = await client.post(
        f"{TEMPLATES}/{otp['id']}/preview",
        json={"mapping": {"body.1": {"literal": "123456"}}},
        headers=auth,
    )
    error = error_of(refused, 422, "unsupported_by_provider")
    assert error["provider_kind"] == "generic" and "authentication" in error["message"]
