"""Inbound messages through HTTP: contacts, the 24-hour window, STOP / START, the auto-reply,
replies to our messages, and GET /api/v1/inbound."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from tests.callbacks.helpers import (
    Outbox,
    attempts,
    auto_replies,
    contact,
    count,
    create_provider,
    delivery_path,
    drain,
    generic_inbound,
    inbound_path,
    inbound_records,
    message,
    msg91_report,
    records,
)
from tests.conftest import new_key
from waconnect.messaging.inbound import window_open_until
from waconnect.messaging.models import Contact, InboundRecord
from waconnect.runtime import Runtime

PHONE = "919812345678"
AUTO_REPLY = {"enabled": True, "text": "Thanks for writing! We will answer soon."}


async def post(client: httpx.AsyncClient, provider: dict[str, Any], body: Any) -> None:
    response = await client.post(inbound_path(provider), json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "success"}


async def test_an_inbound_message_opens_the_window_and_is_stored(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    other = await create_provider(client, auth)
    start = runtime.clock.now()
    await post(client, provider, generic_inbound(PHONE, "Where is my order?", id="wamid.1"))
    await drain(runtime)

    (record,) = await inbound_records(runtime)
    assert (record.from_phone, record.type, record.text) == (PHONE, "text", "Where is my order?")
    assert record.provider_id == provider["id"] and record.event_id == "wamid.1"
    assert record.action is None and record.auto_reply_message_id is None
    (callback,) = await records(runtime)
    assert (callback.kind, callback.state, callback.items) == ("inbound", "applied", 1)
    found = await contact(runtime, PHONE)
    assert found is not None and found.subscription == "subscribed"

    async with runtime.sessions() as session:
        until = await window_open_until(session, provider["id"], PHONE, found.workspace_id)
        elsewhere = await window_open_until(session, other["id"], PHONE, found.workspace_id)
        nobody = await window_open_until(session, provider["id"], "919800000000", 1)
    assert until is not None and start + timedelta(hours=24) <= until
    assert until <= runtime.clock.now() + timedelta(hours=24)
    assert elsewhere is None and nobody is None  # keyed by (provider config, phone)

    # a later message moves the window on; the same event again is stored once
    runtime.clock.advance(3600)
    await post(client, provider, generic_inbound(PHONE, "Hello?", id="wamid.2"))
    await post(client, provider, generic_inbound(PHONE, "Hello?", id="wamid.2"))
    await drain(runtime)
    assert await count(runtime, InboundRecord) == 2
    async with runtime.sessions() as session:
        later = await window_open_until(session, provider["id"], PHONE, found.workspace_id)
    assert later is not None and later >= until + timedelta(hours=1)


async def test_stop_and_start_in_any_case_flip_the_subscription(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    await post(client, provider, generic_inbound(PHONE, "  stop "))
    await drain(runtime)
    found = await contact(runtime, PHONE)
    assert found is not None
    assert (found.subscription, found.subscription_source) == ("unsubscribed", "keyword:STOP")
    assert found.subscription_changed_at is not None

    await post(client, provider, generic_inbound(PHONE, "Start"))
    await drain(runtime)
    found = await contact(runtime, PHONE)
    assert found is not None
    assert (found.subscription, found.subscription_source) == ("subscribed", "keyword:START")

    # a quick-reply button whose payload is the keyword counts too; a sentence does not
    button = generic_inbound(PHONE, type="button", button={"payload": "UNSUBSCRIBE", "text": "No"})
    await post(client, provider, button)
    await post(client, provider, generic_inbound(PHONE, "please do not stop"))
    await drain(runtime)
    found = await contact(runtime, PHONE)
    assert found is not None
    assert (found.subscription, found.subscription_source) == (
        "unsubscribed",
        "keyword:UNSUBSCRIBE",
    )
    actions = [r.action for r in await inbound_records(runtime)]
    assert actions == ["opt_out", "opt_in", "opt_out", None]


async def test_workspace_keywords_are_used(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    changed = await client.patch(
        "/api/v1/workspace",
        json={"opt_out_keywords": ["BASTA"], "opt_in_keywords": ["VOLVER"]},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    provider = await create_provider(client, auth)
    await post(client, provider, generic_inbound(PHONE, "STOP"))
    await drain(runtime)
    found = await contact(runtime, PHONE)
    assert found is not None and found.subscription == "subscribed"
    await post(client, provider, generic_inbound(PHONE, "basta"))
    await drain(runtime)
    found = await contact(runtime, PHONE)
    assert found is not None and found.subscription_source == "keyword:BASTA"


async def test_auto_reply_once_per_number_per_24_hours(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth, auto_reply=AUTO_REPLY)
    await post(client, provider, generic_inbound(PHONE, "hi"))
    await drain(runtime)
    (reply,) = await auto_replies(runtime)
    assert (reply.to_phone, reply.kind, reply.status, reply.priority) == (
        PHONE,
        "session",
        "queued",
        10,
    )
    assert reply.content == {"type": "text", "text": {"body": AUTO_REPLY["text"]}}
    assert reply.provider_id == provider["id"]
    (record,) = await inbound_records(runtime)
    assert (record.action, record.auto_reply_message_id) == ("auto_reply", reply.id)
    found = await contact(runtime, PHONE)
    assert found is not None and found.last_auto_reply_at is not None

    # within 24 hours: no second reply, also not when two messages come in one callback
    runtime.clock.advance(timedelta(hours=23, minutes=59).total_seconds())
    await post(client, provider, generic_inbound(PHONE, "hello?"))
    await drain(runtime)
    assert len(await auto_replies(runtime)) == 1

    # another number gets its own
    await post(client, provider, generic_inbound("919812345679", "hi"))
    await drain(runtime)
    assert len(await auto_replies(runtime)) == 2

    # 24 hours after the first reply: a new one
    runtime.clock.advance(120)
    await post(client, provider, generic_inbound(PHONE, "anyone?"))
    await drain(runtime)
    replies = await auto_replies(runtime)
    assert [r.to_phone for r in replies] == [PHONE, "919812345679", PHONE]


async def test_no_auto_reply_when_disabled_tracked_or_opting_out(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    disabled = await create_provider(client, auth)
    await post(client, disabled, generic_inbound(PHONE, "hi"))
    await drain(runtime)
    assert await auto_replies(runtime) == []

    enabled = await create_provider(client, auth, auto_reply=AUTO_REPLY)
    # STOP is never answered, and an opted-out number gets no automatic message
    await post(client, enabled, generic_inbound("919812345670", "STOP"))
    await drain(runtime)
    await post(client, enabled, generic_inbound("919812345670", "hello"))
    await drain(runtime)
    assert await auto_replies(runtime) == []

    # a sender with a profile is tracked: no auto-reply
    async with runtime.sessions() as session:
        await session.execute(update(Contact).where(Contact.phone == PHONE).values(profile_id=42))
        await session.commit()
    await post(client, enabled, generic_inbound(PHONE, "hi"))
    await drain(runtime)
    assert await auto_replies(runtime) == []


async def test_two_messages_in_one_callback_get_one_auto_reply(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth, auto_reply=AUTO_REPLY)
    body = {"messages": [generic_inbound(PHONE, "hi"), generic_inbound(PHONE, "are you there")]}
    await post(client, provider, body)
    await drain(runtime)
    assert len(await auto_replies(runtime)) == 1
    assert [r.action for r in await inbound_records(runtime)] == ["auto_reply", None]


async def test_a_reply_is_tied_to_the_message_it_answers(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    reference = f"{mid}-1"
    tap = generic_inbound(
        PHONE,
        type="button",
        context={"id": reference},
        button={"payload": "no-such-payload", "text": "Not now"},
        id="wamid.tap",
    )
    await post(client, provider, tap)
    await post(client, provider, tap)  # the provider retried: counted once
    await post(client, provider, generic_inbound(PHONE, "what?", context={"id": "unknown-ref"}))
    await drain(runtime)
    first, second = await inbound_records(runtime)
    assert (first.reply_to_message_id, first.context_reference) == (mid, reference)
    assert (first.button_payload, first.button_text) == ("no-such-payload", "Not now")
    assert second.reply_to_message_id is None and second.context_reference == "unknown-ref"
    assert (await message(runtime, mid)).replied_count == 1


async def test_msg91_inbound_webhook(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth, kind="msg91")
    body = {
        "customerNumber": PHONE,
        "integratedNumber": "918889500122",
        "eventName": "inbound",
        "contentType": "text",
        "text": "STOP",
        "messages": '[{"type":"text","text":{"body":"STOP"}}]',
        "uuid": "wamid.HBgM1",
        "ts": "2025-01-01T10:00:00+05:30",
    }
    await post(client, provider, body)
    await drain(runtime)
    (record,) = await inbound_records(runtime)
    assert (record.type, record.text, record.action) == ("text", "STOP", "opt_out")
    assert record.event_id == "wamid.HBgM1"


async def test_unparseable_inbound_is_kept_and_answered_400(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    response = await client.post(inbound_path(provider), json={"payloadVersion": "0.1"})
    assert response.status_code == 400
    await drain(runtime)
    (record,) = await records(runtime)
    assert record.state == "error" and "from" in (record.error or "")
    assert await count(runtime, InboundRecord) == 0


# --- GET /api/v1/inbound ------------------------------------------------------------------------


async def test_list_inbound_filters_and_pages(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    first = await create_provider(client, auth, auto_reply=AUTO_REPLY)
    second = await create_provider(client, auth)
    await post(client, first, generic_inbound(PHONE, "one"))
    await post(client, first, generic_inbound("919812345679", "two"))
    tap = generic_inbound(PHONE, type="button", button={"payload": "p-1", "text": "Yes"})
    await post(client, second, tap)
    await post(client, second, generic_inbound(PHONE, "STOP"))
    await drain(runtime)

    assert (await client.get("/api/v1/inbound")).status_code == 401
    response = await client.get("/api/v1/inbound", headers=auth)
    assert response.status_code == 200, response.text
    page = response.json()
    assert [i["text"] for i in page["items"]] == ["STOP", "Yes", "two", "one"]
    newest = page["items"][0]
    assert newest["from"] == PHONE and newest["action"] == "opt_out"
    assert newest["provider_id"] == second["id"]
    oldest = page["items"][-1]
    assert oldest["action"] == "auto_reply" and oldest["auto_reply_message_id"] is not None
    button = page["items"][1]
    assert (button["type"], button["button_payload"], button["button_text"]) == (
        "button",
        "p-1",
        "Yes",
    )
    assert set(newest) >= {
        "id",
        "from",
        "type",
        "text",
        "payload",
        "reply_to_message_id",
        "context_reference",
        "received_at",
    }

    async def texts(**params: Any) -> list[str]:
        got = await client.get("/api/v1/inbound", params=params, headers=auth)
        assert got.status_code == 200, got.text
        return [i["text"] for i in got.json()["items"]]

    assert await texts(provider_id=first["id"]) == ["two", "one"]
    assert await texts(**{"from": "+91 98123 45678"}) == ["STOP", "Yes", "one"]
    assert await texts(type="button") == ["Yes"]

    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        got = (await client.get("/api/v1/inbound", params=params, headers=auth)).json()
        pages.extend(i["text"] for i in got["items"])
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert pages == ["STOP", "Yes", "two", "one"]

    bad = await client.get("/api/v1/inbound", params={"from": "not a phone"}, headers=auth)
    assert bad.status_code == 422
    bad = await client.get("/api/v1/inbound", params={"cursor": "x"}, headers=auth)
    assert bad.status_code == 422

    # another workspace sees none of it
    other = {"Authorization": f"Bearer {await new_key(runtime, 'elsewhere')}"}
    got = await client.get("/api/v1/inbound", headers=other)
    assert got.status_code == 200 and got.json() == {"items": [], "next_cursor": None}


async def test_msg91_events_are_read_on_either_url(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """MSG91 lets each webhook event have its own URL: a customer's message posted to the
    delivery URL is still a customer's message, and a status posted to the inbound URL a
    status."""
    provider = await create_provider(client, auth, kind="msg91")
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    (attempt,) = await attempts(runtime, mid)
    customer = {
        "customerNumber": PHONE,
        "integratedNumber": "918889500122",
        "direction": "inbound",
        "contentType": "text",
        "text": "hello from the other URL",
        "uuid": "wamid.either",
    }
    response = await client.post(delivery_path(provider), json=customer)
    assert response.status_code == 200
    await post(client, provider, msg91_report(attempt.provider_request_id, PHONE, "delivered"))
    await drain(runtime)
    (record,) = await inbound_records(runtime)
    assert record.text == "hello from the other URL"
    assert (await message(runtime, mid)).status == "delivered"
    assert [(r.kind, r.items, r.unmatched) for r in await records(runtime)] == [
        ("delivery", 1, 0),
        ("inbound", 1, 0),
    ]
