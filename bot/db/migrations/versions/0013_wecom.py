"""WeCom (企业微信) callbacks already handled, so a replayed callback is answered once

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 08:10:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
