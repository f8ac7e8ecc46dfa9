"""What to do after an attempt: a small policy object the dispatcher asks, by error family.

- throttled ("slow down": 429, 130429, 131056, generic 1004/1005): back to the queue with a
  later time; does not count against the attempt limit; bounded by the message's expiry.
- transient (5xx, connection refused): back to the queue; counts; after the limit it fails.
- anything else (auth, invalid request/recipient, policy): fails at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from waconnect.providers.errors import ErrorFamily, ProviderError


@dataclass(frozen=True)
class Retry:
    at: datetime
    counts: bool  # against the transient-failure limit


@dataclass(frozen=True)
class Fail:
    error: ProviderError


@dataclass(frozen=True)
class RetryPolicy:
    max_transient: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def backoff(self, tries: int) -> float:
        """Exponential backoff with full jitter (tries counts from 1)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(tries - 1, 0)))
        return random.uniform(ceiling / 2, ceiling)

    def decide(
        self, error: ProviderError, now: datetime, transient_failures: int, throttles: int
    ) -> Retry | Fail:
        """``transient_failures`` already includes this one when it is transient."""
        if error.family is ErrorFamily.THROTTLED:
            return Retry(at=now + timedelta(seconds=self.backoff(throttles)), counts=False)
        if error.family is ErrorFamily.TRANSIENT:
            if transient_failures >= self.max_transient:
                return Fail(error)
            return Retry(at=now + timedelta(seconds=self.backoff(transient_failures)), counts=True)
        return Fail(error)
