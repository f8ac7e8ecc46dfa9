"""Campaigns: one template (or up to three variants) sent to an audience, tracked per recipient.

Every member of the audience the campaign reached becomes exactly one ``campaign_recipients``
row — with its message id, its skip reason, or as control — in the same transaction as its
outbox row, keyed by (campaign, audience position): a restart resumes from the persisted cursor
and can never make a second row (or a second message) for the same recipient.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, Json, UTCDateTime


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_workspace_id_id", "workspace_id", "id"),
        Index("ix_campaigns_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    provider_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("provider_configs.id", ondelete="CASCADE")
    )
    # draft -> scheduled -> running -> completed; paused; cancelled
    status: Mapped[str] = mapped_column(String(12))
    # Why it is paused (by whom or by the failure threshold), cancelled...
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # segment | phones | identities
    audience_kind: Mapped[str] = mapped_column(String(12))
    segment_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    # The validated request (variants, mapping, throttle, dnd, caps...), as given.
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cutoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    throttle_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    control_percent: Mapped[float] = mapped_column(Float, default=0)
    goal_event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    goal_window_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Streaming progress: the last audience position handled (profile id or list position).
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    audience_done: Mapped[bool] = mapped_column(Boolean, default=False)
    messages_queued: Mapped[int] = mapped_column(Integer, default=0)
    recipients_seen: Mapped[int] = mapped_column(Integer, default=0)
    # The throttle's next free slot: message n of the campaign is due at start + n / rate.
    next_slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Auto-pause counts consecutive failures from here (the start, or the last resume).
    failures_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A cancelled campaign is settled once none of its rows is left queued.
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CampaignVariant(Base):
    """One template of a campaign: the single one, one of A/B/C, or one value's template."""

    __tablename__ = "campaign_variants"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number", name="uq_campaign_variants_number"),
        Index("ix_campaign_variants_template", "template_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(50))
    template_id: Mapped[int] = mapped_column(BigId)
    variables: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    # With "by property": the attribute value that picks this variant (None: the default).
    match_value: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CampaignRecipient(Base):
    """One member of the audience the campaign reached: message, skip reason, or control."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        # The idempotency key: a chunk replayed after a crash cannot add anyone twice.
        UniqueConstraint("campaign_id", "position", name="uq_campaign_recipients_position"),
        Index("ix_campaign_recipients_phone", "campaign_id", "phone"),
        Index("ix_campaign_recipients_profile", "profile_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(BigInteger)
    profile_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # message | skipped | control
    kind: Mapped[str] = mapped_column(String(8))
    variant: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    skip_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    skip_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CampaignListEntry(Base):
    """An uploaded audience (phones or identities), kept in order so it streams like a segment."""

    __tablename__ = "campaign_list_entries"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
