"""``/api/v1/segments``: save, count and preview definitions; refusals that name the problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.profiles.helpers import SEGMENTS, assert_error, count, record, upsert
from waconnect.runtime import Runtime

# The shape from the issue, verbatim.
EXAMPLE = {
    "all": [
        {"attribute": "city", "op": "eq", "value": "Pune"},
        {
            "any": [
                {
                    "event": "Added To Cart",
                    "did": True,
                    "min_count": 1,
                    "within_days": 7,
                    "where": [{"property": "amount", "op": "gt", "value": 100}],
                },
                {"subscription": "subscribed"},
            ]
        },
    ]
}


async def _people(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await upsert(
        client,
        auth,
        {"identity": "a", "phone": "+919812300001", "attributes": {"city": "Pune"}},
        {
            "identity": "b",
            "phone": "+919812300002",
            "attributes": {"city": "Pune"},
            "subscription": "unsubscribed",
        },
        {
            "identity": "c",
            "phone": "+919812300003",
            "attributes": {"city": "Pune"},
            "subscription": "unsubscribed",
        },
        {"identity": "d", "attributes": {"city": "Delhi", "signup": "2024-01-01"}},
    )
    await record(
        client,
        auth,
        {"identity": "b", "name": "Added To Cart", "properties": {"amount": 150}},
        {"identity": "c", "name": "Added To Cart", "properties": {"amount": 50}},
    )


async def test_save_count_preview_delete(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await _people(client, auth)
    created = await client.post(
        SEGMENTS, json={"name": "Pune carts", "definition": EXAMPLE}, headers=auth
    )
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["name"] == "Pune carts" and segment["definition"] == EXAMPLE
    sid = segment["id"]
    assert (await client.get(f"{SEGMENTS}/{sid}", headers=auth)).json() == segment
    assert [s["id"] for s in (await client.get(SEGMENTS, headers=auth)).json()] == [sid]

    counted = await client.get(f"{SEGMENTS}/{sid}/count", headers=auth)
    assert counted.status_code == 200 and counted.json() == {"count": 2}
    preview = (
        await client.get(f"{SEGMENTS}/{sid}/preview", params={"limit": 1}, headers=auth)
    ).json()
    assert preview["count"] == 2
    assert [p["identity"] for p in preview["items"]] == ["b"]  # newest first, up to limit
    assert preview["items"][0]["subscription"]["state"] == "unsubscribed"

    duplicate = await client.post(
        SEGMENTS, json={"name": "Pune carts", "definition": {"all": []}}, headers=auth
    )
    assert_error(duplicate, 409, says="exists already")
    assert (await client.delete(f"{SEGMENTS}/{sid}", headers=auth)).status_code == 204
    assert_error(await client.get(f"{SEGMENTS}/{sid}", headers=auth), 404)
    assert_error(await client.get(f"{SEGMENTS}/{sid}/count", headers=auth), 404)
    assert_error(await client.get(f"{SEGMENTS}/{2**70}/preview", headers=auth), 404)


async def test_empty_groups_and_negation(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await _people(client, auth)
    assert await count(client, auth, {"all": []}) == 4
    assert await count(client, auth, {"any": []}) == 0
    assert await count(client, auth, {"not": {"any": []}}) == 4
    # A missing attribute: every comparison is false, ne included; not() flips exactly.
    assert (
        await count(client, auth, {"attribute": "signup", "op": "ne", "value": "2020-01-01"}) == 1
    )
    assert (
        await count(
            client, auth, {"not": {"attribute": "signup", "op": "eq", "value": "2024-01-01"}}
        )
        == 3
    )
    assert await count(client, auth, {"attribute": "signup", "op": "exists", "value": False}) == 3
    # No phone, no contact: in neither subscription state.
    assert await count(client, auth, {"subscription": "subscribed"}) == 1
    assert await count(client, auth, {"subscription": "unsubscribed"}) == 2
    assert await count(client, auth, {"country": ["IN", "US"]}) == 3


async def test_now_comes_from_the_clock(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    runtime.clock.set(datetime(2024, 6, 15, 12, 0, tzinfo=UTC))
    await upsert(client, auth, {"identity": "a", "attributes": {"signup": "2024-06-10T12:00:00Z"}})
    await record(client, auth, {"identity": "a", "name": "Opened", "ts": "2024-06-14T12:00:00Z"})
    recent = {"attribute": "signup", "op": "within_days", "value": 7}
    opened = {"event": "Opened", "within_days": 2}
    assert await count(client, auth, recent) == 1 and await count(client, auth, opened) == 1
    runtime.clock.advance(timedelta(days=1, seconds=1).total_seconds())
    assert await count(client, auth, recent) == 1 and await count(client, auth, opened) == 0
    runtime.clock.advance(timedelta(days=1).total_seconds())
    assert await count(client, auth, recent) == 0


@pytest.mark.parametrize(
    ("definition", "field", "says"),
    [
        ({"attribute": "city", "op": "equals", "value": "x"}, "definition.op", "'equals'"),
        ({"attribute": "nope", "op": "eq", "value": 1}, "definition.attribute", "'nope'"),
        (
            {"all": [{"attribute": "city", "op": "gt", "value": 3}]},
            "definition.all[0].value",
            "string",
        ),
        (
            {"all": [{"attribute": "city", "op": "within_days", "value": 3}]},
            "definition.all[0].op",
            "string attribute",
        ),
        (
            {"any": [{"event": "X", "where": [{"property": "a", "op": "like", "value": 1}]}]},
            "definition.any[0].where[0].op",
            "'like'",
        ),
        ({"not": {"event": "X", "did": False, "min_count": 2}}, "definition.not", "did: false"),
        (
            {"event": "X", "within_days": 3, "between": ["2024-01-01", "2024-02-01"]},
            "definition",
            "not both",
        ),
        (
            {"event": "X", "between": ["2024-02-01", "2024-01-01"]},
            "definition.between",
            "before the start",
        ),
        ({"event": "X", "min_count": 3, "max_count": 1}, "definition.max_count", "below"),
        ({"subscription": "maybe"}, "definition.subscription", "subscribed"),
        ({"country": "XX"}, "definition.country", "ISO 3166"),
        (
            {"attribute": "city", "op": "eq", "value": "x", "extra": 1},
            "definition.extra",
            "unknown key",
        ),
        ({"all": [{"any": [{"what": 1}]}]}, "definition.all[0].any[0]", "each condition is one of"),
        ({"attribute": "city", "op": "in", "value": "Pune"}, "definition.value", "list"),
        ({"attribute": "city", "op": "eq", "value": "a\x00b"}, "definition.value", "NUL"),
    ],
)
async def test_bad_definitions_are_422_naming_the_problem(
    client: httpx.AsyncClient, auth: dict[str, str], definition: Any, field: str, says: str
) -> None:
    await _people(client, auth)
    for response in (
        await client.post(SEGMENTS, json={"name": "x", "definition": definition}, headers=auth),
        await client.post(f"{SEGMENTS}/count", json={"definition": definition}, headers=auth),
    ):
        error = assert_error(response, 422, "validation_error")
        assert field in error["fields"], error
        assert says in error["fields"][field], error
        assert field in error["message"]
    assert (await client.get(SEGMENTS, headers=auth)).json() == []
