"""The message loop's system events on profiles (issue 4, item 2) and "untracked sender"
(item 5): the dispatcher's answers and the callbacks posted over HTTP, read back through
GET /api/v1/profiles/{id}, segments and GET /api/v1/inbound."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.callbacks.helpers import (
    Outbox,
    auto_replies,
    create_provider,
    delivery_path,
    drain,
    generic_inbound,
    inbound_path,
    inbound_records,
    message,
    records,
    status,
    statuses,
)
from tests.journeys.helpers import create_live
from tests.profiles.helpers import count, profile, upsert
from waconnect.providers.transport import HttpResponse
from waconnect.runtime import Runtime

PHONE = "919812345678"
UNTRACKED = "919812345600"
AUTO_REPLY = {"enabled": True, "text": "Thanks for writing! We will answer soon."}


async def report(client: httpx.AsyncClient, provider: dict[str, Any], *entries: Any) -> None:
    response = await client.post(delivery_path(provider), json=statuses(*entries))
    assert response.status_code == 200, response.text


async def reply(client: httpx.AsyncClient, provider: dict[str, Any], body: Any) -> None:
    response = await client.post(inbound_path(provider), json=body)
    assert response.status_code == 200, response.text


async def tracked_profile(client: httpx.AsyncClient, auth: dict[str, str], phone: str) -> int:
    batch = await upsert(client, auth, {"identity": f"c-{phone}", "phone": f"+{phone}"})
    return int(batch["results"][0]["id"])


async def loop_events(
    client: httpx.AsyncClient, auth: dict[str, str], pid: int
) -> list[dict[str, Any]]:
    timeline = (await profile(client, auth, pid))["timeline"]
    return [item["detail"] for item in timeline if item["kind"] == "event"]


def names_of(events: list[dict[str, Any]], message_id: int) -> list[str]:
    return sorted(e["name"] for e in events if e["message_id"] == message_id)


# The dispatcher records its statuses' events in one SQLite hop when no listener has work, and
# through the listeners when one may (here: a live journey). Both must write the same events.
LISTENING = pytest.mark.parametrize("listening", [False, True], ids=["quiet", "journey-live"])


async def listen_if(client: httpx.AsyncClient, auth: dict[str, str], listening: bool) -> None:
    if listening:
        await create_live(
            client,
            auth,
            {
                "name": "listening",
                "trigger": {"type": "event", "event": "something_else"},
                "start": "done",
                "nodes": {"done": {"type": "exit"}},
            },
        )


@LISTENING
async def test_statuses_become_events_on_the_profile_the_message_went_to(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, listening: bool
) -> None:
    await listen_if(client, auth, listening)
    pid = await tracked_profile(client, auth, PHONE)
    provider = await create_provider(client, auth)
    outbox = Outbox(runtime, provider)
    first, second, third, untracked = await outbox.send([PHONE, PHONE, PHONE, UNTRACKED])
    # Accepted by the provider: the dispatcher made each message "sent".
    events = await loop_events(client, auth, pid)
    assert [names_of(events, m) for m in (first, second, third)] == [["WhatsApp Sent"]] * 3

    await report(
        client,
        provider,
        status(f"{first}-1", "sent"),  # the dispatcher's "sent" again: nothing twice
        status(f"{first}-1", "delivered"),
        status(f"{first}-1", "read"),
        status(f"{first}-1", "clicked", url="https://example.com/track"),
        status(f"{second}-1", "read"),  # read without delivered: it was delivered too
        status(f"{third}-1", "delivered"),
        status(f"{untracked}-1", "read"),  # no profile: no event, no failure
    )
    await report(client, provider, status(f"{third}-1", "delivered"))  # a duplicate report
    await report(client, provider, status(f"{first}-1", "clicked"))  # clicks: every time
    await drain(runtime)
    assert all(r.state == "applied" and r.unmatched == 0 for r in await records(runtime))
    assert (await message(runtime, untracked)).status == "read"

    events = await loop_events(client, auth, pid)
    assert names_of(events, first) == [
        "WhatsApp Clicked",
        "WhatsApp Delivered",
        "WhatsApp Read",
        "WhatsApp Sent",
    ]
    assert names_of(events, second) == ["WhatsApp Delivered", "WhatsApp Read", "WhatsApp Sent"]
    assert names_of(events, third) == ["WhatsApp Delivered", "WhatsApp Sent"]
    (click,) = [e for e in events if e["name"] == "WhatsApp Clicked"]
    assert click["properties"]["url"] == "https://example.com/track"
    assert all(e["properties"]["message_id"] == e["message_id"] for e in events)
    assert all(e["properties"]["template_id"] == outbox.template_id for e in events)
    # Only the tracked profile has events: 4 + 3 + 2 (the second click was a duplicate).
    assert len(events) == 9

    assert await count(client, auth, {"event": "WhatsApp Read", "did": True}) == 1
    read_twice = {"event": "WhatsApp Read", "did": True, "min_count": 2}
    assert await count(client, auth, read_twice) == 1
    assert await count(client, auth, {"event": "WhatsApp Read", "min_count": 3}) == 0
    assert await count(client, auth, {"event": "WhatsApp Failed", "did": True}) == 0


async def test_failed_only_when_the_failure_failed_the_message(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    pid = await tracked_profile(client, auth, PHONE)
    provider = await create_provider(client, auth)
    outbox = Outbox(runtime, provider)
    failing, delivered, throttled = await outbox.send([PHONE, PHONE, PHONE])
    await report(
        client,
        provider,
        status(f"{failing}-1", "failed", error={"code": "1002", "message": "not on WhatsApp"}),
        status(f"{delivered}-1", "delivered"),
        status(f"{throttled}-1", "failed", error={"code": "1005", "message": "slow down"}),
    )
    # Too late: a delivered message never becomes failed, so no event says it did.
    await report(client, provider, status(f"{delivered}-1", "failed", error={"code": "1002"}))
    await drain(runtime)
    assert (await message(runtime, failing)).status == "failed"
    assert (await message(runtime, delivered)).status == "delivered"
    assert (await message(runtime, throttled)).status == "queued"

    events = await loop_events(client, auth, pid)
    (failed,) = [e for e in events if e["name"] == "WhatsApp Failed"]
    assert failed["message_id"] == failing
    assert failed["properties"]["error_code"] == "generic:1002"
    assert names_of(events, delivered) == ["WhatsApp Delivered", "WhatsApp Sent"]
    assert names_of(events, throttled) == ["WhatsApp Sent"]


@LISTENING
async def test_a_rejected_send_is_failed_on_the_profile(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, listening: bool
) -> None:
    await listen_if(client, auth, listening)
    pid = await tracked_profile(client, auth, PHONE)
    provider = await create_provider(client, auth)
    outbox = Outbox(runtime, provider)
    refusal = {"status": "failure", "error": {"code": "1002", "message": "not on WhatsApp"}}
    outbox.transport.script.append(HttpResponse(200, orjson.dumps(refusal)))
    (mid,) = await outbox.send([PHONE])
    assert (await message(runtime, mid)).status == "failed"
    events = await loop_events(client, auth, pid)
    assert [(e["name"], e["message_id"]) for e in events] == [("WhatsApp Failed", mid)]
    assert events[0]["properties"]["error_code"] == "generic:1002"


async def test_a_reply_becomes_replied_with_what_it_said(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    pid = await tracked_profile(client, auth, PHONE)
    provider = await create_provider(client, auth)
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    tap = generic_inbound(
        PHONE,
        type="button",
        context={"id": f"{mid}-1"},
        button={"payload": "yes-please", "text": "Yes"},
        id="wamid.tap",
    )
    await reply(client, provider, tap)
    await reply(client, provider, tap)  # the provider retried: one reply, one event
    await reply(client, provider, generic_inbound(PHONE, "and another thing"))
    await reply(client, provider, generic_inbound(UNTRACKED, "who is this?"))
    await drain(runtime)
    assert len(await inbound_records(runtime)) == 3
    assert all(r.state == "applied" for r in await records(runtime))

    events = await loop_events(client, auth, pid)
    replied = sorted(
        (e for e in events if e["name"] == "WhatsApp Replied"),
        key=lambda e: e["properties"]["inbound_id"],
    )
    assert len(replied) == 2
    tapped, typed = replied
    assert tapped["message_id"] == mid
    assert tapped["properties"] == {
        "text": "Yes",
        "type": "button",
        "button_payload": "yes-please",
        "button_text": "Yes",
        "message_id": mid,
        "template_id": tapped["properties"]["template_id"],
        "inbound_id": tapped["properties"]["inbound_id"],
        "provider_id": provider["id"],
    }
    assert typed["message_id"] is None and "message_id" not in typed["properties"]
    assert (typed["properties"]["text"], typed["properties"]["type"]) == (
        "and another thing",
        "text",
    )
    inbound = await client.get("/api/v1/inbound", headers=auth)
    ids = {i["id"] for i in inbound.json()["items"] if i["from"] == PHONE}
    assert {e["properties"]["inbound_id"] for e in replied} == ids
    payload_yes = {
        "event": "WhatsApp Replied",
        "where": [{"property": "button_payload", "op": "eq", "value": "yes-please"}],
    }
    assert await count(client, auth, payload_yes) == 1


async def test_untracked_means_no_profile_links_to_the_contact(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """The auto-reply goes to untracked senders only, and GET /api/v1/inbound tells which
    senders are tracked — both by the contact's link to a profile, as it is now."""
    provider = await create_provider(client, auth, auto_reply=AUTO_REPLY)
    other = "919812345699"
    pid = await tracked_profile(client, auth, PHONE)
    await reply(client, provider, generic_inbound(PHONE, "hi"))
    await reply(client, provider, generic_inbound(UNTRACKED, "hi"))
    await drain(runtime)
    assert [m.to_phone for m in await auto_replies(runtime)] == [UNTRACKED]

    # The profile moves to another number: the old one is untracked from now on.
    moved = await upsert(client, auth, {"identity": f"c-{PHONE}", "phone": f"+{other}"})
    assert moved["results"][0]["status"] == "updated"
    await reply(client, provider, generic_inbound(PHONE, "still there?"))
    await reply(client, provider, generic_inbound(other, "new number"))
    await drain(runtime)
    assert [m.to_phone for m in await auto_replies(runtime)] == [UNTRACKED, PHONE]

    async def senders(**params: Any) -> list[tuple[str, int | None]]:
        got = await client.get("/api/v1/inbound", params=params, headers=auth)
        assert got.status_code == 200, got.text
        return [(i["from"], i["profile_id"]) for i in got.json()["items"]]

    assert await senders() == [
        (other, pid),
        (PHONE, None),
        (UNTRACKED, None),
        (PHONE, None),
    ]
    assert await senders(tracked="true") == [(other, pid)]
    assert [s for s, _p in await senders(tracked="false")] == [PHONE, UNTRACKED, PHONE]
    bad = await client.get("/api/v1/inbound", params={"tracked": "maybe"}, headers=auth)
    assert bad.status_code == 422

    # Erased: its number no longer links to anything; the sender is untracked again.
    assert (await client.delete(f"/api/v1/profiles/{pid}", headers=auth)).status_code in (
        200,
        204,
    )
    await reply(client, provider, generic_inbound(other, "hello?"))
    await drain(runtime)
    assert [m.to_phone for m in await auto_replies(runtime)] == [UNTRACKED, PHONE, other]
    assert await senders(tracked="true") == []
