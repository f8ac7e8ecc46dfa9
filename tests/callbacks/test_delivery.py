"""Delivery reports through HTTP: verification, raw storage, matching, the moves of design.md."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson

from tests.callbacks.helpers import (
    Outbox,
    attempts,
    count,
    create_provider,
    delivery_path,
    drain,
    events,
    message,
    messages,
    msg91_report,
    path_of,
    records,
    status,
    statuses,
    timeout,
)
from waconnect.messaging.models import CallbackRecord, MessageEvent
from waconnect.runtime import Runtime

PHONE = "919812345678"


def assert_error(response: httpx.Response, code: int) -> None:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body


# --- verification and raw storage --------------------------------------------------------------


async def test_wrong_token_is_401_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    pid = provider["id"]
    body = statuses(status("1-1", "delivered"))
    for path in (
        f"/callbacks/{pid}/not-the-token/delivery",
        f"/callbacks/{pid}/not-the-token/inbound",
        f"/callbacks/{pid + 1000}/{provider['callbacks']['delivery_url'].split('/')[-2]}/delivery",
        "/callbacks/abc/whatever/delivery",
        f"/callbacks/{10**30}/whatever/delivery",
    ):
        assert_error(await client.post(path, json=body), 401)
    assert await count(runtime, CallbackRecord) == 0


async def test_callback_header_is_required_when_configured(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(
        client, auth, callback_header={"name": "X-Hook-Secret", "value": "hook-secret-123"}
    )
    path = delivery_path(provider)
    body = statuses(status("1-1", "delivered"))
    assert_error(await client.post(path, json=body), 401)
    assert_error(await client.post(path, json=body, headers={"X-Hook-Secret": "wrong"}), 401)
    assert await count(runtime, CallbackRecord) == 0

    ok = await client.post(path, json=body, headers={"x-hook-secret": "hook-secret-123"})
    assert ok.status_code == 200 and ok.json() == {"status": "success"}
    await drain(runtime)
    (record,) = await records(runtime)
    # The secret is never stored in clear.
    assert record.headers["x-hook-secret"].startswith("••••")
    assert "hook-secret-123" not in orjson.dumps(record.headers).decode()


async def test_a_body_over_the_limit_is_413_and_not_stored(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    path = delivery_path(provider)
    runtime.settings.callback_body_limit = 2000
    big = orjson.dumps(statuses(*(status(f"{n}-1", "delivered") for n in range(100))))
    assert len(big) > 2000
    assert_error(await client.post(path, content=big), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    assert_error(await client.post(path, content=chunks()), 413)
    # A declared length over the limit is refused before anything else, token included.
    assert_error(await client.post(path.replace("/delivery", "x/delivery"), content=big), 413)
    assert await count(runtime, CallbackRecord) == 0
    small = await client.post(path, json=statuses(status("1-1", "delivered")))
    assert small.status_code == 200


async def test_unparseable_body_is_kept_with_its_error_and_answered_400(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    path = delivery_path(provider)
    bad = [b"this is not json", b'{"payloadVersion": "0.1"}', b'{"statuses": [{"msgId": "1-1"}]}']
    for body in bad:
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert_error(response, 400)
    await drain(runtime)
    stored = await records(runtime)
    assert [r.body for r in stored] == bad
    assert all(r.state == "error" and r.error for r in stored), [(r.state, r.error) for r in stored]
    assert "not JSON" in stored[0].error
    assert stored[0].kind == "delivery" and stored[0].provider_id == provider["id"]


async def test_unknown_msg_id_is_stored_counted_unmatched_and_answered_200(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    body = statuses(status("999999-1", "delivered"), status("not-ours", "read"))
    response = await client.post(delivery_path(provider), json=body)
    assert response.status_code == 200 and response.json() == {"status": "success"}
    await drain(runtime)
    (record,) = await records(runtime)
    assert (record.state, record.items, record.unmatched) == ("applied", 2, 2)
    assert orjson.loads(record.body) == body
    assert await count(runtime, MessageEvent) == 0


# --- moves ------------------------------------------------------------------------------------


async def test_a_batch_of_100_statuses_in_one_post(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    outbox = Outbox(runtime, provider)
    ids = await outbox.send([f"9198000{n:05d}" for n in range(100)])
    assert {m.status for m in await messages(runtime, ids)} == {"sent"}
    body = statuses(*[status(f"{i}-1", "delivered") for i in ids])
    response = await client.post(delivery_path(provider), json=body)
    assert response.status_code == 200
    await drain(runtime)
    rows = await messages(runtime, ids)
    assert {m.status for m in rows} == {"delivered"}
    assert all(m.delivered_at is not None for m in rows)
    (record,) = await records(runtime)
    assert (record.state, record.items, record.unmatched) == ("applied", 100, 0)
    assert await count(runtime, MessageEvent) == 100


async def test_duplicates_and_out_of_order_change_nothing_twice(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    a, b = await Outbox(runtime, provider).send([PHONE, "919812345679"])
    path = delivery_path(provider)
    # a: read arrives before delivered; b: delivered twice, in one POST and again later.
    await client.post(path, json=statuses(status(f"{a}-1", "read")))
    await client.post(path, json=statuses(status(f"{b}-1", "delivered")))
    await drain(runtime)
    await client.post(
        path,
        json=statuses(status(f"{a}-1", "delivered"), status(f"{b}-1", "delivered")),
    )
    await client.post(path, json=statuses(status(f"{b}-1", "delivered")))
    await client.post(path, json=statuses(status(f"{a}-1", "sent")))
    await drain(runtime)

    first = await message(runtime, a)
    assert first.status == "read"
    # read implies delivered: its time is filled in when the delivered report never came first
    assert first.read_at is not None and first.delivered_at is not None
    effects = {(e.status, e.effect) for e in await events(runtime, a)}
    assert effects == {("read", "moved"), ("delivered", "ignored"), ("sent", "ignored")}

    second = await message(runtime, b)
    assert second.status == "delivered"
    assert [(e.status, e.effect) for e in await events(runtime, b)] == [("delivered", "moved")]


async def test_reports_about_an_old_attempt_never_move_the_message(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """A throttled async failure puts the message back in the queue (not failed); the retry is a
    new attempt, and a late report about the first one changes nothing."""
    provider = await create_provider(client, auth)
    outbox = Outbox(runtime, provider)
    (mid,) = await outbox.send([PHONE])
    path = delivery_path(provider)
    failed = status(
        f"{mid}-1", "failed", error={"code": 1004, "title": "Too many messages to this number"}
    )
    await client.post(path, json=statuses(failed))
    await drain(runtime)
    row = await message(runtime, mid)
    assert row.status == "queued" and row.failed_at is None
    assert row.error_code == "generic:1004"
    assert row.next_attempt_at > runtime.clock.now()
    assert [(e.status, e.effect) for e in await events(runtime, mid)] == [("failed", "requeued")]

    runtime.clock.advance(600)  # past the backoff: the dispatcher sends attempt 2
    await outbox.dispatch([mid])
    row = await message(runtime, mid)
    assert (row.status, row.attempt_count) == ("sent", 2)

    await client.post(path, json=statuses(status(f"{mid}-1", "delivered")))
    await client.post(path, json=statuses(status(f"{mid}-1", "read")))
    await drain(runtime)
    assert (await message(runtime, mid)).status == "sent"
    await client.post(path, json=statuses(status(f"{mid}-2", "delivered")))
    await drain(runtime)
    assert (await message(runtime, mid)).status == "delivered"
    found = [(e.status, e.effect) for e in await events(runtime, mid)]
    assert found == [
        ("failed", "requeued"),
        ("delivered", "ignored"),
        ("read", "ignored"),
        ("delivered", "moved"),
    ]


async def test_throttled_1005_on_an_unknown_message_goes_back_to_queued(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    outbox = Outbox(runtime, provider)
    outbox.transport.script.append(timeout())
    (mid,) = await outbox.send([PHONE])
    row = await message(runtime, mid)
    assert row.status == "unknown" and row.in_doubt_since is not None
    await client.post(
        delivery_path(provider),
        json=statuses(status(f"{mid}-1", "failed", error={"code": "1005", "title": "Away"})),
    )
    await drain(runtime)
    row = await message(runtime, mid)
    assert row.status == "queued" and row.in_doubt_since is None
    assert row.error_code == "generic:1005"


async def test_failed_1002_fails_the_message(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    a, b = await Outbox(runtime, provider).send([PHONE, "919812345679"])
    path = delivery_path(provider)
    bad_number = {"code": 1002, "title": "Invalid phone number."}
    await client.post(path, json=statuses(status(f"{a}-1", "failed", error=bad_number)))
    # failed never replaces delivered
    await client.post(path, json=statuses(status(f"{b}-1", "delivered")))
    await drain(runtime)
    await client.post(path, json=statuses(status(f"{b}-1", "failed", error=bad_number)))
    await drain(runtime)

    row = await message(runtime, a)
    assert (row.status, row.error_code, row.error_title) == (
        "failed",
        "generic:1002",
        "Invalid phone number.",
    )
    assert row.failed_at is not None
    assert [(e.status, e.effect, e.error_code) for e in await events(runtime, a)] == [
        ("failed", "moved", "generic:1002")
    ]
    other = await message(runtime, b)
    assert other.status == "delivered" and other.failed_at is None


async def test_clicks_are_counted_once_per_attempt(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    click = status(f"{mid}-1", "Clicked", url="https://shop.example.org/x")
    for _ in range(3):
        await client.post(delivery_path(provider), json=statuses(click))
    await drain(runtime)
    row = await message(runtime, mid)
    assert row.clicked_count == 1 and row.status == "sent"


async def test_a_report_never_touches_another_providers_message(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    mine = await create_provider(client, auth)
    other = await create_provider(client, auth)
    (mid,) = await Outbox(runtime, mine).send([PHONE])
    await client.post(delivery_path(other), json=statuses(status(f"{mid}-1", "delivered")))
    await drain(runtime)
    assert (await message(runtime, mid)).status == "sent"
    (record,) = await records(runtime)
    assert record.unmatched == 1


async def test_a_burst_of_single_status_posts_is_stored_and_applied(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    ids = await Outbox(runtime, provider).send([f"9197000{n:05d}" for n in range(50)])
    path = delivery_path(provider)
    posts = [
        client.post(path, json=statuses(status(f"{i}-1", value)))
        for i in ids
        for value in ("delivered", "read")
    ]
    answers = await asyncio.gather(*posts)
    assert {a.status_code for a in answers} == {200}
    await drain(runtime)
    assert {m.status for m in await messages(runtime, ids)} == {"read"}
    stored = await records(runtime)
    assert len(stored) == 100 and {r.state for r in stored} == {"applied"}


# --- MSG91 -------------------------------------------------------------------------------------


async def test_msg91_per_recipient_webhooks_match_by_request_id_and_number(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth, kind="msg91")
    phones = ["919812345601", "919812345602", "919812345603"]
    ids = await Outbox(runtime, provider).send(phones)
    found = [await attempts(runtime, i) for i in ids]
    request_ids = {a[0].provider_request_id for a in found}
    assert len(request_ids) == 1 and None not in request_ids  # one bulk request
    (request_id,) = request_ids
    path = delivery_path(provider)
    for phone, value in zip(phones, ("delivered", "read", "sent"), strict=True):
        body = msg91_report(request_id, phone, value, uuid=f"ev-{phone}")
        assert (await client.post(path, json=body)).status_code == 200
    # an event for a number that request never carried matches nothing
    await client.post(path, json=msg91_report(request_id, "919800000000", "delivered"))
    await drain(runtime)
    assert [m.status for m in await messages(runtime, ids)] == ["delivered", "read", "sent"]
    assert [r.unmatched for r in await records(runtime)] == [0, 0, 0, 1]


async def test_a_report_that_overtakes_its_sends_outcome_is_matched_when_applied_again(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """An MSG91 report without a template name is matched by its request id, which the send's
    outcome records: one that arrives first matches nothing, and is applied again shortly."""
    provider = await create_provider(client, auth, kind="msg91")
    early = msg91_report("req-1", PHONE, "delivered", templateName=None)
    assert (await client.post(delivery_path(provider), json=early)).status_code == 200
    await drain(runtime)
    (record,) = await records(runtime)
    assert record.unmatched == 1
    # Now the send it is about (the fake provider answers request id req-1).
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    deadline = asyncio.get_running_loop().time() + 45
    while (await message(runtime, mid)).status != "delivered":
        assert asyncio.get_running_loop().time() < deadline, "the report was never applied again"
        await asyncio.sleep(0.1)
    (record,) = await records(runtime)
    assert (record.state, record.items, record.unmatched) == ("applied", 1, 0)


async def test_msg91_throttled_131056_goes_back_to_queued(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth, kind="msg91")
    (mid,) = await Outbox(runtime, provider).send([PHONE])
    (attempt,) = await attempts(runtime, mid)
    body = msg91_report(
        attempt.provider_request_id, PHONE, "failed", statusCode="131056", reason="Pair rate limit"
    )
    await client.post(delivery_path(provider), json=body)
    await drain(runtime)
    row = await message(runtime, mid)
    assert row.status == "queued" and row.error_code == "meta:131056" and row.failed_at is None
    assert [(e.status, e.effect) for e in await events(runtime, mid)] == [("failed", "requeued")]


async def test_msg91_in_doubt_request_is_settled_by_number_and_template(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """The request timed out, so its request id was never learned: the first report is matched
    by (provider, number, template) and teaches the attempt its request id."""
    provider = await create_provider(client, auth, kind="msg91")
    outbox = Outbox(runtime, provider)
    outbox.transport.script.append(timeout())
    (mid,) = await outbox.send([PHONE])
    row = await message(runtime, mid)
    assert row.status == "unknown" and row.in_doubt_since is not None
    path = delivery_path(provider)
    await client.post(path, json=msg91_report("late-req-1", PHONE, "delivered"))
    await drain(runtime)
    row = await message(runtime, mid)
    assert row.status == "delivered" and row.in_doubt_since is None
    assert row.unknown_reason is None
    (attempt,) = await attempts(runtime, mid)
    assert attempt.provider_request_id == "late-req-1"
    # a later report of the same request finds it by request id, although it is delivered now
    await client.post(path, json=msg91_report("late-req-1", PHONE, "read"))
    await drain(runtime)
    assert (await message(runtime, mid)).status == "read"


# --- token rotation -----------------------------------------------------------------------------


async def test_rotated_token_works_during_grace_then_401(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider = await create_provider(client, auth)
    old_path = delivery_path(provider)
    rotated = await client.post(
        f"/api/v1/providers/{provider['id']}/rotate-token", json={}, headers=auth
    )
    assert rotated.status_code == 200, rotated.text
    new_path = path_of(rotated.json()["callbacks"]["delivery_url"])
    assert new_path != old_path
    body = statuses(status("1-1", "delivered"))
    assert (await client.post(old_path, json=body)).status_code == 200
    assert (await client.post(new_path, json=body)).status_code == 200

    runtime.clock.advance(timedelta(hours=24, minutes=1).total_seconds())
    assert_error(await client.post(old_path, json=body), 401)
    assert (await client.post(new_path, json=body)).status_code == 200
    await drain(runtime)
    assert len(await records(runtime)) == 3


async def test_rotation_without_grace_ends_the_old_token_once_the_cache_forgets(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    from waconnect.messaging.callbacks import forget_provider

    provider = await create_provider(client, auth)
    old_path = delivery_path(provider)
    body = statuses(status("1-1", "delivered"))
    assert (await client.post(old_path, json=body)).status_code == 200  # now cached
    rotated = await client.post(
        f"/api/v1/providers/{provider['id']}/rotate-token",
        json={"grace_hours": 0},
        headers=auth,
    )
    assert rotated.status_code == 200, rotated.text
    forget_provider(runtime, provider["id"])  # what the provider routes do after a change
    assert_error(await client.post(old_path, json=body), 401)
    new_path = path_of(rotated.json()["callbacks"]["delivery_url"])
    assert (await client.post(new_path, json=body)).status_code == 200
