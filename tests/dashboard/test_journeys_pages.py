"""Journeys in the dashboard, in-process on both databases: the editor with problems drawn at
their node, the graph with counts, simulation, publish / pause / resume / stop, refusals."""

from __future__ import annotations

import httpx

from tests.dashboard.helpers import add_user, assert_page, log_in, signed_in
from tests.foundation.helpers import create_provider
from waconnect.runtime import Runtime
from waconnect.testing.stack import DEMO_TEMPLATE

ADMIN = "admin@example.com"
GOOD = """name: Welcome
trigger: {type: api}
start: hello
nodes:
  hello:
    type: send_template
    template: {name: order_update, language: en}
    variables:
      body.1: {attribute: first_name, default: there}
      body.2: {literal: W-1}
    next: pause
  pause: {type: wait, duration: 2h, next: done}
  done: {type: exit}
"""


async def test_edit_simulate_and_run_a_journey_from_the_dashboard(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    provider = await create_provider(client, auth)
    made = await client.post(
        f"/api/v1/providers/{provider['id']}/templates", json=DEMO_TEMPLATE, headers=auth
    )
    assert made.status_code == 201, made.text
    profile = await client.post(
        "/api/v1/profiles/batch",
        json={
            "profiles": [
                {
                    "identity": "j-1",
                    "phone": "+91 98123 49001",
                    "attributes": {"first_name": "Ravi"},
                }
            ]
        },
        headers=auth,
    )
    assert profile.status_code == 200, profile.text

    assert_page(await client.get("/journeys/new"), 200, "New journey", "send_template")
    unreadable = await client.post(
        "/journeys/new", data={"csrf_token": csrf, "definition": "a: [b"}
    )
    assert_page(unreadable, 422, "cannot be read")
    broken = GOOD.replace("next: pause", "next: nowhere").replace("duration: 2h", "duration: soon")
    refused = await client.post("/journeys/new", data={"csrf_token": csrf, "definition": broken})
    text = assert_page(refused, 422, "problems to fix", 'id="node-hello"', "nowhere")
    hello = text[text.index('id="node-hello"') :].split("</section>")[0]
    assert 'class="node invalid"' in text and "field-error" in hello
    pause = text[text.index('id="node-pause"') :].split("</section>")[0]
    assert "duration" in pause  # the wait's own problem is drawn on it

    created = await client.post("/journeys/new", data={"csrf_token": csrf, "definition": GOOD})
    assert created.status_code == 303, created.text
    url = created.headers["location"].split("?")[0]
    page = await client.get(created.headers["location"])
    assert_page(page, 200, "saved as a draft", "Publish", "template order_update (en)", "wait 2h")

    simulated = await client.post(
        f"{url}/simulate", data={"csrf_token": csrf, "who": "j-1", "script": "- after: 3h"}
    )
    text = assert_page(simulated, 200, "simulation-outcome", "hello", "pause", "done")
    assert "Ravi" in text  # the message it would send, personalized
    nobody = await client.post(f"{url}/simulate", data={"csrf_token": csrf, "who": "nobody"})
    assert_page(nobody, 200, "could not run", "not found")

    for action, status in (("publish", "live"), ("pause", "paused"), ("resume", "live")):
        moved = await client.post(f"{url}/{action}", data={"csrf_token": csrf})
        assert moved.status_code == 303, moved.text
        assert f'id="journey-status">{status}<' in (await client.get(url)).text
    entered = await client.post(
        f"/api/v1{url}/entries", json={"profiles": [{"identity": "j-1"}]}, headers=auth
    )
    assert entered.status_code == 200, entered.text
    listed = assert_page(await client.get("/journeys"), 200, "Welcome", "live")
    assert '<td data-label="Entered">1</td>' in listed
    stopped = await client.post(f"{url}/stop", data={"csrf_token": csrf})
    assert stopped.status_code == 303
    assert_page(await client.get(stopped.headers["location"]), 200, "Stopped: every profile")
    again = await client.post(f"{url}/stop", data={"csrf_token": csrf})
    assert_page(again, 409, "stopped already")

    await add_user(runtime, "other@example.com", workspace="other")
    client.cookies.clear()
    await log_in(client, "other@example.com")
    assert_page(await client.get(url), 404, "another workspace")
