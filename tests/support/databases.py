"""Fresh, migrated databases for tests: SQLite always, PostgreSQL when its URL is set.

Each test gets its own database copied from a template migrated once per session, so tests are
isolated and the migrations themselves are what builds every test database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from pathlib import Path

import asyncpg

from waconnect.db.migrate import upgrade

POSTGRES_ENV = "WACONNECT_TEST_POSTGRES_URL"
SKIP_POSTGRES = (
    f"{POSTGRES_ENV} is not set: the PostgreSQL runs are skipped "
    "(CI sets it to the server at 127.0.0.1:5432)"
)
_counter = itertools.count()


def postgres_base_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return None
    return (
        url.replace("postgresql://", "postgresql+asyncpg://", 1) if "+asyncpg" not in url else url
    )


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_dsn(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


class SqliteTemplate:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"
        upgrade(f"sqlite+aiosqlite:///{self.path}")

    def fresh(self, folder: Path) -> str:
        target = folder / f"waconnect-{next(_counter)}.db"
        shutil.copy(self.path, target)
        return f"sqlite+aiosqlite:///{target}"


class PostgresTemplate:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.prefix = f"wac_{os.getpid()}"
        self.template = f"{self.prefix}_tpl"
        asyncio.run(
            _admin(
                base_url,
                f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)",
                f"CREATE DATABASE {self.template}",
            )
        )
        upgrade(_with_database(base_url, self.template))
        self.created: list[str] = []

    def fresh(self) -> str:
        name = f"{self.prefix}_{next(_counter)}"
        asyncio.run(_admin(self.base_url, f"CREATE DATABASE {name} TEMPLATE {self.template}"))
        self.created.append(name)
        return _with_database(self.base_url, name)

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2]
        asyncio.run(_admin(self.base_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        asyncio.run(_admin(self.base_url, f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)"))
