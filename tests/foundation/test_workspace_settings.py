"""``GET/PATCH /api/v1/workspace``: defaults, changes that persist, refusals naming the field."""

from __future__ import annotations

from typing import Any

import httpx

from tests.foundation.helpers import assert_error

WORKSPACE = "/api/v1/workspace"
DEFAULTS = {
    "default_country": "IN",
    "timezone": "Asia/Kolkata",
    "dnd": None,
    "frequency_cap": None,
    "opt_out_keywords": ["STOP", "UNSUBSCRIBE"],
    "opt_in_keywords": ["START"],
    "new_contact_subscription": "subscribed",
    "in_doubt_policy": "hold",
    "in_doubt_wait_minutes": 30,
    "message_expiry_hours": 24,
}


async def test_defaults(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.get(WORKSPACE, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "default"
    assert isinstance(body["id"], int) and body["created_at"]
    assert body["settings"] == DEFAULTS


async def test_valid_patch_persists(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    change: dict[str, Any] = {
        "default_country": "us",
        "timezone": "America/New_York",
        "dnd": {"start": "21:00", "end": "09:00"},
        "frequency_cap": {"messages": 3, "hours": 24},
        "opt_out_keywords": [" STOP ", "ARRET", ""],
        "in_doubt_policy": "resend",
        "message_expiry_hours": 48,
    }
    response = await client.patch(WORKSPACE, json=change, headers=auth)
    assert response.status_code == 200, response.text
    expected = {
        **DEFAULTS,
        **change,
        "default_country": "US",
        "opt_out_keywords": ["STOP", "ARRET"],
    }
    assert response.json()["settings"] == expected
    assert (await client.get(WORKSPACE, headers=auth)).json()["settings"] == expected
    # A later PATCH changes only what it names; null turns an optional setting off.
    response = await client.patch(
        WORKSPACE, json={"dnd": None, "in_doubt_wait_minutes": 5}, headers=auth
    )
    assert response.status_code == 200, response.text
    expected.update(dnd=None, in_doubt_wait_minutes=5)
    assert (await client.get(WORKSPACE, headers=auth)).json()["settings"] == expected
    response = await client.patch(WORKSPACE, json={}, headers=auth)
    assert response.json()["settings"] == expected


async def test_bad_settings_are_422_with_the_field(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad: list[tuple[dict[str, Any], str, str | None]] = [
        ({"default_country": "XX"}, "default_country", "country code"),
        ({"default_country": "India"}, "default_country", "country code"),
        ({"default_country": None}, "default_country", None),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "IANA time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "IANA time zone"),
        ({"timezone": ""}, "timezone", None),
        ({"dnd": {"start": "25:00", "end": "09:00"}}, "dnd.start", "HH:MM"),
        ({"dnd": {"start": "21:00", "end": "9pm"}}, "dnd.end", "HH:MM"),
        ({"dnd": {"start": "21:00", "end": "09:60"}}, "dnd.end", "HH:MM"),
        ({"dnd": {"start": "21:00"}}, "dnd.end", "required"),
        ({"dnd": {"start": "21:00", "end": "09:00", "days": 5}}, "dnd.days", "unknown field"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"in_doubt_policy": "maybe"}, "in_doubt_policy", None),
        ({"in_doubt_wait_minutes": 0}, "in_doubt_wait_minutes", None),
        ({"message_expiry_hours": 1000}, "message_expiry_hours", None),
        ({"frequency_cap": {"messages": 0, "hours": 24}}, "frequency_cap.messages", None),
        ({"opt_out_keywords": ["x" * 51]}, "opt_out_keywords", "50 characters"),
        ({"new_contact_subscription": "maybe"}, "new_contact_subscription", None),
    ]
    for change, field, says in bad:
        response = await client.patch(WORKSPACE, json=change, headers=auth)
        assert_error(response, 422, "validation_error", field=field, says=says)
    assert (await client.get(WORKSPACE, headers=auth)).json()["settings"] == DEFAULTS
