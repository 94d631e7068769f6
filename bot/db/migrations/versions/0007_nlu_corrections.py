"""the NLU inbox: a person's decision on each owner message the model was unsure of

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nlu_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("predicted_intent", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Numeric(6, 5), nullable=False),
        sa.Column(
            "decision",
            sa.Enum("CORRECTED", "DISMISSED", name="nlu_decision", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("nlu_corrections")
