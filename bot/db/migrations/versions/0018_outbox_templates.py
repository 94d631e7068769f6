"""Outbox rows carry a WeChat template for a closed window and say how they went out (issue 18 point 1)

Reminders leave through the outbox's deliverer like every other message to an owner: a WeChat reminder's
row names the template to use when the customer-service window is closed, and the deliverer records which
way it went (``wechat_custom``, ``wechat_template``, ``socketio`` …) for the reminder to read back.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 15:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as table:
        table.add_column(sa.Column("template_id", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("template_data", sa.Text(), nullable=True))
        table.add_column(sa.Column("delivered_via", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as table:
        table.drop_column("delivered_via")
        table.drop_column("template_data")
        table.drop_column("template_id")
