"""Events: ``POST /api/v1/events/batch`` and the message loop's system events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from tests.profiles.helpers import count, profile, record, row_error, statuses, upsert
from waconnect.messaging.models import Contact
from waconnect.profiles.events import (
    DELIVERED,
    READ,
    REPLIED,
    SENT,
    SystemEvent,
    record_system_events,
)
from waconnect.runtime import Runtime


async def test_events_by_identity_or_phone_with_times(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await upsert(
        client, auth, {"identity": "c-1", "phone": "+919812300001"}, {"phone": "+919812300002"}
    )
    now = runtime.clock.now()
    batch = await record(
        client,
        auth,
        {"identity": "c-1", "name": "Added To Cart", "properties": {"amount": 150}},
        {"phone": "98123 00002", "name": "Viewed", "ts": "2024-05-01T10:00:00+05:30"},
        {"phone": "+919812300002", "name": "Viewed", "ts": 1714537800},
        {"phone": "+919812300002", "name": "Viewed", "ts": "2024-05-01T04:30:00"},
    )
    assert statuses(batch) == ["recorded"] * 4 and batch["recorded"] == 4
    first = await profile(client, auth, batch["results"][0]["id"])
    (event,) = [item for item in first["timeline"] if item["kind"] == "event"]
    assert event["detail"]["name"] == "Added To Cart"
    assert event["detail"]["properties"] == {"amount": 150}
    assert abs(datetime.fromisoformat(event["at"]) - now) < timedelta(seconds=5)
    second = await profile(client, auth, batch["results"][1]["id"])
    times = {item["at"] for item in second["timeline"]}
    # ISO with an offset, epoch seconds, and ISO without one (UTC) name the same moment.
    assert times == {"2024-05-01T04:30:00Z"}


async def test_event_rows_fail_alone(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await upsert(client, auth, {"identity": "c-1"})
    batch = await record(
        client,
        auth,
        {"identity": "c-1", "name": "Good"},
        {"identity": "nobody", "name": "Good"},
        {"name": "No profile named"},
        {"identity": "c-1", "phone": "+919812300001", "name": "Both"},
        {"identity": "c-1", "name": "WhatsApp Delivered"},
        {"identity": "c-1", "name": "Bad time", "ts": "yesterday"},
        {"identity": "c-1", "name": "Bad props", "properties": {"x": "a\x00b"}},
        {"identity": "c-1", "name": "Bad props", "properties": {"x": 2**70}},
        {"phone": "12", "name": "Bad phone"},
        ["not", "an", "object"],
    )
    assert statuses(batch) == ["recorded"] + ["error"] * 9
    assert row_error(batch, 1)["code"] == "profile_not_found"
    assert "profiles/batch" in row_error(batch, 1)["message"]
    assert "identity or phone" in row_error(batch, 2)["message"]
    assert "one of them" in row_error(batch, 3)["message"]
    assert row_error(batch, 4)["code"] == "reserved_name"
    assert "ts" in row_error(batch, 5)["message"]
    assert "NUL" in row_error(batch, 6)["message"]
    assert "64-bit" in row_error(batch, 7)["message"]
    assert row_error(batch, 8)["code"] == "invalid_phone"


async def test_system_events_land_on_the_profile_of_the_message(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    batch = await upsert(client, auth, {"identity": "c-1", "phone": "+919812300001"})
    pid = batch["results"][0]["id"]
    async with runtime.sessions() as session:
        contact_id = await session.scalar(select(Contact.id).where(Contact.phone == "919812300001"))
        assert contact_id is not None
        # An untracked number: its contact exists, no profile links to it.
        session.add(
            Contact(
                workspace_id=1,
                phone="919812300099",
                subscription="subscribed",
                created_at=runtime.clock.now(),
            )
        )
        await session.flush()
        untracked = await session.scalar(select(Contact.id).where(Contact.phone == "919812300099"))
        await session.commit()

    at = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    async with runtime.writer() as session:
        kept = await record_system_events(
            session,
            None,
            [
                SystemEvent(SENT, at, contact_id=contact_id, properties={"message_id": 7}),
                SystemEvent(DELIVERED, at, profile_id=pid),
                SystemEvent(READ, at, contact_id=untracked),
                SystemEvent(REPLIED, at, contact_id=contact_id, properties={"text": "hi"}),
            ],
        )
        await session.commit()
    assert kept == 3
    timeline = (await profile(client, auth, pid))["timeline"]
    assert sorted(item["detail"]["name"] for item in timeline) == sorted([DELIVERED, SENT, REPLIED])
    assert (
        await count(
            client,
            auth,
            {"event": REPLIED, "where": [{"property": "text", "op": "eq", "value": "hi"}]},
        )
        == 1
    )


async def test_status_events_are_kept_once_per_message(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """The loop may report a status twice (a duplicate callback, the dispatcher and a report):
    Sent / Delivered / Read / Failed count once per message; replies and clicks each time."""
    from tests.profiles.test_erasure import send_messages

    batch = await upsert(client, auth, {"identity": "c-1", "phone": "+919812300001"})
    pid = batch["results"][0]["id"]
    (message_id,) = await send_messages(client, auth, ["+919812300001"])
    at = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    for _ in range(2):
        async with runtime.writer() as session:
            await record_system_events(
                session,
                1,
                [
                    SystemEvent(SENT, at, message_id=message_id),
                    SystemEvent(DELIVERED, at, message_id=message_id),
                    SystemEvent("WhatsApp Clicked", at, message_id=message_id),
                ],
            )
            await session.commit()
    events = [
        i["detail"] for i in (await profile(client, auth, pid))["timeline"] if i["kind"] == "event"
    ]
    assert sorted(e["name"] for e in events) == [
        "WhatsApp Clicked",
        "WhatsApp Clicked",
        DELIVERED,
        SENT,
    ]
    # The event says which message (and template) it is about, for segments to select on.
    assert all(e["message_id"] == message_id for e in events)
    assert all(e["properties"]["message_id"] == message_id for e in events)
    assert all(e["properties"]["template_id"] for e in events)
    assert await count(client, auth, {"event": "WhatsApp Clicked", "min_count": 2}) == 1
    # Events for another workspace's message are not recorded under a workspace filter.
    async with runtime.writer() as session:
        assert (
            await record_system_events(session, 99, [SystemEvent(READ, at, message_id=message_id)])
            == 0
        )
        await session.commit()
