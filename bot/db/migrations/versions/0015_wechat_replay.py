"""WeChat safe-mode replay memory: signature and nonce pairs seen within the timestamp window (issue 16 point 3)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 19:40:00
"""

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
