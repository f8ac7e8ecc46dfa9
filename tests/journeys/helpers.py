"""Journeys under test: templates, profiles, journey definitions, and the scheduler driven by
the business clock (a round is run on demand; no sleeping)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from waconnect.journeys.scheduler import Scheduler
from waconnect.runtime import Runtime

JOURNEYS = "/api/v1/journeys"


def body(text: str, *examples: str) -> dict[str, Any]:
    component: dict[str, Any] = {"type": "BODY", "text": text}
    if examples:
        component["example"] = {"body_text": [list(examples)]}
    return component


CART_TEMPLATE: dict[str, Any] = {
    "name": "cart_reminder",
    "language": "en",
    "category": "MARKETING",
    "status": "APPROVED",
    "components": [body("Hi {{1}}, your cart of {{2}} is waiting.", "Asha", "3 items")],
}
FEEDBACK_TEMPLATE: dict[str, Any] = {
    "name": "rate_delivery",
    "language": "en",
    "category": "MARKETING",
    "status": "APPROVED",
    "components": [
        body("How was your delivery, {{1}}? Tap 1 (bad) to 5 (great).", "Asha"),
        {
            "type": "BUTTONS",
            "buttons": [{"type": "QUICK_REPLY", "text": str(n)} for n in range(1, 6)],
        },
    ],
}
REMINDER_TEMPLATE: dict[str, Any] = {
    "name": "gentle_reminder",
    "language": "en",
    "category": "UTILITY",
    "status": "APPROVED",
    "components": [body("Still there? We would love your answer.")],
}
PAYMENT_TEMPLATE: dict[str, Any] = {
    "name": "pay_order",
    "language": "en",
    "category": "UTILITY",
    "status": "APPROVED",
    "components": [
        body("Order {{1}} is ready. Pay here:", "A-1"),
        {
            "type": "BUTTONS",
            "buttons": [
                {
                    "type": "URL",
                    "text": "Pay",
                    "url": "https://pay.example.com/{{1}}",
                    "example": ["https://pay.example.com/o/A-1"],
                }
            ],
        },
    ],
}
THANKS_TEMPLATE: dict[str, Any] = {
    "name": "thanks",
    "language": "en",
    "category": "UTILITY",
    "status": "APPROVED",
    "components": [body("Thank you!")],
}
ALL_TEMPLATES = [
    CART_TEMPLATE,
    FEEDBACK_TEMPLATE,
    REMINDER_TEMPLATE,
    PAYMENT_TEMPLATE,
    THANKS_TEMPLATE,
]


def abandoned_cart(name: str = "Abandoned cart") -> dict[str, Any]:
    """event -> wait 1 h -> reminder template -> wait 1 d -> branch on purchase."""
    return {
        "name": name,
        "trigger": {
            "type": "event",
            "event": "cart_abandoned",
            "where": [{"property": "items", "op": "gte", "value": 1}],
        },
        "rules": {"entry": "once_per_days", "entry_days": 7},
        "start": "wait_1h",
        "nodes": {
            "wait_1h": {"type": "wait", "duration": "1h", "next": "remind"},
            "remind": {
                "type": "send_template",
                "template": {"name": "cart_reminder", "language": "en"},
                "variables": {
                    "body.1": {"attribute": "first_name", "default": "there"},
                    "body.2": {"event_property": "summary", "default": "your items"},
                },
                "next": "wait_1d",
            },
            "wait_1d": {"type": "wait", "duration": "1d", "next": "bought"},
            "bought": {
                "type": "branch",
                "on": "event",
                "event": "purchase",
                "exits": {"yes": "converted", "no": "lost"},
            },
            "converted": {"type": "exit"},
            "lost": {"type": "exit"},
        },
    }


def feedback(name: str = "Delivery feedback") -> dict[str, Any]:
    """template with quick replies 1-5 -> wait for reply -> set attribute + event;
    timeout -> reminder once -> wait again -> timeout exits."""
    replies = [{"exit": f"r{n}", "text": str(n)} for n in range(1, 6)]
    rated = {f"r{n}": "save" for n in range(1, 6)}
    return {
        "name": name,
        "trigger": {"type": "event", "event": "order_delivered"},
        "rules": {"entry": "unlimited"},
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "send_template",
                "template": {"name": "rate_delivery", "language": "en"},
                "variables": {"body.1": {"attribute": "first_name", "default": "there"}},
                "next": "answer",
            },
            "answer": {
                "type": "wait_for_reply",
                "timeout": "1d",
                "replies": replies,
                "exits": {**rated, "timeout": "remind"},
            },
            "remind": {
                "type": "send_template",
                "template": {"name": "gentle_reminder", "language": "en"},
                "next": "answer_again",
            },
            "answer_again": {
                "type": "wait_for_reply",
                "timeout": "1d",
                "replies": replies,
                "exits": {**rated, "timeout": "no_answer"},
            },
            "save": {
                "type": "set_attribute",
                "attributes": {"csat": {"reply": "button_text", "as": "number"}},
                "next": "record",
            },
            "record": {
                "type": "record_event",
                "event": "csat_submitted",
                "properties": {"rating": {"reply": "button_text", "as": "number"}},
                "next": "done",
            },
            "done": {"type": "exit"},
            "no_answer": {"type": "exit"},
        },
    }


def payment(name: str = "Payment") -> dict[str, Any]:
    """payment request -> completed / failed / reminder after timeout (once) -> give up."""
    return {
        "name": name,
        "trigger": {"type": "event", "event": "order_placed"},
        "rules": {"entry": "unlimited", "goal": {"event": "order_cancelled"}},
        "start": "pay",
        "nodes": {
            "pay": {
                "type": "payment_request",
                "template": {"name": "pay_order", "language": "en"},
                "variables": {"body.1": {"event_property": "order_id"}},
                "link_pattern": "o/{order_id}",
                "order_id": {"event_property": "order_id"},
                "timeout": "2h",
                "exits": {"completed": "thanks", "failed": "failed", "timeout": "nudge"},
            },
            "nudge": {
                "type": "payment_request",
                "template": {"name": "pay_order", "language": "en"},
                "variables": {"body.1": {"event_property": "order_id"}},
                "link_pattern": "o/{order_id}",
                "timeout": "1d",
                "exits": {"completed": "thanks", "failed": "failed", "timeout": "unpaid"},
            },
            "thanks": {
                "type": "send_template",
                "template": {"name": "thanks", "language": "en"},
                "next": "paid",
            },
            "paid": {"type": "exit"},
            "failed": {"type": "exit"},
            "unpaid": {"type": "exit"},
        },
    }


async def add_provider(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    provider_body: dict[str, Any] = {
        "nickname": f"p-{time.monotonic_ns()}",
        "kind": "generic",
        "mobile_number": "918000000001",
        "endpoint_url": "https://api.example.com/whatsapp/send",
    }
    provider_body.update(overrides)
    created = await client.post("/api/v1/providers", json=provider_body, headers=auth)
    assert created.status_code == 201, created.text
    provider: dict[str, Any] = created.json()
    for template in ALL_TEMPLATES:
        answer = await client.post(
            f"/api/v1/providers/{provider['id']}/templates", json=template, headers=auth
        )
        assert answer.status_code == 201, answer.text
    return provider


async def add_profiles(
    client: httpx.AsyncClient, auth: dict[str, str], count: int, first: int = 919800000000
) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, 1000):
        rows = [
            {
                "identity": f"u{n}",
                "phone": f"+{first + n}",
                "attributes": {"first_name": f"P{n}"},
            }
            for n in range(start, min(count, start + 1000))
        ]
        answer = await client.post("/api/v1/profiles/batch", json={"profiles": rows}, headers=auth)
        assert answer.status_code == 200, answer.text
        ids.extend(item["id"] for item in answer.json()["results"])
    return ids


async def events(client: httpx.AsyncClient, auth: dict[str, str], *items: dict[str, Any]) -> None:
    answer = await client.post("/api/v1/events/batch", json={"events": list(items)}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert all(r["status"] == "recorded" for r in answer.json()["results"]), answer.text


async def create_live(
    client: httpx.AsyncClient, auth: dict[str, str], definition: dict[str, Any]
) -> dict[str, Any]:
    created = await client.post(JOURNEYS, json=definition, headers=auth)
    assert created.status_code == 201, created.text
    published = await client.post(f"{JOURNEYS}/{created.json()['id']}/publish", headers=auth)
    assert published.status_code == 200, published.text
    journey: dict[str, Any] = published.json()
    return journey


async def settle(scheduler: Scheduler, rounds: int = 20) -> None:
    """Run scheduler rounds until nothing is due (entries, timers, resumes)."""
    for _ in range(rounds):
        if not await scheduler.tick():
            return
    raise AssertionError("the scheduler still had work after many rounds")


async def advance(client: httpx.AsyncClient, seconds: float) -> None:
    moved = await client.post("/_test/clock", json={"advance_seconds": seconds})
    assert moved.status_code == 200, moved.text


async def path(
    client: httpx.AsyncClient, auth: dict[str, str], journey_id: int, profile_id: int
) -> dict[str, Any]:
    answer = await client.get(f"{JOURNEYS}/{journey_id}/profiles/{profile_id}", headers=auth)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def exits(run: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(step["node"], step["exit"]) for step in run["steps"]]


async def stats(client: httpx.AsyncClient, auth: dict[str, str], journey_id: int) -> dict[str, Any]:
    answer = await client.get(f"{JOURNEYS}/{journey_id}", headers=auth)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["stats"]
    return found


async def messages_to(client: httpx.AsyncClient, auth: dict[str, str], phone: str) -> list[dict]:
    answer = await client.get("/api/v1/messages", params={"to": phone}, headers=auth)
    assert answer.status_code == 200, answer.text
    items: list[dict] = answer.json()["items"]
    return items


def scheduler_for(runtime: Runtime) -> Scheduler:
    return Scheduler(runtime, worker_id="test-scheduler")
