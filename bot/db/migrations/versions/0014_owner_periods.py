"""Ownership periods: owners retired by the roster or a transfer (issue 16 point 2)

On ``owners`` the ownership period (``owned_from``, ``owned_until``) and, for a former owner, when, why
(``roster``: the arrears import listed the unit with another owner; ``transfer``: staff recorded a 过户) and by
whom it was retired. The unique (unit, phone) becomes unique among current owners only, so a former owner's
row (kept as history) never blocks the same phone coming back. On ``conversation_links`` when and why a link
was closed (its owner retired: the conversation is no longer verified).

Owners stored before this revision stay current with an unknown start: the next arrears import is the roster
and retires whoever it no longer lists for a unit it names.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 19:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CURRENT = sa.text("retired_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("owners") as batch:
        batch.add_column(sa.Column("owned_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("owned_until", sa.Date(), nullable=True))
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "retired_reason",
                sa.Enum("ROSTER", "TRANSFER", name="owner_retirement", native_enum=False, length=16),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("retired_by", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_owners_unit_phone", type_="unique")
    op.create_index(
        "uq_owners_unit_phone_current",
        "owners",
        ["unit_id", "phone"],
        unique=True,
        sqlite_where=CURRENT,
        postgresql_where=CURRENT,
    )
    with op.batch_alter_table("conversation_links") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("closed_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Back to 0013: fails while a former owner shares a unit and phone with another owner row."""
    with op.batch_alter_table("conversation_links") as batch:
        batch.drop_column("closed_reason")
        batch.drop_column("closed_at")
    op.drop_index("uq_owners_unit_phone_current", table_name="owners")
    with op.batch_alter_table("owners") as batch:
        batch.create_unique_constraint("uq_owners_unit_phone", ["unit_id", "phone"])
        batch.drop_column("retired_by")
        batch.drop_column("retired_reason")
        batch.drop_column("retired_at")
        batch.drop_column("owned_until")
        batch.drop_column("owned_from")
