"""Profiles, segments and inbound replies in the dashboard, in-process on both databases."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from tests.callbacks.helpers import drain, generic_inbound, inbound_path
from tests.dashboard.helpers import add_user, assert_page, field_errors, log_in, signed_in
from tests.foundation.helpers import create_provider
from waconnect.runtime import Runtime

ADMIN = "admin@example.com"


async def post(client: httpx.AsyncClient, provider: dict[str, Any], body: Any) -> None:
    answer = await client.post(inbound_path(provider), json=body)
    assert answer.status_code == 200, answer.text


async def _profiles(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    rows = [
        {"identity": "c-1", "phone": "+91 98123 45671", "attributes": {"city": "Pune", "age": 31}},
        {"identity": "c-2", "phone": "+91 98123 45672", "attributes": {"city": "Delhi", "age": 45}},
        {"identity": "c-3", "phone": "+91 98123 45673", "attributes": {"city": "Pune", "age": 22}},
    ]
    made = await client.post("/api/v1/profiles/batch", json={"profiles": rows}, headers=auth)
    assert made.status_code == 200 and made.json()["created"] == 3, made.text
    event = {"identity": "c-3", "name": "Added To Cart", "properties": {"amount": 900}}
    added = await client.post("/api/v1/events/batch", json={"events": [event]}, headers=auth)
    assert added.json()["recorded"] == 1, added.text


async def test_search_profiles_and_see_a_timeline(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    await signed_in(client, runtime, ADMIN)
    await _profiles(client, auth)
    everyone = assert_page(await client.get("/profiles"), 200, "c-1", "c-2", "c-3")
    assert "city (string)" in everyone
    pune = assert_page(await client.get("/profiles?attribute=city&value=Pune"), 200, "c-1", "c-3")
    assert "c-2" not in pune
    by_phone = await client.get("/profiles?phone=%2B91+98123+45672")
    assert "c-2" in by_phone.text and "c-1" not in by_phone.text
    wrong = await client.get("/profiles?phone=12")
    assert_page(wrong, 422, "One thing needs fixing")
    assert field_errors(wrong)["f-phone"]
    profile_id = re.search(
        r'href="/profiles/(\d+)">#\d+</a></td>\s*<td data-label="Identity">c-3', everyone
    )
    assert profile_id, everyone
    detail = await client.get(f"/profiles/{profile_id.group(1)}")
    assert_page(detail, 200, "Timeline", "Added To Cart", "Pune", "919812345673")


async def test_csv_import_shows_its_progress_to_the_end(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    assert_page(await client.get("/profiles/import"), 200, "CSV file", "Column mapping")
    data = "mobile,cust,city\n+91 98123 45001,x-1,Pune\n12,x-2,Goa\n+91 98123 45003,x-3,Pune\n"
    started = await client.post(
        "/profiles/import",
        data={"csrf_token": csrf, "map": "mobile=phone\ncust=identity"},
        files={"file": ("people.csv", data.encode(), "text/csv")},
    )
    assert started.status_code == 303, started.text
    job_url = started.headers["location"]
    assert_page(await client.get(job_url), 200, "Import of people.csv", "Progress")
    for _ in range(200):  # the job runs in the server's background: wait for its end
        fragment = await client.get(job_url, headers={"HX-Request": "true"})
        if "Import finished." in fragment.text:
            break
        await asyncio.sleep(0.05)
    text = assert_page(
        fragment, 200, "Import finished.", 'id="job-created">2<', 'id="job-errors">1'
    )
    assert "hx-trigger" not in text  # a finished job stops polling
    report = await client.get(job_url + "/errors")
    assert report.status_code == 200 and "x-2" in report.text

    no_file = await client.post("/profiles/import", data={"csrf_token": csrf}, files={})
    assert_page(no_file, 415, "One thing needs fixing")
    assert "CSV file" in field_errors(no_file)["f-file"]


async def test_segment_builder_counts_live_and_saves(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    await _profiles(client, auth)
    assert_page(await client.get("/segments/new"), 200, "New segment", "3</span> profiles match")
    rows = {
        "csrf_token": csrf,
        "name": "Pune buyers",
        "mode": "builder",
        "match": "all",
        "cond.kind": ["attribute", "attribute"],
        "cond.name": ["city", "age"],
        "cond.op": ["eq", "lt"],
        "cond.value": ["Pune", "40"],
    }
    live = await client.post("/segments/count", data=rows, headers={"X-CSRF-Token": csrf})
    assert_page(live, 200, 'id="count-value">2<')
    with_event = {
        **rows,
        "cond.kind": ["attribute", "event"],
        "cond.name": ["city", "Added To Cart"],
    }
    with_event["cond.op"], with_event["cond.value"] = ["eq", "did"], ["Pune", "7"]
    live = await client.post("/segments/count", data=with_event, headers={"X-CSRF-Token": csrf})
    assert_page(live, 200, 'id="count-value">1<')
    wrong = {**rows, "cond.name": ["city", "shoe_size"]}
    live = await client.post("/segments/count", data=wrong, headers={"X-CSRF-Token": csrf})
    assert_page(live, 200, "Condition 2:", "unknown attribute")
    refused = await client.post("/segments/new", data={**wrong, "name": ""})
    errors = field_errors(refused)
    assert "required" in errors["f-name"] and "shoe_size" in errors["f-cond-1"]

    saved = await client.post("/segments/new", data=rows)
    assert saved.status_code == 303, saved.text
    page = await client.get(saved.headers["location"])
    assert_page(page, 200, "Pune buyers", "2</span> profiles match", "c-1", "c-3")
    assert_page(await client.get("/segments"), 200, "Pune buyers")
    twice = await client.post("/segments/new", data=rows)
    assert "exists already" in field_errors(twice)["f-name"]
    segment_url = saved.headers["location"]
    unticked = await client.post(f"{segment_url}/delete", data={"csrf_token": csrf})
    assert_page(unticked, 422, "Tick the confirmation box to delete the segment")
    deleted = await client.post(
        f"{segment_url}/delete", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert deleted.status_code == 303
    assert "Pune buyers" not in (await client.get("/segments")).text


async def test_inbound_replies_with_sender_and_filters(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    await signed_in(client, runtime, ADMIN)
    provider = await create_provider(client, auth, nickname="Replies line")
    await post(client, provider, generic_inbound("919812345678", "Is it in stock?"))
    tap = generic_inbound("919812345679", type="button", button={"payload": "p-1", "text": "Yes"})
    await post(client, provider, tap)
    await drain(runtime)
    everything = await client.get("/messages/inbound")
    assert_page(
        everything, 200, "Is it in stock?", "919812345678", "Yes", "payload p-1", "Replies line"
    )
    buttons = await client.get("/messages/inbound?type=button")
    assert "Yes" in buttons.text and "Is it in stock?" not in buttons.text
    sender = await client.get("/messages/inbound?from=%2B91+98123+45678")
    assert "Is it in stock?" in sender.text and "payload p-1" not in sender.text
    assert field_errors(await client.get("/messages/inbound?type=fax"))["f-type"]

    # Another workspace sees none of it.
    await add_user(runtime, "other@example.com", workspace="other")
    client.cookies.clear()
    await log_in(client, "other@example.com")
    assert "Is it in stock?" not in (await client.get("/messages/inbound")).text
    assert "c-1" not in (await client.get("/profiles")).text
