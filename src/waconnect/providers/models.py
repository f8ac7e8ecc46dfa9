"""Provider configs: one WhatsApp sender connected through one provider."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, Json, UTCDateTime


class ProviderConfig(Base):
    __tablename__ = "provider_configs"
    __table_args__ = (
        UniqueConstraint("workspace_id", "nickname", name="uq_provider_configs_nickname"),
        # At most one default per workspace, enforced by the database itself.
        Index(
            "uq_provider_configs_one_default",
            "workspace_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    nickname: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    mobile_number: Mapped[str] = mapped_column(String(20))
    request_type: Mapped[str] = mapped_column(String(10), default="POST")
    endpoint_url: Mapped[str] = mapped_column(Text)
    auth_type: Mapped[str] = mapped_column(String(10), default="none")
    auth_username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    auth_password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    # name -> {"value": plain} or {"enc": fernet token} for secret headers.
    headers: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    callback_header_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    callback_header_value_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Template import setup; secret values inside are encrypted like headers.
    templates: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_reply_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_reply_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=100)
    # Extra knobs of a kind (msg91 batch size, ...).
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    previous_callback_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
