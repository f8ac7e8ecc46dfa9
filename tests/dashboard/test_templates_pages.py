"""Templates in the dashboard, in-process on both databases: the list per provider, the editor
with its live preview and inline rule errors, editing, import, and refusals."""

from __future__ import annotations

import html
import re

import httpx
import orjson
import pytest

from tests.dashboard.helpers import (
    add_user,
    assert_page,
    csrf_token,
    field_errors,
    form_body,
    log_in,
    signed_in,
)
from tests.foundation.helpers import create_provider
from tests.templates.live import eventually, live_stack
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.testing.stack import DEMO_TEMPLATE

ADMIN = "admin@example.com"


def _template_form(csrf: str, provider_id: int, **fields: str) -> dict[str, object]:
    body: dict[str, object] = form_body(
        csrf_token=csrf,
        provider_id=str(provider_id),
        mode="form",
        name="diwali_offer",
        language="en",
        category="MARKETING",
        status="APPROVED",
        parameter_format="positional",
        header__format="IMAGE",
        header__example="https://cdn.example.com/diwali.jpg",
        body__text="Hi {{1}}, your code {{2}} gives 20% off.",
        body__example="Asha\nDIWALI20",
        footer__text="Reply STOP to opt out",
    )
    body["buttons.type"] = ["URL", "QUICK_REPLY"]
    body["buttons.text"] = ["Shop now", "Not interested"]
    body["buttons.value"] = ["https://shop.example.com/d/{{1}}", ""]
    body["buttons.example"] = ["summer", ""]
    body.update(form_body(**fields))
    return body


async def test_create_a_template_with_its_preview_and_rule_errors_inline(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    provider = await create_provider(client, auth, nickname="Main line")
    empty = await client.get("/templates")
    assert_page(empty, 200, "Main line", "No templates on this provider")

    # The live preview draws the bubble with the sample values, and lists the rules broken.
    live = await client.post(
        "/templates/preview",
        data=_template_form(csrf, provider["id"], body__text="{{1}} starts the text"),
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    text = assert_page(live, 200, "wa-bubble", "Image", "Asha starts the text")
    assert "starts with a variable" in text and "Shop now" in text

    # Named variables take their samples by name; a bad button is named by its number.
    named = _template_form(
        csrf,
        provider["id"],
        parameter_format="named",
        body__text="Hi {{first_name}}, code {{code}} is yours.",
        body__example="first_name=Meera\ncode=FEST",
    )
    named["buttons.text"] = ["A label much longer than allowed", "Not interested"]
    live = await client.post("/templates/preview", data=named, headers={"X-CSRF-Token": csrf})
    text = assert_page(live, 200, "Hi Meera, code FEST is yours.", ">Button 1</a>")

    bad = await client.post(
        "/templates/new",
        data=_template_form(
            csrf, provider["id"], name="Bad Name", body__text="x" * 1030 + " {{1}}, {{2}}."
        ),
    )
    assert_page(bad, 422, "things need fixing")
    errors = field_errors(bad)
    assert "lowercase" in errors["f-name"]
    assert "1044 characters, the limit is 1024" in errors["f-body-text"]

    made = await client.post("/templates/new", data=_template_form(csrf, provider["id"]))
    assert made.status_code == 303, made.text
    template_page = await client.get(made.headers["location"])
    assert_page(
        template_page,
        200,
        "diwali_offer",
        "The template was saved.",
        "Hi Asha, your code DIWALI20 gives 20% off.",
        "Reply STOP to opt out",
        "Send test",
        "body.1",
    )
    listed = await client.get(f"/templates?provider_id={provider['id']}")
    assert_page(listed, 200, "diwali_offer", "approved", "Marketing")

    # Editing shows the stored template in the fields, and saves a change.
    template_id = int(made.headers["location"].split("/")[2].split("?")[0])
    edit = await client.get(f"/templates/{template_id}/edit")
    assert_page(edit, 200, 'value="diwali_offer"', "DIWALI20", "https://shop.example.com/d/{{1}}")
    saved = await client.post(
        f"/templates/{template_id}/edit",
        data=_template_form(csrf, provider["id"], footer__text="Offer ends Sunday"),
    )
    assert saved.status_code == 303, saved.text
    assert "Offer ends Sunday" in (await client.get(f"/templates/{template_id}")).text

    # Deleting asks for the box to be ticked.
    unticked = await client.post(f"/templates/{template_id}/delete", data={"csrf_token": csrf})
    assert_page(unticked, 422, "Tick the confirmation box to delete the template")
    deleted = await client.post(
        f"/templates/{template_id}/delete", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert deleted.status_code == 303
    gone = assert_page(await client.get(deleted.headers["location"]), 200, "was deleted")
    assert "diwali_offer" not in gone


async def test_json_mode_carousel_and_offer_previews(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    provider = await create_provider(client, auth)
    offer = _template_form(
        csrf,
        provider["id"],
        lto__enabled="on",
        lto__text="Diwali deal",
        lto__has_expiration="on",
        footer__text="",
    )
    offer["buttons.type"] = ["COPY_CODE", "URL"]
    offer["buttons.text"] = ["", "Shop"]
    offer["buttons.value"] = ["DIWALI20", "https://shop.example.com/d"]
    offer["buttons.example"] = ["", ""]
    live = await client.post("/templates/preview", data=offer, headers={"X-CSRF-Token": csrf})
    assert_page(live, 200, "Diwali deal", "Ends in", "Copy offer code", "Meets WhatsApp")

    card = {
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["h"]}},
            {"type": "BODY", "text": "Card text"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Buy"}]},
        ]
    }
    carousel = {
        "components": [
            {"type": "BODY", "text": "Our picks"},
            {"type": "CAROUSEL", "cards": [card, card]},
        ]
    }
    json_mode = form_body(
        csrf_token=csrf,
        provider_id=str(provider["id"]),
        mode="json",
        name="picks",
        language="en",
        category="MARKETING",
        status="APPROVED",
        definition=orjson.dumps(carousel).decode(),
    )
    live = await client.post("/templates/preview", data=json_mode, headers={"X-CSRF-Token": csrf})
    text = assert_page(live, 200, "Our picks", "wa-card", "Card text", "Buy")
    assert text.count('class="wa-card"') == 2
    broken = await client.post(
        "/templates/new", data={**json_mode, "definition": '{"components": ['}
    )
    assert "not valid JSON" in field_errors(broken)["f-definition"]
    made = await client.post("/templates/new", data=json_mode)
    assert made.status_code == 303, made.text
    edit = await client.get(made.headers["location"].split("?")[0] + "/edit")
    assert_page(edit, 200, "Card text")


async def test_another_workspaces_template_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    provider = await create_provider(client, auth)
    made = await client.post(
        f"/api/v1/providers/{provider['id']}/templates", json=DEMO_TEMPLATE, headers=auth
    )
    assert made.status_code == 201, made.text
    await add_user(runtime, "other@example.com", workspace="other")
    assert (await log_in(client, "other@example.com")).status_code == 303
    for url in (f"/templates/{made.json()['id']}", f"/templates/{made.json()['id']}/edit"):
        assert_page(await client.get(url), 404, "not found", "another workspace")
    assert "order_update" not in (await client.get("/templates")).text


async def test_send_test_shows_request_response_and_later_statuses(settings: Settings) -> None:
    """Over real HTTP with the worker and the MSG91 simulator: the dialog's form is sent, the
    provider's request and answer come back, then the message's status follows."""
    async with live_stack(settings) as live:
        provider = await live.provider("msg91")
        created = await live.template(provider["id"], DEMO_TEMPLATE)
        meera = await live.profile("919812345677", first_name="Meera")
        await add_user(live.runtime, ADMIN)
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            assert (await log_in(client, ADMIN)).status_code == 303
            page = await client.get(f"/templates/{created['id']}")
            assert_page(page, 200, "Send a test of order_update", 'value="Asha"', "919812345677")
            csrf = csrf_token(page)
            form = {
                "csrf_token": csrf,
                "numbers": "+91 98123 45678",
                "profile_ids": str(meera),
                "source.body.1": "attribute",
                "value.body.1": "first_name",
                "source.body.2": "literal",
                "value.body.2": "",
            }
            sent = await client.post(
                f"/templates/{created['id']}/test", data=form, headers={"HX-Request": "true"}
            )
            text = assert_page(sent, 200, "Sent to 2 recipients", "HTTP 200", "Response")
            # The picked profile is personalized from its attributes; the typed number has none.
            assert "Hi Meera, order A-1 is on its way." in text
            assert "missing_variable:body.1" in text
            assert '"status": "success"' in html.unescape(text)  # the simulator's answer
            message_id = re.search(r'id="status-(\d+)"', text)
            assert message_id, text

            async def delivered() -> bool:
                badge = await client.get(f"/messages/{message_id.group(1)}/badge")
                return "status-delivered" in badge.text or "status-read" in badge.text

            await eventually(delivered)
            badge = await client.get(f"/messages/{message_id.group(1)}/badge")
            assert "delivered" in badge.text

            empty = await client.post(f"/templates/{created['id']}/test", data={"csrf_token": csrf})
            assert_page(empty, 422, "The test was not sent", "at least one phone number")


# The import itself is the templates capability's, tested there on both databases; this is
# about the page that reports it.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_import_from_the_provider_reports_each_template(settings: Settings) -> None:
    async with live_stack(settings) as live:
        provider = await live.provider("msg91", nickname="MSG91 line")
        listed_by_msg91 = {"status": "APPROVED", "category": "MARKETING"}
        live.configure(
            catalogue=[
                {
                    **listed_by_msg91,
                    "name": "diwali_offer",
                    "language": "en",
                    "id": "101",
                    "components": [{"type": "BODY", "text": "20% off ends tonight."}],
                },
                {
                    **listed_by_msg91,
                    "name": "too_long",
                    "language": "en",
                    "id": "104",
                    "components": [{"type": "BODY", "text": "x" * 1025}],
                },
            ]
        )
        await add_user(live.runtime, ADMIN)
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            assert (await log_in(client, ADMIN)).status_code == 303
            listed = await client.get("/templates")
            assert_page(listed, 200, "MSG91 line", "Import from provider")
            imported = await client.post(
                "/templates/import",
                data={"csrf_token": csrf_token(listed), "provider_id": str(provider["id"])},
            )
            text = assert_page(
                imported, 200, "Read 2 templates", "1 created", "1 rejected", "diwali_offer"
            )
            assert "1025 characters, the limit is 1024" in text
            after = await client.get(f"/templates?provider_id={provider['id']}")
            assert "No templates on this provider" not in after.text
            again = await client.post(
                "/templates/import",
                data={"csrf_token": csrf_token(listed), "provider_id": str(provider["id"])},
            )
            assert_page(again, 200, "0 created, 0 updated, 1 unchanged, 1 rejected")
