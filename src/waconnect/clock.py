"""The business clock: the one source of "now" for windows, waits, DND hours, cut-offs, grace.

Tests move it instead of sleeping. Safety timers (leases, heartbeats, HTTP timeouts) never read it:
they use ``time.monotonic`` so that moving business time cannot break a concurrency cap.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Real UTC time plus an offset that only test controls change."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        self._offset = moment - datetime.now(UTC)
        return self.now()

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()

    def set_offset(self, seconds: float) -> None:
        self._offset = timedelta(seconds=seconds)
