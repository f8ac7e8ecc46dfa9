"""Session (free-form) messages: only inside the 24-hour window, the types each provider kind
carries, and every limit of whatsapp-rules.md §2.3 reported at once."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import new_key
from tests.templates.live import eventually, live_stack
from waconnect.messaging.session import validate_session_content
from waconnect.runtime import Runtime
from waconnect.settings import Settings

SESSION = "/api/v1/messages/session"
CUSTOMER = "919812345678"
BUSINESS = "918000000001"

REPLY_BUTTONS: dict[str, Any] = {
    "type": "button",
    "body": {"text": "Keep your slot?"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "keep", "title": "Keep"}},
            {"type": "reply", "reply": {"id": "move", "title": "Move it"}},
        ]
    },
}
LIST: dict[str, Any] = {
    "type": "list",
    "header": {"type": "text", "text": "Slots"},
    "body": {"text": "Pick a time"},
    "action": {
        "button": "See times",
        "sections": [
            {"title": "Morning", "rows": [{"id": "m9", "title": "9:00", "description": "early"}]},
            {"title": "Evening", "rows": [{"id": "e6", "title": "18:00"}]},
        ],
    },
}
LOCATION = {"latitude": 12.97, "longitude": 77.59, "name": "Shop", "address": "MG Road"}


async def provider(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nickname": f"{kind}-{time.monotonic_ns()}",
        "kind": kind,
        "mobile_number": BUSINESS,
        "endpoint_url": "https://bsp.example.org/send"
        if kind == "generic"
        else "https://api.msg91.com/api/v5/whatsapp",
        **extra,
    }
    created = await client.post("/api/v1/providers", json=body, headers=auth)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def customer_writes(
    client: httpx.AsyncClient, runtime: Runtime, config: dict[str, Any], phone: str = CUSTOMER
) -> None:
    """The customer's message reaches the inbound callback; wait until it opened the window."""
    if config["kind"] == "msg91":
        body: dict[str, Any] = {
            "customerNumber": phone,
            "integratedNumber": BUSINESS,
            "direction": "inbound",
            "contentType": "text",
            "text": "hello",
            "uuid": f"wamid.{time.monotonic_ns()}",
        }
    else:
        body = {
            "payloadVersion": "0.1",
            "from": phone,
            "wabaNumber": BUSINESS,
            "timestamp": str(int(runtime.clock.now().timestamp())),
            "type": "text",
            "text": {"body": "hello"},
        }
    path = urlsplit(config["callbacks"]["inbound_url"]).path
    answer = await client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    from waconnect.messaging.inbound import window_open_until

    deadline = time.monotonic() + 10
    while True:
        async with runtime.sessions() as session:
            closes = await window_open_until(session, config["id"], phone, 1)
        if closes is not None and closes > runtime.clock.now():
            return
        assert time.monotonic() < deadline, "the inbound message never opened the window"
        await _pause()


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.02)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


async def test_only_inside_the_24_hour_window(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    config = await provider(client, auth, "generic")
    text = {"provider_id": config["id"], "to": CUSTOMER, "type": "text", "text": {"body": "Hi"}}

    never = await client.post(SESSION, json=text, headers=auth)
    error = error_of(never, 409, "window_closed")
    assert error["closed_at"] is None and "never written" in error["message"]

    await customer_writes(client, runtime, config)
    inside = await client.post(SESSION, json={**text, "text": "Hi there"}, headers=auth)
    assert inside.status_code == 202, inside.text
    queued = inside.json()
    closes = datetime.fromisoformat(queued["window_closes_at"])
    message = await client.get(f"/api/v1/messages/{queued['id']}", headers=auth)
    assert message.json()["kind"] == "session"
    assert message.json()["content"] == {"type": "text", "text": {"body": "Hi there"}}

    runtime.clock.set(closes - timedelta(seconds=1))
    assert (await client.post(SESSION, json=text, headers=auth)).status_code == 202
    runtime.clock.set(closes)
    closed = await client.post(SESSION, json=text, headers=auth)
    error = error_of(closed, 409, "window_closed")
    assert datetime.fromisoformat(error["closed_at"]) == closes
    assert f"closed at {closes.isoformat()}" in error["message"]

    # The window is per provider config: another config's window is not open.
    other = await provider(client, auth, "generic")
    elsewhere = await client.post(SESSION, json={**text, "provider_id": other["id"]}, headers=auth)
    error_of(elsewhere, 409, "window_closed")


CARRIED: list[tuple[str, dict[str, Any], set[str]]] = [
    ("text", {"text": {"body": "Hi"}}, {"generic", "msg91"}),
    (
        "image",
        {"image": {"link": "https://c.example.org/a.jpg", "caption": "A"}},
        {"generic", "msg91"},
    ),
    ("video", {"video": {"link": "https://c.example.org/a.mp4"}}, {"generic", "msg91"}),
    (
        "document",
        {"document": {"link": "https://c.example.org/a.pdf", "filename": "a.pdf"}},
        {"generic", "msg91"},
    ),
    ("audio", {"audio": {"link": "https://c.example.org/a.ogg"}}, {"generic", "msg91"}),
    ("interactive", {"interactive": REPLY_BUTTONS}, {"msg91"}),
    ("interactive", {"interactive": LIST}, {"msg91"}),
    ("location", {"location": LOCATION}, {"msg91"}),
]


async def test_types_each_provider_kind_carries(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    configs = [await provider(client, auth, kind) for kind in ("generic", "msg91")]
    for config in configs:
        await customer_writes(client, runtime, config)
    for kind, content, carried in CARRIED:
        for config in configs:
            body = {"provider_id": config["id"], "to": CUSTOMER, "type": kind, **content}
            answer = await client.post(SESSION, json=body, headers=auth)
            provider_kind = config["kind"]
            if provider_kind in carried:
                assert answer.status_code == 202, (kind, provider_kind, answer.text)
                continue
            error = error_of(answer, 422, "unsupported_by_provider")
            assert error["provider_kind"] == provider_kind and error["provider_id"] == config["id"]
            assert f"kind {provider_kind}" in error["message"]
            assert config["nickname"] in error["message"] and kind in error["message"]


async def test_every_violation_at_once(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    config = await provider(client, auth, "msg91")
    four = [{"type": "reply", "reply": {"id": str(n), "title": "x" * 21}} for n in range(4)]
    answer = await client.post(
        SESSION,
        json={
            "provider_id": config["id"],
            "to": "12",
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": ""}, "action": {"buttons": four}},
            "text": {"body": "stray"},
        },
        headers=auth,
    )
    fields = error_of(answer, 422, "validation_error")["fields"]
    assert fields["interactive.action.buttons"] == "4 buttons; reply-button messages carry 1 to 3"
    assert fields["interactive.action.buttons.0.reply.title"] == "21 characters, the limit is 20"
    assert "interactive.body.text" in fields and "to" in fields
    assert fields["text"] == "a interactive message carries no text"
    # Another workspace does not find this provider config.
    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    body = {"provider_id": config["id"], "to": CUSTOMER, "type": "text", "text": "Hi"}
    answer = await client.post(SESSION, json=body, headers=other)
    error_of(answer, 404, "not_found")
    unauthorized = await client.post(SESSION, json=body)
    error_of(unauthorized, 401, "unauthorized")


def many_rows(count: int) -> dict[str, Any]:
    rows = [{"id": f"r{n}", "title": f"Row {n}"} for n in range(count)]
    return {**LIST, "action": {"button": "See", "sections": [{"title": "All", "rows": rows}]}}


def buttons(*titles: str) -> dict[str, Any]:
    replies = [
        {"type": "reply", "reply": {"id": f"b{n}", "title": t}} for n, t in enumerate(titles)
    ]
    return {**REPLY_BUTTONS, "action": {"buttons": replies}}


def section(title: str | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": title, "rows": rows} if title is not None else {"rows": rows}


ROW = {"id": "r", "title": "Row"}
LIMITS = [
    # (case, content, path or None when valid, reason fragment)
    ("text-ok", {"type": "text", "text": {"body": "x" * 4096}}, None, ""),
    ("text-long", {"type": "text", "text": {"body": "x" * 4097}}, "text.body", "4097 characters"),
    ("text-empty", {"type": "text", "text": {"body": " "}}, "text.body", "non-empty"),
    ("media-link", {"type": "image", "image": {"id": "123"}}, "image.link", "https://"),
    (
        "caption-long",
        {"type": "video", "video": {"link": "https://x/v", "caption": "c" * 1025}},
        "video.caption",
        "1025",
    ),
    (
        "audio-caption",
        {"type": "audio", "audio": {"link": "https://x/a", "caption": "c"}},
        "audio.caption",
        "takes id, link",
    ),
    (
        "location-ok",
        {"type": "location", "location": {"latitude": -90, "longitude": 180}},
        None,
        "",
    ),
    (
        "location-range",
        {"type": "location", "location": {"latitude": 91, "longitude": 0}},
        "location.latitude",
        "-90 to 90",
    ),
    ("buttons-1", {"type": "interactive", "interactive": buttons("A")}, None, ""),
    ("buttons-3", {"type": "interactive", "interactive": buttons("A", "B", "C")}, None, ""),
    (
        "buttons-0",
        {"type": "interactive", "interactive": buttons()},
        "interactive.action.buttons",
        "0 buttons",
    ),
    (
        "buttons-4",
        {"type": "interactive", "interactive": buttons("A", "B", "C", "D")},
        "interactive.action.buttons",
        "4 buttons",
    ),
    ("button-title-20", {"type": "interactive", "interactive": buttons("x" * 20)}, None, ""),
    (
        "button-title-21",
        {"type": "interactive", "interactive": buttons("x" * 21)},
        "interactive.action.buttons.0.reply.title",
        "21 characters",
    ),
    (
        "button-titles-unique",
        {"type": "interactive", "interactive": buttons("A", "A")},
        "interactive.action.buttons",
        "unique",
    ),
    (
        "button-id-256",
        {
            "type": "interactive",
            "interactive": {
                **REPLY_BUTTONS,
                "action": {
                    "buttons": [{"type": "reply", "reply": {"id": "i" * 257, "title": "A"}}]
                },
            },
        },
        "interactive.action.buttons.0.reply.id",
        "257 characters",
    ),
    (
        "button-body-1024",
        {"type": "interactive", "interactive": {**REPLY_BUTTONS, "body": {"text": "b" * 1025}}},
        "interactive.body.text",
        "1025 characters, the limit is 1024",
    ),
    (
        "footer-60",
        {"type": "interactive", "interactive": {**REPLY_BUTTONS, "footer": {"text": "f" * 61}}},
        "interactive.footer.text",
        "61 characters",
    ),
    (
        "button-header-text-60",
        {
            "type": "interactive",
            "interactive": {**REPLY_BUTTONS, "header": {"type": "text", "text": "h" * 61}},
        },
        "interactive.header.text",
        "61 characters",
    ),
    (
        "button-header-image",
        {
            "type": "interactive",
            "interactive": {
                **REPLY_BUTTONS,
                "header": {"type": "image", "image": {"link": "https://x/i.jpg"}},
            },
        },
        None,
        "",
    ),
    ("list-ok", {"type": "interactive", "interactive": LIST}, None, ""),
    ("list-rows-10", {"type": "interactive", "interactive": many_rows(10)}, None, ""),
    (
        "list-rows-11",
        {"type": "interactive", "interactive": many_rows(11)},
        "interactive.action.sections",
        "11 rows",
    ),
    (
        "list-sections-11",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {
                    "button": "See",
                    "sections": [section(f"S{n}", [ROW]) for n in range(11)],
                },
            },
        },
        "interactive.action.sections",
        "11 sections",
    ),
    (
        "list-section-title-needed",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {
                    "button": "See",
                    "sections": [section(None, [ROW]), section("B", [ROW])],
                },
            },
        },
        "interactive.action.sections.0.title",
        "required",
    ),
    (
        "list-one-section-untitled",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {"button": "See", "sections": [section(None, [ROW])]},
            },
        },
        None,
        "",
    ),
    (
        "list-section-title-24",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {"button": "See", "sections": [section("s" * 25, [ROW])]},
            },
        },
        "interactive.action.sections.0.title",
        "25 characters",
    ),
    (
        "list-button-20",
        {
            "type": "interactive",
            "interactive": {**LIST, "action": {**LIST["action"], "button": "b" * 21}},
        },
        "interactive.action.button",
        "21 characters",
    ),
    (
        "list-row-title-24",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {
                    "button": "See",
                    "sections": [section("A", [{"id": "r", "title": "t" * 25}])],
                },
            },
        },
        "interactive.action.sections.0.rows.0.title",
        "25 characters",
    ),
    (
        "list-row-id-200",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {
                    "button": "See",
                    "sections": [section("A", [{"id": "i" * 201, "title": "t"}])],
                },
            },
        },
        "interactive.action.sections.0.rows.0.id",
        "201 characters",
    ),
    (
        "list-row-description-72",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "action": {
                    "button": "See",
                    "sections": [
                        section("A", [{"id": "i", "title": "t", "description": "d" * 73}])
                    ],
                },
            },
        },
        "interactive.action.sections.0.rows.0.description",
        "73 characters",
    ),
    (
        "list-header-text-only",
        {
            "type": "interactive",
            "interactive": {
                **LIST,
                "header": {"type": "image", "image": {"link": "https://x/i.jpg"}},
            },
        },
        "interactive.header.type",
        "text only",
    ),
    (
        "list-body-4096",
        {"type": "interactive", "interactive": {**LIST, "body": {"text": "b" * 4097}}},
        "interactive.body.text",
        "4097 characters",
    ),
    (
        "interactive-kind",
        {"type": "interactive", "interactive": {"type": "cta_url"}},
        "interactive.type",
        "button (reply buttons) or list",
    ),
    ("unknown-type", {"type": "sticker", "sticker": {}}, "type", "unknown type 'sticker'"),
]


@pytest.mark.parametrize(
    ("content", "path", "says"),
    [pytest.param(content, path, says, id=case) for case, content, path, says in LIMITS],
)
def test_session_limits(content: dict[str, Any], path: str | None, says: str) -> None:
    problems = validate_session_content(content)
    if path is None:
        assert problems == {}
    else:
        assert path in problems, problems
        assert says in problems[path], problems


async def test_session_messages_reach_the_simulator(settings: Settings) -> None:
    """Through the real dispatcher: msg91 carries text, media, reply buttons, lists and
    location on its single endpoint; the simulator checks each as WhatsApp would."""
    async with live_stack(settings) as live:
        config = await live.provider("msg91")
        async with httpx.AsyncClient() as http:
            inbound = {
                "customerNumber": CUSTOMER,
                "integratedNumber": config["mobile_number"],
                "direction": "inbound",
                "contentType": "text",
                "text": "hello",
                "uuid": "wamid.live-1",
            }
            posted = await http.post(config["callbacks"]["inbound_url"], json=inbound)
            assert posted.status_code == 200, posted.text
        contents = [
            {"type": "text", "text": {"body": "Hi"}},
            {"type": "image", "image": {"link": "https://c.example.org/a.jpg", "caption": "A"}},
            {"type": "interactive", "interactive": REPLY_BUTTONS},
            {"type": "interactive", "interactive": LIST},
            {"type": "location", "location": LOCATION},
        ]

        async def window_open() -> Any:
            probe = await live.api.post("/messages/session", json={"to": CUSTOMER, **contents[0]})
            return probe if probe.status_code == 202 else None

        ids = [(await eventually(window_open)).json()["id"]]
        for content in contents[1:]:
            answer = await live.api.post("/messages/session", json={"to": CUSTOMER, **content})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])

        async def all_sent() -> Any:
            details = [(await live.api.get(f"/messages/{i}")).json() for i in ids]
            done = all(d["status"] not in ("queued", "unknown") for d in details)
            return details if done else None

        for detail, content in zip(await eventually(all_sent), contents, strict=True):
            assert detail["status"] in ("sent", "delivered", "read"), detail
            request = detail["attempts"][0]["request"]
            assert request["url"].endswith("/whatsapp-outbound-message/")
            assert request["body"]["content_type"] == content["type"]
            assert request["body"]["recipient_number"] == CUSTOMER
