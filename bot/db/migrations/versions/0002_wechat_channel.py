"""wechat channel: inbound message dedupe, pending choices, subscription events, shared access token

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wechat_inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("msg_type", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PROCESSING",
                "REPLIED",
                "DEFERRED",
                "DELIVERED",
                "FAILED",
                "IGNORED",
                name="wechat_delivery_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_wechat_inbound_key"),
    )
    op.create_index(
        op.f("ix_wechat_inbound_messages_received_at"),
        "wechat_inbound_messages",
        ["received_at"],
        unique=False,
    )
    op.create_table(
        "wechat_pending_choices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("openid", name="uq_wechat_choices_openid"),
    )
    op.create_table(
        "wechat_subscription_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("openid", "event", "event_time", name="uq_wechat_subscription_event"),
    )
    op.create_index(
        op.f("ix_wechat_subscription_events_openid"), "wechat_subscription_events", ["openid"], unique=False
    )
    op.create_table(
        "wechat_access_tokens",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("access_token", sa.String(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id"),
    )


def downgrade() -> None:
    op.drop_table("wechat_access_tokens")
    op.drop_index(op.f("ix_wechat_subscription_events_openid"), table_name="wechat_subscription_events")
    op.drop_table("wechat_subscription_events")
    op.drop_table("wechat_pending_choices")
    op.drop_index(op.f("ix_wechat_inbound_messages_received_at"), table_name="wechat_inbound_messages")
    op.drop_table("wechat_inbound_messages")
