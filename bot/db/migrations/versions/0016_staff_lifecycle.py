"""Staff account lifecycle: active flag, WeCom UserID binding, login throttling by client (issue 16 point 5)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:40:00
"""

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
