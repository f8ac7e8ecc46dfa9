"""Shared fixtures: a fresh migrated database per test (SQLite, and PostgreSQL when configured),
the app in-process over httpx's ASGI transport, and API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.support.databases import (
    SKIP_POSTGRES,
    PostgresTemplate,
    SqliteTemplate,
    postgres_base_url,
)
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.web.app import create_app
from waconnect.workspaces import service as workspaces

TEST_SECRET = "test-secret-key-for-waconnect"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate | None]:
    base = postgres_base_url()
    if base is None:
        yield None
        return
    template = PostgresTemplate(base)
    yield template
    template.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: SqliteTemplate,
    postgres_template: PostgresTemplate | None,
) -> Iterator[str]:
    """A fresh migrated database; every test that uses it runs on both databases."""
    if request.param == "sqlite":
        yield sqlite_template.fresh(tmp_path)
        return
    if postgres_template is None:
        pytest.skip(SKIP_POSTGRES)
    url = postgres_template.fresh()
    yield url
    postgres_template.drop(url)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        test_controls=True,
        public_url="http://waconnect.test",
        run_worker=False,
    )


@pytest.fixture
def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for subprocesses."""
    return {
        "WACONNECT_DATABASE_URL": settings.resolved_database_url,
        "WACONNECT_DATA_DIR": str(settings.data_dir),
        "WACONNECT_SECRET_KEY": TEST_SECRET,
        "WACONNECT_TEST_CONTROLS": "1",
    }


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings)
    yield runtime
    await runtime.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in-process: real routing, real database, no network."""
    app = create_app(runtime=runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://waconnect.test") as c:
            yield c


async def new_key(runtime: Runtime, workspace: str = "default") -> str:
    async with runtime.sessions() as session:
        try:
            found = await workspaces.workspace_by_name(session, workspace)
        except Exception:
            found = await workspaces.create_workspace(session, runtime.clock, workspace)
        _row, key = await workspaces.create_key(session, runtime.clock, found.id, "test")
        await session.commit()
    return key


@pytest.fixture
async def auth(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, str]:
    """Authorization headers of a key in the default workspace."""
    return {"Authorization": f"Bearer {await new_key(runtime)}"}
