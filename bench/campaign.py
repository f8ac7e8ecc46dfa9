"""Campaign benchmark: a segment of N profiles through `waconnect serve` to the simulator.

Profiles are written straight into the (SQLite) database before the server starts (setup, not
measured). Each phase creates and starts a campaign to the whole segment and measures: time to
the first message the simulator accepts, recipients/s from start until the simulator accepted
all, and the server's peak RSS (VmHWM). Phases: generic at 0 ms and 50 ms provider latency,
and MSG91 batched (bulk API, 100 recipients per request). The bare-loop ratio is as in
bench/dispatch.py: a plain aiohttp loop posts the same generic payloads to the same simulator
at the same concurrency; the ratio is campaign rate / bare rate.

    .venv/bin/python bench/campaign.py [--recipients 1000000] [--concurrency 100]

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from dispatch import GENERIC_PATH, accepted_span, bare_phase, bare_requests

from waconnect.testing.processes import run_cli
from waconnect.testing.stack import Stack, start_simulator, wait_until

MAPPING = {"body.1": {"attribute": "first_name"}, "body.2": {"literal": "A-1"}}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--msg91-recipients", type=int, default=None, help="default: --recipients")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--bare", type=int, default=20_000, help="requests of the bare loop")
    parser.add_argument("--skip-50ms", action="store_true")
    parser.add_argument("--skip-generic", action="store_true", help="only the MSG91 phase")
    return parser.parse_args()


def write_profiles(database: Path, count: int) -> None:
    """N subscribed profiles with a phone, a first name and their contact."""
    now = "2026-01-01 00:00:00.000000"
    connection = sqlite3.connect(database)
    workspace = connection.execute("SELECT id FROM workspaces ORDER BY id LIMIT 1").fetchone()[0]
    rows = (
        (workspace, f"u{n}", str(919000000000 + n), "IN", json.dumps({"first_name": f"P{n}"}), now)
        for n in range(count)
    )
    connection.executemany(
        "INSERT INTO profiles (workspace_id, identity, phone, country, attributes, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?6)",
        rows,
    )
    # Their contacts, linked as the profiles capability links them (subscribed).
    connection.execute(
        "INSERT INTO contacts (workspace_id, phone, subscription, subscription_source, "
        "profile_id, created_at) SELECT workspace_id, phone, 'subscribed', 'default', id, "
        "created_at FROM profiles"
    )
    connection.commit()
    connection.close()


class PeakRss:
    """The server's VmHWM (peak resident set) read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


def run_campaign(
    stack: Stack, provider: dict[str, Any], segment_id: int, n: int
) -> dict[str, float]:
    with stack.sim() as sim:
        sim.post("/_sim/reset")
    with stack.api as api:
        template_id = api.get(f"/providers/{provider['id']}/templates").json()[0]["id"]
        made = api.post(
            "/campaigns",
            json={
                "name": f"bench-{time.monotonic_ns()}",
                "provider_id": provider["id"],
                "template_id": template_id,
                "variables": MAPPING,
                "audience": {"segment_id": segment_id},
                # The segment holds the largest phase's audience; smaller phases stop at n.
                "target_cap": n,
            },
        )
        assert made.status_code == 201, made.text
        campaign_id = made.json()["id"]
        started = time.perf_counter()
        answer = api.post(f"/campaigns/{campaign_id}/start")
        assert answer.status_code == 200, answer.text
    first: list[float] = []

    def watch_first() -> None:
        while stack.sim_stats()["messages_accepted"] < 1:
            time.sleep(0.01)
        first.append(time.perf_counter() - started)

    watcher = threading.Thread(target=watch_first, daemon=True)
    watcher.start()
    wait_until(lambda: stack.sim_stats()["messages_accepted"] >= n, 3600, "the campaign")
    elapsed = time.perf_counter() - started
    watcher.join(5)
    return {
        "first_s": round(first[0], 3) if first else -1,
        "rps": round(n / elapsed),
        # As bench/dispatch.py measures: the simulator's first to last acceptance.
        "span_rps": round(n / accepted_span(stack, n)),
    }


def main() -> None:
    args = parse()
    n, c = args.recipients, args.concurrency
    m = args.msg91_recipients or n
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} cpus={os.cpu_count()}",
        "recipients": n,
        "msg91_recipients": m,
    }
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch)
        data = logs / "data"
        env = {
            "WACONNECT_DATA_DIR": str(data),
            "WACONNECT_SECRET_KEY": "bench",
            "WACONNECT_LOG_LEVEL": "warning",
        }
        assert run_cli("db", "upgrade", env=env).returncode == 0
        started = time.perf_counter()
        write_profiles(data / "waconnect.db", max(n, m))
        print(f"setup: {max(n, m):,} profiles written in {time.perf_counter() - started:.1f} s")
        simulator = start_simulator(logs, "--no-callbacks", "--report-delay-ms", "0")
        stack = Stack(env=env, log_dir=logs, simulator=simulator)
        try:
            stack.create_key()
            server = stack.start_server()
            assert server.proc is not None
            rss = PeakRss(server.proc.pid)
            generic = stack.add_provider(max_concurrency=c)
            with stack.api as api:
                made = api.post("/segments", json={"name": "all", "definition": {"all": []}})
                segment_id = made.json()["id"]
            requests = bare_requests(
                simulator.base_url + GENERIC_PATH, args.bare, generic["mobile_number"]
            )
            latencies = () if args.skip_generic else (0,) if args.skip_50ms else (0, 50)
            for latency in latencies:
                stack.sim_config(latency_ms=latency, callbacks=False)
                result = run_campaign(stack, generic, segment_id, n)
                bare = bare_phase(stack, requests, c)
                figures[f"generic_{latency}ms_first_s"] = result["first_s"]
                figures[f"generic_{latency}ms_rps"] = result["rps"]
                figures[f"generic_{latency}ms_span_rps"] = result["span_rps"]
                figures[f"bare_{latency}ms_rps"] = round(bare)
                figures[f"ratio_{latency}ms"] = round(result["span_rps"] / bare, 3)
                print(
                    f"generic {latency} ms: first message {result['first_s']} s, "
                    f"{result['rps']:,} recipients/s from start to last "
                    f"({result['span_rps']:,}/s first to last acceptance), bare aiohttp "
                    f"{bare:,.0f}/s, ratio {result['span_rps'] / bare:.2f}, "
                    f"peak RSS so far {rss.mb():.0f} MB"
                )
            stack.sim_config(latency_ms=0, callbacks=False)
            msg91 = stack.add_provider(kind="msg91", max_concurrency=c, options={"batch_size": 100})
            result = run_campaign(stack, msg91, segment_id, m)
            figures["msg91_first_s"] = result["first_s"]
            figures["msg91_rps"] = result["rps"]
            figures["msg91_span_rps"] = result["span_rps"]
            print(
                f"msg91 batched: first message {result['first_s']} s, "
                f"{result['rps']:,} recipients/s"
            )
            figures["server_peak_rss_mb"] = round(rss.mb())
            print(f"server peak RSS: {figures['server_peak_rss_mb']} MB")
        finally:
            stack.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
