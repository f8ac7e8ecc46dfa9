"""Profiles benchmark: CSV import, the batch API, and segment counts, on SQLite and PostgreSQL.

1. Writes a CSV of N profiles (identity, phone, city, age, signup, vip, tags) once.
2. Imports it with ``waconnect profiles import`` (a subprocess, as a user runs it) into each
   database: profiles/s, and the peak RSS of the importer with its parsing helper.
3. Sends N profiles through ``POST /api/v1/profiles/batch`` (1,000 per call, 4 calls in flight)
   to ``waconnect serve`` on SQLite (and PostgreSQL with --api-postgres), into a second
   workspace: profiles/s and the server's peak RSS.
4. Adds M events to the CSV workspace (bulk executemany, as fast as each database takes them)
   and times segment counts over the N profiles and M events: an attribute, an event in the
   last 7 days (the issue's target: < 2 s on PostgreSQL), an event with a property condition
   and a count, "did not", and the issue's example definition.

    .venv/bin/python bench/profiles.py [--profiles 1000000] [--events 5000000]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--api-postgres]
        [--skip-api] [--skip-sqlite] [--csv-only]

PostgreSQL runs on a fresh database made (and dropped) on the server of --postgres-url, by
default WACONNECT_TEST_POSTGRES_URL; without one they are skipped. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from sqlalchemy import select, text

from waconnect.profiles import segments
from waconnect.profiles.models import Event, Profile
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.testing.processes import cli_env, free_port, run_cli
from waconnect.workspaces.service import workspace_by_name

CITIES = ["Pune", "Mumbai", "Delhi", "Chennai", "Bengaluru", "Kolkata", "Jaipur", "Surat"]
EVENT_NAMES = ["Viewed", "Added To Cart", "Purchased", "Searched", "Opened App", "Shared"]
EVENT_WEIGHTS = [40, 20, 8, 15, 12, 5]
NOW = datetime.now(UTC)
SEGMENTS: dict[str, dict[str, Any]] = {
    "attribute city = Pune": {"attribute": "city", "op": "eq", "value": "Pune"},
    "event in last 7 days": {"event": "Added To Cart", "within_days": 7},
    "event x2 where amount > 500, 30 days": {
        "event": "Added To Cart",
        "min_count": 2,
        "within_days": 30,
        "where": [{"property": "amount", "op": "gt", "value": 500}],
    },
    "did not purchase in 30 days": {"event": "Purchased", "did": False, "within_days": 30},
    "the issue's example": {
        "all": [
            {"attribute": "city", "op": "eq", "value": "Pune"},
            {
                "any": [
                    {
                        "event": "Added To Cart",
                        "did": True,
                        "min_count": 1,
                        "within_days": 7,
                        "where": [{"property": "amount", "op": "gt", "value": 100}],
                    },
                    {"subscription": "subscribed"},
                ]
            },
        ]
    },
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--postgres-url", default=os.environ.get("WACONNECT_TEST_POSTGRES_URL"))
    parser.add_argument("--api-postgres", action="store_true", help="batch API on PostgreSQL too")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--csv-only", action="store_true", help="only the CSV import (no events, no segments)"
    )
    return parser.parse_args()


# --- data -----------------------------------------------------------------------------------


def profile_row(rng: random.Random, i: int) -> list[str]:
    signup = NOW - timedelta(days=rng.randrange(730), seconds=rng.randrange(86400))
    return [
        f"c{i}",
        f"+91{9_000_000_000 + i}",
        rng.choice(CITIES),
        str(rng.randrange(18, 80)),
        signup.strftime("%Y-%m-%d"),
        rng.choice(["true", "false"]),
        "|".join(rng.sample(["app", "web", "store", "vip", "new"], rng.randrange(0, 3))),
    ]


def write_csv(path: Path, count: int) -> None:
    rng = random.Random(1)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "phone", "city", "age", "signup", "vip", "tags"])
        for i in range(count):
            writer.writerow(profile_row(rng, i))


def api_rows(count: int) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(2)
    batch: list[dict[str, Any]] = []
    for i in range(count):
        identity, phone, city, age, signup, vip, tags = profile_row(rng, i)
        batch.append(
            {
                "identity": identity,
                "phone": phone,
                "attributes": {
                    "city": city,
                    "age": int(age),
                    "signup": signup,
                    "vip": vip == "true",
                    "tags": tags.split("|") if tags else [],
                },
            }
        )
        if len(batch) == 1000:
            yield batch
            batch = []
    if batch:
        yield batch


# --- measuring ------------------------------------------------------------------------------


class PeakRss:
    """The largest total RSS of a process and its children, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                total = root.memory_info().rss + sum(
                    child.memory_info().rss for child in root.children(recursive=True)
                )
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(0.1)

    @property
    def mb(self) -> float:
        return round(self.peak / 1024 / 1024, 1)


def csv_import(env: dict[str, str], path: Path, count: int) -> dict[str, float]:
    # CPU of the importer and its parsing helper (children, once waited for): unlike the rate,
    # it hardly moves with other work on the machine.
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "waconnect", "profiles", "import", str(path)],
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with PeakRss(process.pid) as rss:
        out, _ = process.communicate()
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if process.returncode != 0 or f"{count} created" not in out:
        raise SystemExit(f"the CSV import failed: {out}")
    return {
        "profiles_per_s": round(count / seconds),
        "cpu_us_per_profile": round(cpu / count * 1e6, 1),
        "seconds": round(seconds, 1),
        "peak_rss_mb": rss.mb,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def batch_api(env: dict[str, str], count: int, data_dir: Path) -> dict[str, float]:
    made = run_cli("workspaces", "create", "bench-api", env=env)
    if made.returncode != 0:
        raise SystemExit(made.stderr)
    key = run_cli("keys", "create", "--workspace", "bench-api", env=env).stdout.strip()
    port = free_port()
    server_env = {**env, "WACONNECT_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    log = (data_dir / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "waconnect", "serve", "--port", str(port), "--no-worker"],
        env=cli_env(server_env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz")
        with PeakRss(server.pid) as rss:
            started = time.perf_counter()
            created = asyncio.run(_post_batches(f"http://127.0.0.1:{port}", key, count))
            seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    if created != count:
        raise SystemExit(f"the batch API created {created} of {count}")
    return {
        "profiles_per_s": round(count / seconds),
        "seconds": round(seconds, 1),
        "peak_rss_mb": rss.mb,
    }


def _wait_ready(url: str) -> None:
    import httpx

    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


async def _post_batches(base: str, key: str, count: int, in_flight: int = 4) -> int:
    batches = api_rows(count)
    created = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def worker() -> None:
            nonlocal created
            for batch in batches:  # a shared generator: each batch goes to one worker
                async with http.post(
                    f"{base}/api/v1/profiles/batch", json={"profiles": batch}
                ) as response:
                    body = await response.json()
                    if response.status != 200:
                        raise SystemExit(f"batch API answered {response.status}: {body}")
                    created += body["created"]

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return created


async def add_events(runtime: Runtime, workspace_id: int, count: int) -> float:
    """Bulk events over the workspace's profiles (ids are dense from the import)."""
    async with runtime.sessions() as session:
        low, high = (
            (
                await session.execute(
                    select(Profile.id)
                    .where(Profile.workspace_id == workspace_id)
                    .order_by(Profile.id)
                    .limit(1)
                )
            ).scalar_one(),
            (
                await session.execute(
                    select(Profile.id)
                    .where(Profile.workspace_id == workspace_id)
                    .order_by(Profile.id.desc())
                    .limit(1)
                )
            ).scalar_one(),
        )
    rng = random.Random(3)
    table = Event.__table__
    started = time.perf_counter()
    chunk = 20_000
    for start in range(0, count, chunk):
        names = rng.choices(EVENT_NAMES, EVENT_WEIGHTS, k=min(chunk, count - start))
        rows = [
            {
                "workspace_id": workspace_id,
                "profile_id": rng.randint(low, high),
                "name": name,
                "ts": NOW - timedelta(seconds=rng.randrange(90 * 86400)),
                "properties": {
                    "amount": rng.randrange(1, 2000),
                    "sku": f"sku-{rng.randrange(500)}",
                },
                "message_id": None,
            }
            for name in names
        ]
        async with runtime.writer() as session:
            await session.execute(table.insert(), rows)  # type: ignore[attr-defined]
            await session.commit()
    return round(count / (time.perf_counter() - started))


async def segment_counts(runtime: Runtime, workspace_id: int) -> dict[str, dict[str, float]]:
    async with runtime.sessions() as session:
        if runtime.settings.is_sqlite:
            await session.execute(text("ANALYZE"))
        else:
            await session.execute(text("ANALYZE profiles, events, contacts"))
        await session.commit()
    figures: dict[str, dict[str, float]] = {}
    for label, definition in SEGMENTS.items():
        runs: list[float] = []
        found = 0
        for _ in range(3):
            async with runtime.sessions() as session:
                node = await segments.compile_definition(session, workspace_id, definition)
                started = time.perf_counter()
                found = await segments.count(session, runtime.clock.now(), workspace_id, node)
                runs.append(time.perf_counter() - started)
        figures[label] = {"seconds": round(statistics.median(runs), 3), "count": found}
        print(f"    {label:40s} {figures[label]['seconds']:7.3f} s  ({found} profiles)", flush=True)
    return figures


# --- one database ---------------------------------------------------------------------------


def run_database(
    name: str, url: str, data_dir: Path, source: Path, args: argparse.Namespace, api: bool
) -> dict[str, Any]:
    env = {"WACONNECT_DATABASE_URL": url, "WACONNECT_DATA_DIR": str(data_dir)}
    migrated = run_cli("db", "upgrade", env=env, timeout=120)
    if migrated.returncode != 0:
        raise SystemExit(migrated.stderr)
    print(f"{name}:", flush=True)
    figures: dict[str, Any] = {"csv": csv_import(env, source, args.profiles)}
    print(f"  CSV import        {figures['csv']}", flush=True)
    if args.csv_only:
        return figures
    if api:
        figures["api"] = batch_api(env, args.profiles, data_dir)
        print(f"  batch API         {figures['api']}", flush=True)

    async def events_and_segments() -> None:
        runtime = Runtime.build(Settings(database_url=url, data_dir=data_dir))
        try:
            async with runtime.sessions() as session:
                workspace_id = (await workspace_by_name(session, "default")).id
            figures["events_per_s"] = await add_events(runtime, workspace_id, args.events)
            print(f"  {args.events} events added at {figures['events_per_s']}/s", flush=True)
            print(f"  segment counts over {args.profiles} profiles, {args.events} events:")
            figures["segments"] = await segment_counts(runtime, workspace_id)
        finally:
            await runtime.close()

    asyncio.run(events_and_segments())
    return figures


def postgres_database(base: str) -> tuple[str, Callable[[], None]]:
    dsn = base.replace("postgresql+asyncpg://", "postgresql://")
    name = f"wac_bench_{os.getpid()}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    url = dsn.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    return url, lambda: asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def main() -> None:
    args = parse()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 1024**3)} GB, Python {platform.python_version()}"
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-profiles-") as scratch:
        root = Path(scratch)
        source = root / "profiles.csv"
        started = time.perf_counter()
        write_csv(source, args.profiles)
        size = source.stat().st_size / 1024 / 1024
        took = time.perf_counter() - started
        print(f"wrote {args.profiles} profiles ({size:.0f} MB) in {took:.0f} s")
        sqlite_dir = root / "sqlite"
        if not args.skip_sqlite:
            results["sqlite"] = run_database(
                "SQLite",
                f"sqlite+aiosqlite:///{sqlite_dir / 'waconnect.db'}",
                sqlite_dir,
                source,
                args,
                api=not args.skip_api,
            )
        if args.postgres_url:
            url, drop = postgres_database(args.postgres_url)
            try:
                results["postgres"] = run_database(
                    "PostgreSQL", url, root / "pg", source, args, api=args.api_postgres
                )
            finally:
                drop()
        else:
            print("PostgreSQL: skipped (no --postgres-url / WACONNECT_TEST_POSTGRES_URL)")
    print(json.dumps(_summary(results, args)))


def _summary(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "profiles": args.profiles,
        "events": 0 if args.csv_only else args.events,
        # Other work on the machine moves these figures: the 1-minute load average at the end.
        "load_average": round(os.getloadavg()[0], 1),
    }
    for db, figures in results.items():
        summary[f"csv_{db}_pps"] = figures["csv"]["profiles_per_s"]
        summary[f"csv_{db}_peak_rss_mb"] = figures["csv"]["peak_rss_mb"]
        summary[f"csv_{db}_cpu_us_per_profile"] = figures["csv"]["cpu_us_per_profile"]
        if args.csv_only:
            continue
        if "api" in figures:
            summary[f"api_{db}_pps"] = figures["api"]["profiles_per_s"]
            summary[f"api_{db}_peak_rss_mb"] = figures["api"]["peak_rss_mb"]
        summary[f"events_insert_{db}_eps"] = figures["events_per_s"]
        for label, key in (
            ("event in last 7 days", "segment_event"),
            ("event x2 where amount > 500, 30 days", "segment_event_where"),
            ("did not purchase in 30 days", "segment_did_not"),
            ("attribute city = Pune", "segment_attribute"),
            ("the issue's example", "segment_example"),
        ):
            summary[f"{key}_{db}_s"] = figures["segments"][label]["seconds"]
    return summary


if __name__ == "__main__":
    main()
