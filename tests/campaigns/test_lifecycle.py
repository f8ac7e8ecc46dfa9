"""A campaign from draft to completed through the API: preview, skips by reason, the stats sum,
the recipient list, pause, resume, cancel, and the template in-use guard."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.callbacks.helpers import drain, generic_inbound, inbound_path
from tests.campaigns.helpers import (
    CAMPAIGNS,
    NAME,
    Sending,
    act,
    add_profiles,
    create,
    finish,
    provider_with_templates,
    recipients,
    run_loop,
    segment,
    show,
    sum_identity,
    until,
)
from waconnect.runtime import Runtime


def _mixed(n: int) -> dict[str, Any]:
    """Profile n: every 10th unsubscribed, every 7th without a first name."""
    row: dict[str, Any] = {}
    if n % 10 == 3:
        row["subscription"] = "unsubscribed"
    if n % 7 == 5:
        row["attributes"] = {"city": "Pune"}
    return row


async def test_campaign_runs_to_completed_and_counts_every_recipient_once(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    provider, templates = await provider_with_templates(client, auth)
    await add_profiles(client, auth, 40, make=_mixed)
    # A profile without a phone.
    answer = await client.post(
        "/api/v1/profiles/batch",
        json={"profiles": [{"identity": "nophone", "attributes": {"first_name": "N"}}]},
        headers=auth,
    )
    assert answer.status_code == 200
    segment_id = await segment(client, auth)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"segment_id": segment_id},
        custom_props={"order_id": "A-991"},
        quick_reply_payloads={"0": "diwali-stop"},
    )
    assert campaign["status"] == "draft"

    preview = await client.post(f"{CAMPAIGNS}/{campaign['id']}/preview", headers=auth)
    assert preview.status_code == 200, preview.text
    dry = preview.json()
    unsubscribed = sum(1 for n in range(40) if n % 10 == 3)
    nameless = sum(1 for n in range(40) if n % 7 == 5 and n % 10 != 3)
    assert dry["audience"] == 41
    assert dry["skipped"] == {
        "no_phone": 1,
        "unsubscribed": unsubscribed,
        "missing_variable": nameless,
    }
    assert dry["would_send"] == 41 - 1 - unsubscribed - nameless
    assert len(dry["samples"]) == 5
    assert dry["samples"][0]["text"].startswith("Hi P")
    # The dry run sent nothing and recorded nobody.
    assert (await show(client, auth, campaign["id"]))["stats"]["targeted"] == 0

    started = await act(client, auth, campaign["id"], "start")
    assert started["status"] == "running"
    await run_loop(runtime)
    stats = (await show(client, auth, campaign["id"]))["stats"]
    assert stats["targeted"] == 41 and stats["queued"] == dry["would_send"]
    assert stats["skipped"]["missing_variable"] == nameless
    assert sum_identity(stats) == stats["targeted"]

    async with Sending(runtime) as sending:

        async def all_sent() -> bool:
            return (await show(client, auth, campaign["id"]))["stats"]["sent"] == dry["would_send"]

        await until(all_sent, 30, "every message to be sent")
    await finish(runtime)
    final = await show(client, auth, campaign["id"])
    assert final["status"] == "completed"
    assert sum_identity(final["stats"]) == final["stats"]["targeted"] == 41
    # What went out: the personalized body, the custom props, the quick-reply payload.
    body = orjson.loads(sending.provider.requests[0].body)
    assert body["components"][-1] == {"customProps": [{"order_id": "A-991"}]}
    button = next(c for c in body["components"] if c.get("type") == "button")
    assert button["parameters"] == [{"type": "payload", "payload": "diwali-stop"}]
    phones = [orjson.loads(r.body)["to"] for r in sending.provider.requests]
    assert len(phones) == len(set(phones)) == dry["would_send"]

    skipped = await recipients(client, auth, campaign["id"], "skipped")
    assert {r["skip_reason"] for r in skipped} == {"no_phone", "unsubscribed", "missing_variable"}
    assert all(
        r["skip_detail"] == "body.1" for r in skipped if r["skip_reason"] == "missing_variable"
    )
    sent = await recipients(client, auth, campaign["id"], "sent")
    assert len(sent) == dry["would_send"] and all(r["message_id"] for r in sent)

    # A customer taps the quick reply: counted beside the states, never as one.
    tap = generic_inbound(
        sent[0]["phone"],
        type="button",
        context={"id": f"{sent[0]['message_id']}-1"},
        button={"payload": "diwali-stop", "text": "Stop"},
        id="wamid.tap",
    )
    answer = await client.post(inbound_path(provider), json=tap)
    assert answer.status_code == 200, answer.text
    await drain(runtime)
    after = await show(client, auth, campaign["id"])
    assert after["stats"]["replied"] == 1 and after["variants"][0]["stats"]["replied"] == 1
    assert sum_identity(after["stats"]) == 41


async def test_identities_audience_names_unknown_ones(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    _provider, templates = await provider_with_templates(client, auth)
    await add_profiles(client, auth, 3)
    campaign = await create(
        client,
        auth,
        template_id=templates["greeting"],
        variables=NAME,
        audience={"identities": ["u0", "u2", "nobody"]},
    )
    await act(client, auth, campaign["id"], "start")
    await run_loop(runtime)
    stats = (await show(client, auth, campaign["id"]))["stats"]
    assert stats["queued"] == 2 and stats["skipped"] == {"unknown_identity": 1}
    (skipped,) = await recipients(client, auth, campaign["id"], "skipped")
    assert skipped["skip_detail"] == "nobody" and skipped["phone"] is None
