"""Profiles (tracked customers), their events, the attribute type registry, segments, imports.

A profile's phone links it to the contact of (workspace, phone) — the contact holds the
subscription — and the contact's ``profile_id`` points back (messaging/models.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, Json, UTCDateTime

# The message loop's events: recorded once per message, whatever reports it twice.
ONCE_PER_MESSAGE = ("WhatsApp Sent", "WhatsApp Delivered", "WhatsApp Read", "WhatsApp Failed")
ONCE_WHERE = "message_id IS NOT NULL AND name IN ({})".format(
    ", ".join(f"'{name}'" for name in ONCE_PER_MESSAGE)
)


class Profile(Base):
    """A tracked customer. Erasure keeps the row (anonymous counts) and clears what is personal."""

    __tablename__ = "profiles"
    __table_args__ = (
        # NULLs are distinct in both databases: many profiles may lack an identity or a phone.
        UniqueConstraint("workspace_id", "identity", name="uq_profiles_identity"),
        UniqueConstraint("workspace_id", "phone", name="uq_profiles_phone"),
        Index("ix_profiles_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    identity: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # ISO region of the phone, kept at write time: segments select on it in SQL, and the
    # region of a number needs the numbering plan (+1 is shared by 25 countries).
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    # Values typed by the workspace's registry (AttributeType); never JSON null.
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AttributeType(Base):
    """The per-workspace type of each attribute name: set by its first value, then enforced."""

    __tablename__ = "profile_attributes"

    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # string | number | boolean | date | list
    type: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """Something a profile did, with properties and a time."""

    __tablename__ = "events"
    __table_args__ = (
        # Segments ask "did this profile do EVENT (in the last D days)": one probe per profile.
        Index("ix_events_profile_name_ts", "profile_id", "name", "ts"),
        Index(
            "uq_events_message_once",
            "message_id",
            "name",
            unique=True,
            postgresql_where=text(ONCE_WHERE),
            sqlite_where=text(ONCE_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # The message a system event is about (the loop's statuses and replies).
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class Segment(Base):
    """A saved filter over profiles; the definition compiles to one SQL query."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_segments_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImportJob(Base):
    """A CSV upload through the API, imported in the background; its progress is readable."""

    __tablename__ = "profile_imports"
    __table_args__ = (Index("ix_profile_imports_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    # queued -> running -> done | failed
    state: Mapped[str] = mapped_column(String(12))
    filename: Mapped[str] = mapped_column(String(300))
    mapping: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Wall-clock time of the last progress write: a job whose process died stops beating.
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ImportRowError(Base):
    """One rejected row of an import job, kept in the database so any API node can serve it."""

    __tablename__ = "profile_import_errors"
    __table_args__ = (Index("ix_profile_import_errors_job_line", "job_id", "line"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("profile_imports.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    # The row as read (column -> text), so the report can be fixed and imported again.
    values: Mapped[list[Any]] = mapped_column(Json)
