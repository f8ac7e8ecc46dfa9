"""What a running process shares: settings, the business clock, the database, the secret box.

The server and the worker each build one Runtime; services receive what they need from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from waconnect.clock import Clock
from waconnect.crypto import SecretBox
from waconnect.db.engine import make_engine, make_sessionmaker
from waconnect.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secrets: SecretBox
    extras: dict[str, object] = field(default_factory=dict)

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
