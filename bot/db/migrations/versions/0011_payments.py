"""payments imported or recorded by staff, and promise outcomes

Adds ``payments`` and ``payment_imports``; on ``payment_promises`` the amount paid towards a promise, when it
was last evaluated and how often it was rescheduled; on ``bills`` the moment the arrears import stated the
figure (``as_of``), after which payments reduce it (the bills already stored get the upgrade's time); on
``payments`` whether the source gave the time of day (``time_known``) or a bare date.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 08:10:00
"""

import sqlalchemy as sa
from alembic import op

from bot import clock

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_skipped", sa.Integer(), nullable=False),
        sa.Column("rows_bad", sa.Integer(), nullable=False),
        sa.Column("rows_conflicting", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column(
            "source",
            sa.Enum("IMPORT", "STAFF", name="payment_source", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("payment_imports.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_known", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by", sa.String(length=64), nullable=True),
        sa.Column("void_reason", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference", name="uq_payments_reference"),
    )
    op.create_index("ix_payments_unit_paid", "payments", ["unit_id", "paid_at"])
    with op.batch_alter_table("payment_promises") as batch:
        batch.add_column(sa.Column("paid_amount", sa.Numeric(12, 2), nullable=False, server_default="0"))
        batch.add_column(sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reschedule_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("bills") as batch:
        batch.add_column(sa.Column("as_of", sa.DateTime(timezone=True), nullable=True))
    # The arrears stored before this upgrade were stated before any payment recorded here: none reduces them.
    # Stamped by the estate's one clock (bot.clock), not the database server's.
    bills = sa.table("bills", sa.column("as_of", sa.DateTime(timezone=True)))
    op.execute(bills.update().where(bills.c.as_of.is_(None)).values(as_of=clock.utc_now()))


def downgrade() -> None:
    with op.batch_alter_table("bills") as batch:
        batch.drop_column("as_of")
    with op.batch_alter_table("payment_promises") as batch:
        batch.drop_column("reschedule_count")
        batch.drop_column("evaluated_at")
        batch.drop_column("paid_amount")
    op.drop_index("ix_payments_unit_paid", table_name="payments")
    op.drop_table("payments")
    op.drop_table("payment_imports")
