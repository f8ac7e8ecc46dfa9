"""Dispatch benchmark: messages/s from `serve` to the simulator, against a bare aiohttp loop.

Drives N messages through POST /api/v1/messages/batch into a real `waconnect serve` (SQLite,
worker in-process) and the simulator as another process, at 0 ms and 50 ms provider latency;
in the same run a bare aiohttp loop posts the same payloads to the same simulator at the same
concurrency. Prints both rates and their ratio with callbacks off (dispatch alone), then the
whole loop with callbacks on (sent -> delivered -> read applied), then MSG91 bulk batching.

    .venv/bin/python bench/dispatch.py [--messages 20000] [--concurrency 100]

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from waconnect.providers.adapters import ProviderEndpoint, TemplateSend, get_adapter
from waconnect.testing.stack import DEMO_TEMPLATE, Stack, start_simulator, wait_until

BATCH = 1000


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--msg91-recipients", type=int, default=50000)
    return parser.parse_args()


def enqueue(stack: Stack, provider_id: int, count: int, offset: int) -> None:
    stack.send(provider_id, count, first_phone=919000000000 + offset)


def timed_dispatch(stack: Stack, provider_id: int, count: int, offset: int, until: str) -> float:
    """Seconds from the first enqueue until the simulator accepted all (or all are read)."""
    with stack.sim() as sim:
        sim.post("/_sim/reset")
    started = time.perf_counter()
    enqueue(stack, provider_id, count, offset)
    if until == "accepted":
        wait_until(lambda: stack.sim_stats()["messages_accepted"] >= count, 600, "dispatch")
    else:
        wait_until(
            lambda: (
                stack.counts(provider_id)["read"] >= count + offset_read(stack, provider_id, count)
            ),
            600,
            "loop",
        )
    return time.perf_counter() - started


_read_before: dict[int, int] = {}


def offset_read(stack: Stack, provider_id: int, count: int) -> int:
    return _read_before.get(provider_id, 0)


async def bare_loop(url: str, count: int, concurrency: int, number: str) -> float:
    """The same generic payloads posted by a plain aiohttp loop at the same concurrency."""
    adapter = get_adapter("sandbox")
    endpoint = ProviderEndpoint(kind="sandbox", endpoint_url=url, mobile_number=number)
    template = {**DEMO_TEMPLATE}
    bodies = [
        adapter.build_request(
            endpoint,
            [
                TemplateSend(
                    f"bare{n}-1",
                    str(918000000000 + n),
                    template,
                    [
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": f"C{n}"},
                                {"type": "text", "text": f"A-{n}"},
                            ],
                        }
                    ],
                )
            ],
        )
        for n in range(count)
    ]
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
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
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={__import__('os').cpu_count()}".strip()
    }
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
            offset = 0
            for latency in (0, 50):
                stack.sim_config(latency_ms=latency, callbacks=False)
                seconds = timed_dispatch(stack, generic["id"], n, offset, "accepted")
                offset += n
                dispatch = n / seconds
                bare_seconds = asyncio.run(
                    bare_loop(
                        simulator.base_url + "/api/v5/whatsapp//outbound/clevertap/",
                        n,
                        c,
                        generic["mobile_number"],
                    )
                )
                bare = n / bare_seconds
                figures[f"dispatch_mps_{latency}ms"] = round(dispatch)
                figures[f"bare_mps_{latency}ms"] = round(bare)
                figures[f"dispatch_ratio_{latency}ms"] = round(dispatch / bare, 3)
                print(
                    f"latency {latency} ms: dispatch {dispatch:,.0f} msg/s, bare aiohttp {bare:,.0f} msg/s, ratio {dispatch / bare:.2f}"
                )
            # The whole loop: reports come back through the callbacks and are applied.
            stack.sim_config(latency_ms=0, callbacks=True, report_delay_ms=0)
            _read_before[generic["id"]] = stack.counts(generic["id"])["read"]
            seconds = timed_dispatch(stack, generic["id"], n, offset, "read")
            offset += n
            figures["loop_mps"] = round(n / seconds)
            print(f"whole loop (queued -> sent -> delivered -> read): {n / seconds:,.0f} msg/s")
            # MSG91 bulk: many recipients per request.
            stack.sim_config(latency_ms=0, callbacks=False)
            msg91 = stack.add_provider(kind="msg91", max_concurrency=c, options={"batch_size": 100})
            m = args.msg91_recipients
            seconds = timed_dispatch(stack, msg91["id"], m, offset, "accepted")
            figures["msg91_rps"] = round(m / seconds)
            print(f"msg91 batched dispatch: {m / seconds:,.0f} recipients/s")
        finally:
            stack.stop()
    figures["dispatch_mps"] = figures["dispatch_mps_0ms"]
    figures["dispatch_ratio"] = figures["dispatch_ratio_0ms"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
