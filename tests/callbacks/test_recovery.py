"""A crash between "stored" and "applied" loses nothing: records left stored are applied by the
next applier to start."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import orjson

from tests.callbacks.helpers import (
    Outbox,
    create_provider,
    generic_inbound,
    inbound_records,
    message,
    records,
    status,
    statuses,
)
from waconnect.messaging.callbacks import CallbackApplier
from waconnect.messaging.models import CallbackRecord
from waconnect.runtime import Runtime

PHONE = "919812345678"


async def test_records_left_stored_are_applied_at_start(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    crashed_at = runtime.clock.now() - timedelta(minutes=5)
    bodies = [
        ("delivery", orjson.dumps(statuses(status(f"{mid}-1", "read")))),
        ("inbound", orjson.dumps(generic_inbound(PHONE, "hello", id="wamid.r1"))),
        ("delivery", b"{broken"),
    ]
    async with runtime.sessions() as session:
        session.add_all(
            CallbackRecord(
                provider_id=provider["id"],
                workspace_id=1,
                kind=kind,
                received_at=crashed_at,
                headers={},
                body=body,
                state="stored",
                items=0,
                unmatched=0,
            )
            for kind, body in bodies
        )
        await session.commit()

    # The applier of a process that starts now (the running one only sweeps every 30 s).
    applier = CallbackApplier(runtime)
    await applier.start()
    try:
        await asyncio.wait_for(applier.drain(), 30)
    finally:
        await applier.stop()

    delivered, replied, broken = await records(runtime)
    assert (delivered.state, delivered.items, delivered.unmatched) == ("applied", 1, 0)
    assert (replied.state, replied.items) == ("applied", 1)
    assert broken.state == "error" and "not JSON" in (broken.error or "")
    assert (await message(runtime, mid)).status == "read"
    (inbound,) = await inbound_records(runtime)
    assert (inbound.text, inbound.callback_id) == ("hello", replied.id)


async def test_stopping_applies_what_was_accepted(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Every record an applier stored is applied before ``stop`` returns."""
    provider = await create_provider(client, auth)
    ids = await Outbox(runtime, provider).send([f"9198100{n:05d}" for n in range(20)])
    applier = CallbackApplier(runtime)
    await applier.start()
    entry = await applier.providers.authorized(
        provider["id"], provider["callbacks"]["delivery_url"].split("/")[-2]
    )
    assert entry is not None

    async def one(message_id: int) -> None:
        body = orjson.dumps(statuses(status(f"{message_id}-1", "delivered")))
        record_id, received_at = await applier.store(entry, "delivery", {}, body)
        from waconnect.messaging.callbacks import Pending, parse

        items = parse(entry.kind, "delivery", body)
        applier.submit(
            Pending(record_id, entry.id, entry.workspace_id, "delivery", received_at, items)
        )

    await asyncio.gather(*(one(i) for i in ids))
    await applier.stop()
    assert {r.state for r in await records(runtime)} == {"applied"}
    assert {(await message(runtime, i)).status for i in ids} == {"delivered"}


async def test_a_young_stored_record_is_left_to_its_process_on_postgres(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, db_url: str
) -> None:
    """On PostgreSQL several processes receive callbacks: a record stored a moment ago may be
    in another one's hands, so a starting applier leaves it (a later sweep takes it once it is
    old). On SQLite one process receives them: every stored record is an orphan at start."""
    provider = await create_provider(client, auth)
    async with runtime.sessions() as session:
        session.add(
            CallbackRecord(
                provider_id=provider["id"],
                workspace_id=1,
                kind="inbound",
                received_at=runtime.clock.now(),
                headers={},
                body=orjson.dumps(generic_inbound(PHONE, "just now")),
                state="stored",
                items=0,
                unmatched=0,
            )
        )
        await session.commit()
    applier = CallbackApplier(runtime)
    await applier.start()
    try:
        await asyncio.wait_for(applier.drain(), 30)
    finally:
        await applier.stop()
    (record,) = await records(runtime)
    expected = "applied" if db_url.startswith("sqlite") else "stored"
    assert record.state == expected
