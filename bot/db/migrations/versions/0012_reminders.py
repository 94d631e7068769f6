"""scheduled reminders as rows, opt-outs and collectors' call tasks

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 08:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_PURPOSES = ("DAY_BEFORE", "DUE_MORNING", "BROKEN_FOLLOWUP", "MONTHLY_BILL")
_STATES = ("SCHEDULED", "SENT", "SENDING", "MOVED", "CANCELLED", "SKIPPED", "FAILED", "CALL_TASK")
_TASK_STATES = ("OPEN", "DONE")


def _enum(values: tuple, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("purpose", _enum(_PURPOSES, "reminder_purpose"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", _enum(_STATES, "reminder_state"), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("promise_id", sa.Integer(), sa.ForeignKey("payment_promises.id"), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_via", sa.String(length=32), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_reminders_dedupe_key"),
    )
    op.create_index("ix_reminders_state_due", "reminders", ["state", "due_at"])
    op.create_index("ix_reminders_owner", "reminders", ["owner_id", "sent_at"])
    op.create_index("ix_reminders_promise", "reminders", ["promise_id"])
    op.create_table(
        "reminder_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"), nullable=True),
        sa.Column("sender_id", sa.String(length=128), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("how", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reminder_opt_outs_unit", "reminder_opt_outs", ["unit_id"])
    op.create_index("ix_reminder_opt_outs_sender", "reminder_opt_outs", ["sender_id"])
    op.create_table(
        "call_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("reminder_id", sa.Integer(), sa.ForeignKey("reminders.id"), nullable=True),
        sa.Column("promise_id", sa.Integer(), sa.ForeignKey("payment_promises.id"), nullable=True),
        sa.Column("state", _enum(_TASK_STATES, "call_task_state"), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reminder_id", name="uq_call_tasks_reminder"),
    )
    op.create_index("ix_call_tasks_state", "call_tasks", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_call_tasks_state", table_name="call_tasks")
    op.drop_table("call_tasks")
    op.drop_index("ix_reminder_opt_outs_sender", table_name="reminder_opt_outs")
    op.drop_index("ix_reminder_opt_outs_unit", table_name="reminder_opt_outs")
    op.drop_table("reminder_opt_outs")
    op.drop_index("ix_reminders_promise", table_name="reminders")
    op.drop_index("ix_reminders_owner", table_name="reminders")
    op.drop_index("ix_reminders_state_due", table_name="reminders")
    op.drop_table("reminders")
