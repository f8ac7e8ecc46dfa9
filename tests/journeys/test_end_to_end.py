"""Three journeys end to end: a real `waconnect serve` (API + worker), the simulator as the
provider with its delivery reports and replies, and the business clock moved by the test."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.journeys.helpers import abandoned_cart, feedback, payment
from tests.journeys.stack_helpers import (
    add_profiles,
    advance,
    create_live,
    events,
    exits,
    messages_to,
    run_of,
    setup,
    sim_log,
    stats,
    wait_at,
)
from waconnect.testing.stack import wait_until

pytestmark = pytest.mark.slow

HOUR = 3600.0
DAY = 24 * HOUR


def _delivered(stack, phone: str, count: int) -> bool:
    found = messages_to(stack, phone)
    return len(found) == count and all(m["status"] in ("delivered", "read") for m in found)


def test_three_journeys_through_the_simulator(make_stack) -> None:
    stack = make_stack("--seed", "4", "--report-delay-ms", "5", WACONNECT_TEST_CONTROLS="1")
    stack.create_key()
    stack.start_server()
    setup(stack)
    cart_buyer, cart_lost, rater, silent, payer, decliner, forgetful = add_profiles(stack, 7)
    phone = {
        pid: f"91980000000{n}"
        for n, pid in enumerate((cart_buyer, cart_lost, rater, silent, payer, decliner, forgetful))
    }
    cart = create_live(stack, abandoned_cart())
    survey = create_live(stack, feedback())
    checkout = create_live(stack, payment())

    # --- abandoned cart: event -> wait 1 h -> template -> wait 1 d -> branch on purchase ----
    events(
        stack,
        {
            "identity": "u0",
            "name": "cart_abandoned",
            "properties": {"items": 2, "summary": "2 lamps"},
        },
        {"identity": "u1", "name": "cart_abandoned", "properties": {"items": 1}},
    )
    wait_at(stack, cart, cart_buyer, "wait_1h", "waiting", "the cart journey to start")
    wait_at(stack, cart, cart_lost, "wait_1h", "waiting", "the cart journey to start")
    assert messages_to(stack, phone[cart_buyer]) == []

    # --- feedback: template with quick replies 1-5 -> wait for reply -> set attribute ------
    stack.sim_config(reply_ratio=1.0)
    events(stack, {"identity": "u2", "name": "order_delivered", "properties": {}})
    rated = wait_at(stack, survey, rater, "done", "completed", "the rating to be saved")
    assert exits(rated)[0] == ("ask", "next") and exits(rated)[1][0] == "answer"
    tapped = int(rated["steps"][1]["exit"][1:])  # r1..r5: the button the customer tapped
    assert 1 <= tapped <= 5
    with stack.api as api:
        profile = api.get(f"/profiles/{rater}").json()
        assert profile["attributes"]["csat"] == tapped
    stack.sim_config(reply_ratio=0.0)

    # Silent customer: timeout -> reminder once -> timeout -> leaves without a rating.
    events(stack, {"identity": "u3", "name": "order_delivered", "properties": {}})
    wait_at(stack, survey, silent, "answer", "waiting", "the question to be asked")

    # --- payment: request -> completed / failed / reminder after timeout ----------------------
    events(
        stack,
        {"identity": "u4", "name": "order_placed", "properties": {"order_id": "A-4"}},
        {"identity": "u5", "name": "order_placed", "properties": {"order_id": "A-5"}},
        {"identity": "u6", "name": "order_placed", "properties": {"order_id": "A-6"}},
    )
    for pid in (payer, decliner, forgetful):
        wait_at(stack, checkout, pid, "pay", "waiting", "the payment link to be sent")
    wait_until(lambda: _delivered(stack, phone[payer], 1), 60, "the payment link to arrive")
    link = messages_to(stack, phone[payer])[0]
    button = next(c for c in link["content"]["components"] if c["type"] == "button")
    assert button["parameters"][0]["text"] == "o/A-4"
    events(
        stack,
        {"identity": "u4", "name": "payment_completed", "properties": {"order_id": "A-4"}},
        # Another order's failure changes nothing for u5's order A-5 ...
        {"identity": "u5", "name": "payment_failed", "properties": {"order_id": "B-9"}},
    )
    paid = wait_at(stack, checkout, payer, "paid", "completed", "the payment to complete")
    assert exits(paid) == [("pay", "completed"), ("thanks", "next"), ("paid", None)]
    wait_until(lambda: _delivered(stack, phone[payer], 2), 60, "the thank-you")
    events(stack, {"identity": "u5", "name": "payment_failed", "properties": {"order_id": "A-5"}})
    failed = wait_at(stack, checkout, decliner, "failed", "completed", "the failure exit")
    assert exits(failed) == [("pay", "failed"), ("failed", None)]

    # --- time passes: 1 h ------------------------------------------------------------------
    advance(stack, HOUR)
    wait_until(lambda: _delivered(stack, phone[cart_buyer], 1), 60, "the cart reminder")
    wait_until(lambda: _delivered(stack, phone[cart_lost], 1), 60, "the cart reminder")
    reminder = messages_to(stack, phone[cart_buyer])[0]
    body = next(c for c in reminder["content"]["components"] if c["type"] == "body")
    assert [p["text"] for p in body["parameters"]] == ["P0", "2 lamps"]
    events(stack, {"identity": "u0", "name": "purchase", "properties": {}})

    # 2 h after the order, the unpaid one gets its reminder once.
    advance(stack, HOUR)
    wait_at(stack, checkout, forgetful, "nudge", "waiting", "the payment reminder")
    wait_until(lambda: _delivered(stack, phone[forgetful], 2), 60, "the payment reminder")

    # --- a day later ----------------------------------------------------------------------
    advance(stack, DAY)
    bought = wait_at(stack, cart, cart_buyer, "converted", "completed", "the purchase branch")
    assert exits(bought) == [
        ("wait_1h", "next"),
        ("remind", "next"),
        ("wait_1d", "next"),
        ("bought", "yes"),
        ("converted", None),
    ]
    lost = wait_at(stack, cart, cart_lost, "lost", "completed", "the no-purchase branch")
    assert exits(lost)[-2:] == [("bought", "no"), ("lost", None)]
    wait_at(stack, survey, silent, "answer_again", "waiting", "the feedback reminder")
    wait_until(lambda: _delivered(stack, phone[silent], 2), 60, "the feedback reminder")
    unpaid = wait_at(stack, checkout, forgetful, "unpaid", "completed", "the unpaid exit")
    assert exits(unpaid) == [("pay", "timeout"), ("nudge", "timeout"), ("unpaid", None)]

    advance(stack, DAY)
    gave_up = wait_at(stack, survey, silent, "no_answer", "completed", "the survey to give up")
    assert [e for _n, e in exits(gave_up)] == ["next", "timeout", "next", "timeout", None]
    assert len(messages_to(stack, phone[silent])) == 2  # the question and ONE reminder

    # Stats agree with the paths.
    figures = stats(stack, checkout)
    assert figures["journey"]["entered"] == 3 and figures["journey"]["completed"] == 3
    assert figures["nodes"]["pay"]["exits"] == {"completed": 1, "failed": 1, "timeout": 1}
    assert figures["nodes"]["nudge"]["exits"] == {"timeout": 1}
    figures = stats(stack, survey)
    assert figures["nodes"]["answer"]["exits"] == {f"r{tapped}": 1, "timeout": 1}
    assert figures["nodes"]["remind"]["entered"] == 1

    # The provider saw each message once; no customer got anything twice.
    log = sim_log(stack)
    assert stack.sim_stats()["duplicates"] == 0
    per_phone = Counter(row["to"] for row in log)
    assert per_phone[phone[cart_buyer]] == 1 and per_phone[phone[rater]] == 1
    assert per_phone[phone[payer]] == 2 and per_phone[phone[forgetful]] == 2
    assert run_of(stack, cart, rater) is None
