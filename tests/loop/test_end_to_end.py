"""A message goes queued -> sent -> delivered -> read through real processes and real callbacks."""

from __future__ import annotations

import pytest

from waconnect.testing.stack import wait_until

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["generic", "msg91"])
def test_message_reaches_read_through_real_callbacks(make_stack, kind: str) -> None:
    stack = make_stack("--report-delay-ms", "20", "--authkey", "sim-authkey-123456")
    stack.create_key()
    stack.start_server()
    extra = {"headers": {"Authkey": "sim-authkey-123456"}} if kind == "generic" else {}
    provider = stack.add_provider(kind=kind, **extra)

    (message_id,) = stack.send(provider["id"], 1)

    def status() -> str:
        with stack.api as api:
            return str(api.get(f"/messages/{message_id}").json()["status"])

    wait_until(lambda: status() == "read", 60, "the message to be read")
    with stack.api as api:
        message = api.get(f"/messages/{message_id}").json()
    times = message["times"]
    assert times["sent"] and times["delivered"] and times["read"]
    assert times["sent"] <= times["delivered"] <= times["read"]
    (attempt,) = message["attempts"]
    assert attempt["outcome"] == "accepted" and attempt["http_status"] == 200
    # The request as sent, with the provider's secret masked.
    headers = attempt["request"]["headers"]
    secret = next(value for name, value in headers.items() if name.lower() == "authkey")
    assert secret.startswith("••••") and "sim-authkey" not in secret
    reports = [
        entry["detail"]["status"] for entry in message["timeline"] if entry["kind"] == "report"
    ]
    assert {"sent", "delivered", "read"} <= set(reports)
    assert stack.sim_stats()["duplicates"] == 0


@pytest.mark.parametrize("kind", ["generic", "msg91"])
def test_verify_reports_the_providers_answer(make_stack, kind: str) -> None:
    stack = make_stack("--authkey", "sim-authkey-123456")
    stack.create_key()
    stack.start_server("--no-worker")
    extra = {"headers": {"Authkey": "sim-authkey-123456"}} if kind == "generic" else {}
    provider = stack.add_provider(kind=kind, **extra)
    with stack.api as api:
        good = api.post(f"/providers/{provider['id']}/verify").json()
        assert good["ok"] is True, good
        assert good["http_status"] == 200
        assert "••••" in str(good["request"]["headers"])
        wrong = api.patch(
            f"/providers/{provider['id']}", json={"headers": {"Authkey": "wrong-key-000000"}}
        )
        assert wrong.status_code == 200, wrong.text
        bad = api.post(f"/providers/{provider['id']}/verify").json()
    assert bad["ok"] is False
    assert bad["error"]["family"] == "auth", bad
    # A verify messages no customer.
    assert stack.sim_stats()["messages_accepted"] == 0
