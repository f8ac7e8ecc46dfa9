"""Saving journeys: invalid graphs are refused naming the node; versions; workspaces apart."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.conftest import new_key
from tests.journeys.helpers import (
    JOURNEYS,
    abandoned_cart,
    add_provider,
    create_live,
    feedback,
    payment,
)
from waconnect.runtime import Runtime


async def _refused(
    client: httpx.AsyncClient, auth: dict[str, str], definition: dict[str, Any]
) -> dict[str, str]:
    answer = await client.post(JOURNEYS, json=definition, headers=auth)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    fields: dict[str, str] = error["fields"]
    return fields


async def test_invalid_graphs_are_refused_naming_the_node(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await add_provider(client, auth)

    unreachable = abandoned_cart()
    unreachable["nodes"]["orphan"] = {"type": "exit"}
    fields = await _refused(client, auth, unreachable)
    assert "cannot be reached" in fields["nodes.orphan"]

    dangling = abandoned_cart()
    del dangling["nodes"]["bought"]["exits"]["no"]
    fields = await _refused(client, auth, dangling)
    assert "goes nowhere" in fields["nodes.bought.exits.no"]

    wrong_target = abandoned_cart()
    wrong_target["nodes"]["remind"]["next"] = "nowhere"
    fields = await _refused(client, auth, wrong_target)
    assert "not a node" in fields["nodes.remind.exits.next"]

    cycle = abandoned_cart()
    cycle["nodes"]["lost"] = {
        "type": "branch",
        "on": "attribute",
        "attribute": "vip",
        "exits": {"yes": "remind", "no": "converted"},
    }
    cycle["nodes"]["bought"]["exits"]["no"] = "lost"
    cycle["nodes"]["remind"]["next"] = "lost"
    fields = await _refused(client, auth, cycle)
    assert any("cycle without a wait" in why for why in fields.values()), fields
    assert {"nodes.lost", "nodes.remind"} & set(fields), fields

    unknown_template = abandoned_cart()
    unknown_template["nodes"]["remind"]["template"]["name"] = "no_such_template"
    fields = await _refused(client, auth, unknown_template)
    assert "no template 'no_such_template'" in fields["nodes.remind.template"]

    bad_variables = feedback()
    bad_variables["nodes"]["ask"]["variables"] = {"body.7": {"literal": "x"}}
    fields = await _refused(client, auth, bad_variables)
    assert any(key.startswith("nodes.ask.variables") for key in fields), fields

    no_timeout = feedback()
    del no_timeout["nodes"]["answer"]["timeout"]
    fields = await _refused(client, auth, no_timeout)
    assert "nodes.answer.timeout" in fields

    bad_type = abandoned_cart()
    bad_type["nodes"]["remind"]["type"] = "teleport"
    fields = await _refused(client, auth, bad_type)
    assert "nodes.remind.type" in fields


async def test_an_unapproved_template_is_refused_on_save(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    provider = await add_provider(client, auth)
    templates = await client.get(f"/api/v1/providers/{provider['id']}/templates", headers=auth)
    cart = (
        next(t for t in templates.json() if t["name"] == "cart_reminder")
        if isinstance(templates.json(), list)
        else next(t for t in templates.json()["items"] if t["name"] == "cart_reminder")
    )
    paused = await client.patch(
        f"/api/v1/templates/{cart['id']}", json={"status": "PAUSED"}, headers=auth
    )
    assert paused.status_code == 200, paused.text
    fields = await _refused(client, auth, abandoned_cart())
    assert "PAUSED, not APPROVED" in fields["nodes.remind.template"]


async def test_publish_makes_versions_and_a_live_journey_guards_its_templates(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    provider = await add_provider(client, auth)
    journey = await create_live(client, auth, abandoned_cart())
    assert journey["status"] == "live" and journey["live_version"] == 1

    edited = copy.deepcopy(abandoned_cart())
    edited["nodes"]["wait_1h"]["duration"] = "2h"
    saved = await client.put(f"{JOURNEYS}/{journey['id']}", json=edited, headers=auth)
    assert saved.status_code == 200, saved.text
    assert saved.json()["live_version"] == 1  # the draft changed, not the live version
    published = await client.post(f"{JOURNEYS}/{journey['id']}/publish", headers=auth)
    assert published.json()["live_version"] == 2 and published.json()["versions"] == 2

    templates = await client.get(f"/api/v1/providers/{provider['id']}/templates", headers=auth)
    items = templates.json() if isinstance(templates.json(), list) else templates.json()["items"]
    cart = next(t for t in items if t["name"] == "cart_reminder")
    blocked = await client.patch(
        f"/api/v1/templates/{cart['id']}", json={"status": "PAUSED"}, headers=auth
    )
    assert blocked.status_code == 409, blocked.text
    assert "Abandoned cart" in blocked.json()["error"]["message"]

    for action, status in (("pause", "paused"), ("resume", "live"), ("stop", "stopped")):
        changed = await client.post(f"{JOURNEYS}/{journey['id']}/{action}", headers=auth)
        assert changed.status_code == 200, changed.text
        assert changed.json()["status"] == status
    again = await client.post(f"{JOURNEYS}/{journey['id']}/resume", headers=auth)
    assert again.status_code == 409
    # Stopped: the template is free again.
    freed = await client.patch(
        f"/api/v1/templates/{cart['id']}", json={"status": "PAUSED"}, headers=auth
    )
    assert freed.status_code == 200, freed.text


async def test_a_workspace_never_sees_another_workspaces_journeys(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await add_provider(client, auth)
    journey = await create_live(client, auth, payment())
    stranger = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    assert (await client.get(f"{JOURNEYS}/{journey['id']}", headers=stranger)).status_code == 404
    assert (
        await client.post(f"{JOURNEYS}/{journey['id']}/pause", headers=stranger)
    ).status_code == 404
    listed = await client.get(JOURNEYS, headers=stranger)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert (await client.get(JOURNEYS)).status_code == 401
