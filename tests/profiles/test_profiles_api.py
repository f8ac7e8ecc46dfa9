"""``POST /api/v1/profiles/batch`` and reading profiles: upsert by identity or phone, per-row
errors, attribute types kept consistent, numbers from several countries, search and pages."""

from __future__ import annotations

import httpx
import pytest

from tests.profiles.helpers import (
    PROFILES,
    assert_error,
    profile,
    row_error,
    statuses,
    upsert,
)


async def test_upsert_by_identity_then_by_phone(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await upsert(
        client,
        auth,
        {"identity": "c-1", "phone": "+91 98123 45678", "attributes": {"city": "Pune"}},
        {"phone": "98123 45679", "attributes": {"city": "Delhi"}},
    )
    assert statuses(first) == ["created", "created"]
    assert (first["created"], first["updated"], first["rejected"]) == (2, 0, 0)
    one, two = (row["id"] for row in first["results"])

    again = await upsert(
        client,
        auth,
        # by identity: attributes merge, null removes one
        {"identity": "c-1", "attributes": {"age": 31, "city": None}},
        # by phone (any form): the profile without identity takes this one
        {"identity": "c-2", "phone": "+919812345679", "attributes": {"plan": "gold"}},
    )
    assert statuses(again) == ["updated", "updated"]
    assert [row["id"] for row in again["results"]] == [one, two]

    first_profile = await profile(client, auth, one)
    assert first_profile["identity"] == "c-1"
    assert first_profile["phone"] == "919812345678"
    assert first_profile["country"] == "IN"
    assert first_profile["attributes"] == {"age": 31}
    second = await profile(client, auth, two)
    assert second["identity"] == "c-2"
    assert second["attributes"] == {"city": "Delhi", "plan": "gold"}


async def test_rows_of_one_batch_build_on_each_other(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    batch = await upsert(
        client,
        auth,
        {"identity": "a", "attributes": {"n": 1}},
        {"identity": "a", "phone": "+919812300001", "attributes": {"m": 2}},
        {"phone": "+919812300001", "attributes": {"n": 3}},
    )
    assert statuses(batch) == ["created", "updated", "updated"]
    ids = {row["id"] for row in batch["results"]}
    assert len(ids) == 1
    found = await profile(client, auth, ids.pop())
    assert found["attributes"] == {"n": 3, "m": 2}
    assert found["phone"] == "919812300001"


async def test_a_bad_row_is_its_own_error_and_good_rows_are_kept(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    batch = await upsert(
        client,
        auth,
        {"identity": "ok-1", "attributes": {"age": 30}},
        {"attributes": {"age": 31}},  # neither identity nor phone
        {"identity": "x", "phone": "12"},  # not a phone number
        {"identity": "y", "unknown": 1},  # a field we do not know
        {"identity": "z", "timezone": "Mars/Base"},
        {"identity": "w", "attributes": {"age": "thirty"}},  # clashes with row 0's type
        "not an object",
        {"identity": "ok-2", "attributes": {"age": 32}},
    )
    assert statuses(batch) == [
        "created",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "created",
    ]
    assert (batch["created"], batch["rejected"]) == (2, 6)
    assert "identity or phone" in row_error(batch, 1)["message"]
    assert row_error(batch, 2)["code"] == "invalid_phone"
    assert row_error(batch, 2)["message"].startswith("phone: ")
    assert "not a valid phone number" in row_error(batch, 2)["fields"]["phone"]
    assert "unknown field" in row_error(batch, 3)["message"]
    assert "IANA" in row_error(batch, 4)["message"]
    clash = row_error(batch, 5)
    assert clash["code"] == "type_clash"
    assert "'age'" in clash["message"] and "numbers" in clash["message"]
    assert "thirty" in clash["message"]


@pytest.mark.parametrize(
    ("first", "second", "says"),
    [
        (42, "42", "numbers"),
        ("Pune", 7, "strings"),
        (True, "yes", "booleans"),
        ("2024-05-01", "May 1st", "dates"),
        (["a", "b"], "a", "lists of strings"),
        ("x", ["x"], "strings"),
        (1.5, False, "numbers"),
    ],
)
async def test_type_clashes_are_row_errors_never_casts(
    client: httpx.AsyncClient, auth: dict[str, str], first: object, second: object, says: str
) -> None:
    await upsert(client, auth, {"identity": "first", "attributes": {"thing": first}})
    later = await upsert(client, auth, {"identity": "second", "attributes": {"thing": second}})
    error = row_error(later, 0)
    assert error["code"] == "type_clash", error
    assert says in error["message"]
    response = await client.get("/api/v1/attributes", headers=auth)
    assert [a["name"] for a in response.json()] == ["thing"]


async def test_attribute_values_and_types(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    batch = await upsert(
        client,
        auth,
        {
            "identity": "t",
            "attributes": {
                "name": "Asha",
                "score": 9.5,
                "vip": False,
                "signup": "2024-05-01T10:30:00+05:30",
                "birthday": "1990-01-31",
                "tags": ["new", "app"],
            },
        },
        {"identity": "u", "attributes": {"nested": {"a": 1}}},
        {"identity": "v", "attributes": {"tags": ["ok", 3]}},
        {"identity": "w", "attributes": {'bad"name': 1}},
        {"identity": "x", "attributes": {"big": 2**70}},
    )
    assert statuses(batch) == ["created", "error", "error", "error", "error"]
    found = await profile(client, auth, batch["results"][0]["id"])
    assert found["attributes"] == {
        "name": "Asha",
        "score": 9.5,
        "vip": False,
        # dates are kept in UTC, to the second
        "signup": "2024-05-01T05:00:00Z",
        "birthday": "1990-01-31T00:00:00Z",
        "tags": ["new", "app"],
    }
    types = {
        a["name"]: a["type"] for a in (await client.get("/api/v1/attributes", headers=auth)).json()
    }
    assert types == {
        "name": "string",
        "score": "number",
        "vip": "boolean",
        "signup": "date",
        "birthday": "date",
        "tags": "list",
    }


async def test_declaring_a_type_before_values(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.put("/api/v1/attributes/code", json={"type": "string"}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "string"
    # "2024-05-01" would have made it a date; declared a string, it stays text.
    batch = await upsert(client, auth, {"identity": "d", "attributes": {"code": "2024-05-01"}})
    assert statuses(batch) == ["created"]
    response = await client.put("/api/v1/attributes/code", json={"type": "number"}, headers=auth)
    assert_error(response, 409, says="already a string")
    response = await client.put("/api/v1/attributes/code", json={"type": "colour"}, headers=auth)
    assert_error(response, 422)


@pytest.mark.parametrize(
    ("default_country", "raw", "phone", "country"),
    [
        ("IN", "098123 45678", "919812345678", "IN"),
        ("IN", "+91 (981) 234-5678", "919812345678", "IN"),
        ("IN", "919812345678", "919812345678", "IN"),
        ("IN", "+1 415 555 2671", "14155552671", "US"),
        ("IN", "+1 416 555 0123", "14165550123", "CA"),
        ("IN", "+44 20 7946 0958", "442079460958", "GB"),
        ("IN", "+7 701 123 4567", "77011234567", "KZ"),
        ("IN", "+971 50 123 4567", "971501234567", "AE"),
        ("BR", "(11) 96123-4567", "5511961234567", "BR"),
        ("US", "(415) 555-2671", "14155552671", "US"),
        ("AE", "050 123 4567", "971501234567", "AE"),
    ],
)
async def test_numbers_from_several_countries(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    default_country: str,
    raw: str,
    phone: str,
    country: str,
) -> None:
    patched = await client.patch(
        "/api/v1/workspace", json={"default_country": default_country}, headers=auth
    )
    assert patched.status_code == 200
    batch = await upsert(client, auth, {"phone": raw})
    assert statuses(batch) == ["created"], batch
    found = await profile(client, auth, batch["results"][0]["id"])
    assert (found["phone"], found["country"]) == (phone, country)
    # The same number in another form is the same profile.
    again = await upsert(client, auth, {"phone": "+" + phone, "attributes": {"seen": True}})
    assert again["results"][0] == {**batch["results"][0], "status": "updated"}


async def test_a_phone_belongs_to_one_profile(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await upsert(
        client,
        auth,
        {"identity": "a", "phone": "+919812300001"},
        {"identity": "b", "phone": "+919812300002"},
    )
    taken = await upsert(client, auth, {"identity": "b", "phone": "+919812300001"})
    error = row_error(taken, 0)
    assert error["code"] == "phone_taken" and "'a'" in error["message"]
    other = await upsert(client, auth, {"identity": "c", "phone": "+919812300001"})
    assert row_error(other, 0)["code"] == "phone_taken"
    # Moving a number: free it first, then give it; two profiles may swap in one batch.
    swapped = await upsert(
        client,
        auth,
        {"identity": "a", "phone": "+919812300009"},
        {"identity": "b", "phone": "+919812300001"},
        {"identity": "a", "phone": "+919812300002"},
    )
    assert statuses(swapped) == ["updated", "updated", "updated"]
    page = (await client.get(PROFILES, headers=auth)).json()
    assert {p["identity"]: p["phone"] for p in page["items"]} == {
        "a": "919812300002",
        "b": "919812300001",
    }


async def test_subscription_is_held_on_the_contact(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.patch(
        "/api/v1/workspace", json={"new_contact_subscription": "unsubscribed"}, headers=auth
    )
    batch = await upsert(
        client,
        auth,
        {"identity": "new", "phone": "+919812300001"},
        {"identity": "asked", "phone": "+919812300002", "subscription": "subscribed"},
        {"identity": "no-phone", "subscription": "subscribed"},
    )
    assert statuses(batch)[:2] == ["created", "created"]
    assert row_error(batch, 2)["code"] == "no_phone"
    new = await profile(client, auth, batch["results"][0]["id"])
    assert new["subscription"]["state"] == "unsubscribed"
    assert new["subscription"]["source"] == "default"
    asked = await profile(client, auth, batch["results"][1]["id"])
    assert asked["subscription"]["state"] == "subscribed"
    assert asked["subscription"]["source"] == "api"
    assert asked["subscription"]["changed_at"] is not None
    later = await upsert(client, auth, {"identity": "new", "subscription": "subscribed"})
    assert statuses(later) == ["updated"]
    assert (await profile(client, auth, new["id"]))["subscription"]["state"] == "subscribed"


async def test_contact_links_to_its_profile(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: object
) -> None:
    from sqlalchemy import select

    from waconnect.messaging.models import Contact
    from waconnect.runtime import Runtime

    assert isinstance(runtime, Runtime)
    batch = await upsert(client, auth, {"identity": "a", "phone": "+919812300001"})
    moved = await upsert(client, auth, {"identity": "a", "phone": "+919812300002"})
    assert statuses(moved) == ["updated"]
    async with runtime.sessions() as session:
        links = dict((await session.execute(select(Contact.phone, Contact.profile_id))).all())
    pid = batch["results"][0]["id"]
    # The number it left stays a contact (its subscription still counts) without a profile:
    # a message from it is an untracked sender again.
    assert links == {"919812300001": None, "919812300002": pid}


async def test_list_search_and_pages(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    rows = [
        {
            "identity": f"p{i}",
            "phone": f"+9198123000{i:02d}",
            "attributes": {"city": "Pune" if i % 2 else "Delhi", "n": i, "tags": [f"t{i % 3}"]},
        }
        for i in range(7)
    ]
    await upsert(client, auth, *rows)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(PROFILES, params=params, headers=auth)).json()
        seen += [p["identity"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i}" for i in reversed(range(7))]

    async def search(**params: str) -> list[str]:
        response = await client.get(PROFILES, params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [p["identity"] for p in response.json()["items"]]

    assert await search(phone="98123 00003") == ["p3"]
    assert await search(identity="p5") == ["p5"]
    assert await search(attribute="city", value="Pune") == ["p5", "p3", "p1"]
    assert await search(attribute="n", value="4") == ["p4"]
    assert await search(attribute="tags", value="t1") == ["p4", "p1"]
    assert len(await search(attribute="n")) == 7
    assert_error(await client.get(PROFILES, params={"attribute": "nope"}, headers=auth), 422)
    assert_error(
        await client.get(PROFILES, params={"attribute": "n", "value": "four"}, headers=auth),
        422,
        says="not a number",
    )
    assert_error(await client.get(PROFILES, params={"phone": "12"}, headers=auth), 422)
    assert_error(await client.get(PROFILES, params={"cursor": "x"}, headers=auth), 422)


async def test_not_found_and_other_workspaces(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: object
) -> None:
    from tests.conftest import new_key
    from waconnect.runtime import Runtime

    assert isinstance(runtime, Runtime)
    batch = await upsert(client, auth, {"identity": "mine"})
    pid = batch["results"][0]["id"]
    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    assert_error(await client.get(f"{PROFILES}/{pid}", headers=other), 404, "not_found")
    assert_error(await client.delete(f"{PROFILES}/{pid}", headers=other), 404)
    assert (await client.get(PROFILES, headers=other)).json()["items"] == []
    for bad in ("999999", str(2**70)):
        assert_error(await client.get(f"{PROFILES}/{bad}", headers=auth), 404)
    # The same identity in another workspace is another profile.
    theirs = await upsert(client, other, {"identity": "mine"})
    assert statuses(theirs) == ["created"] and theirs["results"][0]["id"] != pid


async def test_batch_limits(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    too_many = {"profiles": [{"identity": str(i)} for i in range(1001)]}
    assert_error(await client.post(f"{PROFILES}/batch", json=too_many, headers=auth), 422)
    assert_error(await client.post(f"{PROFILES}/batch", json={"profiles": []}, headers=auth), 422)
    full = {"profiles": [{"identity": str(i), "attributes": {"i": i}} for i in range(1000)]}
    response = await client.post(f"{PROFILES}/batch", json=full, headers=auth)
    assert response.status_code == 200 and response.json()["created"] == 1000


async def test_timeline_has_events_messages_and_replies(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: object
) -> None:
    from sqlalchemy import select

    from tests.profiles.helpers import record
    from tests.profiles.test_erasure import send_messages
    from waconnect.messaging.models import Contact, InboundRecord
    from waconnect.runtime import Runtime

    assert isinstance(runtime, Runtime)
    batch = await upsert(client, auth, {"identity": "a", "phone": "+919812300001"})
    pid = batch["results"][0]["id"]
    await record(client, auth, {"identity": "a", "name": "Viewed", "ts": "2020-01-01T00:00:00Z"})
    (message_id,) = await send_messages(client, auth, ["+919812300001"])
    async with runtime.sessions() as session:
        contact_id = await session.scalar(select(Contact.id).where(Contact.phone == "919812300001"))
        assert contact_id is not None
        session.add(
            InboundRecord(
                workspace_id=1,
                provider_id=1,
                contact_id=contact_id,
                from_phone="919812300001",
                type="text",
                text="Thanks!",
                reply_to_message_id=message_id,
                payload={},
                received_at=runtime.clock.now(),
            )
        )
        await session.commit()
    detail = await profile(client, auth, pid)
    kinds = [item["kind"] for item in detail["timeline"]]
    assert kinds == ["inbound", "message", "event"]  # newest first
    inbound, message, event = detail["timeline"]
    assert inbound["detail"]["text"] == "Thanks!"
    assert inbound["detail"]["reply_to_message_id"] == message_id
    assert message["detail"]["id"] == message_id and message["detail"]["status"] == "queued"
    assert event["detail"]["name"] == "Viewed"
    limited = await client.get(f"{PROFILES}/{pid}", params={"timeline_limit": 1}, headers=auth)
    assert [item["kind"] for item in limited.json()["timeline"]] == ["inbound"]
