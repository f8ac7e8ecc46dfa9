"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 10:15:31.696763
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import waconnect.db.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_api_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "provider_configs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("nickname", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("mobile_number", sa.String(length=20), nullable=False),
        sa.Column("request_type", sa.String(length=10), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=False),
        sa.Column("auth_type", sa.String(length=10), nullable=False),
        sa.Column("auth_username", sa.String(length=200), nullable=True),
        sa.Column("auth_password_enc", sa.Text(), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("callback_header_name", sa.String(length=100), nullable=True),
        sa.Column("callback_header_value_enc", sa.Text(), nullable=True),
        sa.Column(
            "templates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("auto_reply_enabled", sa.Boolean(), nullable=False),
        sa.Column("auto_reply_text", sa.Text(), nullable=True),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("callback_token", sa.String(length=64), nullable=False),
        sa.Column("previous_callback_token", sa.String(length=64), nullable=True),
        sa.Column(
            "previous_token_expires_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_provider_configs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_configs")),
        sa.UniqueConstraint("callback_token", name=op.f("uq_provider_configs_callback_token")),
        sa.UniqueConstraint("workspace_id", "nickname", name="uq_provider_configs_nickname"),
    )
    with op.batch_alter_table("provider_configs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_configs_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(
            "uq_provider_configs_one_default",
            ["workspace_id"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_configs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_provider_configs_one_default",
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )
        batch_op.drop_index(batch_op.f("ix_provider_configs_workspace_id"))

    op.drop_table("provider_configs")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_workspace_id"))

    op.drop_table("api_keys")
    op.drop_table("workspaces")
