"""The generic contract at /outbound/clevertap/: answers, faults, callbacks (contracts A)."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest

from .helpers import (
    BUSINESS,
    CUSTOMER,
    GENERIC_PATH,
    Receiver,
    StartSimulator,
    eventually,
    get_json,
    post_json,
    register,
    template_send,
)

VALIDATION = {
    "payloadVersion": 0.1,
    "to": "919999999999",
    "wabaNumber": BUSINESS,
    "isTemplate": True,
    "msgId": "0|0|0|0",
    "template": {"namespace": "whatsapp:hsm:technology:generic:verify", "languageCode": "en"},
    "components": [
        {
            "type": "body",
            "body": {
                "text": "1 code: 2.Valid for 3 minutes.",
                "parameters": [
                    {"type": "text", "text": "1"},
                    {"type": "text", "text": "2"},
                    {"type": "text", "text": "3"},
                ],
            },
        }
    ],
}


async def test_template_send_succeeds_and_reports_arrive_in_order(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    await register(http, server, receiver)

    status, body = await post_json(http, server.url + GENERIC_PATH, template_send("m1-1"))

    assert (status, body) == (200, {"status": "success"})
    await eventually(lambda: len(receiver.statuses()) == 3)
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["msgId"] for s in statuses} == {"m1-1"}
    assert all(s["timestamp"].isdigit() for s in statuses)
    assert all(b["payloadVersion"] == "0.1" for b in receiver.bodies("delivery"))
    await eventually(lambda: server.simulator.stats.reports_sent == 3)
    _, page = await get_json(http, f"{server.url}/_sim/messages")
    [message] = page["messages"]
    assert message["key"] == "m1-1"
    assert message["to"] == CUSTOMER
    assert message["template"] == "diwali_offer"
    assert message["reports"] == ["sent", "delivered", "read"]
    assert message["final_report_ok"] is True


async def test_single_slash_path_and_freeform_text(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    freeform = {
        "payloadVersion": 0.1,
        "to": "+" + CUSTOMER,
        "wabaNumber": BUSINESS,
        "isTemplate": False,
        "msg_id": "conv-88-1",
        "type": "text",
        "text": {"body": "Your refund was processed."},
    }
    url = f"{server.url}/api/v5/whatsapp/outbound/clevertap/"

    assert await post_json(http, url, freeform) == (200, {"status": "success"})
    assert server.simulator.stats.messages_accepted == 1


@pytest.mark.parametrize("wrapped", [True, False])
async def test_validation_payload_is_answered_but_not_a_message(
    start_simulator: StartSimulator, http: aiohttp.ClientSession, wrapped: bool
) -> None:
    server = await start_simulator(delivery_url="http://127.0.0.1:9/never")
    payload = {"body": VALIDATION} if wrapped else VALIDATION

    assert await post_json(http, server.url + GENERIC_PATH, payload) == (
        200,
        {"status": "success"},
    )
    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["validations"] == 1
    assert stats["messages_accepted"] == 0
    assert stats["callbacks_pending"] == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"to": "12345"}, 2002),
        ({"to": "91981234567a"}, 2002),
        ({"to": "+91 9812345678"}, 2002),
        ({"to": "9198123456789012"}, 2002),
        ({"to": None}, 2002),
        ({"wabaNumber": None}, 2002),
        ({"msgId": None}, 2002),
        ({"template": {"namespace": "diwali_offer"}}, 2001),
        ({"components": [{"type": "sticker"}]}, 2001),
        ({"components": [{"type": "body", "body": {"parameters": [{"type": "text"}]}}]}, 2001),
        ({"components": [{"type": "button", "index": "0", "subType": "quickReply"}]}, 2001),
        ({"components": [{"type": "header", "header": {"type": "image", "image": {}}}]}, 2001),
    ],
)
async def test_invalid_sends_are_refused_with_a_code(
    start_simulator: StartSimulator,
    http: aiohttp.ClientSession,
    change: dict[str, object],
    code: int,
) -> None:
    server = await start_simulator()
    send = template_send("m2-1")
    for key, value in change.items():
        if value is None:
            del send[key]
        else:
            send[key] = value

    status, body = await post_json(http, server.url + GENERIC_PATH, send)

    assert status == 200
    assert body["status"] == "failure"
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert server.simulator.stats.messages_accepted == 0


async def test_unknown_template_is_refused_when_templates_are_known(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(known_templates=["welcome"])

    _, body = await post_json(http, server.url + GENERIC_PATH, template_send("m3-1"))

    assert body["error"]["code"] == 2001
    # The provider check is always answered.
    assert await post_json(http, server.url + GENERIC_PATH, VALIDATION) == (
        200,
        {"status": "success"},
    )


async def test_credentials_basic_and_authkey(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(basic_auth=("acme", "s3cret"), authkey="key-1")
    url = server.url + GENERIC_PATH
    good = "Basic " + base64.b64encode(b"acme:s3cret").decode()

    for headers in (
        {},
        {"Authorization": good},
        {"authkey": "key-1"},
        {"Authorization": "Basic " + base64.b64encode(b"acme:wrong").decode(), "Authkey": "key-1"},
        {"Authorization": good, "Authkey": "key-2"},
    ):
        _, body = await post_json(http, url, template_send("m4-1"), headers)
        assert body == {
            "status": "failure",
            "error": {"code": 2000, "message": "Invalid credentials"},
        }
    _, body = await post_json(
        http, url, template_send("m4-1"), {"Authorization": good, "AUTHKEY": "key-1"}
    )
    assert body == {"status": "success"}


async def test_429_and_5xx_faults(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(ratio_429=1.0)
    url = server.url + GENERIC_PATH

    assert await post_json(http, url, template_send("m5-1")) == (
        429,
        {"message": "Too many requests to process"},
    )
    await post_json(
        http, f"{server.url}/_sim/config", {"options": {"ratio_429": 0, "ratio_5xx": 1}}
    )
    assert await post_json(http, url, template_send("m5-1")) == (
        500,
        {"status": "failure", "error": {"message": "Unable to process the request"}},
    )
    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["faults_429"] == 1
    assert stats["faults_5xx"] == 1
    assert stats["messages_accepted"] == 0


async def test_timeout_fault_accepts_then_answers_late_so_a_blind_resend_duplicates(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(ratio_timeout=1.0, timeout_delay_s=1.0)
    url = server.url + GENERIC_PATH

    with pytest.raises(asyncio.TimeoutError):
        await post_json(http, url, template_send("m6-1"), timeout=aiohttp.ClientTimeout(total=0.2))
    await post_json(http, f"{server.url}/_sim/config", {"options": {"ratio_timeout": 0}})
    assert await post_json(http, url, template_send("m6-2")) == (200, {"status": "success"})

    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["faults_timeout"] == 1
    assert stats["messages_accepted"] == 2
    assert stats["duplicates"] == 1


async def test_attempts_of_one_message_are_duplicates_other_messages_are_not(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    url = server.url + GENERIC_PATH

    for msg_id in ("41-1", "41-2", "42-1", "41-2"):
        await post_json(http, url, template_send(msg_id))

    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["messages_accepted"] == 4
    assert stats["duplicates"] == 2


async def test_max_in_flight_counts_concurrent_requests(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(latency_ms=500)
    url = server.url + GENERIC_PATH

    answers = await asyncio.gather(
        *(post_json(http, url, template_send(f"c{i}-1")) for i in range(20))
    )

    assert all(answer == (200, {"status": "success"}) for answer in answers)
    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["max_in_flight"] == 20
    assert stats["in_flight"] == 0
    assert stats["requests"] == 20


async def test_reply_taps_the_quick_reply_payload_that_was_sent(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(reply_ratio=1.0)
    await register(http, server, receiver)

    await post_json(http, server.url + GENERIC_PATH, template_send("77-1"))

    [reply] = await eventually(lambda: receiver.bodies("inbound"))
    assert reply["type"] == "button"
    assert reply["button"] == {"payload": "77-1|qr1", "text": "Not now"}
    assert reply["context"] == {"id": "77-1"}
    assert reply["from"] == CUSTOMER
    assert reply["wabaNumber"] == BUSINESS
    # The reply comes after the last report.
    assert [s["status"] for s in receiver.statuses()] == ["sent", "delivered", "read"]
    await eventually(lambda: server.simulator.stats.inbound_sent == 1)


async def test_reply_to_a_template_without_quick_replies_is_text(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(reply_ratio=1.0, read_ratio=0.0)
    await register(http, server, receiver)
    send = template_send("78-1")
    send["components"] = [c for c in send["components"] if c.get("subType") != "quickReply"]

    await post_json(http, server.url + GENERIC_PATH, send)

    [reply] = await eventually(lambda: receiver.bodies("inbound"))
    assert reply["type"] == "text"
    assert reply["text"]["body"]
    assert [s["status"] for s in receiver.statuses()] == ["sent", "delivered"]


async def test_failures_and_throttling_are_reported_asynchronously(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(fail_ratio=1.0)
    await register(http, server, receiver)
    url = server.url + GENERIC_PATH

    assert await post_json(http, url, template_send("90-1")) == (200, {"status": "success"})
    await eventually(lambda: len(receiver.statuses()) == 2)
    sent, failed = receiver.statuses()
    assert (sent["status"], failed["status"]) == ("sent", "failed")
    assert failed["error"]["code"] in {1002, 1003, 1006, 1007, 1009}
    assert failed["error"]["title"]

    await post_json(
        http, f"{server.url}/_sim/config", {"options": {"fail_ratio": 0, "throttle_fail_ratio": 1}}
    )
    await post_json(http, url, template_send("91-1"))
    await eventually(lambda: len(receiver.statuses()) == 3)
    throttled = receiver.statuses()[2]
    assert throttled["msgId"] == "91-1"
    assert throttled["status"] == "failed"
    assert throttled["error"]["code"] == 1004


async def test_same_seed_same_outcomes(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    outcomes = []
    for _ in range(2):
        server = await start_simulator(seed=42, fail_ratio=0.3, read_ratio=0.5, callbacks=False)
        for i in range(40):
            await post_json(http, server.url + GENERIC_PATH, template_send(f"s{i}-1"))
        _, page = await get_json(http, f"{server.url}/_sim/messages?limit=100")
        outcomes.append([m["outcome"] for m in page["messages"]])

    assert outcomes[0] == outcomes[1]
    assert {"read", "delivered", "failed"} == set(outcomes[0])
