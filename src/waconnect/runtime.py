"""What a running process shares: settings, the business clock, the database, the secret box.

The server and the worker each build one Runtime; services receive what they need from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from waconnect.clock import Clock
from waconnect.crypto import SecretBox
from waconnect.db.engine import make_engine, make_sessionmaker
from waconnect.db.turn import WriteTurn
from waconnect.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secrets: SecretBox
    extras: dict[str, object] = field(default_factory=dict)
    # SQLite has one writer: this process's writers take turns on it (db/turn.py).
    write_turn: WriteTurn | None = field(init=False)

    def __post_init__(self) -> None:
        self.write_turn = WriteTurn() if self.engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session for a write transaction.

        On SQLite this process's writers take turns (``write_turn``) rather than wait in
        SQLite's busy handler, which sleeps in coarse steps (up to 100 ms) while another
        connection of the same process holds the write lock. PostgreSQL needs no such turns.
        """
        turn = self.write_turn
        if turn is None:
            async with self.sessions() as session:
                yield session
            return
        await turn.take()
        try:
            async with self.sessions() as session:
                yield session
        finally:
            turn.give()

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url)
        return cls(
            settings=settings,
            clock=clock or Clock(),
            engine=engine,
            sessions=make_sessionmaker(engine),
            secrets=SecretBox.from_settings(settings.secret_key, settings.data_dir),
        )

    async def close(self) -> None:
        await self.engine.dispose()


def _clock_file(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "test-clock-offset"


def share_test_clock(runtime: Runtime) -> None:
    """Test controls only: publish this process's clock offset to the deployment's workers."""
    _clock_file(runtime).write_text(str(runtime.clock.offset_seconds))


def follow_test_clock(runtime: Runtime) -> None:
    """Test controls only: take the offset a test set through the server's /_test/clock."""
    if not runtime.settings.test_controls:
        return
    path = _clock_file(runtime)
    if path.exists():
        runtime.clock.set_offset(float(path.read_text() or 0))
