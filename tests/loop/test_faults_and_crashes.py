"""Faults and crashes: nothing lost, no customer messaged twice, every state says what is known."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from waconnect.testing.stack import Stack, wait_until

pytestmark = pytest.mark.slow

FINAL_KNOWN = {"delivered", "read", "failed", "unknown"}


def _settled(stack: Stack, total: int) -> bool:
    counts = stack.counts()
    stats = stack.sim_stats()
    done = sum(counts[s] for s in FINAL_KNOWN)
    return counts["queued"] == 0 and stats["callbacks_pending"] == 0 and done == total


def _all_messages(stack: Stack, status: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    with stack.api as api:
        while True:
            params: dict[str, Any] = {"status": status, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/messages", params=params).json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items


def _sim_log(stack: Stack) -> dict[str, dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with stack.sim() as sim:
        while True:
            page = sim.get("/_sim/messages", params={"offset": len(entries), "limit": 1000}).json()
            entries.extend(page["messages"])
            if not page["messages"] or len(entries) >= page["total"]:
                return {row["key"]: row for row in entries}


def test_faults_end_in_known_states_without_duplicates(make_stack) -> None:
    stack = make_stack(
        "--latency-ms",
        "5",
        "--ratio-5xx",
        "0.1",
        "--ratio-429",
        "0.1",
        "--ratio-timeout",
        "0.1",
        "--timeout-delay-s",
        "2",
        "--fail-ratio",
        "0.05",
        "--report-delay-ms",
        "10",
        "--seed",
        "7",
        WACONNECT_HTTP_TIMEOUT_SECONDS="0.5",
    )
    stack.create_key()
    stack.start_server()
    provider = stack.add_provider(max_concurrency=50)

    stack.send(provider["id"], 600)

    wait_until(lambda: _settled(stack, 600), 180, "every message to settle")
    stats = stack.sim_stats()
    assert stats["duplicates"] == 0
    assert stats["faults_timeout"] > 0 and stats["faults_5xx"] > 0 and stats["faults_429"] > 0
    counts = stack.counts()
    assert counts["sent"] == 0 and counts["queued"] == 0
    # Every state says what is known: failures carry their code, doubts their reason.
    for message in _all_messages(stack, "failed"):
        assert message["error"] and message["error"]["code"], message
    for message in _all_messages(stack, "unknown"):
        assert message["unknown_reason"], message
    # The provider's own count agrees: every message it accepted is delivered, read or failed.
    assert counts["delivered"] + counts["read"] + counts["failed"] + counts["unknown"] == 600
    assert stats["messages_accepted"] == counts["delivered"] + counts["read"] + counts["failed"] - (
        _failed_before_provider(stack)
    )


def _failed_before_provider(stack: Stack) -> int:
    """Failed messages the provider never accepted (final errors on the send itself)."""
    return sum(
        1 for m in _all_messages(stack, "failed") if not m["error"]["code"].startswith("generic:10")
    )


def _crash_run(stack: Stack, total: int, kills: int) -> None:
    rng = random.Random(11)
    stack.start_worker()
    provider = stack.add_provider(max_concurrency=100)
    stack.send(provider["id"], total)
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 0.8))
        stack.workers[-1].kill()
        stack.start_worker()
    wait_until(
        lambda: stack.counts()["queued"] == 0 and stack.sim_stats()["callbacks_pending"] == 0,
        240,
        "the queue to drain after the crashes",
    )


def test_crash_under_hold_never_sends_twice(make_stack) -> None:
    stack = make_stack("--latency-ms", "20", "--report-delay-ms", "30", "--seed", "3")
    stack.create_key()
    stack.start_server("--no-worker")
    _crash_run(stack, 5000, kills=3)

    stats = stack.sim_stats()
    assert stats["duplicates"] == 0
    counts = stack.counts()
    assert counts["delivered"] + counts["read"] + counts["unknown"] == 5000
    log = _sim_log(stack)
    for message in _all_messages(stack, "unknown"):
        # In doubt only where the provider never got it, or never reported on it.
        seen = [row for key, row in log.items() if key.rsplit("-", 1)[0] == str(message["id"])]
        assert all(not row["final_report_ok"] for row in seen), (message, seen)


def test_crash_under_resend_delivers_each_exactly_once(make_stack) -> None:
    stack = make_stack(
        "--latency-ms",
        "20",
        "--report-delay-ms",
        "30",
        "--seed",
        "5",
        WACONNECT_TEST_CONTROLS="1",
    )
    stack.create_key()
    stack.start_server("--no-worker")
    with stack.api as api:
        patched = api.patch(
            "/workspace", json={"in_doubt_policy": "resend", "in_doubt_wait_minutes": 1}
        )
        assert patched.status_code == 200, patched.text
    _crash_run(stack, 5000, kills=3)

    # Past the in-doubt wait the messages nobody reported on get a new attempt.
    with stack.api as api:
        base = api.base_url.copy_with(path="/_test/clock")
        moved = api.post(str(base), json={"advance_seconds": 120})
        assert moved.status_code == 200, moved.text
    wait_until(
        lambda: stack.counts()["delivered"] + stack.counts()["read"] == 5000,
        240,
        "every message to be delivered",
    )
    stats = stack.sim_stats()
    assert stats["duplicates"] == 0
    assert stats["messages_accepted"] == 5000
