"""WeCom (企业微信) callbacks already handled, so a replayed callback is answered once

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 08:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("msg_signature", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=True),
        sa.Column("msg_type", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PROCESSING",
                "SENT",
                "REFUSED",
                "FAILED",
                "IGNORED",
                name="wecom_callback_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_wecom_callbacks_key"),
        sa.UniqueConstraint("msg_signature", name="uq_wecom_callbacks_signature"),
    )
    op.create_index(op.f("ix_wecom_callbacks_received_at"), "wecom_callbacks", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wecom_callbacks_received_at"), table_name="wecom_callbacks")
    op.drop_table("wecom_callbacks")
