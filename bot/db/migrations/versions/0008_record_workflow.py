"""the records workflow: assignee and last change of repair orders, complaints and bill checks, their notes,
and who decided an instalment request, when and why

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WORKFLOW_TABLES = ("repair_orders", "complaints", "bill_check_requests")


def upgrade() -> None:
    for table in WORKFLOW_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("assignee", sa.String(length=64), nullable=True))
            batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("instalment_requests") as batch:
        batch.add_column(sa.Column("decided_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("decision_note", sa.Text(), nullable=True))
    op.create_table(
        "record_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_record_notes_record", "record_notes", ["record_type", "record_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_record_notes_record", table_name="record_notes")
    op.drop_table("record_notes")
    with op.batch_alter_table("instalment_requests") as batch:
        batch.drop_column("decision_note")
        batch.drop_column("decided_at")
        batch.drop_column("decided_by")
    for table in WORKFLOW_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("updated_at")
            batch.drop_column("assignee")
