"""``DELETE /api/v1/profiles/{id}``: personal data replaced by hashes, anonymous counts kept."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from tests.profiles.helpers import PROFILES, assert_error, count, profile, record, upsert
from waconnect.messaging.models import (
    Attempt,
    CallbackRecord,
    Contact,
    InboundRecord,
    MessageEvent,
)
from waconnect.profiles.models import Event
from waconnect.runtime import Runtime
from waconnect.testing.stack import DEMO_TEMPLATE

PHONE, OTHER = "919812300001", "919812300002"


async def send_messages(
    client: httpx.AsyncClient, auth: dict[str, str], phones: list[str]
) -> list[int]:
    """Messages through the API, with personalized text (the customer's name and order)."""
    provider = await client.post(
        "/api/v1/providers",
        json={
            "nickname": f"p{len(phones)}",
            "kind": "generic",
            "mobile_number": "+91 88895 00122",
            "endpoint_url": "https://api.example.com/whatsapp/send",
        },
        headers=auth,
    )
    assert provider.status_code == 201, provider.text
    provider_id = provider.json()["id"]
    template = await client.post(
        f"/api/v1/providers/{provider_id}/templates", json=DEMO_TEMPLATE, headers=auth
    )
    assert template.status_code == 201, template.text
    messages = [
        {
            "provider_id": provider_id,
            "to": phone,
            "template": {
                "name": DEMO_TEMPLATE["name"],
                "language": "en",
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": f"Asha {phone}"},
                            {"type": "text", "text": "A-1001"},
                        ],
                    }
                ],
            },
        }
        for phone in phones
    ]
    sent = await client.post("/api/v1/messages/batch", json={"messages": messages}, headers=auth)
    assert sent.status_code == 202, sent.text
    return [item["id"] for item in sent.json()["results"]]


async def _loop_records(runtime: Runtime, mine: int, theirs: int) -> dict[str, int]:
    """What the message loop stores about messages and replies: an attempt with the request
    as sent, a report with its raw callback, an inbound reply with its raw callback, and a
    report nobody matched (its body still names the number)."""
    now = runtime.clock.now()

    def callback(body: dict[str, Any], kind: str = "delivery") -> CallbackRecord:
        return CallbackRecord(
            provider_id=1,
            workspace_id=1,
            kind=kind,
            received_at=now,
            headers={"content-type": "application/json"},
            body=orjson.dumps(body),
            state="applied",
            items=1,
            unmatched=0,
        )

    async with runtime.sessions() as session:
        reports = {
            "mine": callback({"statuses": [{"msgId": f"{mine}-1", "to": PHONE, "status": "read"}]}),
            "theirs": callback({"statuses": [{"msgId": f"{theirs}-1", "to": OTHER}]}),
            "reply": callback({"from": PHONE, "text": "my address is 5 Main St"}, "inbound"),
            "lost": callback({"statuses": [{"msgId": "nope", "to": PHONE}]}),
        }
        session.add_all(reports.values())
        await session.flush()
        attempt = Attempt(
            message_id=mine,
            number=1,
            reference=f"{mine}-1",
            outcome="accepted",
            began_at=now,
            request={"to": PHONE, "text": "Hi Asha, order A-1001"},
            response='{"status": "success"}',
        )
        session.add(attempt)
        await session.flush()
        session.add(
            MessageEvent(
                message_id=mine,
                attempt_id=attempt.id,
                status="read",
                received_at=now,
                callback_id=reports["mine"].id,
                effect="moved",
            )
        )
        contact_id = await session.scalar(select(Contact.id).where(Contact.phone == PHONE))
        assert contact_id is not None
        session.add(
            InboundRecord(
                workspace_id=1,
                provider_id=1,
                contact_id=contact_id,
                from_phone=PHONE,
                type="text",
                text="my address is 5 Main St",
                payload={"from": PHONE, "text": "my address is 5 Main St"},
                received_at=now,
                callback_id=reports["reply"].id,
            )
        )
        await session.commit()
        return {name: record.id for name, record in reports.items()}


async def test_erasure_replaces_personal_data_and_keeps_counts(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    batch = await upsert(
        client,
        auth,
        {"identity": "c-1", "phone": PHONE, "attributes": {"name": "Asha", "city": "Pune"}},
        {"identity": "c-2", "phone": OTHER, "attributes": {"name": "Ravi", "city": "Pune"}},
    )
    pid, other_pid = (row["id"] for row in batch["results"])
    await record(
        client,
        auth,
        {"identity": "c-1", "name": "Added To Cart", "properties": {"address": "5 Main St"}},
        {"identity": "c-2", "name": "Added To Cart", "properties": {"sku": "x"}},
    )
    mine, mine_queued, theirs = await send_messages(client, auth, [PHONE, PHONE, OTHER])
    callbacks = await _loop_records(runtime, mine, theirs)
    counts_before = (await client.get("/api/v1/messages/counts", headers=auth)).json()
    assert await count(client, auth, {"attribute": "city", "op": "eq", "value": "Pune"}) == 2

    response = await client.delete(f"{PROFILES}/{pid}", headers=auth)
    assert response.status_code == 200, response.text
    erased = response.json()
    assert (erased["messages"], erased["inbound"], erased["callbacks"]) == (2, 1, 3)

    assert_error(await client.get(f"{PROFILES}/{pid}", headers=auth), 410, "erased")
    listed = (await client.get(PROFILES, headers=auth)).json()["items"]
    assert [p["id"] for p in listed] == [other_pid]
    assert await count(client, auth, {"attribute": "city", "op": "eq", "value": "Pune"}) == 1
    assert await count(client, auth, {"event": "Added To Cart"}) == 1

    # Its messages: the phone and the personalized text are hashes now; states are kept.
    detail = (await client.get(f"/api/v1/messages/{mine}", headers=auth)).json()
    assert detail["to"].startswith("#") and len(detail["to"]) == 20
    assert set(detail["content"]) == {"erased"}
    assert detail["content"]["erased"].startswith("sha256:")
    (attempt,) = detail["attempts"]
    assert set(attempt["request"]) == {"erased"}
    assert attempt["response"].startswith("sha256:")
    queued = (await client.get(f"/api/v1/messages/{mine_queued}", headers=auth)).json()
    assert queued["status"] == "cancelled"  # it would have gone out with its text erased
    counts_after = (await client.get("/api/v1/messages/counts", headers=auth)).json()
    assert sum(counts_after.values()) == sum(counts_before.values()) == 3

    # Another profile's data is untouched.
    other_message = (await client.get(f"/api/v1/messages/{theirs}", headers=auth)).json()
    assert other_message["to"] == OTHER and "Ravi" not in str(other_message["content"])
    assert "Asha 919812300002" in str(other_message["content"])
    assert (await profile(client, auth, other_pid))["attributes"] == {
        "name": "Ravi",
        "city": "Pune",
    }

    async with runtime.sessions() as session:
        bodies = dict((await session.execute(select(CallbackRecord.id, CallbackRecord.body))).all())
        inbound = (await session.scalars(select(InboundRecord))).one()
        contact_phones = set((await session.scalars(select(Contact.phone))).all())
        events = (
            await session.execute(select(Event.profile_id, Event.name, Event.properties))
        ).all()
        event_total = await session.scalar(select(func.count()).select_from(Event))
    for name in ("mine", "reply", "lost"):
        assert bytes(bodies[callbacks[name]]).startswith(b"sha256:"), name
    assert PHONE.encode() not in bytes(bodies[callbacks["theirs"]])
    assert OTHER.encode() in bytes(bodies[callbacks["theirs"]])
    assert inbound.text and inbound.text.startswith("sha256:")
    assert inbound.from_phone == detail["to"]  # the same number hashes alike within an erasure
    assert set(inbound.payload) == {"erased"}
    assert PHONE not in contact_phones and detail["to"] in contact_phones
    # Anonymous counts: the events stay, by name and time, without their properties.
    assert event_total == 2
    assert (pid, "Added To Cart", {}) in events

    # Erasing again changes nothing; the number may come back as a new profile.
    again = await client.delete(f"{PROFILES}/{pid}", headers=auth)
    assert again.status_code == 200 and again.json()["erased_at"] == erased["erased_at"]
    back = await upsert(client, auth, {"identity": "c-1", "phone": PHONE})
    assert back["results"][0]["status"] == "created" and back["results"][0]["id"] != pid
    assert_error(await client.delete(f"{PROFILES}/999999", headers=auth), 404)
