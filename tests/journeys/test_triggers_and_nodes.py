"""Triggers (segment, inbound keywords, message status) and nodes (session message and its
window, webhook, DND hours, frequency cap, unsubscribed, goal, branches) in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.callbacks.helpers import (
    Outbox,
    delivery_path,
    drain,
    generic_inbound,
    inbound_path,
    status,
    statuses,
)
from tests.journeys.helpers import (
    JOURNEYS,
    add_profiles,
    add_provider,
    advance,
    create_live,
    events,
    exits,
    feedback,
    messages_to,
    path,
    scheduler_for,
    settle,
    stats,
)
from waconnect.runtime import Runtime
from waconnect.testing.processes import free_port

HOUR = 3600


def _send(name: str, then: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "send_template",
        "template": {"name": name, "language": "en"},
        "next": then,
        **extra,
    }


async def test_a_profile_entering_a_segment_enters_the_journey(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    early, late = await add_profiles(client, auth, 2)
    await client.post(
        "/api/v1/profiles/batch",
        json={"profiles": [{"identity": "u0", "attributes": {"tier": "gold"}}]},
        headers=auth,
    )
    segment = await client.post(
        "/api/v1/segments",
        json={"name": "Gold", "definition": {"attribute": "tier", "op": "eq", "value": "gold"}},
        headers=auth,
    )
    assert segment.status_code == 201, segment.text
    journey = await create_live(
        client,
        auth,
        {
            "name": "Welcome gold",
            "trigger": {"type": "segment", "segment_id": segment.json()["id"]},
            "start": "hello",
            "nodes": {"hello": _send("thanks", "end"), "end": {"type": "exit"}},
        },
    )
    scheduler = scheduler_for(runtime)
    # Already inside when the journey went live: found by the scheduled check.
    assert await scheduler.check_segments() == 1
    assert len(await messages_to(client, auth, "919800000000")) == 1
    # Moves in when its attributes change: found at once through the profile hook.
    await client.post(
        "/api/v1/profiles/batch",
        json={"profiles": [{"identity": "u1", "attributes": {"tier": "gold"}}]},
        headers=auth,
    )
    await settle(scheduler)
    assert (await path(client, auth, journey["id"], late))["runs"][0]["state"] == "completed"
    # Staying inside is not entering again.
    await client.post(
        "/api/v1/profiles/batch",
        json={"profiles": [{"identity": "u0", "attributes": {"city": "Pune"}}]},
        headers=auth,
    )
    await settle(scheduler)
    assert await scheduler.check_segments() == 0
    assert len((await path(client, auth, journey["id"], early))["runs"]) == 1


async def test_inbound_keywords_start_a_session_reply_inside_the_window(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await add_provider(client, auth, mobile_number="918889500122")
    (asker,) = await add_profiles(client, auth, 1, first=919812345678)
    journey = await create_live(
        client,
        auth,
        {
            "name": "Price answers",
            "trigger": {"type": "inbound", "keywords": ["price", "cost"]},
            "rules": {"entry": "unlimited"},
            "start": "answer",
            "nodes": {
                "answer": {
                    "type": "send_session",
                    "message": {
                        "type": "text",
                        "text": {"body": "Hi {{attribute.first_name}}, the lamp is 499."},
                    },
                    "exits": {"next": "end", "window_closed": "fallback"},
                },
                "fallback": _send("thanks", "end"),
                "end": {"type": "exit"},
            },
        },
    )
    scheduler = scheduler_for(runtime)
    for text in ("hello there", "What is the PRICE?"):
        answer = await client.post(
            inbound_path(provider), json=generic_inbound("919812345678", text)
        )
        assert answer.status_code == 200, answer.text
    await drain(runtime)
    await settle(scheduler)
    runs = (await path(client, auth, journey["id"], asker))["runs"]
    assert len(runs) == 1 and exits(runs[0]) == [("answer", "next"), ("end", None)]
    sent = await messages_to(client, auth, "919812345678")
    assert sent[0]["kind"] == "session"
    assert sent[0]["content"]["text"]["body"] == "Hi P0, the lamp is 499."

    # A day later the window has closed: the same question gets the template instead.
    await advance(client, 25 * HOUR)
    simulated = await client.post(
        f"{JOURNEYS}/{journey['id']}/simulate",
        json={"identity": "u0", "version": "live"},
        headers=auth,
    )
    first = simulated.json()["path"][0]
    assert (first["node"], first["exit"]) == ("answer", "window_closed")


async def test_a_failed_message_starts_a_status_journey(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await add_provider(client, auth)
    (pid,) = await add_profiles(client, auth, 1, first=919812345678)
    first = await create_live(
        client,
        auth,
        {
            "name": "Notify",
            "trigger": {"type": "api"},
            "start": "tell",
            "nodes": {"tell": _send("thanks", "end"), "end": {"type": "exit"}},
        },
    )
    rescue = await create_live(
        client,
        auth,
        {
            "name": "On failure",
            "trigger": {"type": "message_status", "status": "failed"},
            "start": "flag",
            "nodes": {
                "flag": {
                    "type": "set_attribute",
                    "attributes": {"whatsapp_failed": True},
                    "next": "end",
                },
                "end": {"type": "exit"},
            },
        },
    )
    entered = await client.post(
        f"{JOURNEYS}/{first['id']}/entries", json={"profiles": [{"id": pid}]}, headers=auth
    )
    assert entered.json()["entered"] == 1
    (message,) = await messages_to(client, auth, "919812345678")
    await Outbox(runtime, provider).dispatch([message["id"]])
    failed = statuses(status(f"{message['id']}-1", "failed", error={"code": 1002, "title": "bad"}))
    assert (await client.post(delivery_path(provider), json=failed)).status_code == 200
    await drain(runtime)
    await settle(scheduler_for(runtime))
    run = (await path(client, auth, rescue["id"], pid))["runs"][0]
    assert run["state"] == "completed"
    detail = await client.get(f"/api/v1/profiles/{pid}", headers=auth)
    assert detail.json()["attributes"]["whatsapp_failed"] is True


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint on loopback: 200 on /ok, 500 on /fail; keeps what it received."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append({"path": request.path, "body": await request.json()})
        return web.json_response({}, status=200 if request.path == "/ok" else 500)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}", received
    await runner.cleanup()


async def test_webhook_node_branches_on_2xx_or_error(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    runtime: Runtime,
    hook: tuple[str, list[dict[str, Any]]],
) -> None:
    base, received = hook
    await add_provider(client, auth)
    good, bad = await add_profiles(client, auth, 2)
    journeys = []
    for url in (f"{base}/ok", f"{base}/fail"):
        journeys.append(
            await create_live(
                client,
                auth,
                {
                    "name": f"Hook {url[-4:]}",
                    "trigger": {"type": "event", "event": "signed_up"},
                    "start": "call",
                    "nodes": {
                        "call": {
                            "type": "webhook",
                            "url": url,
                            "exits": {"success": "yes", "error": "no"},
                        },
                        "yes": {"type": "exit"},
                        "no": {"type": "exit"},
                    },
                },
            )
        )
    await events(
        client, auth, {"identity": "u0", "name": "signed_up", "properties": {"plan": "pro"}}
    )
    await settle(scheduler_for(runtime))
    ok_run = (await path(client, auth, journeys[0]["id"], good))["runs"][0]
    assert exits(ok_run) == [("call", "success"), ("yes", None)]
    failed_run = (await path(client, auth, journeys[1]["id"], good))["runs"][0]
    assert exits(failed_run) == [("call", "error"), ("no", None)]
    sent = next(r["body"] for r in received if r["path"] == "/ok")
    assert sent["profile"]["identity"] == "u0" and sent["context"]["entry"] == {"plan": "pro"}
    assert bad not in {r["body"]["profile"]["id"] for r in received}


async def test_dnd_hours_hold_a_send_and_the_frequency_cap_skips_it(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    capped, held = await add_profiles(client, auth, 2)
    patched = await client.patch(
        "/api/v1/workspace",
        json={"timezone": "UTC", "dnd": {"start": "21:00", "end": "09:00"}},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    moved = await client.post("/_test/clock", json={"set": "2030-01-07T22:00:00Z"})
    assert moved.status_code == 200
    journey = await create_live(
        client,
        auth,
        {
            "name": "Night",
            "trigger": {"type": "event", "event": "late_order"},
            "rules": {"entry": "unlimited"},
            "start": "tell",
            "nodes": {
                "tell": _send("thanks", "end", exits={"not_sent": "skipped"}),
                "end": {"type": "exit"},
                "skipped": {"type": "exit"},
            },
        },
    )
    scheduler = scheduler_for(runtime)
    await events(client, auth, {"identity": "u1", "name": "late_order", "properties": {}})
    await settle(scheduler)
    run = (await path(client, auth, journey["id"], held))["runs"][0]
    assert run["state"] == "waiting" and run["node"] == "tell"
    assert run["waiting_until"].startswith("2030-01-08T09:00")
    assert await messages_to(client, auth, "919800000001") == []
    await advance(client, 11 * HOUR)
    await settle(scheduler)
    assert len(await messages_to(client, auth, "919800000001")) == 1

    # Frequency cap: one message per 24 h; the second send of the day is skipped.
    patched = await client.patch(
        "/api/v1/workspace", json={"frequency_cap": {"messages": 1, "hours": 24}}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    await events(client, auth, {"identity": "u0", "name": "late_order", "properties": {}})
    await settle(scheduler)
    await events(client, auth, {"identity": "u0", "name": "late_order", "properties": {}})
    await settle(scheduler)
    runs = (await path(client, auth, journey["id"], capped))["runs"]
    assert exits(runs[0]) == [("tell", "not_sent"), ("skipped", None)]
    assert runs[0]["steps"][0]["detail"]["skipped"] == "frequency_capped"
    assert exits(runs[1]) == [("tell", "next"), ("end", None)]
    assert len(await messages_to(client, auth, "919800000000")) == 1


async def test_unsubscribed_profiles_leave_and_goal_events_end_runs(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    leaver, achiever = await add_profiles(client, auth, 2)
    definition = feedback()
    definition["rules"]["goal"] = {"event": "order_returned"}
    definition["start"] = "pause"
    definition["nodes"]["pause"] = {"type": "wait", "duration": "1h", "next": "ask"}
    journey = await create_live(client, auth, definition)
    scheduler = scheduler_for(runtime)
    await events(
        client,
        auth,
        {"identity": "u0", "name": "order_delivered", "properties": {}},
        {"identity": "u1", "name": "order_delivered", "properties": {}},
    )
    await settle(scheduler)
    await client.post(
        "/api/v1/profiles/batch",
        json={"profiles": [{"identity": "u0", "subscription": "unsubscribed"}]},
        headers=auth,
    )
    await events(client, auth, {"identity": "u1", "name": "order_returned", "properties": {}})
    await settle(scheduler)
    goal = (await path(client, auth, journey["id"], achiever))["runs"][0]
    assert goal["state"] == "completed" and goal["goal_reached"] and goal["exit_reason"] == "goal"
    await advance(client, HOUR)
    await settle(scheduler)
    left = (await path(client, auth, journey["id"], leaver))["runs"][0]
    assert left["state"] == "exited" and left["exit_reason"] == "unsubscribed"
    assert await messages_to(client, auth, "919800000000") == []
    figures = (await stats(client, auth, journey["id"]))["journey"]
    assert figures["goal_reached"] == 1 and figures["exited"]["unsubscribed"] == 1


async def test_branches_on_status_attribute_and_split_in_simulation(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await add_provider(client, auth)
    await add_profiles(client, auth, 2)
    segment = await client.post(
        "/api/v1/segments",
        json={
            "name": "P1 only",
            "definition": {"attribute": "first_name", "op": "eq", "value": "P1"},
        },
        headers=auth,
    )
    assert segment.status_code == 201, segment.text
    definition = {
        "name": "Branches",
        "trigger": {"type": "api"},
        "start": "tell",
        "nodes": {
            "tell": _send("thanks", "later"),
            "later": {"type": "wait", "duration": "30m", "next": "status"},
            "status": {
                "type": "branch",
                "on": "message_status",
                "exits": {"read": "vip", "failed": "end", "else": "end"},
            },
            "vip": {
                "type": "branch",
                "on": "attribute",
                "attribute": "first_name",
                "op": "eq",
                "value": "P0",
                "exits": {"yes": "split", "no": "member"},
            },
            "member": {
                "type": "branch",
                "on": "segment",
                "segment_id": segment.json()["id"],
                "exits": {"yes": "end", "no": "end"},
            },
            "split": {
                "type": "branch",
                "on": "ab_split",
                "split": {"a": 50, "b": 50},
                "exits": {"a": "end", "b": "end"},
            },
            "end": {"type": "exit"},
        },
    }
    created = await client.post(JOURNEYS, json=definition, headers=auth)
    assert created.status_code == 201, created.text
    url = f"{JOURNEYS}/{created.json()['id']}/simulate"
    read = await client.post(
        url, json={"identity": "u0", "script": [{"status": "read"}, {"after": "30m"}]}, headers=auth
    )
    steps = [(s["node"], s["exit"]) for s in read.json()["path"]]
    assert steps[2:4] == [("status", "read"), ("vip", "yes")] and steps[4][0] == "split"
    failed = await client.post(
        url,
        json={"identity": "u0", "script": [{"status": "failed"}, {"after": "1h"}]},
        headers=auth,
    )
    assert [(s["node"], s["exit"]) for s in failed.json()["path"]][2] == ("status", "failed")
    other = await client.post(
        url, json={"identity": "u1", "script": [{"status": "read"}, {"after": "30m"}]}, headers=auth
    )
    assert [(s["node"], s["exit"]) for s in other.json()["path"]][3:5] == [
        ("vip", "no"),
        ("member", "yes"),
    ]
    bad = await client.post(
        url, json={"identity": "u0", "script": [{"after": "soon"}]}, headers=auth
    )
    assert bad.status_code == 422 and "script.0.after" in bad.json()["error"]["fields"]


async def test_wait_until_a_time_of_day_in_the_profiles_timezone(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    await client.post(
        "/api/v1/profiles/batch",
        json={
            "profiles": [
                {"identity": "ist", "phone": "+919800000000", "timezone": "Asia/Kolkata"},
                {"identity": "utc", "phone": "+919800000001"},
            ]
        },
        headers=auth,
    )
    await client.patch("/api/v1/workspace", json={"timezone": "UTC"}, headers=auth)
    moved = await client.post("/_test/clock", json={"set": "2030-01-07T10:00:00Z"})
    assert moved.status_code == 200
    definition = {
        "name": "Morning",
        "trigger": {"type": "api"},
        "start": "morning",
        "nodes": {
            "morning": {"type": "wait", "until": "09:00", "next": "hello"},
            "hello": _send("thanks", "end"),
            "end": {"type": "exit"},
        },
    }
    journey = await create_live(client, auth, definition)
    url = f"{JOURNEYS}/{journey['id']}/entries"
    entered = await client.post(
        url, json={"profiles": [{"identity": "ist"}, {"identity": "utc"}]}, headers=auth
    )
    ist, utc = (r["profile_id"] for r in entered.json()["results"])
    # 10:00 UTC is 15:30 in India: the next 09:00 there is 03:30 UTC tomorrow.
    assert (await path(client, auth, journey["id"], ist))["runs"][0]["waiting_until"].startswith(
        "2030-01-08T03:30"
    )
    assert (await path(client, auth, journey["id"], utc))["runs"][0]["waiting_until"].startswith(
        "2030-01-08T09:00"
    )
    scheduler = scheduler_for(runtime)
    await advance(client, 17.5 * HOUR)  # 03:30 UTC
    await settle(scheduler)
    assert len(await messages_to(client, auth, "919800000000")) == 1
    assert await messages_to(client, auth, "919800000001") == []


async def test_a_reply_after_the_timeout_meets_the_run_after_its_timeout(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """The scheduler was down past the timeout; the reply came later: the timeout is taken
    first (the reminder goes out) and the reply answers the second question."""
    provider = await add_provider(client, auth, mobile_number="918889500122")
    (pid,) = await add_profiles(client, auth, 1, first=919812345678)
    journey = await create_live(client, auth, feedback())
    scheduler = scheduler_for(runtime)
    await events(client, auth, {"identity": "u0", "name": "order_delivered", "properties": {}})
    await settle(scheduler)
    await advance(client, 25 * HOUR)
    tapped = generic_inbound("919812345678", type="button", button={"payload": "4", "text": "4"})
    assert (await client.post(inbound_path(provider), json=tapped)).status_code == 200
    await drain(runtime)
    await settle(scheduler)
    run = (await path(client, auth, journey["id"], pid))["runs"][0]
    assert exits(run)[:4] == [
        ("ask", "next"),
        ("answer", "timeout"),
        ("remind", "next"),
        ("answer_again", "r4"),
    ]
    assert run["state"] == "completed"


async def test_wait_until_a_moment_the_event_carries(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    first, second = await add_profiles(client, auth, 2)
    moved = await client.post("/_test/clock", json={"set": "2030-01-07T10:00:00Z"})
    assert moved.status_code == 200
    journey = await create_live(
        client,
        auth,
        {
            "name": "Before the slot",
            "trigger": {"type": "event", "event": "slot_booked"},
            "start": "before",
            "nodes": {
                "before": {
                    "type": "wait",
                    "until": {"event_property": "slot_at", "offset": "-1h"},
                    "next": "hello",
                },
                "hello": _send("thanks", "end"),
                "end": {"type": "exit"},
            },
        },
    )
    await events(
        client,
        auth,
        {
            "identity": "u0",
            "name": "slot_booked",
            "properties": {"slot_at": "2030-01-07T13:00:00Z"},
        },
        {"identity": "u1", "name": "slot_booked", "properties": {}},
    )
    scheduler = scheduler_for(runtime)
    await settle(scheduler)
    waiting = (await path(client, auth, journey["id"], first))["runs"][0]
    assert waiting["waiting_until"].startswith("2030-01-07T12:00")
    no_slot = (await path(client, auth, journey["id"], second))["runs"][0]
    assert no_slot["steps"][0]["detail"] == {"skipped": "no_moment"}
    await advance(client, 2 * HOUR)
    await settle(scheduler)
    assert len(await messages_to(client, auth, "919800000000")) == 1
