"""The engine in-process: clock-driven waits, entries and rules, versions, stats, simulation.

The scheduler is run one round at a time; the business clock moves through /_test/clock.
Messages land in the outbox (no dispatcher here), which is what a journey sends.
"""

from __future__ import annotations

import asyncio
import copy

import httpx

from tests.journeys.helpers import (
    JOURNEYS,
    abandoned_cart,
    add_profiles,
    add_provider,
    advance,
    create_live,
    events,
    exits,
    feedback,
    messages_to,
    path,
    payment,
    scheduler_for,
    settle,
    stats,
)
from waconnect.runtime import Runtime

HOUR = 3600


async def test_abandoned_cart_waits_on_the_business_clock(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    buyer, lost, small = await add_profiles(client, auth, 3)
    journey = await create_live(client, auth, abandoned_cart())
    scheduler = scheduler_for(runtime)
    await events(
        client,
        auth,
        {
            "identity": "u0",
            "name": "cart_abandoned",
            "properties": {"items": 2, "summary": "2 lamps"},
        },
        {"identity": "u1", "name": "cart_abandoned", "properties": {"items": 1}},
        {"identity": "u2", "name": "cart_abandoned", "properties": {"items": 0}},  # filtered out
    )
    await settle(scheduler)
    assert (await stats(client, auth, journey["id"]))["nodes"]["wait_1h"]["waiting_now"] == 2
    assert await messages_to(client, auth, "919800000000") == []

    await advance(client, HOUR - 60)
    await settle(scheduler)
    assert await messages_to(client, auth, "919800000000") == []  # not yet: 1 h is 1 h

    await advance(client, 61)
    await settle(scheduler)
    sent = await messages_to(client, auth, "919800000000")
    assert len(sent) == 1 and sent[0]["source"] == "journey"
    body = next(c for c in sent[0]["content"]["components"] if c["type"] == "body")
    assert [p["text"] for p in body["parameters"]] == ["P0", "2 lamps"]
    default = await messages_to(client, auth, "919800000001")
    body = next(c for c in default[0]["content"]["components"] if c["type"] == "body")
    assert [p["text"] for p in body["parameters"]] == ["P1", "your items"]

    await events(client, auth, {"identity": "u0", "name": "purchase", "properties": {}})
    await advance(client, 24 * HOUR)
    await settle(scheduler)
    bought = (await path(client, auth, journey["id"], buyer))["runs"][0]
    assert exits(bought) == [
        ("wait_1h", "next"),
        ("remind", "next"),
        ("wait_1d", "next"),
        ("bought", "yes"),
        ("converted", None),
    ]
    assert bought["state"] == "completed"
    assert bought["steps"][1]["message_id"] == sent[0]["id"]
    not_bought = (await path(client, auth, journey["id"], lost))["runs"][0]
    assert exits(not_bought)[-2:] == [("bought", "no"), ("lost", None)]
    missing = await client.get(f"{JOURNEYS}/{journey['id']}/profiles/{small}", headers=auth)
    assert missing.status_code == 404

    figures = await stats(client, auth, journey["id"])
    assert figures["journey"]["entered"] == 2 and figures["journey"]["completed"] == 2
    assert figures["nodes"]["bought"]["exits"] == {"yes": 1, "no": 1}
    assert figures["nodes"]["remind"]["entered"] == 2
    assert figures["nodes"]["wait_1h"]["waiting_now"] == 0

    # Entry rule "once per 7 days": a new abandoned cart the same week does not re-enter.
    await events(
        client, auth, {"identity": "u0", "name": "cart_abandoned", "properties": {"items": 1}}
    )
    await settle(scheduler)
    assert len((await path(client, auth, journey["id"], buyer))["runs"]) == 1
    await advance(client, 7 * 24 * HOUR)
    await events(
        client, auth, {"identity": "u0", "name": "cart_abandoned", "properties": {"items": 1}}
    )
    await settle(scheduler)
    assert len((await path(client, auth, journey["id"], buyer))["runs"]) == 2


async def test_a_version_change_keeps_profiles_inside_on_their_version(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    first, second = await add_profiles(client, auth, 2)
    journey = await create_live(client, auth, abandoned_cart())
    scheduler = scheduler_for(runtime)
    await events(
        client, auth, {"identity": "u0", "name": "cart_abandoned", "properties": {"items": 1}}
    )
    await settle(scheduler)

    # Version 2: no wait, and a different reminder; the profile inside keeps version 1.
    edited = copy.deepcopy(abandoned_cart())
    edited["start"] = "remind"
    del edited["nodes"]["wait_1h"]
    edited["nodes"]["remind"]["template"]["name"] = "thanks"
    edited["nodes"]["remind"]["variables"] = {}
    saved = await client.put(f"{JOURNEYS}/{journey['id']}", json=edited, headers=auth)
    assert saved.status_code == 200, saved.text
    published = await client.post(f"{JOURNEYS}/{journey['id']}/publish", headers=auth)
    assert published.json()["live_version"] == 2

    await events(
        client, auth, {"identity": "u1", "name": "cart_abandoned", "properties": {"items": 1}}
    )
    await settle(scheduler)
    newcomer = (await path(client, auth, journey["id"], second))["runs"][0]
    assert newcomer["version"] == 2 and exits(newcomer)[0] == ("remind", "next")
    assert len(await messages_to(client, auth, "919800000001")) == 1

    await advance(client, HOUR)
    await settle(scheduler)
    inside = (await path(client, auth, journey["id"], first))["runs"][0]
    assert inside["version"] == 1
    assert exits(inside)[:2] == [("wait_1h", "next"), ("remind", "next")]
    sent = await messages_to(client, auth, "919800000000")
    assert len(sent) == 1 and "P0" in str(sent[0]["content"])  # version 1's template


async def test_pause_holds_runs_and_stop_makes_them_leave(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    (profile,) = await add_profiles(client, auth, 1)
    journey = await create_live(client, auth, abandoned_cart())
    scheduler = scheduler_for(runtime)
    await events(
        client, auth, {"identity": "u0", "name": "cart_abandoned", "properties": {"items": 1}}
    )
    await settle(scheduler)
    assert (await client.post(f"{JOURNEYS}/{journey['id']}/pause", headers=auth)).status_code == 200
    await advance(client, 2 * HOUR)
    await settle(scheduler)
    assert await messages_to(client, auth, "919800000000") == []  # held while paused
    assert (
        await client.post(f"{JOURNEYS}/{journey['id']}/resume", headers=auth)
    ).status_code == 200
    await settle(scheduler)
    assert len(await messages_to(client, auth, "919800000000")) == 1
    assert (await client.post(f"{JOURNEYS}/{journey['id']}/stop", headers=auth)).status_code == 200
    run = (await path(client, auth, journey["id"], profile))["runs"][0]
    assert run["state"] == "exited" and run["exit_reason"] == "stopped"
    figures = await stats(client, auth, journey["id"])
    assert figures["journey"]["exited"] == {"stopped": 1}


async def test_simulation_walks_a_script_without_sending(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    (profile,) = await add_profiles(client, auth, 1)
    created = await client.post(JOURNEYS, json=feedback(), headers=auth)
    journey_id = created.json()["id"]

    answer = await client.post(
        f"{JOURNEYS}/{journey_id}/simulate",
        json={
            "identity": "u0",
            "script": [{"after": "1d"}, {"reply": {"payload": "x", "text": "4"}}],
        },
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [(s["node"], s["exit"]) for s in result["path"]] == [
        ("ask", "next"),
        ("answer", "timeout"),
        ("remind", "next"),
        ("answer_again", "r4"),
        ("save", "next"),
        ("record", "next"),
        ("done", None),
    ]
    assert result["state"] == "completed"
    assert [m["template_id"] is not None for m in result["messages"]] == [True, True]
    assert result["attributes_set"] == {"csat": 4}
    assert result["events_recorded"][0]["properties"]["rating"] == 4
    # Nothing was sent, no run exists, the profile is unchanged.
    assert await messages_to(client, auth, "919800000000") == []
    assert (
        await client.get(f"{JOURNEYS}/{journey_id}/profiles/{profile}", headers=auth)
    ).status_code == 404
    detail = await client.get(f"/api/v1/profiles/{profile}", headers=auth)
    assert "csat" not in detail.json()["attributes"]

    waiting = await client.post(
        f"{JOURNEYS}/{journey_id}/simulate", json={"identity": "u0", "script": []}, headers=auth
    )
    assert waiting.json()["state"] == "waiting" and waiting.json()["node"] == "answer"
    assert waiting.json()["waiting_until"] is not None


async def test_api_trigger_enters_profiles_with_entry_rules(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    await add_profiles(client, auth, 2)
    definition = payment("By API")
    definition["trigger"] = {"type": "api"}
    definition["rules"]["entry"] = "once"
    journey = await create_live(client, auth, definition)
    url = f"{JOURNEYS}/{journey['id']}/entries"
    answer = await client.post(
        url,
        json={
            "profiles": [
                {"identity": "u0", "properties": {"order_id": "A-7"}},
                {"phone": "+919800000001", "properties": {"order_id": "A-8"}},
                {"identity": "nobody"},
            ]
        },
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["entered", "entered", "not_found"]
    sent = await messages_to(client, auth, "919800000000")
    button = next(c for c in sent[0]["content"]["components"] if c["type"] == "button")
    assert button["parameters"][0]["text"] == "o/A-7"
    again = await client.post(url, json={"profiles": [{"identity": "u0"}]}, headers=auth)
    assert again.json()["results"][0]["status"] == "already_inside"


async def test_two_schedulers_share_the_timers_without_doing_one_twice(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Two workers' schedulers claim at the same time (SKIP LOCKED leases on PostgreSQL):
    every due timer fires once, every profile gets its one message."""
    from waconnect.journeys.scheduler import Scheduler

    await add_provider(client, auth)
    await add_profiles(client, auth, 200)
    definition = abandoned_cart("Shared")
    definition["trigger"] = {"type": "api"}
    journey = await create_live(client, auth, definition)
    for start in (0, 100):
        entered = await client.post(
            f"{JOURNEYS}/{journey['id']}/entries",
            json={"profiles": [{"identity": f"u{n}"} for n in range(start, start + 100)]},
            headers=auth,
        )
        assert entered.json()["entered"] == 100
    await advance(client, HOUR)
    first, second = Scheduler(runtime, "worker-a"), Scheduler(runtime, "worker-b")
    first.batch = second.batch = 15
    for _ in range(40):
        fired = await asyncio.gather(first.process_due(), second.process_due())
        if not any(fired):
            break
    assert first.fired + second.fired == 200
    figures = await stats(client, auth, journey["id"])
    assert figures["nodes"]["remind"]["exits"] == {"next": 200}
    assert figures["nodes"]["wait_1d"]["waiting_now"] == 200
    counts = await client.get("/api/v1/messages/counts", headers=auth)
    assert sum(counts.json().values()) == 200
