"""Test sends end to end: the API and the CLI, the outbox's top priority, the provider's
answers shown per recipient (exact request with secrets masked, HTTP status and body), a
failing recipient with the provider's error, and skips for missing variables."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import new_key
from tests.templates.builders import body, buttons, template, url_button
from tests.templates.helpers import TEMPLATES, error_of, make_provider, make_template
from tests.templates.live import AUTHKEY, eventually, live_stack
from waconnect.messaging.models import Message
from waconnect.messaging.service import PRIORITY_JOURNEY, PRIORITY_TEST
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.templates.cli import parse_mapping
from waconnect.testing.processes import run_cli

GOOD, NOT_ON_WHATSAPP, NO_NAME = "919812345678", "919812345679", "919812345670"

ORDER = template(
    body("Hi {{1}}, order {{2}} is on its way.", "Asha", "A-1"),
    buttons(url_button("https://shop.example.org/o/{{1}}", "https://shop.example.org/o/A-1")),
    name="order_update",
)


async def test_test_send_shows_the_providers_answer_per_recipient(settings: Settings) -> None:
    async with live_stack(settings) as live:
        provider = await live.provider("msg91")
        created = await live.template(provider["id"], ORDER)
        live.configure(invalid_numbers=[NOT_ON_WHATSAPP])
        known = await live.profile(GOOD, first_name="Ravi", order=7)
        unnamed = await live.profile(NO_NAME, order=8)
        # A typed phone that belongs to a profile is personalized with that profile.
        await live.profile(NOT_ON_WHATSAPP, first_name="Meera", order=9)
        answer = await live.api.post(
            f"/templates/{created['id']}/test",
            json={
                "profile_ids": [known, unnamed],
                "to": ["+91 98123 45679"],
                "mapping": {
                    "body.1": {"attribute": "first_name"},
                    "body.2": {"attribute": "order"},
                },
            },
        )
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["complete"] is True and result["provider_kind"] == "msg91"
        by_phone = {item["to"]: item for item in result["results"]}

        # One recipient per request on the single endpoint is not how msg91 templates go: the
        # bulk request carries both sendable recipients; each sees that one exact request.
        ok, failing = by_phone[GOOD], by_phone[NOT_ON_WHATSAPP]
        assert ok["outcome"] == "accepted" and ok["ok"] is True, ok
        assert ok["http_status"] == 200 and '"status":"success"' in ok["response"]
        request = ok["request"]
        assert request["method"] == "POST"
        assert request["url"].endswith("/whatsapp-outbound-message/bulk/")
        assert request["headers"]["Authkey"] != AUTHKEY and request["headers"]["Authkey"].endswith(
            AUTHKEY[-4:]
        )
        groups = request["body"]["payload"]["template"]["to_and_components"]
        sent = {group["to"][0]: group["components"] for group in groups}
        assert sent[GOOD] == {
            "body_1": {"type": "text", "value": "Ravi"},
            "body_2": {"type": "text", "value": "7"},
            "button_1": {"subtype": "url", "type": "text", "value": "A-1"},
        }
        assert ok["preview"].startswith("Hi Ravi, order 7 is on its way.")

        # MSG91 takes a bulk request whole; a number not on WhatsApp fails by report, which
        # may already be in when the call answers.
        assert failing["outcome"] in ("accepted", "failed"), failing
        assert failing["request"] == request
        skipped = by_phone[NO_NAME]
        assert skipped["outcome"] == "skipped" and skipped["message_id"] is None
        assert skipped["reason"] == "missing_variable:body.1"

        async def failed_later() -> Any:
            detail = await live.api.get(f"/messages/{failing['message_id']}")
            return detail.json() if detail.json()["status"] == "failed" else None

        detail = await eventually(failed_later)
        assert detail["error"]["code"] == "meta:131026", detail["error"]
        assert detail["source"] == "test"


async def test_generic_failing_recipient_shows_the_providers_error(settings: Settings) -> None:
    async with live_stack(settings) as live:
        provider = await live.provider("generic", headers={"X-Api-Token": "token-abcdef-9876"})
        created = await live.template(provider["id"], ORDER)
        live.configure(invalid_numbers=[NOT_ON_WHATSAPP])
        answer = await live.api.post(
            f"/providers/{provider['id']}/templates/{created['id']}/test",
            json={"to": [GOOD, NOT_ON_WHATSAPP], "mapping": {"body.1": {"literal": "Asha"}}},
        )
        assert answer.status_code == 200, answer.text
        results = {item["to"]: item for item in answer.json()["results"]}
        ok, failing = results[GOOD], results[NOT_ON_WHATSAPP]
        assert ok["outcome"] == "accepted", ok
        # The sample value fills the unmapped {{2}} and the dynamic URL's suffix.
        components = ok["request"]["body"]["components"]
        assert components[0]["body"] == {
            "text": "Hi Asha, order A-1 is on its way.",
            "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "A-1"}],
        }
        assert components[1]["subType"] == "dynamicUrl"
        assert components[1]["parameters"] == [{"type": "text", "text": "A-1"}]
        assert ok["request"]["body"]["msgId"] == f"{ok['message_id']}-1"
        assert ok["request"]["headers"]["X-Api-Token"] == "••••9876"

        assert failing["outcome"] == "failed" and failing["ok"] is False, failing
        assert failing["http_status"] == 200
        assert '"code":2002' in failing["response"]
        assert failing["error"] == {"code": "generic:2002", "title": "Invalid phone number"}
        assert failing["reason"] == "generic:2002: Invalid phone number"
        assert failing["request"]["body"]["to"] == "+" + NOT_ON_WHATSAPP

        other = await live.provider("generic", nickname="other", mobile_number="918000000002")
        elsewhere = await live.api.post(
            f"/providers/{other['id']}/templates/{created['id']}/test", json={"to": [GOOD]}
        )
        error_of(elsewhere, 404, "not_found")


async def test_unanswered_test_sends_are_202_with_their_ids(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """No worker runs here: the call answers 202 with the message ids once its wait is over."""
    provider = await make_provider(client, auth)
    created = await make_template(client, auth, provider["id"], ORDER)
    answer = await client.post(
        f"{TEMPLATES}/{created['id']}/test",
        json={"to": [GOOD], "wait_seconds": 0},
        headers=auth,
    )
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert result["complete"] is False
    (item,) = result["results"]
    assert item["outcome"] == "waiting" and item["message_id"] == result["message_ids"][0]
    message = await client.get(f"/api/v1/messages/{item['message_id']}", headers=auth)
    assert message.json()["status"] == "queued" and message.json()["source"] == "test"
    async with runtime.sessions() as session:
        row = await session.get(Message, item["message_id"])
        assert row is not None and row.priority == PRIORITY_TEST < PRIORITY_JOURNEY


async def test_test_send_refusals(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await make_provider(client, auth)
    created = await make_template(client, auth, provider["id"], ORDER)
    url = f"{TEMPLATES}/{created['id']}/test"

    eleven = await client.post(url, json={"to": [GOOD] * 11}, headers=auth)
    assert "at most 10" in error_of(eleven, 422, "validation_error")["message"]
    none = await client.post(url, json={}, headers=auth)
    assert "at least one" in error_of(none, 422, "validation_error")["message"]
    bad = await client.post(
        url,
        json={"to": ["12", GOOD], "profile_ids": [999, 2**70], "wait_seconds": 0},
        headers=auth,
    )
    fields = error_of(bad, 422, "validation_error")["fields"]
    assert set(fields) == {"to.0", "profile_ids.0", "profile_ids.1"}
    mapping = await client.post(
        url,
        json={"to": [GOOD], "mapping": {"body.3": {"literal": "x"}}, "fill_examples": False},
        headers=auth,
    )
    error = error_of(mapping, 422, "invalid_mapping")
    assert set(error["fields"]) == {
        "mapping.body.3",
        "mapping.body.1",
        "mapping.body.2",
        "mapping.buttons.0.1",
    }
    events = await client.post(
        url, json={"to": [GOOD], "mapping": {"body.1": {"event_property": "x"}}}, headers=auth
    )
    assert "event" in error_of(events, 422, "invalid_mapping")["fields"]["mapping.body.1"]

    pending = await make_template(
        client, auth, provider["id"], {**ORDER, "name": "later", "status": "PENDING"}
    )
    refused = await client.post(
        f"{TEMPLATES}/{pending['id']}/test", json={"to": [GOOD]}, headers=auth
    )
    assert error_of(refused, 409, "template_not_approved")["template_status"] == "PENDING"
    unknown = await client.post(f"{TEMPLATES}/987654/test", json={"to": [GOOD]}, headers=auth)
    error_of(unknown, 404, "not_found")
    # Another workspace sees no template to test.
    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    body = {"to": [GOOD], "wait_seconds": 0}
    direct = await client.post(f"{TEMPLATES}/{created['id']}/test", json=body, headers=other)
    error_of(direct, 404, "not_found")
    picked = await client.post(
        f"/api/v1/providers/{provider['id']}/templates/{created['id']}/test",
        json=body,
        headers=other,
    )
    error_of(picked, 404, "not_found")
    messages = await client.get("/api/v1/messages", headers=other)
    assert messages.json()["items"] == []


async def test_templates_test_from_the_terminal(
    settings: Settings, settings_env: dict[str, str]
) -> None:
    if not settings.is_sqlite:
        # The command is a thin layer over the service the API tests run on both databases;
        # a subprocess per database would cost a tenth of this directory's test budget.
        pytest.skip("the CLI runs once, on SQLite")
    async with live_stack(settings) as live:
        provider = await live.provider("generic")
        created = await live.template(provider["id"], ORDER)
        live.configure(invalid_numbers=[NOT_ON_WHATSAPP])
        sent = await asyncio.to_thread(
            run_cli,
            *("templates", "test", str(created["id"]), "--to", GOOD, "--to", NOT_ON_WHATSAPP),
            *("--map", "body.1=literal:Asha", "--map", "body.2=attribute:order"),
            *("--default", "body.2=A-7"),
            env=settings_env,
        )
        assert sent.returncode == 1, sent.stderr  # one recipient failed
        lines = sent.stdout.splitlines()
        assert (
            lines[0]
            == f"template {created['id']} through provider config {provider['id']} (generic)"
        )
        ok = next(line for line in lines if line.startswith(GOOD))
        assert ok.startswith(f"{GOOD}  accepted  message ") and ok.endswith("HTTP 200")
        assert "Hi Asha, order A-7 is on its way." in sent.stdout  # the request's rendered body
        assert 'response: {"status":"success"}' in sent.stdout
        failing = next(line for line in lines if line.startswith(NOT_ON_WHATSAPP))
        assert failing.endswith("HTTP 200  generic:2002: Invalid phone number"), failing


def test_terminal_mapping_items() -> None:
    assert parse_mapping(
        ["body.1=attribute:first_name", 'header.location=literal:{"latitude": 1, "longitude": 2}'],
        ["body.1=there"],
    ) == {
        "body.1": {"attribute": "first_name", "default": "there"},
        "header.location": {"literal": {"latitude": 1, "longitude": 2}},
    }
    with pytest.raises(ValueError, match=r"--map 'body\.1=attr:x'"):
        parse_mapping(["body.1=attr:x"])
    with pytest.raises(ValueError, match=r"--default 'body\.2=x'"):
        parse_mapping(["body.1=literal:x"], ["body.2=x"])
