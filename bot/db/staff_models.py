"""Tables of the staff console: accounts, their sessions and login attempts, and the audit log.

They share :data:`bot.db.models.Base` with the owner records (one database, one migration history) but live
apart from them: nothing the bot does with an owner reads or writes these tables.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

from bot.db.models import Base

USERNAME_LENGTH = 64  # also the width of ``escalations.assignee``, which names a staff username
WECOM_USER_ID_LENGTH = 64  # WeCom allows 1 to 64 bytes
CLIENT_KEY_LENGTH = 64  # a hex HMAC-SHA256


class StaffRole(str, enum.Enum):
    """What a staff member may do; later screens check it (collector < supervisor < manager)."""

    COLLECTOR = "collector"  # 催费员: works the queue, sees phone numbers masked
    SUPERVISOR = "supervisor"  # 客户主管: approves instalments, reviews the NLU inbox
    MANAGER = "manager"  # 项目经理: everything, including the audit log


class LoginOutcome(str, enum.Enum):
    """How one login attempt ended (``StaffLoginAttempt.outcome``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # wrong password, unknown or inactive username: counted towards a lock-out
    LOCKED = "locked"  # refused unchecked during a lock-out: not counted, so the lock-out ends on time
    UNLOCKED = (
        "unlocked"  # a manager lifted the username's lock-out: its count starts afresh, as after a login
    )


def _enum(enum_type: type[enum.Enum], name: str) -> Enum:
    return Enum(enum_type, name=name, native_enum=False, length=16, validate_strings=True)


class StaffUser(Base):
    """A person who signs in to the staff console. The password is kept only as an argon2 hash.

    ``wecom_user_id`` is the member's WeCom (企业微信) UserID, set explicitly by a manager: the WeCom app
    answers only the member bound this way (never by name). ``deactivated_at`` and ``password_changed_at``
    are when a manager last deactivated the account (cleared on reactivation) and set its password.
    """

    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("username", name="uq_staff_users_username"),
        UniqueConstraint("wecom_user_id", name="uq_staff_users_wecom_user_id"),
    )

    id = Column(Integer, primary_key=True)
    username = Column(String(USERNAME_LENGTH), nullable=False)
    display_name = Column(String(64), nullable=False)
    role = Column(_enum(StaffRole, "staff_role"), nullable=False)
    password_hash = Column(String(255), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    wecom_user_id = Column(String(WECOM_USER_ID_LENGTH), nullable=True)
    deactivated_at = Column(DateTime(timezone=True), nullable=True)
    password_changed_at = Column(DateTime(timezone=True), nullable=True)


class StaffSession(Base):
    """A signed-in browser.

    The cookie holds the token; the table only its SHA-256, so a database read reveals no usable session.
    Logging out revokes the row, so a copied cookie is worthless afterwards.
    """

    __tablename__ = "staff_sessions"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_staff_sessions_token_hash"),)

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False)
    user_id = Column(Integer, ForeignKey("staff_users.id"), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)
    expires_at = Column(DateTime(timezone=True), nullable=False)
    revoked_at = Column(DateTime(timezone=True), nullable=True)

    user = relationship("StaffUser")


class StaffLoginAttempt(Base):
    """One try at logging in, under the username as typed (normalised), whether or not it exists.

    Counting per username in the database means a restart or another process resets nothing, and an
    unknown username is treated exactly like a known one. The client's address is never stored whole:
    ``client`` is its network (IPv4 /24, IPv6 /48) for people to read, ``client_key`` a keyed hash
    (HMAC with ``STAFF_SECRET_KEY``) of the address (IPv6: its /64) that the per-client count uses.
    """

    __tablename__ = "staff_login_attempts"
    __table_args__ = (
        Index("ix_staff_login_attempts_username", "username", "attempted_at"),
        Index("ix_staff_login_attempts_client_key", "client_key", "attempted_at"),
    )

    id = Column(Integer, primary_key=True)
    username = Column(String(USERNAME_LENGTH), nullable=False)
    outcome = Column(_enum(LoginOutcome, "staff_login_outcome"), nullable=False)
    client = Column(String(64), nullable=True)
    client_key = Column(String(CLIENT_KEY_LENGTH), nullable=True)
    attempted_at = Column(DateTime(timezone=True), nullable=False)


class AuditEntry(Base):
    """Who did what to what, and when: every login, logout, failed login and staff action.

    ``actor`` is a staff username (or ``cli:<os user>`` for the command line; for a failed login, the
    username that was typed). ``detail`` holds the specifics as JSON.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor", "at"),
    )

    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False)
    actor = Column(String(80), nullable=False)
    action = Column(String(64), nullable=False)
    target = Column(String(200), nullable=True)
    detail = Column(JSON, nullable=True)


__all__ = [
    "AuditEntry",
    "LoginOutcome",
    "StaffLoginAttempt",
    "StaffRole",
    "StaffSession",
    "StaffUser",
]
