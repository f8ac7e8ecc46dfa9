"""``alembic upgrade head`` on an empty database builds exactly the models: no pending diff."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, inspect
from sqlalchemy.engine import Connection

from tests.support.databases import SKIP_POSTGRES, _admin, _with_database, postgres_base_url
from waconnect.db.engine import make_engine
from waconnect.db.migrate import alembic_config, upgrade
from waconnect.db.registry import metadata
from waconnect.testing.processes import cli_env

_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even alembic's version table."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    base = postgres_base_url()
    if base is None:
        pytest.skip(SKIP_POSTGRES)
    name = f"wac_{os.getpid()}_empty_{next(_names)}"
    asyncio.run(_admin(base, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    yield _with_database(base, name)
    asyncio.run(_admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _inspect(url: str, target: MetaData) -> tuple[list[Any], set[str], str | None]:
    """The autogenerate diff against ``target``, the table names, and the stamped revision."""

    def run(connection: Connection) -> tuple[list[Any], set[str], str | None]:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
        )
        diff = compare_metadata(context, target)
        return diff, set(inspect(connection).get_table_names()), context.get_current_revision()

    async def main() -> tuple[list[Any], set[str], str | None]:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(run)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_upgrade_head_on_an_empty_database_equals_the_models(empty_db_url: str) -> None:
    diff, tables, revision = _inspect(empty_db_url, metadata)
    assert tables == set() and revision is None

    upgrade(empty_db_url)
    diff, tables, revision = _inspect(empty_db_url, metadata)
    assert diff == []
    assert set(metadata.tables) | {"alembic_version"} == tables
    assert {"workspaces", "api_keys", "provider_configs"} <= tables
    head = ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
    assert revision == head

    # Upgrading again is a no-op; and the comparison does see a drift when there is one.
    upgrade(empty_db_url)
    drifted = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["provider_configs"].append_column(Column("not_migrated", Integer))
    diff, _tables, _revision = _inspect(empty_db_url, drifted)
    assert [change[0] for change in diff] == ["add_column"]
    assert diff[0][3].name == "not_migrated"


def test_processes_starting_together_on_an_empty_database_all_migrate(
    empty_db_url: str, tmp_path: Path
) -> None:
    """A deploy starts several processes at once: none fails on a half-made schema."""
    env = {
        "WACONNECT_DATABASE_URL": empty_db_url,
        "WACONNECT_DATA_DIR": str(tmp_path),
        "WACONNECT_SECRET_KEY": "test-secret-key-for-waconnect",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "waconnect", "db", "upgrade"],
            env=cli_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [
        (proc.wait(timeout=120), proc.stderr.read() if proc.stderr else "") for proc in procs
    ]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    _diff, tables, revision = _inspect(empty_db_url, metadata)
    assert revision == ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
    assert "messages" in tables
