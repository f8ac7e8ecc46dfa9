"""The rules a campaign keeps: validation, the lifecycle's refusals, pause (held rows are never
claimed), cancel, DND hours, the cut-off, the frequency cap across campaigns, the A/B split and
control group on 10,000 profiles, goal conversions, auto-pause, the template in-use guard, and
workspace isolation."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from typing import Any

import httpx
import pytest

from tests.callbacks.helpers import FakeProvider
from tests.campaigns.helpers import (
    CAMPAIGNS,
    NAME,
    Sending,
    act,
    add_profiles,
    create,
    finish,
    provider_with_templates,
    run_loop,
    segment,
    show,
    sum_identity,
    until,
)
from tests.conftest import new_key
from waconnect.campaigns.runner import CampaignRunner
from waconnect.messaging.dispatcher import Dispatcher
from waconnect.providers.transport import HttpResponse
from waconnect.runtime import Runtime


async def _setup(
    client: httpx.AsyncClient, auth: dict[str, str], profiles: int = 20
) -> tuple[dict[str, Any], dict[str, int], int]:
    provider, templates = await provider_with_templates(client, auth)
    await add_profiles(client, auth, profiles)
    return provider, templates, await segment(client, auth)


async def _claimable(runtime: Runtime, provider_id: int) -> int:
    """How many rows the dispatcher would claim now (then handed back: nothing is sent)."""
    dispatcher = Dispatcher(runtime, transport_factory=lambda _c: FakeProvider("generic"))
    rows = await dispatcher.claim(provider_id, 10_000)
    from sqlalchemy import update

    from waconnect.messaging.models import Message

    async with runtime.writer() as session:
        await session.execute(
            update(Message).where(Message.id.in_([r.id for r in rows])).values(lease_owner=None)
        )
        await session.commit()
    return len(rows)


async def _settings(client: httpx.AsyncClient, auth: dict[str, str], **patch: Any) -> None:
    answer = await client.patch("/api/v1/workspace", json=patch, headers=auth)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variables": NAME}, "body"),  # no template at all
        ({"template_id": 1, "variants": [{"template_id": 1}, {"template_id": 1}]}, "body"),
        (
            {"variants": [{"template_id": 1, "percent": 60}, {"template_id": 1, "percent": 30}]},
            "body",
        ),
        ({"template_id": 1, "variables": {}}, "template_id.variables.body.1"),
        ({"template_id": 1, "variables": {"body.9": {"literal": "x"}, **NAME}}, None),
        ({"template_id": 999999, "variables": NAME}, "template_id.template_id"),
    ],
)
async def test_create_refuses_what_cannot_run_with_a_field_named(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], field: str | None
) -> None:
    _provider, templates, segment_id = await _setup(client, auth, 1)
    body = {k: v for k, v in body.items()}
    for key in ("template_id",):
        if body.get(key) == 1:
            body[key] = templates["greeting"]
    for variant in body.get("variants") or []:
        variant["template_id"] = templates["greeting"]
        variant["variables"] = NAME
    answer = await client.post(
        CAMPAIGNS,
        json={"name": "x", "audience": {"segment_id": segment_id}, **body},
        headers=auth,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["message"]
    if field and field != "body":
        assert field in (error.get("fields") or {}), error


async def test_lifecycle_refusals_in_use_guard_and_isolation(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    _provider, templates, segment_id = await _setup(client, auth, 3)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    url = f"{CAMPAIGNS}/{campaign['id']}"
    assert (await client.post(f"{url}/pause", headers=auth)).status_code == 409
    assert (await client.post(f"{url}/resume", headers=auth)).status_code == 409
    template_url = f"/api/v1/templates/{templates['greeting']}"
    # A draft does not hold its template.
    await act(client, auth, campaign["id"], "start")
    again = await client.post(f"{url}/start", headers=auth)
    assert again.status_code == 409 and "running" in again.json()["error"]["message"]
    busy = await client.delete(template_url, headers=auth)
    assert busy.status_code == 409 and "Diwali" in busy.json()["error"]["message"]
    # Another workspace sees none of it.
    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    assert (await client.get(url, headers=other)).status_code == 404
    assert (await client.post(f"{url}/pause", headers=other)).status_code == 404
    assert (await client.get(f"{url}/recipients", headers=other)).status_code == 404
    listed = await client.get(CAMPAIGNS, headers=other)
    assert listed.status_code == 200 and listed.json()["items"] == []
    await act(client, auth, campaign["id"], "cancel")
    assert (await client.delete(template_url, headers=auth)).status_code == 204


async def test_pause_holds_resume_continues_cancel_cancels(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider, templates, segment_id = await _setup(client, auth, 30)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    await act(client, auth, campaign["id"], "start")
    await run_loop(runtime)
    assert await _claimable(runtime, provider["id"]) == 30
    paused = await act(client, auth, campaign["id"], "pause")
    assert paused["status"] == "paused" and paused["stats"]["queued"] == 30
    assert await _claimable(runtime, provider["id"]) == 0
    resumed = await act(client, auth, campaign["id"], "resume")
    assert resumed["status"] == "running"
    assert await _claimable(runtime, provider["id"]) == 30
    cancelled = await act(client, auth, campaign["id"], "cancel")
    assert cancelled["status"] == "cancelled"
    assert cancelled["stats"]["cancelled"] == 30 and sum_identity(cancelled["stats"]) == 30
    assert await _claimable(runtime, provider["id"]) == 0


async def test_dnd_hours_delay_and_cut_off_expires(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider, templates, segment_id = await _setup(client, auth, 10)
    now = runtime.clock.now().astimezone(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    await _settings(
        client,
        auth,
        timezone="UTC",
        dnd={"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")},
    )
    waits = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    expires = await create(
        client,
        auth,
        name="short",
        template_id=templates["greeting"],
        variables=NAME,
        audience={"phones": ["+91 98000 00001", "919800000002"]},
        schedule={"cutoff_at": (now + timedelta(hours=1)).isoformat()},
    )
    await act(client, auth, waits["id"], "start")
    await act(client, auth, expires["id"], "start")
    await run_loop(runtime)
    # Inside DND: queued, and not due.
    assert (await show(client, auth, waits["id"]))["stats"]["queued"] == 10
    assert await _claimable(runtime, provider["id"]) == 0
    # The cut-off comes first: the short campaign's rows expire with the reason.
    runtime.clock.advance(timedelta(minutes=90).total_seconds())
    dispatcher = Dispatcher(runtime, transport_factory=lambda _c: FakeProvider("generic"))
    await dispatcher.recover()
    assert await _claimable(runtime, provider["id"]) == 0
    await finish(runtime)
    short = await show(client, auth, expires["id"])
    assert short["stats"]["expired"] == 2 and short["status"] == "completed"
    # After the window's end (minute precision) the other campaign's rows are due.
    runtime.clock.advance(timedelta(minutes=31).total_seconds())
    assert await _claimable(runtime, provider["id"]) == 10


async def test_frequency_cap_counts_across_campaigns(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    _provider, templates, segment_id = await _setup(client, auth, 20)
    await _settings(client, auth, frequency_cap={"messages": 1, "hours": 24})
    first = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    await act(client, auth, first["id"], "start")
    await run_loop(runtime)
    second = await create(
        client,
        auth,
        name="again",
        template_id=templates["farewell"],
        variables={"body.1": {"attribute": "first_name", "default": "there"}},
        audience={"phones": [str(919800000000 + n) for n in range(25)]},
    )
    await act(client, auth, second["id"], "start")
    await run_loop(runtime)
    assert (await show(client, auth, first["id"]))["stats"]["queued"] == 20
    stats = (await show(client, auth, second["id"]))["stats"]
    assert stats["skipped"] == {"capped": 20} and stats["queued"] == 5
    # The cap is rolling: a day later the same people may be reached again.
    runtime.clock.advance(timedelta(hours=25).total_seconds())
    third = await create(
        client,
        auth,
        name="later",
        template_id=templates["farewell"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    await act(client, auth, third["id"], "start")
    await run_loop(runtime)
    assert (await show(client, auth, third["id"]))["stats"]["queued"] == 20


async def test_target_cap_and_duplicate_phones_and_by_property(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    _provider, templates = await provider_with_templates(client, auth)
    await add_profiles(
        client,
        auth,
        12,
        make=lambda n: {
            "attributes": {"first_name": f"P{n}", "language": ["en", "hi", "ta"][n % 3]}
        },
    )
    listed = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables={"body.1": {"attribute": "first_name", "default": "there"}},
        audience={"phones": ["919800000001", "+91 98000 00001", "12", "919811111111"]},
    )
    await act(client, auth, listed["id"], "start")
    await run_loop(runtime)
    stats = (await show(client, auth, listed["id"]))["stats"]
    assert stats["skipped"] == {"duplicate_phone": 1, "invalid_phone": 1}
    assert stats["queued"] == 2 and stats["targeted"] == 4

    segment_id = await segment(client, auth)
    by_language = await create(
        client,
        auth,
        name="lang",
        by_property={
            "attribute": "language",
            "cases": {
                "en": {"template_id": templates["greeting"], "variables": NAME},
                "hi": {"template_id": templates["farewell"], "variables": NAME},
            },
        },
        audience={"segment_id": segment_id},
        target_cap=7,
    )
    await act(client, auth, by_language["id"], "start")
    await run_loop(runtime)
    shown = await show(client, auth, by_language["id"])
    assert shown["stats"]["queued"] == 7
    by_name = {v["name"]: v["stats"] for v in shown["variants"]}
    assert by_name["en"]["queued"] + by_name["hi"]["queued"] == 7
    assert shown["stats"]["skipped"].get("no_variant", 0) >= 1
    assert sum_identity(shown["stats"]) == shown["stats"]["targeted"]


async def test_ab_split_control_group_and_goal_conversions_on_10000(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    _provider, templates, segment_id = await _setup(client, auth, 10_000)
    campaign = await create(
        client,
        auth,
        variants=[
            {"template_id": templates["greeting"], "variables": NAME, "percent": 50},
            {"template_id": templates["farewell"], "variables": NAME, "percent": 50},
        ],
        control_percent=10,
        audience={"segment_id": segment_id},
        goal={"event": "Purchased", "window_minutes": 60},
    )
    await act(client, auth, campaign["id"], "start")
    await run_loop(runtime)
    shown = await show(client, auth, campaign["id"])
    stats = shown["stats"]
    assert stats["targeted"] == 10_000 and sum_identity(stats) == 10_000
    assert 800 <= stats["control"] <= 1200
    a, b = (v["stats"]["queued"] for v in shown["variants"])
    assert a + b + stats["control"] == 10_000
    assert abs(a / (a + b) - 0.5) <= 0.02
    # The control group got nothing: no message row is theirs.
    controls = await client.get(
        f"{CAMPAIGNS}/{campaign['id']}/recipients",
        params={"status": "control", "limit": 1000},
        headers=auth,
    )
    control_rows = controls.json()["items"]
    assert control_rows and all(r["message_id"] is None for r in control_rows)
    # Goal: 30 buyers among the variant A recipients and 10 in control, inside the window;
    # one more after the window does not count.
    variant_a = await client.get(
        f"{CAMPAIGNS}/{campaign['id']}/recipients",
        params={"status": "queued", "limit": 1000},
        headers=auth,
    )
    a_phones = [r["phone"] for r in variant_a.json()["items"] if r["variant"] == 0][:30]
    c_phones = [r["phone"] for r in control_rows[:10]]
    soon = (runtime.clock.now() + timedelta(minutes=5)).isoformat()
    late = (runtime.clock.now() + timedelta(minutes=120)).isoformat()
    events = [{"phone": p, "name": "Purchased", "ts": soon} for p in a_phones + c_phones]
    events.append({"phone": control_rows[20]["phone"], "name": "Purchased", "ts": late})
    events.append({"phone": a_phones[0], "name": "Purchased", "ts": soon})  # twice: once
    recorded = await client.post("/api/v1/events/batch", json={"events": events}, headers=auth)
    assert recorded.status_code == 200 and recorded.json()["rejected"] == 0, recorded.text
    shown = await show(client, auth, campaign["id"])
    assert shown["stats"]["conversions"] == 40
    assert shown["variants"][0]["stats"]["conversions"] == 30
    assert shown["variants"][1]["stats"]["conversions"] == 0
    assert shown["control_conversions"] == 10


async def test_consecutive_provider_failures_auto_pause(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    runtime.settings.campaign_auto_pause_failures = 5
    _provider, templates, segment_id = await _setup(client, auth, 40)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    await act(client, auth, campaign["id"], "start")
    await run_loop(runtime)
    async with Sending(runtime) as sending:
        sending.provider.script = [HttpResponse(401, b'{"status": "error"}') for _ in range(200)]

        async def paused() -> bool:
            await finish(runtime)
            return (await show(client, auth, campaign["id"]))["status"] == "paused"

        await until(paused, 30, "the campaign to pause itself")
    shown = await show(client, auth, campaign["id"])
    assert "consecutive provider failures" in shown["status_reason"]
    assert sum(shown["stats"]["failed"].values()) >= 5
    assert sum_identity(shown["stats"]) == 40


async def test_scheduled_start_and_throttle_pace_the_rows(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider, templates, segment_id = await _setup(client, auth, 10)
    start_at = runtime.clock.now() + timedelta(hours=1)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
        schedule={"start_at": start_at.isoformat()},
        throttle_per_second=0.01,
    )
    assert (await act(client, auth, campaign["id"], "start"))["status"] == "scheduled"
    await run_loop(runtime)
    assert (await show(client, auth, campaign["id"]))["stats"]["targeted"] == 0
    runtime.clock.advance(3600)
    await run_loop(runtime)
    shown = await show(client, auth, campaign["id"])
    assert shown["status"] == "running" and shown["stats"]["queued"] == 10
    # One per 100 seconds (slow, so the real seconds a loaded machine takes do not count): one
    # is due at once, three after 250 seconds, all ten after 1,000.
    assert await _claimable(runtime, provider["id"]) == 1
    runtime.clock.advance(250)
    assert await _claimable(runtime, provider["id"]) == 3
    runtime.clock.advance(750)
    assert await _claimable(runtime, provider["id"]) == 10


async def test_dnd_hours_are_read_in_the_profiles_time_zone(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider, templates = await provider_with_templates(client, auth)
    # Profile 0 lives 14 hours ahead of the workspace (UTC): its evening is not the window.
    await add_profiles(
        client, auth, 4, make=lambda n: {"timezone": "Pacific/Kiritimati"} if n == 0 else {}
    )
    segment_id = await segment(client, auth)
    now = runtime.clock.now().astimezone(UTC)
    window = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    await _settings(client, auth, timezone="UTC")
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
        dnd=window,
    )
    await act(client, auth, campaign["id"], "start")
    await run_loop(runtime)
    assert await _claimable(runtime, provider["id"]) == 1


async def test_a_deleted_segment_pauses_the_campaign_with_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    _provider, templates, segment_id = await _setup(client, auth, 3)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
    )
    await act(client, auth, campaign["id"], "start")
    deleted = await client.delete(f"/api/v1/segments/{segment_id}", headers=auth)
    assert deleted.status_code == 204
    await run_loop(runtime)
    shown = await show(client, auth, campaign["id"])
    assert shown["status"] == "paused" and "segment" in shown["status_reason"]


class WritesAfterTheNextPlan(CampaignRunner):
    """Holds each chunk's write until the chunk after it is planned, so the next plan always
    reads while the write it follows is uncommitted (the race, made certain)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.plans = 0
        self.planned = asyncio.Condition()

    async def _next_plan(self, *args: Any) -> Any:
        plan = await super()._next_plan(*args)
        async with self.planned:
            self.plans += 1
            self.planned.notify_all()
        return plan

    async def _write(self, campaign_id: int, plan: Any) -> bool:
        if not plan.done:  # the loop plans no chunk after a last one
            after = self.plans
            async with self.planned:
                await asyncio.wait_for(self.planned.wait_for(lambda: self.plans > after), 30)
        return await super()._write(campaign_id, plan)


@pytest.mark.parametrize("kind", ["phones", "identities"])
async def test_a_phone_in_the_chunk_being_written_is_a_duplicate_in_the_next(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, kind: str
) -> None:
    """The loop plans a chunk while the one before it is written: the phones of that one count
    as reached though its recipients are not committed yet. Each 10-member chunk repeats the
    first one's people (identities take the one-hop write, new phones the session's)."""
    _provider, templates = await provider_with_templates(client, auth)
    await add_profiles(client, auth, 10)
    people = [f"u{n}" if kind == "identities" else str(919800000000 + n) for n in range(10)]
    made = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={kind: people * 4},
    )
    await act(client, auth, made["id"], "start")
    runner = WritesAfterTheNextPlan(runtime)
    runner.chunk = 10
    while await runner.turn():
        pass
    assert runner.plans >= 5  # four chunks and the end
    stats = (await show(client, auth, made["id"]))["stats"]
    assert stats["targeted"] == 40
    assert stats["queued"] == 10
    assert stats["skipped"] == {"duplicate_phone": 30}
