"""Journeys, their published versions, each profile's run through one, its path, and the
signals (events) waiting to be applied to runs.

A run's state lives in ``journey_runs``: the node it is at, whether it waits, and until when
(``due_at``, on the business clock). The worker's scheduler claims due runs the way the
dispatcher claims messages (journeys/scheduler.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, Json, UTCDateTime

# A run in one of these states is "inside" the journey; at most one per (journey, profile).
ACTIVE_STATES = ("active", "waiting")
ACTIVE_WHERE = "state IN ('active', 'waiting')"


class Journey(Base):
    """A journey: its editable draft and, once published, its live version."""

    __tablename__ = "journeys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_journeys_name"),
        Index("ix_journeys_workspace_status", "workspace_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    # draft -> live <-> paused -> stopped
    status: Mapped[str] = mapped_column(String(10), default="draft")
    # The draft being edited: trigger, rules, start, nodes.
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    # The version new profiles enter (None until first published).
    live_version_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    # What the live version's trigger listens to, for the cheap event listener.
    trigger_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    trigger_event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneyVersion(Base):
    """A published, immutable graph; runs keep the version they entered on."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "number", name="uq_journey_versions_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    # Event names a run on this version reacts to while inside (goal, replies, payments).
    listens: Mapped[list[str]] = mapped_column(Json, default=list)
    template_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneyRun(Base):
    """One profile's pass through one journey version."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        # The scheduler's claim: runs whose timer is due.
        Index(
            "ix_journey_runs_due",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
        Index("ix_journey_runs_profile", "profile_id", "state"),
        Index("ix_journey_runs_journey_node", "journey_id", "state", "node"),
        # One run inside a journey per profile at a time (entries from two workers race here).
        Index(
            "uq_journey_runs_active",
            "journey_id",
            "profile_id",
            unique=True,
            postgresql_where=text(ACTIVE_WHERE),
            sqlite_where=text(ACTIVE_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(BigId)
    profile_id: Mapped[int] = mapped_column(BigId)
    # active (moving now) | waiting | completed | exited
    state: Mapped[str] = mapped_column(String(10))
    node: Mapped[str] = mapped_column(String(100))
    # Node visits so far; (run, visit) keys each step, so a node's send happens once.
    visit: Mapped[int] = mapped_column(Integer, default=0)
    # When the scheduler must look at the run next (business clock); None: only a signal wakes it.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The claim's lease (real time), as the dispatcher's: another worker takes it after expiry.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    exit_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    goal_reached: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JourneyStep(Base):
    """One node a run went through, and the exit it took: the profile's path and the stats."""

    __tablename__ = "journey_steps"
    __table_args__ = (
        UniqueConstraint("run_id", "visit", name="uq_journey_steps_visit"),
        Index("ix_journey_steps_journey_node", "journey_id", "node", "exit"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("journey_runs.id", ondelete="CASCADE"))
    journey_id: Mapped[int] = mapped_column(BigId)
    version_id: Mapped[int] = mapped_column(BigId)
    visit: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(100))
    exit: Mapped[str | None] = mapped_column(String(100), nullable=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class JourneySignal(Base):
    """An event waiting for the scheduler: a possible entry (run_id None) or news for a run.

    Written by the event listener inside the event's own transaction, so no event is lost
    between recording it and a journey reacting to it.
    """

    __tablename__ = "journey_signals"
    __table_args__ = (Index("ix_journey_signals_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId)
    profile_id: Mapped[int] = mapped_column(BigId)
    run_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    # Entry signals: the journey whose trigger may match (None for run signals).
    journey_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneySegmentMember(Base):
    """Who was in a segment-triggered journey's segment at the last check: entering is the
    move from outside to inside."""

    __tablename__ = "journey_segment_members"

    journey_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    profile_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
