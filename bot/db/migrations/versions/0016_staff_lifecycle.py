"""Staff account lifecycle: active flag, WeCom UserID binding, login throttling by client (issue 16 point 5)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:40:00

Staff accounts get an explicit WeCom UserID (unique), when they were deactivated and when their password was
last set. Login attempts get ``client_key``, a keyed hash of the client's address for the per-client count;
the addresses already stored whole (attempts, and the ``client`` of login, failed-login and logout audit rows)
are cut down to their network (IPv4 /24, IPv6 /48), as the console now stores them.
"""

import ipaddress
from typing import Any, Optional

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_LOGIN_ACTIONS = ("login", "login_failed", "logout")


def _network(address: Any) -> Optional[str]:
    # Kept here as it is today (bot.services.client_addresses.client_network may change; a migration may not).
    if not isinstance(address, str) or not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test client's name, "unknown"): nothing to cut down
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = 24 if isinstance(parsed, ipaddress.IPv4Address) else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def _truncate_stored_addresses() -> None:
    bind = op.get_bind()
    attempts = sa.table(
        "staff_login_attempts", sa.column("id", sa.Integer()), sa.column("client", sa.String(64))
    )
    for row_id, client in bind.execute(
        sa.select(attempts.c.id, attempts.c.client).where(attempts.c.client.isnot(None))
    ):
        shown = _network(client)
        if shown != client:
            bind.execute(attempts.update().where(attempts.c.id == row_id).values(client=shown))
    audit = sa.table(
        "audit_log",
        sa.column("id", sa.Integer()),
        sa.column("action", sa.String(64)),
        sa.column("detail", sa.JSON()),
    )
    for row_id, detail in bind.execute(
        sa.select(audit.c.id, audit.c.detail).where(audit.c.action.in_(_LOGIN_ACTIONS))
    ):
        if isinstance(detail, dict) and "client" in detail:
            shown = _network(detail["client"])
            if shown != detail["client"]:
                changed = (
                    {**detail, "client": shown}
                    if shown
                    else {k: v for k, v in detail.items() if k != "client"}
                )
                bind.execute(audit.update().where(audit.c.id == row_id).values(detail=changed))


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("wecom_user_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_staff_users_wecom_user_id", ["wecom_user_id"])
    with op.batch_alter_table("staff_login_attempts") as batch:
        batch.add_column(sa.Column("client_key", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_staff_login_attempts_client_key",
        "staff_login_attempts",
        ["client_key", "attempted_at"],
        unique=False,
    )
    _truncate_stored_addresses()


def downgrade() -> None:
    op.drop_index("ix_staff_login_attempts_client_key", table_name="staff_login_attempts")
    with op.batch_alter_table("staff_login_attempts") as batch:
        batch.drop_column("client_key")
    op.execute(sa.text("DELETE FROM staff_login_attempts WHERE outcome = 'UNLOCKED'"))
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint("uq_staff_users_wecom_user_id", type_="unique")
        batch.drop_column("password_changed_at")
        batch.drop_column("deactivated_at")
        batch.drop_column("wecom_user_id")
