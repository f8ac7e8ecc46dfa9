"""kill -9 of the worker while 1,000 profiles wait in a journey: after the restart every profile
continues to the end and no message is sent twice.

SQLite only (the worker's crash recovery is the same code on PostgreSQL, where a dead worker's
leases expire instead of being voided at start; the test budget keeps one run of this size).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.journeys.stack_helpers import add_profiles, advance, create_live, setup, sim_log, stats
from waconnect.testing.stack import Stack, wait_until

pytestmark = pytest.mark.slow

PROFILES = 1000


def _two_reminders() -> dict[str, Any]:
    return {
        "name": "Two reminders",
        "trigger": {"type": "api"},
        "rules": {"entry": "once"},
        "start": "wait_a",
        "nodes": {
            "wait_a": {"type": "wait", "duration": "1h", "next": "first"},
            "first": {
                "type": "send_template",
                "template": {"name": "cart_reminder", "language": "en"},
                "variables": {
                    "body.1": {"attribute": "first_name"},
                    "body.2": {"literal": "1 item"},
                },
                "next": "wait_b",
            },
            "wait_b": {"type": "wait", "duration": "1h", "next": "second"},
            "second": {
                "type": "send_template",
                "template": {"name": "gentle_reminder", "language": "en"},
                "next": "end",
            },
            "end": {"type": "exit"},
        },
    }


def _enter_all(stack: Stack, journey_id: int) -> None:
    with stack.api as api:
        for start in range(0, PROFILES, 500):
            answer = api.post(
                f"/journeys/{journey_id}/entries",
                json={"profiles": [{"identity": f"u{n}"} for n in range(start, start + 500)]},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["entered"] == 500


def _kill_while_sending(stack: Stack, accepted_before: int) -> None:
    """Kill -9 the worker once the provider has started getting this round's messages."""
    wait_until(
        lambda: stack.sim_stats()["messages_accepted"] > accepted_before + 50,
        60,
        "the worker to start firing timers",
    )
    stack.workers[-1].kill()
    time.sleep(0.2)
    stack.start_worker()


def test_kill_9_with_1000_profiles_waiting(make_stack, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("run on SQLite only (test budget); the PostgreSQL path shares the code")
    # Small scheduler batches: the kill lands between (and inside) timer transactions.
    stack = make_stack(
        "--seed",
        "9",
        "--report-delay-ms",
        "5",
        WACONNECT_TEST_CONTROLS="1",
        WACONNECT_JOURNEY_BATCH_SIZE="50",
        # A dead worker's share of the provider's budget comes back after timeout + grace.
        WACONNECT_HTTP_TIMEOUT_SECONDS="2",
        WACONNECT_HEARTBEAT_GRACE_SECONDS="1",
    )
    stack.create_key()
    stack.start_server("--no-worker")
    stack.start_worker()
    setup(stack)
    add_profiles(stack, PROFILES)
    journey_id = create_live(stack, _two_reminders())
    _enter_all(stack, journey_id)
    assert stats(stack, journey_id)["nodes"]["wait_a"]["waiting_now"] == PROFILES

    # Round 1: the 1,000 timers fall due at once; the worker dies in the middle.
    advance(stack, 3600)
    _kill_while_sending(stack, 0)
    wait_until(
        lambda: stats(stack, journey_id)["nodes"]["wait_b"]["waiting_now"] == PROFILES,
        120,
        "every profile to pass the first send after the restart",
    )
    # Round 2: the restarted worker carries every profile on to the end.
    advance(stack, 3600)
    wait_until(
        lambda: stats(stack, journey_id)["journey"]["completed"] == PROFILES,
        120,
        "every profile to finish",
    )

    figures = stats(stack, journey_id)
    assert figures["journey"]["inside"] == 0
    assert figures["nodes"]["first"]["exits"] == {"next": PROFILES}
    assert figures["nodes"]["second"]["exits"] == {"next": PROFILES}
    # The outbox holds exactly one message per profile per send node ...
    counts = stack.counts()
    assert sum(counts.values()) == 2 * PROFILES, counts
    # ... and the provider never got one twice (a request cut by the kill stays "unknown").
    wait_until(lambda: stack.counts()["queued"] == 0, 120, "the outbox to drain")
    assert stack.sim_stats()["duplicates"] == 0
    per_phone = Counter(row["to"] for row in sim_log(stack))
    assert max(per_phone.values()) <= 2
    assert len(per_phone) == PROFILES
