"""The concurrency budget is used, never exceeded: real server, real simulator, loopback."""

from __future__ import annotations

import pytest

from waconnect.testing.stack import wait_until

pytestmark = pytest.mark.slow


def test_max_in_flight_stays_within_budget_and_uses_it(make_stack) -> None:
    stack = make_stack("--latency-ms", "20", "--no-callbacks")
    stack.create_key()
    stack.start_server()
    provider = stack.add_provider(max_concurrency=30)

    stack.send(provider["id"], 2000)

    wait_until(lambda: stack.counts()["sent"] == 2000, 120, "2,000 messages accepted")
    stats = stack.sim_stats()
    assert stats["messages_accepted"] == 2000
    assert stats["duplicates"] == 0
    assert stats["max_in_flight"] <= 30
    # The budget is used, not serialized: at least half of it was busy at once.
    assert stats["max_in_flight"] >= 15
