"""The outbox and everything that comes back: contacts, messages, attempts, callbacks, inbound.

Every outbound message is a row before it is a request (design.md, "The outbox is the queue").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, Json, UTCDateTime


class Contact(Base):
    """What belongs to a phone number in a workspace, whether or not a profile exists."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("workspace_id", "phone", name="uq_contacts_phone"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    phone: Mapped[str] = mapped_column(String(20))
    subscription: Mapped[str] = mapped_column(String(20), default="subscribed")
    subscription_source: Mapped[str | None] = mapped_column(String(50), nullable=True)
    subscription_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_auto_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set by the profiles capability; "untracked sender" means no profile links here.
    profile_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactWindow(Base):
    """The 24-hour customer-service window is keyed by (provider config, phone)."""

    __tablename__ = "contact_windows"

    contact_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("provider_configs.id", ondelete="CASCADE"), primary_key=True
    )
    last_inbound_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The partial indexes' predicates, in the literal form their queries must repeat.
DUE_WHERE = "status = 'queued' AND lease_owner IS NULL AND held = false"
IN_DOUBT_WHERE = "status = 'unknown'"


class Message(Base):
    """One outbound WhatsApp message to one phone: queued, sent, retried, tracked."""

    __tablename__ = "messages"
    __table_args__ = (
        # The claim: due queued rows of one provider, best priority first. Only rows free to
        # claim: a claim does not step over the rows earlier claims leased. Queries that
        # use it repeat the predicate's terms (DUE_WHERE).
        Index(
            "ix_messages_due",
            "provider_id",
            "priority",
            "next_attempt_at",
            postgresql_where=text(DUE_WHERE),
            sqlite_where=text(DUE_WHERE),
        ),
        Index("ix_messages_workspace_id_id", "workspace_id", "id"),
        Index("ix_messages_workspace_status", "workspace_id", "status"),
        # Only unknown messages, which the in-doubt sweep settles; other rows never touch it.
        Index(
            "ix_messages_in_doubt",
            "workspace_id",
            "in_doubt_since",
            postgresql_where=text(IN_DOUBT_WHERE),
            sqlite_where=text(IN_DOUBT_WHERE),
        ),
        Index("ix_messages_to_phone", "workspace_id", "to_phone"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    provider_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("provider_configs.id", ondelete="CASCADE")
    )
    template_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("templates.id", ondelete="SET NULL"), nullable=True
    )
    contact_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    to_phone: Mapped[str] = mapped_column(String(20))
    # "template" or "session"; content holds the send components / the session message.
    kind: Mapped[str] = mapped_column(String(10))
    content: Mapped[dict[str, Any]] = mapped_column(Json)
    source: Mapped[str] = mapped_column(String(20), default="api")
    status: Mapped[str] = mapped_column(String(12), default="queued")
    # Lower goes first: test sends 0, journeys and auto-replies 10, API 20, bulk campaigns 30.
    priority: Mapped[int] = mapped_column(SmallInteger, default=20)
    # A paused campaign's rows are held: never claimed until released.
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # Transient failures count against the attempt limit; throttling does not.
    transient_failures: Mapped[int] = mapped_column(Integer, default=0)
    # True between "attempt begun" and "its outcome recorded": a request may be on the wire.
    pending_attempt: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_title: Mapped[str | None] = mapped_column(Text, nullable=True)
    unknown_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    in_doubt_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    campaign_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    replied_count: Mapped[int] = mapped_column(Integer, default=0)
    clicked_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Attempt(Base):
    """One try of one message, with its own provider reference ``<message id>-<number>``."""

    __tablename__ = "message_attempts"
    __table_args__ = (
        UniqueConstraint("message_id", "number", name="uq_message_attempts_number"),
        Index("ix_message_attempts_request", "provider_request_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # None while begun; then accepted, rejected, throttled, transient, in_doubt.
    outcome: Mapped[str | None] = mapped_column(String(12), nullable=True)
    provider_request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    began_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    request: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_title: Mapped[str | None] = mapped_column(Text, nullable=True)


class MessageEvent(Base):
    """A report that touched a message (the timeline), once per (attempt, status)."""

    __tablename__ = "message_events"
    __table_args__ = (
        Index("ix_message_events_message", "message_id"),
        Index(
            "uq_message_events_attempt_status",
            "attempt_id",
            "status",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    attempt_id: Mapped[int] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(12))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    callback_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What the report did: moved, ignored (regression / old attempt), requeued (throttled).
    effect: Mapped[str] = mapped_column(String(12))


class CallbackRecord(Base):
    """Every callback body, stored raw before it is parsed: nothing a provider sends is lost."""

    __tablename__ = "callback_records"
    __table_args__ = (Index("ix_callback_records_state", "state", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int] = mapped_column(BigId, index=True)
    workspace_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(10))  # delivery | inbound
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    headers: Mapped[dict[str, Any]] = mapped_column(Json)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # stored -> applied, or error (kept with its parse error).
    state: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    items: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)


class InboundRecord(Base):
    """A customer's message to a business number."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_workspace_id_id", "workspace_id", "id"),
        Index(
            "uq_inbound_messages_event",
            "provider_id",
            "event_id",
            unique=True,
            postgresql_where=text("event_id IS NOT NULL"),
            sqlite_where=text("event_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(BigId)
    provider_id: Mapped[int] = mapped_column(BigId)
    contact_id: Mapped[int] = mapped_column(BigId, index=True)
    from_phone: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    button_payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    button_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    context_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reply_to_message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    callback_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    # What the platform did about it: opt_out, opt_in, auto_reply...
    action: Mapped[str | None] = mapped_column(String(20), nullable=True)
    auto_reply_message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class Worker(Base):
    """A live dispatcher process; its heartbeat proves it is alive (real time, not business)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ProviderShare(Base):
    """How many concurrent requests of a provider config one worker may have in flight.

    The shares of all workers whose heartbeat has not expired never add up to more than the
    config's max_concurrency (see messaging/budget.py).
    """

    __tablename__ = "provider_shares"

    provider_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("provider_configs.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
