"""Callback benchmark: delivery statuses absorbed per second by a real `waconnect serve`.

Sets up N real messages (dispatched to the simulator with its callbacks off, so every message
has an attempt reference), then posts generic delivery reports (contracts A4) for them from a
pool of keep-alive HTTP/1.1 connections: one status per POST, then 50 per POST. "Absorbed" is
answered 200, which happens only after the raw body is durably stored; "applied" is when every
status has moved its message. Ends with one JSON line of its figures.

The load client writes prepared requests on plain asyncio (uvloop) connections and reads the
answers: on this 2-core machine an aiohttp client session costs the load side about four
times the CPU of the server it measures (against a server that answers without doing
anything, 64 aiohttp clients reach ~3,000 requests/s, these connections ~11,000), so the
figure would be the client's. ``--aiohttp`` uses aiohttp instead, for comparison.

    .venv/bin/python bench/callbacks.py [--messages 20000] [--clients 64] [--aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import psutil
import uvloop

from waconnect.testing.stack import Stack, start_simulator, wait_until


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--aiohttp", action="store_true", help="post with aiohttp instead")
    return parser.parse_args()


async def post_raw(url: str, bodies: list[bytes], clients: int) -> float:
    """POST every body over ``clients`` keep-alive connections, one request in flight on each;
    every answer is read and must be 200."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    requests = [head + str(len(body)).encode() + b"\r\n\r\n" + body for body in bodies]
    requests.reverse()

    async def client() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while requests:
                writer.write(requests.pop())
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                if status_line.split(b" ", 2)[1:2] != [b"200"]:
                    raise RuntimeError(f"callback answered {status_line!r}: {answer!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


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


def reached(stack: Stack, status: str, n: int) -> bool:
    return stack.counts()[status] >= n


def server_cpu(process: psutil.Process) -> float:
    """Seconds of CPU the server process has used, all threads."""
    times = process.cpu_times()
    return float(times.user + times.system)


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
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} cpus={os.cpu_count()}",
        "client": "aiohttp" if args.aiohttp else "raw",
    }
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
            assert stack.server is not None and stack.server.proc is not None
            server = psutil.Process(stack.server.proc.pid)
            for status, per_post, target in (("delivered", 1, "delivered"), ("read", 50, "read")):
                bodies = reports(ids, status, per_post)
                cpu_before = server_cpu(server)
                started = time.perf_counter()
                post = post_all if args.aiohttp else post_raw
                answered = uvloop.run(post(url, bodies, args.clients))
                wait_until(functools.partial(reached, stack, target, n), 600, f"{target} applied")
                applied = time.perf_counter() - started
                # The server's CPU (all its threads) per status, storing and applying: what the
                # load on the machine does not change much, unlike the rates.
                cpu_us = (server_cpu(server) - cpu_before) / n * 1e6
                key = f"{per_post}_per_post"
                figures[f"absorbed_sps_{key}"] = round(n / answered)
                figures[f"applied_sps_{key}"] = round(n / applied)
                figures[f"server_cpu_us_per_status_{key}"] = round(cpu_us)
                print(
                    f"{per_post:>2} status(es) per POST: absorbed {n / answered:,.0f} statuses/s, "
                    f"applied {n / applied:,.0f} statuses/s, server CPU {cpu_us:.0f} µs a status "
                    f"(one core: {1e6 / cpu_us:,.0f} statuses/s)"
                )
        finally:
            stack.stop()
    # Other work on the machine moves these figures: the 1-minute load average at the end.
    figures["load_average"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
