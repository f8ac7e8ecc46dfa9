"""Callback benchmark: delivery statuses absorbed per second by a real `waconnect serve`.

Sets up N real messages (dispatched to the simulator with its callbacks off, so every message
has an attempt reference), then posts generic delivery reports (contracts A4) for them from a
pool of aiohttp clients: one status per POST, then 50 per POST. "Absorbed" is answered 200,
which happens only after the raw body is durably stored; "applied" is when every status has
moved its message. Ends with one JSON line of its figures.

    .venv/bin/python bench/callbacks.py [--messages 20000] [--clients 64]
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
import orjson

from waconnect.testing.stack import Stack, start_simulator, wait_until


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=64)
    return parser.parse_args()


async def post_all(url: str, bodies: list[bytes], clients: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"callback answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started


def reports(ids: list[int], status: str, per_post: int) -> list[bytes]:
    now = str(int(time.time()))
    statuses = [
        {"msgId": f"{message_id}-1", "status": status, "timestamp": now} for message_id in ids
    ]
    return [
        orjson.dumps({"payloadVersion": "0.1", "statuses": statuses[i : i + per_post]})
        for i in range(0, len(statuses), per_post)
    ]


def main() -> None:
    args = parse()
    n = args.messages
    figures: dict[str, Any] = {"machine": f"{platform.machine()} cpus={os.cpu_count()}"}
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch)
        env = {
            "WACONNECT_DATA_DIR": str(logs / "data"),
            "WACONNECT_SECRET_KEY": "bench",
            "WACONNECT_LOG_LEVEL": "warning",
        }
        simulator = start_simulator(logs, "--no-callbacks")
        stack = Stack(env=env, log_dir=logs, simulator=simulator)
        try:
            stack.create_key()
            stack.start_server()
            provider = stack.add_provider(max_concurrency=200)
            ids = stack.send(provider["id"], n)
            wait_until(lambda: stack.counts()["sent"] >= n, 600, "messages to be sent")
            url = provider["callbacks"]["delivery_url"]
            for status, per_post, target in (("delivered", 1, "delivered"), ("read", 50, "read")):
                bodies = reports(ids, status, per_post)
                started = time.perf_counter()
                answered = asyncio.run(post_all(url, bodies, args.clients))
                wait_until(lambda t=target: stack.counts()[t] >= n, 600, f"{target} applied")
                applied = time.perf_counter() - started
                key = f"{per_post}_per_post"
                figures[f"absorbed_sps_{key}"] = round(n / answered)
                figures[f"applied_sps_{key}"] = round(n / applied)
                print(
                    f"{per_post:>2} status(es) per POST: absorbed {n / answered:,.0f} statuses/s, "
                    f"applied {n / applied:,.0f} statuses/s"
                )
        finally:
            stack.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
