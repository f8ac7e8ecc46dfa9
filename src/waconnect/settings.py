"""Settings from flags and environment variables (``WACONNECT_*``).

Scripts and tests rely on these names; see the README's configuration table.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WACONNECT_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default: a SQLite file in the data directory.",
    )
    public_url: str | None = Field(
        default=None, description="Base of the callback URLs; default http://127.0.0.1:<port>."
    )
    data_dir: Path = Field(default=Path(".waconnect"))
    secret_key: str | None = Field(
        default=None,
        description="Key that encrypts provider secrets; shared by every node of a deployment.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Provider endpoints must be https unless the host is loopback or this is on.
    allow_http_endpoints: bool = False
    # Where the built-in MSG91 simulator listens; sandbox provider configs point here.
    simulator_url: str = "http://127.0.0.1:9091"
    token_grace_hours: float = 24.0
    api_body_limit: int = 1_000_000
    callback_body_limit: int = 5_000_000
    # Enables the test-only controls (moving the business clock of a running process).
    test_controls: bool = False
    run_worker: bool = True
    # The dispatcher. Safety timers use real time, never the business clock.
    http_timeout_seconds: float = 10.0
    heartbeat_seconds: float = 1.0
    # A dead worker's leases and budget share come back after timeout + this grace.
    heartbeat_grace_seconds: float = 5.0
    poll_seconds: float = 0.2
    sweep_seconds: float = 1.0
    max_transient_failures: int = 5
    # Journeys: the scheduler's round (when idle), batch, lease (real time), and how often
    # segment triggers are checked for time-based conditions.
    journey_poll_seconds: float = 0.2
    journey_batch_size: int = Field(default=500, ge=1, le=5000)
    journey_lease_seconds: float = 60.0
    journey_segment_check_seconds: float = 300.0
    journey_webhook_timeout_seconds: float = 10.0
    # Campaigns: audience members read per transaction, how often the loop looks for work,
    # and how many consecutive provider failures auto-pause a campaign (0: never).
    campaign_chunk_size: int = Field(default=1000, ge=10, le=10_000)
    campaign_poll_seconds: float = 0.5
    # PostgreSQL: how often the worker looks for hot tables whose statistics went stale.
    statistics_seconds: float = Field(default=5.0, gt=0)
    campaign_auto_pause_failures: int = Field(default=50, ge=0)
    # Due bulk rows of a provider past which the loop waits before reading more audience.
    campaign_read_ahead: int = Field(default=20_000, ge=1000)
    # Dashboard logins last this long (absolute, from login), counted on the business clock.
    session_max_age_seconds: int = Field(default=12 * 3600, ge=60)
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'waconnect.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        base = self.public_url or f"http://127.0.0.1:{self.port}"
        return base.rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
