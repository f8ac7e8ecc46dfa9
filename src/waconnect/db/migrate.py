"""Alembic, driven from code: ``waconnect db upgrade`` and every ``serve`` start apply it."""

from __future__ import annotations

import asyncio
import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking; env.py runs its own event loop, so call this from a thread inside async code."""
    _check_sqlite_file(url)
    with _sqlite_migration_lock(url):
        command.upgrade(alembic_config(url), revision)


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """One migrating process per SQLite file. SQLite runs DDL outside a transaction in Alembic,
    so two processes starting on an empty file would both create the first table; PostgreSQL
    takes an advisory lock in env.py instead."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        yield
        return
    with open(f"{parsed.database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _check_sqlite_file(url: str) -> None:
    """Open a SQLite file once with the plain driver, so that a path that cannot be opened fails
    here with its reason (aiosqlite's worker thread would also print a traceback at exit)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    if parsed.query.get("uri"):
        return
    try:
        sqlite3.connect(parsed.database).close()
    except sqlite3.Error as exc:
        raise ValueError(f"cannot open the SQLite database {parsed.database}: {exc}") from None


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
