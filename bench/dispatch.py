"""Dispatch benchmark: messages/s from `serve` to the simulator, against a bare aiohttp loop.

Drives N messages through POST /api/v1/messages/batch into a real `waconnect serve` (SQLite,
worker in-process) with the simulator as another process, at 0 ms and 50 ms provider latency;
in the same run a bare aiohttp loop posts the same payloads to the same simulator at the same
concurrency. Prints both rates and their ratio with callbacks off (dispatch alone), then the
whole loop with callbacks on (queued -> sent -> delivered -> read), then MSG91 bulk batching.

The headline `dispatch_ratio` is taken at 50 ms, where a provider's latency, not our CPU,
bounds both sides (real providers answer in 50-300 ms); the 0 ms ratio is printed too and
shows our bookkeeping cost per message against a loop that keeps none.

    .venv/bin/python bench/dispatch.py [--messages 20000] [--concurrency 100]

Ends with one JSON line of its figures.
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


def run_phase(stack: Stack, provider_id: int, count: int, first: int, until: str) -> float:
    """Seconds from the first enqueue until all are accepted by the simulator (or read)."""
    with stack.sim() as sim:
        sim.post("/_sim/reset")
    read_before = stack.counts(provider_id)["read"]
    started = time.perf_counter()
    stack.send(provider_id, count, first_phone=first)
    if until == "accepted":
        wait_until(lambda: stack.sim_stats()["messages_accepted"] >= count, 900, "dispatch")
    else:
        wait_until(
            lambda: stack.counts(provider_id)["read"] >= read_before + count, 900, "the whole loop"
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


async def bare_loop(requests: list[HttpRequest], concurrency: int) -> float:
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

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> None:
    args = parse()
    n, c = args.messages, args.concurrency
    figures: dict[str, Any] = {"machine": f"{platform.machine()} cpus={os.cpu_count()}"}
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
            stack.start_server()
            generic = stack.add_provider(max_concurrency=c)
            requests = bare_requests(simulator.base_url + GENERIC_PATH, n, generic["mobile_number"])
            for latency in (0, 50):
                stack.sim_config(latency_ms=latency, callbacks=False)
                dispatch = n / run_phase(stack, generic["id"], n, phones.take(n), "accepted")
                bare = n / asyncio.run(bare_loop(requests, c))
                figures[f"dispatch_mps_{latency}ms"] = round(dispatch)
                figures[f"bare_mps_{latency}ms"] = round(bare)
                figures[f"dispatch_ratio_{latency}ms"] = round(dispatch / bare, 3)
                print(
                    f"latency {latency} ms: dispatch {dispatch:,.0f} msg/s, "
                    f"bare aiohttp {bare:,.0f} msg/s, ratio {dispatch / bare:.2f}"
                )
            stack.sim_config(latency_ms=0, callbacks=True, report_delay_ms=0)
            loop = n / run_phase(stack, generic["id"], n, phones.take(n), "read")
            figures["loop_mps"] = round(loop)
            print(f"whole loop (queued -> sent -> delivered -> read): {loop:,.0f} msg/s")
            stack.sim_config(latency_ms=0, callbacks=False)
            msg91 = stack.add_provider(kind="msg91", max_concurrency=c, options={"batch_size": 100})
            m = args.msg91_recipients
            rps = m / run_phase(stack, msg91["id"], m, phones.take(m), "accepted")
            figures["msg91_rps"] = round(rps)
            print(f"msg91 batched dispatch: {rps:,.0f} recipients/s")
        finally:
            stack.stop()
    figures["dispatch_mps"] = figures["dispatch_mps_0ms"]
    figures["dispatch_ratio"] = figures["dispatch_ratio_50ms"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
