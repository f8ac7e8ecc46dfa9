"""Message states and the moves between them (design.md, "The outbox is the queue").

Pure functions: the callback applier and the dispatcher both ask here whether a report or an
outcome may move a message, so the rules live in one place.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"  # waiting, being sent, or waiting to retry
    UNKNOWN = "unknown"  # in doubt: the provider may have it
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    EXPIRED = "expired"  # never left: past its cut-off
    CANCELLED = "cancelled"  # never left: its campaign or journey was stopped


# How far a message got; reports only move it forward.
_RANK = {
    Status.QUEUED: 0,
    Status.UNKNOWN: 0,
    Status.SENT: 1,
    Status.DELIVERED: 2,
    Status.READ: 3,
}
FINAL = frozenset({Status.DELIVERED, Status.READ, Status.FAILED, Status.EXPIRED, Status.CANCELLED})
NEVER_LEFT = frozenset({Status.EXPIRED, Status.CANCELLED})


def forward_move(current: str, reported: str) -> bool:
    """May a ``sent``/``delivered``/``read`` report move a message in ``current``?

    Only forward, and never out of failed, expired or cancelled: duplicates and out-of-order
    reports change nothing twice.
    """
    if current not in _RANK or reported not in _RANK:
        return False
    return _RANK[Status(reported)] > _RANK[Status(current)]


def failure_allowed(current: str) -> bool:
    """``failed`` may replace queued, unknown or sent — never delivered or read."""
    return current in (Status.QUEUED, Status.UNKNOWN, Status.SENT)


def is_final(status: str) -> bool:
    return status in FINAL
