"""The dispatcher's pipeline, in-process with a provider answered by a transport of our own:
attempts begun ahead of a free slot, a clean stop while they wait, batching by the adapter's
key, and the limiter that holds the budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from waconnect.messaging.budget import Closed, Limiter
from waconnect.messaging.dispatcher import Dispatcher
from waconnect.messaging.journal import Journal
from waconnect.messaging.models import Attempt, Message
from waconnect.providers.adapters.base import HttpRequest
from waconnect.providers.transport import HttpResponse
from waconnect.runtime import Runtime
from waconnect.testing.stack import DEMO_TEMPLATE

MSG91_OK = {
    "status": "success",
    "hasError": False,
    "data": "Your request is in process, check delivery reports for status",
    "request_id": "req-1",
}


class GatedProvider:
    """Answers like the provider kind; while ``gate`` is closed, requests wait for it."""

    def __init__(self, kind: str = "generic") -> None:
        self.kind = kind
        self.requests: list[HttpRequest] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        await self.gate.wait()
        if self.kind == "msg91":
            return HttpResponse(200, orjson.dumps(MSG91_OK))
        return HttpResponse(200, b'{"status": "success"}')

    async def close(self) -> None:
        return None

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(request.body) for request in self.requests]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 30
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def provider_with_template(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nickname": f"{kind}-{time.monotonic_ns()}",
        "kind": kind,
        "mobile_number": "918000000001",
        "endpoint_url": "https://provider.example/api/v5/whatsapp",
        **extra,
    }
    if kind == "msg91":
        body["headers"] = {"Authkey": "test-authkey-123456"}
    created = await client.post("/api/v1/providers", json=body, headers=auth)
    assert created.status_code == 201, created.text
    provider: dict[str, Any] = created.json()
    template = await client.post(
        f"/api/v1/providers/{provider['id']}/templates", json=DEMO_TEMPLATE, headers=auth
    )
    assert template.status_code == 201, template.text
    return provider


async def send(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    provider: dict[str, Any],
    phones: list[str],
    template: str = "order_update",
) -> list[int]:
    parameters = [{"type": "text", "text": "Asha"}, {"type": "text", "text": "A-1"}]
    messages = [
        {
            "provider_id": provider["id"],
            "to": phone,
            "template": {
                "name": template,
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": parameters}],
            },
        }
        for phone in phones
    ]
    answer = await client.post("/api/v1/messages/batch", json={"messages": messages}, headers=auth)
    assert answer.status_code == 202, answer.text
    assert answer.json()["rejected"] == 0, answer.text
    return [item["id"] for item in answer.json()["results"]]


async def rows(runtime: Runtime, ids: list[int]) -> list[Message]:
    async with runtime.sessions() as session:
        found = {m.id: m for m in await session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [found[i] for i in ids]


async def begun(runtime: Runtime, ids: list[int]) -> dict[int, list[str | None]]:
    """message id -> outcomes of its attempts, in order (None while begun)."""
    async with runtime.sessions() as session:
        query = (
            select(Attempt.message_id, Attempt.outcome)
            .where(Attempt.message_id.in_(ids))
            .order_by(Attempt.message_id, Attempt.number)
        )
        found: dict[int, list[str | None]] = {i: [] for i in ids}
        for message_id, outcome in await session.execute(query):
            found[message_id].append(outcome)
    return found


async def test_a_clean_stop_sends_nothing_that_waits_for_a_slot(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """30 slots, all taken by requests that do not answer yet; behind them attempts are begun
    ahead of a free slot, behind those rows wait unbegun. A stop then records the waiting
    attempts as never sent and queues their messages again; a new worker sends them as new
    attempts, and the provider receives every message exactly once."""
    slots, total = 30, 60
    provider = await provider_with_template(client, auth, "generic", max_concurrency=slots)
    ids = await send(client, auth, provider, [str(919800000000 + n) for n in range(total)])
    gated = GatedProvider()
    gated.gate.clear()
    dispatcher = Dispatcher(runtime, transport_factory=lambda _config: gated)
    await dispatcher.start()
    dispatcher.wake()

    async def slots_full_and_more_begun() -> bool:
        started = sum(1 for outcomes in (await begun(runtime, ids)).values() if outcomes)
        return len(gated.requests) == slots and started > slots

    await until(slots_full_and_more_begun, "attempts begun ahead of a free slot")
    stopping = asyncio.create_task(dispatcher.stop())
    lane = dispatcher.lanes[provider["id"]]

    async def slots_closed() -> bool:
        return lane.limiter.closed

    await until(slots_closed, "the stop to close the slots")
    gated.gate.set()  # the requests in flight answer; the stop then completes
    await stopping

    outcomes = await begun(runtime, ids)
    sent = [i for i in ids if outcomes[i] == ["accepted"]]
    not_sent = [i for i in ids if outcomes[i] == ["not_sent"]]
    untouched = [i for i in ids if outcomes[i] == []]
    assert len(sent) == slots and not_sent and untouched
    assert len(sent) + len(not_sent) + len(untouched) == total
    assert len(gated.requests) == slots
    for message in await rows(runtime, not_sent + untouched):
        assert (message.status, message.lease_owner, message.pending_attempt) == (
            "queued",
            None,
            False,
        )

    again = Dispatcher(runtime, transport_factory=lambda _config: gated)
    await again.start()
    again.wake()

    async def all_sent() -> bool:
        return all(m.status == "sent" for m in await rows(runtime, ids))

    try:
        await until(all_sent, "the messages queued again to be sent")
    finally:
        await again.stop()
    references = sorted(body["msgId"] for body in gated.bodies())
    expected = [f"{i}-1" for i in sent + untouched] + [f"{i}-2" for i in not_sent]
    assert references == sorted(expected)  # each message once; never a not_sent attempt
    outcomes = await begun(runtime, not_sent)
    assert all(outcomes[i] == ["not_sent", "accepted"] for i in not_sent)


async def test_msg91_requests_group_by_the_adapters_batch_key(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Rows of two templates interleaved in the queue go out as one request per template, and
    a number appears once per request (reports are matched by request id + number)."""
    provider = await provider_with_template(client, auth, "msg91", options={"batch_size": 100})
    other = {**DEMO_TEMPLATE, "name": "order_shipped"}
    created = await client.post(
        f"/api/v1/providers/{provider['id']}/templates", json=other, headers=auth
    )
    assert created.status_code == 201, created.text
    ids: list[int] = []
    for n in range(3):
        ids += await send(client, auth, provider, [f"91980000010{n}"], "order_update")
        ids += await send(client, auth, provider, [f"91980000020{n}"], "order_shipped")
    ids += await send(client, auth, provider, ["919800000100"], "order_update")  # again
    gated = GatedProvider("msg91")
    dispatcher = Dispatcher(runtime, transport_factory=lambda _config: gated)
    await dispatcher.start()
    dispatcher.wake()

    async def all_sent() -> bool:
        return all(m.status == "sent" for m in await rows(runtime, ids))

    try:
        await until(all_sent, "all messages sent")
    finally:
        await dispatcher.stop()
    requests = [body["payload"]["template"] for body in gated.bodies()]
    groups = sorted(
        (template["name"], sorted(g["to"][0] for g in template["to_and_components"]))
        for template in requests
    )
    assert groups == [
        ("order_shipped", ["919800000200", "919800000201", "919800000202"]),
        ("order_update", ["919800000100"]),
        ("order_update", ["919800000100", "919800000101", "919800000102"]),
    ]


async def test_the_limiter_hands_slots_in_order_and_refuses_after_close() -> None:
    limiter = Limiter(1)
    await limiter.acquire()
    order: list[int] = []

    async def take(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    waiting = [asyncio.create_task(take(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert limiter.in_flight == 1 and not order
    await limiter.set_capacity(2)  # a slot more: the first waiter takes it
    await asyncio.sleep(0)
    assert order == [0]
    await limiter.release()
    await asyncio.sleep(0)
    assert order == [0, 1] and limiter.in_flight == 2
    limiter.close()
    with pytest.raises(Closed):
        await waiting[2]
    with pytest.raises(Closed):
        await limiter.acquire()
    assert limiter.in_flight == 2  # holders still release as usual


class SlowOutcomes(Dispatcher):
    """Writes at most 20 outcomes per journal transaction, each 20 ms slower; counts those
    written. A transaction of begins covers up to 20 requests, so outcomes fall behind."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journal = Journal(
            {"begin": self._write_begins, "finish": self._write_finishes}, max_batch=20
        )
        self.written = 0

    async def _write_finishes(self, finishes: Any) -> None:
        await asyncio.sleep(0.02)
        await super()._write_finishes(finishes)
        self.written += len(finishes)


async def test_no_request_starts_while_too_many_outcomes_wait_to_be_written(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Outcomes are written after their requests, in batches. While ``unwritten_limit`` of them
    wait, the lanes start no new request: the recipients sent never run further ahead of the
    outcomes written than that and the few requests already on their way (a crash leaves at
    most those in doubt). Without the limit they would run hundreds ahead here."""
    total, batch, limit = 1000, 10, 50
    provider = await provider_with_template(
        client, auth, "msg91", max_concurrency=30, options={"batch_size": batch}
    )
    ids = await send(client, auth, provider, [str(919800000000 + n) for n in range(total)])
    provider_answers = GatedProvider("msg91")
    dispatcher = SlowOutcomes(runtime, transport_factory=lambda _config: provider_answers)
    dispatcher.unwritten_limit = limit
    await dispatcher.start()
    ahead = 0
    try:
        dispatcher.wake()
        deadline = time.monotonic() + 60
        while dispatcher.written < total:
            assert time.monotonic() < deadline, f"only {dispatcher.written} outcomes written"
            sent = len(provider_answers.requests) * batch  # every request is full here
            ahead = max(ahead, sent - dispatcher.written)
            await asyncio.sleep(0.002)
        on_their_way = dispatcher.lanes[provider["id"]].ahead.capacity * batch
    finally:
        await dispatcher.stop()
    assert limit <= ahead <= limit + on_their_way
    assert {m.status for m in await rows(runtime, ids)} == {"sent"}
    assert len(provider_answers.requests) == total // batch
