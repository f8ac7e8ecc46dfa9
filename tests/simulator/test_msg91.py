"""MSG91's native API: bulk and single sends, webhooks, the template list (contracts Part B)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .helpers import (
    BULK_PATH,
    BUSINESS,
    CUSTOMER,
    SINGLE_PATH,
    Receiver,
    StartSimulator,
    bulk_send,
    eventually,
    get_json,
    post_json,
    register,
)

UNAUTHORIZED = {
    "status": "fail",
    "hasError": True,
    "errors": "Unauthorized",
    "code": "401",
    "apiError": "201",
}

CATALOGUE: list[dict[str, Any]] = [
    {
        "name": "diwali_offer",
        "language": "en",
        "status": "APPROVED",
        "category": "MARKETING",
        "id": "101",
        "components": [
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off ends tonight"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Not now"}]},
        ],
    },
    {
        "name": "diwali_offer",
        "language": "hi",
        "status": "APPROVED",
        "category": "MARKETING",
        "id": "102",
        "components": [{"type": "BODY", "text": "नमस्ते {{1}}"}],
    },
    {
        "name": "welcome",
        "language": "en",
        "status": "PENDING",
        "category": "UTILITY",
        "id": "103",
        "components": [{"type": "BODY", "text": "Welcome!"}],
    },
]


async def test_bulk_reports_each_recipient_of_each_group(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    await register(http, server, receiver)
    numbers = ["919800000001", "919800000002", "+919800000003", "919800000004"]

    status, body = await post_json(
        http, server.url + BULK_PATH, bulk_send([numbers[:2], numbers[2:]])
    )

    assert status == 200
    assert body["status"] == "success"
    assert body["hasError"] is False
    assert body["errors"] is None
    assert body["data"] == "Your request is in process, check delivery reports for status"
    request_id = body["request_id"]
    assert int(request_id, 16) >= 0
    # Three good numbers x sent/delivered/read, and one failed report for the bad number.
    await eventually(lambda: len(receiver.events("delivery")) == 10)
    events = receiver.events("delivery")
    assert {e["requestId"] for e in events} == {request_id}
    assert {e["integratedNumber"] for e in events} == {BUSINESS}
    assert {e["templateName"] for e in events} == {"diwali_offer"}
    assert len({e["uuid"] for e in events}) == 10
    for number in ("919800000001", "919800000002", "919800000004"):
        mine = [e["status"] for e in events if e["customerNumber"] == number]
        assert mine == ["sent", "delivered", "read"]
    [bad] = [e for e in events if e["customerNumber"] == "+919800000003"]
    assert bad["status"] == bad["eventName"] == "failed"
    assert bad["statusCode"] == 131026
    assert bad["reason"]
    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["messages_accepted"] == 4
    _, page = await get_json(http, f"{server.url}/_sim/messages")
    keys = [m["key"] for m in page["messages"]]
    assert keys == [f"{request_id}:{n}" for n in numbers]


@pytest.mark.parametrize(
    "change",
    [
        {"integrated_number": None},
        {"content_type": "text"},
        {"payload": None},
        {"payload.template.name": None},
        {"payload.template.language": None},
        {"payload.template.to_and_components": []},
        {"payload.template.to_and_components": [{"to": "919800000001"}]},
        {"payload.template.to_and_components": [{"to": [919800000001]}]},
    ],
)
async def test_bulk_refuses_malformed_requests(
    start_simulator: StartSimulator, http: aiohttp.ClientSession, change: dict[str, object]
) -> None:
    server = await start_simulator()
    send = bulk_send([[CUSTOMER]])
    for path, value in change.items():
        *parents, leaf = path.split(".")
        holder = send
        for parent in parents:
            holder = holder[parent]
        if value is None:
            del holder[leaf]
        else:
            holder[leaf] = value

    status, body = await post_json(http, server.url + BULK_PATH, send)

    assert status == 400
    assert body["status"] == "fail"
    assert body["hasError"] is True
    assert body["errors"]
    assert server.simulator.stats.messages_accepted == 0


async def test_native_endpoints_need_the_authkey(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(authkey="k-123")

    for headers in ({}, {"authkey": "other"}):
        for path in (BULK_PATH, SINGLE_PATH):
            assert await post_json(http, server.url + path, bulk_send([[CUSTOMER]]), headers) == (
                401,
                UNAUTHORIZED,
            )
        status, body = await get_json(
            http, f"{server.url}/api/v5/whatsapp/get-template-client/{BUSINESS}", headers=headers
        )
        assert (status, body) == (401, UNAUTHORIZED)
    status, body = await post_json(
        http, server.url + BULK_PATH, bulk_send([[CUSTOMER]]), {"authkey": "k-123"}
    )
    assert status == 200
    assert body["status"] == "success"


async def test_native_faults(start_simulator: StartSimulator, http: aiohttp.ClientSession) -> None:
    server = await start_simulator(ratio_5xx=1.0)

    status, body = await post_json(http, server.url + BULK_PATH, bulk_send([[CUSTOMER]]))

    assert status == 500
    assert body["hasError"] is True
    assert server.simulator.stats.messages_accepted == 0


async def test_single_text_and_template(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(read_ratio=0.0)
    await register(http, server, receiver)
    text = {
        "integrated_number": BUSINESS,
        "recipient_number": CUSTOMER,
        "content_type": "text",
        "text": {"body": "Your refund was processed."},
    }
    template = {
        "integrated_number": BUSINESS,
        "content_type": "template",
        "payload": {
            "to": CUSTOMER,
            "type": "template",
            "template": {
                "name": "diwali_offer",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}],
            },
        },
    }

    uuids = []
    for send in (text, template):
        status, body = await post_json(http, server.url + SINGLE_PATH, send)
        assert status == 200
        assert body["status"] == "success"
        assert body["hasError"] is False
        assert body["data"]["status"] == "message submitted successfully"
        uuids.append(body["data"]["message_uuid"])

    await eventually(lambda: len(receiver.events("delivery")) == 4)
    for message_uuid in uuids:
        mine = [e for e in receiver.events("delivery") if e["requestId"] == message_uuid]
        assert [e["status"] for e in mine] == ["sent", "delivered"]
    bad = {**text, "recipient_number": "+91 98123"}
    status, body = await post_json(http, server.url + SINGLE_PATH, bad)
    assert status == 400
    assert body["hasError"] is True


async def test_replies_to_native_sends(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(reply_ratio=1.0, catalogue=CATALOGUE)
    await register(http, server, receiver)
    interactive = {
        "integrated_number": BUSINESS,
        "recipient_number": "919800000009",
        "content_type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Keep your slot?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "keep-1", "title": "Keep"}}]},
        },
    }

    _, bulk = await post_json(http, server.url + BULK_PATH, bulk_send([[CUSTOMER]]))
    await post_json(http, server.url + SINGLE_PATH, interactive)

    await eventually(lambda: len(receiver.events("inbound")) == 2)
    by_number = {e["customerNumber"]: e for e in receiver.events("inbound")}
    tap = by_number[CUSTOMER]
    assert tap["direction"] == tap["eventName"] == "inbound"
    assert tap["contentType"] == "button"
    # No payload was sent: the tap carries the catalogue's button text, as WhatsApp does.
    assert tap["button"] == '{"payload":"Not now","text":"Not now"}'
    assert tap["replyMsgId"] == f"{bulk['request_id']}:{CUSTOMER}"
    assert tap["integratedNumber"] == BUSINESS
    assert isinstance(tap["messages"], str)
    choice = by_number["919800000009"]
    assert choice["contentType"] == "interactive"
    assert '"id":"keep-1"' in choice["interactive"]


async def test_bulk_duplicates_are_same_recipient_template_and_components(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    url = server.url + BULK_PATH

    await post_json(http, url, bulk_send([[CUSTOMER, "919800000001"]]))
    await post_json(http, url, bulk_send([[CUSTOMER]]))  # the same message again
    await post_json(http, url, bulk_send([[CUSTOMER]], name="welcome"))  # another template
    await post_json(http, url, bulk_send([["919800000002"], [CUSTOMER]]))  # other components

    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["messages_accepted"] == 6
    assert stats["duplicates"] == 1


async def test_template_list_groups_the_catalogue_by_name(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(catalogue=CATALOGUE)
    url = f"{server.url}/api/v5/whatsapp/get-template-client/{BUSINESS}"

    status, body = await get_json(http, url)

    assert status == 200
    assert (body["status"], body["hasError"], body["errors"]) == ("success", False, None)
    assert [t["name"] for t in body["data"]] == ["diwali_offer", "welcome"]
    offer = body["data"][0]
    assert offer["category"] == "MARKETING"
    assert [(lang["id"], lang["language"], lang["status"]) for lang in offer["languages"]] == [
        ("101", "en", "APPROVED"),
        ("102", "hi", "APPROVED"),
    ]
    assert offer["languages"][0]["code"] == CATALOGUE[0]["components"]

    _, page = await get_json(http, f"{url}?page_size=1&page_num=2")
    assert [t["name"] for t in page["data"]] == ["welcome"]
    _, approved = await get_json(http, f"{url}?template_status=APPROVED")
    assert [t["name"] for t in approved["data"]] == ["diwali_offer"]
    _, hindi = await get_json(http, f"{url}?template_language=hi")
    assert [lang["id"] for lang in hindi["data"][0]["languages"]] == ["102"]


async def test_template_import_pages_with_cursors(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(catalogue=CATALOGUE)

    _, first = await get_json(http, f"{server.url}/templates/import?limit=2")
    assert [t["id"] for t in first["data"]] == ["101", "102"]
    assert first["data"][0] == CATALOGUE[0]
    after = first["paging"]["cursors"]["after"]
    _, second = await get_json(http, f"{server.url}/templates/import?limit=2&after={after}")
    assert [t["id"] for t in second["data"]] == ["103"]
    assert "after" not in second["paging"]["cursors"]
    assert "next" not in second["paging"]
    _, via_next = await get_json(http, first["paging"]["next"])
    assert via_next == second


async def test_unknown_route_is_route_missing(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()

    assert await get_json(http, f"{server.url}/api/v5/whatsapp/nothing") == (
        404,
        {"type": "error", "msg": "Route Missing"},
    )
