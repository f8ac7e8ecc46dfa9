"""campaigns: campaigns, their variants, recipients and uploaded audiences

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import waconnect.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "provider_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("audience_kind", sa.String(length=12), nullable=False),
        sa.Column(
            "segment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("start_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cutoff_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("throttle_per_second", sa.Float(), nullable=True),
        sa.Column("target_cap", sa.Integer(), nullable=True),
        sa.Column("control_percent", sa.Float(), nullable=False),
        sa.Column("goal_event", sa.String(length=200), nullable=True),
        sa.Column("goal_window_minutes", sa.Integer(), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("audience_done", sa.Boolean(), nullable=False),
        sa.Column("messages_queued", sa.Integer(), nullable=False),
        sa.Column("recipients_seen", sa.Integer(), nullable=False),
        sa.Column("next_slot_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures_from", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("created_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider_configs.id"],
            name=op.f("fk_campaigns_provider_id_provider_configs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_campaigns_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_status", ["status"], unique=False)
        batch_op.create_index("ix_campaigns_workspace_id_id", ["workspace_id", "id"], unique=False)

    op.create_table(
        "campaign_list_entries",
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_list_entries_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "position", name=op.f("pk_campaign_list_entries")),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("variant", sa.SmallInteger(), nullable=True),
        sa.Column("skip_reason", sa.String(length=40), nullable=True),
        sa.Column("skip_detail", sa.Text(), nullable=True),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("converted_at", waconnect.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint("campaign_id", "position", name="uq_campaign_recipients_position"),
    )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_recipients_phone", ["campaign_id", "phone"], unique=False
        )
        batch_op.create_index("ix_campaign_recipients_profile", ["profile_id"], unique=False)

    op.create_table(
        "campaign_variants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column(
            "template_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("match_value", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_variants_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_variants")),
        sa.UniqueConstraint("campaign_id", "number", name="uq_campaign_variants_number"),
    )
    with op.batch_alter_table("campaign_variants", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_variants_template", ["template_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_variants", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_variants_template")

    op.drop_table("campaign_variants")
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_recipients_profile")
        batch_op.drop_index("ix_campaign_recipients_phone")

    op.drop_table("campaign_recipients")
    op.drop_table("campaign_list_entries")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_workspace_id_id")
        batch_op.drop_index("ix_campaigns_status")

    op.drop_table("campaigns")
