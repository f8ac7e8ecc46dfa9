"""/_sim/* control endpoints, and how callbacks are batched, formatted and retried."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from .helpers import (
    BULK_PATH,
    BUSINESS,
    CUSTOMER,
    GENERIC_PATH,
    Receiver,
    StartSimulator,
    bulk_send,
    eventually,
    get_json,
    post_json,
    register,
    template_send,
)


async def test_config_changes_knobs_at_runtime(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(authkey="secret")
    config = f"{server.url}/_sim/config"

    status, state = await post_json(
        http,
        config,
        {
            "options": {"latency_ms": 20, "ratio_5xx": 1, "known_templates": ["a", "b"]},
            "numbers": {BUSINESS: {"delivery_url": "http://127.0.0.1:1/d", "format": "msg91"}},
        },
    )

    assert status == 200
    assert state["options"]["latency_ms"] == 20
    assert state["options"]["ratio_5xx"] == 1
    assert state["options"]["known_templates"] == ["a", "b"]
    assert state["options"]["authkey"] == "***"
    assert state["numbers"] == {
        BUSINESS: {"delivery_url": "http://127.0.0.1:1/d", "inbound_url": None, "format": "msg91"}
    }
    assert await get_json(http, config) == (200, state)
    headers = {"Authkey": "secret"}
    status, _ = await post_json(http, server.url + BULK_PATH, bulk_send([[CUSTOMER]]), headers)
    assert status == 500

    await post_json(http, config, {"options": {"ratio_5xx": 0}, "numbers": {BUSINESS: None}})
    status, _ = await post_json(http, server.url + BULK_PATH, bulk_send([["919800000001"]]))
    assert status == 401  # the authkey still applies
    status, body = await post_json(
        http, server.url + BULK_PATH, bulk_send([[CUSTOMER]], name="a"), headers
    )
    assert (status, body["status"]) == (200, "success")
    _, state = await get_json(http, config)
    assert state["numbers"] == {}


@pytest.mark.parametrize(
    "body",
    [
        {"options": {"no_such_knob": 1}},
        {"options": {"ratio_429": 1.5}},
        {"options": {"latency_ms": "fast"}},
        {"options": {"callbacks": "yes"}},
        {"numbers": {BUSINESS: {"delivery_url": "http://x", "format": "xml"}}},
        {"numbers": {BUSINESS: "http://x"}},
        {"something": {}},
    ],
)
async def test_config_refuses_bad_changes(
    start_simulator: StartSimulator, http: aiohttp.ClientSession, body: dict[str, object]
) -> None:
    server = await start_simulator()
    _, before = await get_json(http, f"{server.url}/_sim/config")

    status, answer = await post_json(http, f"{server.url}/_sim/config", body)

    assert status == 400
    assert answer["error"]
    assert await get_json(http, f"{server.url}/_sim/config") == (200, before)


async def test_reset_and_message_pages(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    for i in range(5):
        await post_json(http, server.url + GENERIC_PATH, template_send(f"p{i}-1"))
    await post_json(http, server.url + GENERIC_PATH, template_send("p0-2"))

    _, page = await get_json(http, f"{server.url}/_sim/messages?offset=2&limit=2")
    assert page["total"] == 6
    assert [m["key"] for m in page["messages"]] == ["p2-1", "p3-1"]
    assert page["messages"][0]["accepted_at"] > 0
    assert page["messages"][0]["reports"] == []

    assert await post_json(http, f"{server.url}/_sim/reset", {}) == (200, {"status": "ok"})
    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["messages_accepted"] == stats["duplicates"] == stats["requests"] == 0
    _, page = await get_json(http, f"{server.url}/_sim/messages")
    assert (page["total"], page["messages"]) == (0, [])
    # The duplicate memory went too.
    await post_json(http, server.url + GENERIC_PATH, template_send("p0-3"))
    assert server.simulator.stats.duplicates == 0


async def test_generic_reports_are_batched(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    await register(http, server, receiver, fmt="generic")
    numbers = [f"9198000{i:05d}" for i in range(120)]

    _, answer = await post_json(http, server.url + BULK_PATH, bulk_send([numbers]))

    await eventually(lambda: len(receiver.statuses()) == 360)
    sizes = [len(body["statuses"]) for body in receiver.bodies("delivery")]
    assert max(sizes) == 50
    assert len(sizes) < 360
    request_id = answer["request_id"]
    for number in numbers[:3]:
        mine = [s["status"] for s in receiver.statuses() if s["msgId"] == f"{request_id}:{number}"]
        assert mine == ["sent", "delivered", "read"]


async def test_msg91_batch_mode_posts_arrays(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(msg91_batch=True, read_ratio=0.0)
    await register(http, server, receiver)

    await post_json(http, server.url + BULK_PATH, bulk_send([[CUSTOMER, "919800000001"]]))

    await eventually(lambda: len(receiver.events("delivery")) == 4)
    assert all(isinstance(body, list) for body in receiver.bodies("delivery"))
    assert len(receiver.bodies("delivery")) == 2


async def test_number_format_overrides_the_endpoint_format(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(throttle_fail_ratio=1.0)
    await register(http, server, receiver, fmt="msg91")

    await post_json(http, server.url + GENERIC_PATH, template_send("55-1"))

    [event] = await eventually(lambda: receiver.events("delivery"))
    assert event["clevertapMsgId"] == event["requestId"] == "55-1"
    assert event["status"] == "failed"
    assert event["statusCode"] == 131056
    _, page = await get_json(http, f"{server.url}/_sim/messages")
    assert page["messages"][0]["failure_code"] == 131056
    assert page["messages"][0]["outcome"] == "throttled"


async def test_default_callback_urls_from_startup_options(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(
        delivery_url=receiver.endpoint("delivery"), inbound_url=receiver.endpoint("inbound")
    )

    await post_json(http, server.url + GENERIC_PATH, template_send("60-1"))

    await eventually(lambda: len(receiver.statuses()) == 3)


async def test_callbacks_are_retried_on_5xx(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator()
    await register(http, server, receiver)
    receiver.failures["delivery"] = 2

    await post_json(http, server.url + GENERIC_PATH, template_send("61-1"))

    await eventually(lambda: len(receiver.statuses()) == 3)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "delivered", "read"]
    assert server.simulator.stats.callback_errors == 0


async def test_unreachable_callbacks_are_counted_as_errors(
    start_simulator: StartSimulator, http: aiohttp.ClientSession
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = await start_simulator(
        delivery_url=f"http://127.0.0.1:{port}/d", callback_retries=1, read_ratio=0.0
    )

    await post_json(http, server.url + GENERIC_PATH, template_send("62-1"))

    await eventually(lambda: server.simulator.stats.callback_errors == 2)
    _, page = await get_json(http, f"{server.url}/_sim/messages")
    assert page["messages"][0]["reports"] == []
    assert page["messages"][0]["final_report_ok"] is False
    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["reports_sent"] == 0


async def test_callbacks_off_schedules_nothing(
    start_simulator: StartSimulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_simulator(callbacks=False, delivery_url=receiver.endpoint("delivery"))

    await post_json(http, server.url + GENERIC_PATH, template_send("63-1"))

    _, stats = await get_json(http, f"{server.url}/_sim/stats")
    assert stats["messages_accepted"] == 1
    assert stats["callbacks_pending"] == 0
