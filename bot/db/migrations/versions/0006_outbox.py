"""the durable outbox: staff replies, joined/left notices and pause/resume instructions for the Rasa server

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KINDS = ("TEXT", "JOINED", "LEFT", "CONTROL")
_STATES = ("PENDING", "DELIVERING", "DELIVERED", "FAILED")


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.Enum(*_KINDS, name="outbox_kind", native_enum=False, length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("staff", sa.String(length=64), nullable=True),
        sa.Column("state", sa.Enum(*_STATES, name="outbox_state", native_enum=False, length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_messages_state_channel", "outbox_messages", ["state", "channel", "id"])
    op.create_index("ix_outbox_messages_sender", "outbox_messages", ["sender_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_sender", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_state_channel", table_name="outbox_messages")
    op.drop_table("outbox_messages")
