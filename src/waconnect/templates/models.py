"""Templates: pre-approved WhatsApp message templates, saved per provider config."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from waconnect.db.base import Base, BigId, Json, UTCDateTime


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (
        UniqueConstraint("provider_id", "name", "language", name="uq_templates_name_language"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("provider_configs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30))
    # The whole definition in WhatsApp's own format (components with examples, and any field
    # we do not know yet), so a template copies in from a provider unchanged.
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    provider_template_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    namespace: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
