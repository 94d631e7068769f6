"""escalation queue: who holds a conversation (pending / open / resolved), response times, and its history

``escalations.status`` (the generic record status nothing ever changed) becomes ``escalations.state``:
OPEN → PENDING (the bot still holds it), IN_PROGRESS → OPEN (a person holds it), DONE and CANCELLED →
RESOLVED. New: ``claimed_at``, ``first_response_at``, ``resolved_at``, ``updated_at`` (existing rows: their
``created_at``) and the ``escalation_events`` history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATES = ("PENDING", "OPEN", "RESOLVED")
_ACTIONS = ("CLAIM", "ASSIGN", "REPLY", "HAND_BACK", "RESOLVE")
_RECORD_STATUSES = ("OPEN", "IN_PROGRESS", "DONE", "CANCELLED")

# status → state on the way up; state → status on the way down.
_UP = {"OPEN": "PENDING", "IN_PROGRESS": "OPEN", "DONE": "RESOLVED", "CANCELLED": "RESOLVED"}
_DOWN = {"PENDING": "OPEN", "OPEN": "IN_PROGRESS", "RESOLVED": "DONE"}


def _state(name: str) -> sa.Enum:
    return sa.Enum(*_STATES, name=name, native_enum=False, length=16)


def _translate(source: str, target: str, mapping: dict) -> None:
    escalations = sa.table("escalations", sa.column(source, sa.String(16)), sa.column(target, sa.String(16)))
    for old, new in mapping.items():
        op.execute(escalations.update().where(escalations.c[source] == old).values({target: new}))


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.add_column(sa.Column("state", _state("escalation_state"), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    _translate("status", "state", _UP)
    op.execute(sa.text("UPDATE escalations SET updated_at = created_at"))
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.alter_column("state", existing_type=_state("escalation_state"), nullable=False)
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_column("status")
        batch_op.create_index("ix_escalations_state_created", ["state", "created_at"])
        batch_op.create_index("ix_escalations_sender", ["sender_id"])
    op.create_table(
        "escalation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "action",
            sa.Enum(*_ACTIONS, name="escalation_action", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("from_state", _state("escalation_event_from"), nullable=False),
        sa.Column("to_state", _state("escalation_event_to"), nullable=False),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_escalation_events_escalation", "escalation_events", ["escalation_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_escalation_events_escalation", table_name="escalation_events")
    op.drop_table("escalation_events")
    status = sa.Enum(*_RECORD_STATUSES, name="escalation_status", native_enum=False, length=16)
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.add_column(sa.Column("status", status, nullable=True))
    _translate("state", "status", _DOWN)
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.alter_column("status", existing_type=status, nullable=False)
        batch_op.drop_index("ix_escalations_sender")
        batch_op.drop_index("ix_escalations_state_created")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("first_response_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("state")
