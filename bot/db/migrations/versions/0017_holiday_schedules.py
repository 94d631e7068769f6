"""Public holiday schedules loaded as data, one per year (issue 16 point 1)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holiday_schedules",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("loaded_by", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "holiday_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("HOLIDAY", "WORKDAY", name="holiday_kind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["year"], ["holiday_schedules.year"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_index("ix_holiday_days_year", "holiday_days", ["year"])


def downgrade() -> None:
    op.drop_index("ix_holiday_days_year", table_name="holiday_days")
    op.drop_table("holiday_days")
    op.drop_table("holiday_schedules")
