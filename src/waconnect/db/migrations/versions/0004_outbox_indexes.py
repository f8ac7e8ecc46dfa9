"""outbox indexes: the claim index holds only claimable rows; the in-doubt index only unknown

Revision ID: 0004
Revises: 0003

``ix_messages_due`` held every queued row, claimed or not: each claim stepped over the rows
that earlier claims had leased (thousands while a campaign runs) before reaching free ones.
Now a claimed or held row leaves it. ``ix_messages_in_doubt`` held every message and changed
with every status; only ``unknown`` ones are ever looked up there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OLD_DUE = "status = 'queued'"
_DUE = "status = 'queued' AND lease_owner IS NULL AND held = false"
_IN_DOUBT = "status = 'unknown'"


def _due(where: str) -> None:
    op.create_index(
        "ix_messages_due",
        "messages",
        ["provider_id", "priority", "next_attempt_at"],
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    op.drop_index("ix_messages_due", table_name="messages")
    _due(_DUE)
    op.drop_index("ix_messages_in_doubt", table_name="messages")
    op.create_index(
        "ix_messages_in_doubt",
        "messages",
        ["workspace_id", "in_doubt_since"],
        postgresql_where=sa.text(_IN_DOUBT),
        sqlite_where=sa.text(_IN_DOUBT),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_in_doubt", table_name="messages")
    op.create_index("ix_messages_in_doubt", "messages", ["status", "in_doubt_since"])
    op.drop_index("ix_messages_due", table_name="messages")
    _due(_OLD_DUE)
