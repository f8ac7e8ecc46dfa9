"""Alembic, driven from code: ``waconnect db upgrade`` and every ``serve`` start apply it."""

from __future__ import annotations

import asyncio
import sqlite3
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
    command.upgrade(alembic_config(url), revision)


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
