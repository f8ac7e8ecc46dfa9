"""Campaigns in the dashboard over real HTTP with the worker and the simulator (both
databases): the wizard with its errors at their fields, the preview, starting, and the live
page's funnel reaching its final numbers; the chart's data; refusals."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.dashboard.helpers import (
    add_user,
    assert_page,
    csrf_token,
    field_errors,
    log_in,
    signed_in,
)
from tests.foundation.helpers import create_provider
from tests.templates.live import eventually, live_stack
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.testing.stack import DEMO_TEMPLATE

ADMIN = "admin@example.com"


def _wizard(csrf: str, **fields: str) -> dict[str, Any]:
    body = {
        "csrf_token": csrf,
        "name": "Diwali",
        "audience.kind": "segment",
        "dnd.choice": "ignore",
        "control_percent": "0",
        "variables": "body.1 = attribute:first_name | there\nbody.2 = D-1",
    }
    body.update({name.replace("__", "."): value for name, value in fields.items()})
    return body


async def test_create_preview_start_and_watch_a_campaign(settings: Settings) -> None:
    async with live_stack(settings) as live:
        provider = await live.provider("generic", nickname="Campaign line")
        template = await live.template(provider["id"], DEMO_TEMPLATE)
        phones = [f"9198123460{n:02d}" for n in range(6)]
        for n, phone in enumerate(phones):
            await live.profile(phone, first_name=f"P{n}", city="Pune" if n < 5 else "Goa")
        segment = await live.api.post(
            "/segments",
            json={"name": "Pune", "definition": {"attribute": "city", "op": "eq", "value": "Pune"}},
        )
        assert segment.status_code == 201, segment.text
        await add_user(live.runtime, ADMIN)
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            assert (await log_in(client, ADMIN)).status_code == 303
            wizard = await client.get("/campaigns/new")
            assert_page(wizard, 200, "1. Audience", "6. Goal", "order_update (en)")
            csrf = csrf_token(wizard)

            wrong = await client.post(
                "/campaigns/new",
                data=_wizard(csrf, name="", template_id=str(template["id"]), control_percent="95"),
            )
            errors = field_errors(wrong)
            assert "required" in errors["f-name"] and "90" in errors["f-control-percent"]
            no_segment = await client.post(
                "/campaigns/new", data=_wizard(csrf, template_id=str(template["id"]))
            )
            assert field_errors(no_segment) == {"f-audience-segment-id": "choose one"}

            made = await client.post(
                "/campaigns/new",
                data=_wizard(
                    csrf,
                    template_id=str(template["id"]),
                    audience__segment_id=str(segment.json()["id"]),
                ),
            )
            assert made.status_code == 303, made.text
            url = made.headers["location"].split("?")[0]
            draft = await client.get(made.headers["location"])
            assert_page(draft, 200, "saved as a draft", "Start campaign", "Preview")
            preview = await client.post(f"{url}/preview", data={"csrf_token": csrf})
            text = assert_page(preview, 200, 'id="preview-would-send">5<', "Hi P")

            started = await client.post(f"{url}/start", data={"csrf_token": csrf})
            assert started.status_code == 303

            async def finished() -> bool:
                live_part = (await client.get(f"{url}/live")).text
                delivered = re.search(r'id="funnel-delivered"><span class="count">(\d+)', live_part)
                return bool(delivered) and delivered.group(1) == "5"

            await eventually(finished, within=30)
            page = await client.get(url)
            text = assert_page(page, 200, "Funnel", "Failures by error code", "status-chart")
            assert re.search(r'id="funnel-targeted"><span class="count">5<', text)
            assert re.search(r'id="funnel-sent"><span class="count">5<', text)
            answer = await client.get(f"{url}/series")
            assert answer.status_code == 200, answer.text[:3000]
            series = answer.json()
            assert series["series"]["delivered"][-1] == 5
            assert len(series["labels"]) == len(series["series"]["sent"])
            assert_page(await client.get("/campaigns"), 200, "Diwali")

            # A campaign that has finished cannot be resumed: a clear page, not a trace.
            again = await client.post(f"{url}/resume", data={"csrf_token": csrf})
            assert_page(again, 409, "resume")

        await add_user(live.runtime, "other@example.com", workspace="other")
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as other:
            assert (await log_in(other, "other@example.com")).status_code == 303
            assert_page(await other.get(url), 404, "another workspace")
            assert "Diwali" not in (await other.get("/campaigns")).text


async def test_pause_resume_and_cancel_a_scheduled_campaign(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    provider = await create_provider(client, auth)
    template = await client.post(
        f"/api/v1/providers/{provider['id']}/templates", json=DEMO_TEMPLATE, headers=auth
    )
    other = await client.post(
        f"/api/v1/providers/{provider['id']}/templates",
        json={**DEMO_TEMPLATE, "name": "order_update_b"},
        headers=auth,
    )
    made = await client.post(
        "/campaigns/new",
        data=_wizard(
            csrf,
            name="Later",
            template_id=str(template.json()["id"]),
            provider_id=str(provider["id"]),
            audience__kind="phones",
            audience__phones="+91 98123 45001, +91 98123 45002",
            schedule__start_at="2099-01-01T09:30",
            dnd__choice="custom",
            dnd__start="22:00",
            dnd__end="08:00",
            goal__enabled="on",
            goal__event="Purchased",
            goal__hours="48",
            target_cap="10",
            variant_b__template_id=str(other.json()["id"]),
            variant_b__percent="30",
            control_percent="10",
        ),
    )
    assert made.status_code == 303, made.text
    url = made.headers["location"].split("?")[0]
    stored = (await client.get(f"/api/v1{url}", headers=auth)).json()
    assert stored["schedule"]["start_at"].startswith("2099-01-01T04:00")  # 09:30 in Kolkata
    assert stored["goal"] == {"event": "Purchased", "window_minutes": 2880}
    assert stored["target_cap"] == 10 and stored["control_percent"] == 10
    assert [(v["name"], v["percent"]) for v in stored["variants"]] == [("A", 70), ("B", 30)]
    for action, status in (
        ("start", "scheduled"),
        ("pause", "paused"),
        ("resume", "scheduled"),
        ("cancel", "cancelled"),
    ):
        moved = await client.post(f"{url}/{action}", data={"csrf_token": csrf})
        assert moved.status_code == 303, moved.text
        text = assert_page(await client.get(moved.headers["location"]), 200)
        assert f'id="campaign-status">{status}<' in text, action
    assert "Cancel campaign" not in text and "Resume" not in text
    unknown = await client.post(f"{url}/explode", data={"csrf_token": csrf})
    assert_page(unknown, 404, "no campaign action")
