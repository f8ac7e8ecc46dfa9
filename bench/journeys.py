"""Journeys benchmark: N profiles through a 4-node journey; timers fired per second and the lag
between a timer's due time and its send.

A real `waconnect serve` (API + worker in one process, SQLite by default, or the database
given) and the simulator as another process (delivery reports off). The journey is
``wait until a moment -> send template -> A/B split -> exit``, entered by API call with each
profile's moment (``due_at``) set so that the timers fall due ``--rate`` a second. Phase 1
enters every profile; phase 2 moves the business clock to just before the first moment: from
then on timers fall due at ``--rate`` a second in real time, and the worker must fire them and
the dispatcher send their messages. Figures are read from the database afterwards:

- timers fired per second (first to last firing),
- lag fire: the wait step's exit minus its due time,
- lag send: the provider's acceptance of the message (``sent_at``) minus the due time.

    .venv/bin/python bench/journeys.py [--profiles 100000] [--rate 1000] [--database-url URL]

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from waconnect.testing.stack import Stack, start_simulator, wait_until

TEMPLATE: dict[str, Any] = {
    "name": "cart_reminder",
    "language": "en",
    "category": "MARKETING",
    "status": "APPROVED",
    "components": [
        {
            "type": "BODY",
            "text": "Hi {{1}}, your cart is waiting.",
            "example": {"body_text": [["Asha"]]},
        }
    ],
}
JOURNEY: dict[str, Any] = {
    "name": "Bench: 4 nodes",
    "trigger": {"type": "api"},
    "rules": {"entry": "once"},
    "start": "wait",
    "nodes": {
        "wait": {"type": "wait", "until": {"event_property": "due_at"}, "next": "send"},
        "send": {
            "type": "send_template",
            "template": {"name": "cart_reminder", "language": "en"},
            "variables": {"body.1": {"attribute": "first_name"}},
            "next": "split",
        },
        "split": {
            "type": "branch",
            "on": "ab_split",
            "split": {"a": 50, "b": 50},
            "exits": {"a": "end", "b": "end"},
        },
        "end": {"type": "exit"},
    },
}


RESUME_JOURNEY: dict[str, Any] = {
    "name": "Bench: resume on an event",
    "trigger": {"type": "api"},
    "rules": {"entry": "once", "goal": {"event": "bench_goal"}},
    "start": "wait",
    "nodes": {"wait": {"type": "wait", "duration": "7d", "next": "end"}, "end": {"type": "exit"}},
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="timers due per second")
    parser.add_argument("--batch", type=int, default=None, help="scheduler runs per transaction")
    parser.add_argument("--resume", type=int, default=10_000, help="profiles resumed by events")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    return parser.parse_args()


def poll_until(check: Any, timeout: float, what: str) -> None:
    """Like wait_until, but polls every 2 s: the stats query must not load the run it measures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def add_profiles(stack: Stack, count: int) -> None:
    with stack.api as api:
        for start in range(0, count, 1000):
            rows = [
                {
                    "identity": f"b{n}",
                    "phone": f"+9197{n:08d}",
                    "attributes": {"first_name": f"C{n}"},
                }
                for n in range(start, min(count, start + 1000))
            ]
            answer = api.post("/profiles/batch", json={"profiles": rows})
            assert answer.status_code == 200, answer.text


def enter_all(stack: Stack, journey_id: int, count: int, base: datetime, rate: int) -> float:
    """Enter ``count`` profiles as fast as the API takes them; profile n's timer is due at
    ``base + n / rate``. Returns the entry rate."""
    started = time.perf_counter()
    with stack.api as api:
        for start in range(0, count, 1000):
            targets = [
                {
                    "identity": f"b{n}",
                    "properties": {"due_at": (base + timedelta(seconds=n / rate)).isoformat()},
                }
                for n in range(start, min(count, start + 1000))
            ]
            answer = api.post(f"/journeys/{journey_id}/entries", json={"profiles": targets})
            assert answer.status_code == 200, answer.text
            assert answer.json()["entered"] == len(targets), answer.text
    return count / (time.perf_counter() - started)


def business_now(stack: Stack, advance: float = 0) -> datetime:
    with stack.api as api:
        moved = api.post(
            str(api.base_url.copy_with(path="/_test/clock")), json={"advance_seconds": advance}
        )
        assert moved.status_code == 200, moved.text
        return datetime.fromisoformat(moved.json()["now"])


async def lags(database_url: str, journey_id: int) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    query = text(
        "SELECT r.context, w.exited_at, m.sent_at, m.created_at FROM journey_steps w "
        "JOIN journey_runs r ON r.id = w.run_id "
        "JOIN journey_steps s ON s.run_id = w.run_id AND s.node = 'send' "
        "JOIN messages m ON m.id = s.message_id "
        "WHERE w.journey_id = :j AND w.node = 'wait'"
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query, {"j": journey_id})).all()
    await engine.dispose()
    fire: list[float] = []
    send: list[float] = []
    fired_at: list[datetime] = []
    outbox: list[float] = []
    for context, exited, sent, queued in rows:
        if isinstance(context, str):
            context = json.loads(context)
        due = as_time(context["entry"]["due_at"])
        fired = as_time(exited)
        fired_at.append(fired)
        fire.append((fired - due).total_seconds())
        if sent is not None:
            send.append((as_time(sent) - due).total_seconds())
            outbox.append((as_time(sent) - as_time(queued)).total_seconds())
    span = (max(fired_at) - min(fired_at)).total_seconds() if fired_at else 0
    return {
        "timers": len(rows),
        "timers_per_s": round(len(rows) / span) if span else None,
        "lag_fire_p50_s": round(percentile(fire, 0.50), 3),
        "lag_fire_p99_s": round(percentile(fire, 0.99), 3),
        "lag_send_p50_s": round(percentile(send, 0.50), 3),
        "lag_send_p99_s": round(percentile(send, 0.99), 3),
        "lag_send_max_s": round(max(send), 3) if send else None,
        "lag_send_mean_s": round(statistics.fmean(send), 3) if send else None,
        "sent": len(send),
        "queued_to_sent_p50_s": round(percentile(outbox, 0.50), 3),
        "queued_to_sent_p99_s": round(percentile(outbox, 0.99), 3),
    }


def as_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def post_events_paced(stack: Stack, count: int, rate: int) -> float:
    """The goal event for ``count`` waiting profiles, ``rate`` a second."""
    per_call = max(1, min(1000, rate // 10))
    interval = per_call / rate
    started = time.perf_counter()
    with stack.api as api:
        for call, start in enumerate(range(0, count, per_call)):
            pause = started + call * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            batch = [
                {"identity": f"b{n}", "name": "bench_goal", "properties": {}}
                for n in range(start, min(count, start + per_call))
            ]
            answer = api.post("/events/batch", json={"events": batch})
            assert answer.status_code == 200, answer.text
    return count / (time.perf_counter() - started)


async def resume_lags(database_url: str, journey_id: int) -> dict[str, Any]:
    """Event recorded -> the run left its wait through the goal exit."""
    engine = create_async_engine(database_url)
    query = text(
        "SELECT s.exited_at, e.ts FROM journey_steps s "
        "JOIN journey_runs r ON r.id = s.run_id "
        "JOIN events e ON e.profile_id = r.profile_id AND e.name = 'bench_goal' "
        "WHERE s.journey_id = :j AND s.exit = 'goal'"
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query, {"j": journey_id})).all()
    await engine.dispose()
    lag = [(as_time(left) - as_time(ts)).total_seconds() for left, ts in rows]
    return {
        "resumed": len(lag),
        "lag_resume_p50_s": round(percentile(lag, 0.50), 3),
        "lag_resume_p99_s": round(percentile(lag, 0.99), 3),
    }


def run_resume_phase(stack: Stack, database_url: str, count: int, rate: int) -> dict[str, Any]:
    """Profiles wait 7 days; their goal event arrives at ``rate`` a second and must end the
    run at once (events resume waiting profiles through the listener and the scheduler)."""
    with stack.api as api:
        created = api.post("/journeys", json=RESUME_JOURNEY)
        assert created.status_code == 201, created.text
        journey_id = created.json()["id"]
        assert api.post(f"/journeys/{journey_id}/publish").status_code == 200
        for start in range(0, count, 1000):
            targets = [{"identity": f"b{n}"} for n in range(start, min(count, start + 1000))]
            answer = api.post(f"/journeys/{journey_id}/entries", json={"profiles": targets})
            assert answer.status_code == 200, answer.text
    event_rate = post_events_paced(stack, count, rate)

    def done() -> bool:
        with stack.api as api:
            stats = api.get(f"/journeys/{journey_id}").json()["stats"]["journey"]
        return bool(stats["goal_reached"] == count)

    poll_until(done, 1800, "every waiting profile to be resumed by its event")
    figures = asyncio.run(resume_lags(database_url, journey_id))
    figures["events_per_s"] = round(event_rate)
    print(
        f"resumed {figures['resumed']:,} by events at {event_rate:,.0f}/s: lag p50 "
        f"{figures['lag_resume_p50_s']} s p99 {figures['lag_resume_p99_s']} s"
    )
    return figures


def main() -> None:
    args = parse()
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} cpus={os.cpu_count()}",
        "profiles": args.profiles,
        "rate": args.rate,
    }
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch)
        database_url = args.database_url or f"sqlite+aiosqlite:///{logs / 'bench.db'}"
        figures["database"] = database_url.split(":", 1)[0]
        env = {
            "WACONNECT_DATA_DIR": str(logs / "data"),
            "WACONNECT_DATABASE_URL": database_url,
            "WACONNECT_SECRET_KEY": "bench",
            "WACONNECT_LOG_LEVEL": "warning",
            "WACONNECT_TEST_CONTROLS": "1",
        }
        if args.batch:
            env["WACONNECT_JOURNEY_BATCH_SIZE"] = str(args.batch)
            figures["batch"] = args.batch
        simulator = start_simulator(logs, "--no-callbacks", "--report-delay-ms", "0")
        stack = Stack(env=env, log_dir=logs, simulator=simulator)
        try:
            stack.create_key()
            # API and worker in two processes, as on a 2-core deployment: the worker fires the
            # timers and dispatches; the API answers the entries and the stats polls.
            stack.start_server("--no-worker")
            stack.start_worker()
            provider = stack.add_provider(max_concurrency=100)
            with stack.api as api:
                answer = api.post(f"/providers/{provider['id']}/templates", json=TEMPLATE)
                assert answer.status_code == 201, answer.text
                created = api.post("/journeys", json=JOURNEY)
                assert created.status_code == 201, created.text
                journey_id = created.json()["id"]
                assert api.post(f"/journeys/{journey_id}/publish").status_code == 200
            started = time.perf_counter()
            add_profiles(stack, args.profiles)
            print(f"{args.profiles:,} profiles in {time.perf_counter() - started:.1f} s")
            # Timers fall due at --rate a second from ``base``, set far enough ahead for every
            # entry to be in; then the clock jumps to 5 s before it (the worker takes up a
            # moved clock on its next heartbeat).
            base = business_now(stack) + timedelta(seconds=120 + args.profiles / 100)
            entry_rate = enter_all(stack, journey_id, args.profiles, base, args.rate)
            figures["entries_per_s"] = round(entry_rate)
            print(f"entered at {entry_rate:,.0f} profiles/s")
            gap = (base - business_now(stack)).total_seconds() - 5
            assert gap > 0, "the entries took longer than planned; the first timers are past"
            business_now(stack, gap)
            fire_started = time.perf_counter()

            def done() -> bool:
                with stack.api as api:
                    stats = api.get(f"/journeys/{journey_id}").json()["stats"]["journey"]
                return bool(stats["completed"] == args.profiles)

            poll_until(done, 3600, "every profile to finish")
            wait_until(lambda: stack.counts()["queued"] == 0, 600, "the outbox to drain")
            print(f"timers fired and sent in {time.perf_counter() - fire_started:.1f} s")
            figures.update(asyncio.run(lags(database_url, journey_id)))
            if args.resume:
                resumed = run_resume_phase(
                    stack, database_url, min(args.resume, args.profiles), args.rate
                )
                figures.update(resumed)
            figures["duplicates"] = stack.sim_stats()["duplicates"]
            figures["accepted"] = stack.sim_stats()["messages_accepted"]
        finally:
            stack.stop()
    print(
        f"timers: {figures['timers']:,} at {figures['timers_per_s']}/s; lag due->fire p50 "
        f"{figures['lag_fire_p50_s']} s p99 {figures['lag_fire_p99_s']} s; lag due->send p50 "
        f"{figures['lag_send_p50_s']} s p99 {figures['lag_send_p99_s']} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
