"""Dispatch benchmark: messages/s from the outbox to the simulator, against a bare aiohttp loop.

Messages go in through POST /api/v1/messages/batch of a real `waconnect serve` (SQLite), the
simulator runs as another process. Three kinds of figures:

- Dispatch (the headline): N messages are queued first (`serve --no-worker`), then a
  `waconnect worker` process sends them, at 0 ms and 50 ms provider latency; in the same run a
  bare aiohttp loop posts the same payloads to the same simulator at the same concurrency.
  Both rates are taken the same way, from the simulator's own times of the first and the last
  message it accepted, so the ratio compares sending with and without the outbox's
  bookkeeping. Also MSG91 bulk (batched) recipients/s. This is what a campaign sees: its
  rows are in the outbox before they are sent.
- Ingest: how fast the API queues messages (worker off).
- End to end, the default `serve` (worker in the API's process): from the first enqueue to the
  simulator's acceptance of the last message (ingest and dispatch share the process), and the
  whole loop with callbacks on (queued -> sent -> delivered -> read).

The headline `dispatch_ratio` is taken at 50 ms, where a provider's latency, not our CPU,
bounds both sides (real providers answer in 50-300 ms); the 0 ms ratio shows our bookkeeping
cost per message against a loop that keeps none.

    .venv/bin/python bench/dispatch.py [--messages 20000] [--concurrency 100]
                                       [--msg91-recipients 50000]

Ends with one JSON line of its figures (with the machine's load average at the start and end:
figures move with the load, the ratios much less).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from waconnect.providers.adapters import HttpRequest, ProviderEndpoint, TemplateSend, get_adapter
from waconnect.testing.stack import DEMO_TEMPLATE, Stack, start_simulator, wait_until

GENERIC_PATH = "/api/v5/whatsapp//outbound/clevertap/"
WAIT = 900  # seconds any phase may take


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--msg91-recipients", type=int, default=50000)
    return parser.parse_args()


class Phones:
    """Fresh recipients for every phase, so no phase reuses another's messages."""

    def __init__(self) -> None:
        self.next = 919000000000

    def take(self, count: int) -> int:
        first, self.next = self.next, self.next + count
        return first


def reset_simulator(stack: Stack) -> None:
    with stack.sim() as sim:
        sim.post("/_sim/reset")


def accepted_span(stack: Stack, count: int) -> float:
    """Seconds between the simulator's first and last acceptance since its reset."""
    with stack.sim() as sim:

        def at(offset: int) -> float:
            page = sim.get("/_sim/messages", params={"offset": offset, "limit": 1}).json()
            return float(page["messages"][0]["accepted_at"])

        return at(count - 1) - at(0)


def wait_accepted(stack: Stack, count: int, what: str) -> None:
    wait_until(lambda: stack.sim_stats()["messages_accepted"] >= count, WAIT, what)


def dispatch_phase(stack: Stack, provider_id: int, count: int, first: int) -> tuple[float, float]:
    """Queue ``count`` messages with no worker running, then let a worker send them.

    Returns (ingest messages/s, dispatch messages/s by the simulator's clock)."""
    reset_simulator(stack)
    started = time.perf_counter()
    stack.send(provider_id, count, first_phone=first)
    ingest = count / (time.perf_counter() - started)
    worker = stack.start_worker()
    try:
        wait_accepted(stack, count, "dispatch")
    finally:
        worker.stop()
        stack.workers.remove(worker)
    return ingest, count / accepted_span(stack, count)


def end_to_end_phase(stack: Stack, provider_id: int, count: int, first: int, until: str) -> float:
    """Seconds from the first enqueue until all are accepted by the simulator (or read)."""
    reset_simulator(stack)
    read_before = stack.counts(provider_id)["read"]
    started = time.perf_counter()
    stack.send(provider_id, count, first_phone=first)
    if until == "accepted":
        wait_accepted(stack, count, "dispatch")
    else:
        wait_until(
            lambda: stack.counts(provider_id)["read"] >= read_before + count, WAIT, "the whole loop"
        )
    return time.perf_counter() - started


def bare_requests(url: str, count: int, number: str) -> list[HttpRequest]:
    """The same generic payloads the dispatcher sends, built by the same adapter."""
    adapter = get_adapter("sandbox")
    endpoint = ProviderEndpoint(kind="sandbox", endpoint_url=url, mobile_number=number)
    requests = []
    for n in range(count):
        parameters = [{"type": "text", "text": f"C{n}"}, {"type": "text", "text": f"A-{n}"}]
        item = TemplateSend(
            f"bare{n}-1",
            str(918000000000 + n),
            DEMO_TEMPLATE,
            [{"type": "body", "parameters": parameters}],
        )
        requests.append(adapter.build_request(endpoint, [item]))
    return requests


async def bare_loop(requests: list[HttpRequest], concurrency: int) -> None:
    """A plain aiohttp loop at the same concurrency: no database, no bookkeeping."""
    queue: asyncio.Queue[HttpRequest] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                async with session.post(
                    request.url, data=request.body, headers=request.headers
                ) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def bare_phase(stack: Stack, requests: list[HttpRequest], concurrency: int) -> float:
    reset_simulator(stack)
    asyncio.run(bare_loop(requests, concurrency))
    wait_accepted(stack, len(requests), "the bare loop")
    return len(requests) / accepted_span(stack, len(requests))


def route_callbacks(stack: Stack, provider: dict[str, Any]) -> None:
    urls = provider["callbacks"]
    number = {"delivery_url": urls["delivery_url"], "inbound_url": urls["inbound_url"]}
    with stack.sim() as sim:
        answer = sim.post("/_sim/config", json={"numbers": {provider["mobile_number"]: number}})
        assert answer.status_code == 200, answer.text


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    args = parse()
    n, c, m = args.messages, args.concurrency, args.msg91_recipients
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} cpus={os.cpu_count()}",
        "load_start": load(),
    }
    phones = Phones()
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch)
        env = {
            "WACONNECT_DATA_DIR": str(logs / "data"),
            "WACONNECT_SECRET_KEY": "bench",
            "WACONNECT_LOG_LEVEL": "warning",
        }
        simulator = start_simulator(logs, "--no-callbacks", "--report-delay-ms", "0")
        stack = Stack(env=env, log_dir=logs, simulator=simulator)
        try:
            stack.create_key()
            server = stack.start_server("--no-worker")
            port = int(server.base_url.rsplit(":", 1)[1])
            generic = stack.add_provider(max_concurrency=c)
            msg91 = stack.add_provider(kind="msg91", max_concurrency=c, options={"batch_size": 100})
            requests = bare_requests(simulator.base_url + GENERIC_PATH, n, generic["mobile_number"])
            for latency in (0, 50):
                stack.sim_config(latency_ms=latency, callbacks=False)
                ingest, dispatch = dispatch_phase(stack, generic["id"], n, phones.take(n))
                bare = bare_phase(stack, requests, c)
                figures[f"dispatch_mps_{latency}ms"] = round(dispatch)
                figures[f"bare_mps_{latency}ms"] = round(bare)
                figures[f"dispatch_ratio_{latency}ms"] = round(dispatch / bare, 3)
                figures.setdefault("ingest_mps", round(ingest))
                print(
                    f"latency {latency} ms: dispatch {dispatch:,.0f} msg/s, "
                    f"bare aiohttp {bare:,.0f} msg/s, ratio {dispatch / bare:.2f} "
                    f"(API ingest {ingest:,.0f} msg/s)"
                )
            stack.sim_config(latency_ms=0, callbacks=False)
            _ingest, rps = dispatch_phase(stack, msg91["id"], m, phones.take(m))
            figures["msg91_rps"] = round(rps)
            print(f"msg91 batched dispatch: {rps:,.0f} recipients/s")

            # The default deployment: the worker inside `serve`, beside the API.
            server.stop()
            stack.start_server(port=port)
            seconds = end_to_end_phase(stack, generic["id"], n, phones.take(n), "accepted")
            figures["end_to_end_mps"] = round(n / seconds)
            print(f"end to end (ingest and dispatch in one process): {n / seconds:,.0f} msg/s")
            # Both configs use the simulator's one business number: its callbacks go to generic.
            route_callbacks(stack, generic)
            stack.sim_config(latency_ms=0, callbacks=True, report_delay_ms=0)
            loop = n / end_to_end_phase(stack, generic["id"], n, phones.take(n), "read")
            figures["loop_mps"] = round(loop)
            print(f"whole loop (queued -> sent -> delivered -> read): {loop:,.0f} msg/s")
        finally:
            stack.stop()
    figures["dispatch_mps"] = figures["dispatch_mps_0ms"]
    figures["dispatch_ratio"] = figures["dispatch_ratio_50ms"]
    figures["load_end"] = load()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
