"""Dashboard users (per workspace) and their login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, UTCDateTime


class User(Base):
    """A person who logs in to the dashboard; belongs to exactly one workspace."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    # Lower-cased; unique across workspaces, so a login needs only email and password.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # argon2id, with its parameters inside the hash string.
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserSession(Base):
    """One signed-in browser. Kept server-side so that logging out really ends it."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the 256-bit token the cookie carries: a leaked table opens no session.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sent back with every form (hidden field or htmx header) and compared on each POST.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
