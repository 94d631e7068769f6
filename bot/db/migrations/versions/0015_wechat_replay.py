"""WeChat safe-mode replay memory: signature and nonce pairs seen within the timestamp window (issue 16 point 3)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 19:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wechat_callback_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column(
            "seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("signature", "nonce", name="uq_wechat_callback_signature"),
    )
    op.create_index(
        op.f("ix_wechat_callback_signatures_expires_at"),
        "wechat_callback_signatures",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_wechat_callback_signatures_expires_at"), table_name="wechat_callback_signatures")
    op.drop_table("wechat_callback_signatures")
