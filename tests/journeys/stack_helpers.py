"""Journeys against real processes: a `waconnect serve` (with its worker) and the simulator."""

from __future__ import annotations

from typing import Any

from tests.journeys.helpers import ALL_TEMPLATES
from waconnect.testing.stack import Stack, wait_until


def setup(stack: Stack) -> dict[str, Any]:
    """A sandbox provider wired to the simulator, with the journeys' templates."""
    provider = stack.add_provider(max_concurrency=50)
    with stack.api as api:
        for template in ALL_TEMPLATES:
            answer = api.post(f"/providers/{provider['id']}/templates", json=template)
            assert answer.status_code == 201, answer.text
    return provider


def add_profiles(
    stack: Stack, count: int, first: int = 919800000000, prefix: str = "u"
) -> list[int]:
    ids: list[int] = []
    with stack.api as api:
        for start in range(0, count, 1000):
            rows = [
                {
                    "identity": f"{prefix}{n}",
                    "phone": f"+{first + n}",
                    "attributes": {"first_name": f"P{n}"},
                }
                for n in range(start, min(count, start + 1000))
            ]
            answer = api.post("/profiles/batch", json={"profiles": rows})
            assert answer.status_code == 200, answer.text
            ids.extend(item["id"] for item in answer.json()["results"])
    return ids


def create_live(stack: Stack, definition: dict[str, Any]) -> int:
    with stack.api as api:
        created = api.post("/journeys", json=definition)
        assert created.status_code == 201, created.text
        journey_id = int(created.json()["id"])
        published = api.post(f"/journeys/{journey_id}/publish")
        assert published.status_code == 200, published.text
    return journey_id


def events(stack: Stack, *items: dict[str, Any]) -> None:
    with stack.api as api:
        answer = api.post("/events/batch", json={"events": list(items)})
        assert answer.status_code == 200, answer.text
        assert all(r["status"] == "recorded" for r in answer.json()["results"]), answer.text


def advance(stack: Stack, seconds: float) -> None:
    with stack.api as api:
        moved = api.post(
            str(api.base_url.copy_with(path="/_test/clock")), json={"advance_seconds": seconds}
        )
        assert moved.status_code == 200, moved.text


def run_of(stack: Stack, journey_id: int, profile_id: int) -> dict[str, Any] | None:
    with stack.api as api:
        answer = api.get(f"/journeys/{journey_id}/profiles/{profile_id}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] = answer.json()["runs"][0]
    return run


def wait_at(
    stack: Stack, journey_id: int, profile_id: int, node: str, state: str, what: str
) -> dict:
    found: dict[str, Any] = {}

    def there() -> bool:
        run = run_of(stack, journey_id, profile_id)
        if run is not None and run["node"] == node and run["state"] == state:
            found.update(run)
            return True
        return False

    wait_until(there, 60, what)
    return found


def exits(run: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(step["node"], step["exit"]) for step in run["steps"]]


def stats(stack: Stack, journey_id: int) -> dict[str, Any]:
    with stack.api as api:
        answer = api.get(f"/journeys/{journey_id}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()["stats"]
        return found


def messages_to(stack: Stack, phone: str) -> list[dict[str, Any]]:
    with stack.api as api:
        answer = api.get("/messages", params={"to": phone, "limit": 100})
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


def sim_log(stack: Stack) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with stack.sim() as sim:
        while True:
            page = sim.get("/_sim/messages", params={"offset": len(entries), "limit": 5000}).json()
            entries.extend(page["messages"])
            if not page["messages"] or len(entries) >= page["total"]:
                return entries
