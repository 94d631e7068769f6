"""Staff logins, lock-outs and sessions.

Every login attempt is stored under the username as typed (normalised) — known or not — so nobody learns
from the console whether a username exists, and a restart resets nothing. After
``staff_login_max_failures`` failures within ``staff_login_window_minutes`` the username is locked for
``staff_lockout_minutes``: every login, even with the right password, is refused unchecked (and not counted,
so the lock-out ends on time). A successful login starts the count afresh.

A session is a random token held by the browser; the database keeps its SHA-256 with the user, a CSRF token
and an expiry. Logging out revokes it.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import clock
from bot.db.staff_models import LoginOutcome, StaffLoginAttempt, StaffSession, StaffUser
from bot.services import audit, staff_users
from bot.services.rate_limits import serialise

if TYPE_CHECKING:
    from bot.settings import Settings

# Verified when the username is unknown, so an unknown name costs as much time as a known one.
_UNKNOWN_USER_HASH = staff_users.hash_password(secrets.token_urlsafe(24))
_CLIENT_LENGTH = StaffLoginAttempt.__table__.c.client.type.length


@dataclass(frozen=True)
class LoginPolicy:
    """Lock-out and session limits, from settings."""

    max_failures: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    session_lifetime: dt.timedelta = dt.timedelta(hours=12)

    @classmethod
    def from_settings(cls, settings: Optional[Settings] = None) -> LoginPolicy:
        """The policy configured in ``settings`` (default: the process's settings)."""
        from bot.settings import get_settings

        settings = settings or get_settings()
        return cls(
            max_failures=settings.staff_login_max_failures,
            window=dt.timedelta(minutes=settings.staff_login_window_minutes),
            lockout=dt.timedelta(minutes=settings.staff_lockout_minutes),
            session_lifetime=dt.timedelta(hours=settings.staff_session_hours),
        )


class LoginStatus(enum.Enum):
    """How a login ended, as the console may tell the person at the keyboard."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # wrong password or no such (active) user: one message for all
    LOCKED = "locked"  # too many failures: try again later (this try may have been the one that locked)


@dataclass(frozen=True)
class IssuedSession:
    """A new session: the token for the cookie (never stored) and the CSRF token for its forms."""

    token: str
    csrf_token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class LoginResult:
    """The outcome; on success the user and the new session."""

    status: LoginStatus
    user: Optional[StaffUser] = None
    session: Optional[IssuedSession] = None
    locked_until: Optional[dt.datetime] = None


@dataclass(frozen=True)
class ActiveSession:
    """A valid session and its (active) user."""

    user: StaffUser
    record: StaffSession

    @property
    def csrf_token(self) -> str:
        """The session's CSRF token."""
        return str(self.record.csrf_token)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite returns stored times without their zone; they were written in UTC (clock.utc_now).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite compares a time's fields, not the instant: a bound time must be in UTC like the stored ones.
    return _aware(moment).astimezone(dt.timezone.utc)


def locked_until(session: Session, *, username: str, policy: LoginPolicy) -> Optional[dt.datetime]:
    """When the lock-out of ``username`` ends, or None when it is not locked now.

    A username is locked for ``policy.lockout`` from its ``max_failures``-th failure within ``policy.window``,
    counting only failures since its last successful login.

    Args:
        session: The caller's unit of work.
        username: The username as typed (normalised here).
        policy: Limits.

    Returns:
        The end of the current lock-out, or None.
    """
    name = staff_users.normalise_username(username)
    now = clock.utc_now()
    attempts = session.execute(
        select(StaffLoginAttempt.outcome, StaffLoginAttempt.attempted_at)
        .where(
            StaffLoginAttempt.username == name,
            StaffLoginAttempt.attempted_at >= now - policy.window - policy.lockout,
            StaffLoginAttempt.outcome != LoginOutcome.LOCKED,
        )
        .order_by(StaffLoginAttempt.attempted_at, StaffLoginAttempt.id)
    ).all()
    failures: List[dt.datetime] = []
    for outcome, at in attempts:
        if outcome == LoginOutcome.SUCCEEDED:
            failures = []
        else:
            failures.append(_aware(at))
    until: Optional[dt.datetime] = None
    limit = max(1, policy.max_failures)
    for index in range(limit - 1, len(failures)):  # failures are in time order: the last lock-out wins
        if failures[index] - failures[index - limit + 1] <= policy.window:
            until = failures[index] + policy.lockout
    return until if until is not None and until > now else None


def _attempt(
    session: Session, *, username: str, outcome: LoginOutcome, client: Optional[str], at: dt.datetime
) -> None:
    session.add(
        StaffLoginAttempt(
            username=username,
            outcome=outcome,
            client=client[:_CLIENT_LENGTH] if client else None,
            attempted_at=at,
        )
    )
    session.flush()


def log_in(
    session: Session,
    *,
    username: str,
    password: str,
    client: Optional[str] = None,
    policy: Optional[LoginPolicy] = None,
) -> LoginResult:
    """Check a login, count it, audit it and on success open a session.

    Args:
        session: The caller's unit of work (the attempt, the audit row and the session commit with it).
        username: As typed.
        password: As typed.
        client: The client's address, for the attempt and the audit row.
        policy: Limits (default: from settings).

    Returns:
        The result: ``SUCCEEDED`` with the user and session, ``FAILED``, or ``LOCKED`` with its end.
    """
    policy = policy or LoginPolicy.from_settings()
    name = staff_users.normalise_username(username) or "-"
    serialise(session, f"staff-login:{name}")  # concurrent tries on one name take turns (PostgreSQL)
    where = {"client": client} if client else {}
    now = clock.utc_now()

    until = locked_until(session, username=name, policy=policy)
    if until is not None:
        _attempt(session, username=name, outcome=LoginOutcome.LOCKED, client=client, at=now)
        audit.record(session, actor=name, action=audit.LOGIN_FAILED, detail={"reason": "locked", **where})
        return LoginResult(LoginStatus.LOCKED, locked_until=until)

    user = staff_users.find(session, username=name)
    matches = staff_users.password_matches(str(user.password_hash) if user else _UNKNOWN_USER_HASH, password)
    if user is None or not matches or not user.active:
        reason = "unknown_user" if user is None else ("wrong_password" if not matches else "inactive")
        _attempt(session, username=name, outcome=LoginOutcome.FAILED, client=client, at=now)
        audit.record(session, actor=name, action=audit.LOGIN_FAILED, detail={"reason": reason, **where})
        until = locked_until(session, username=name, policy=policy)
        if until is not None:
            return LoginResult(LoginStatus.LOCKED, locked_until=until)
        return LoginResult(LoginStatus.FAILED)

    if staff_users.needs_rehash(str(user.password_hash)):
        user.password_hash = staff_users.hash_password(password)
    _attempt(session, username=name, outcome=LoginOutcome.SUCCEEDED, client=client, at=now)
    issued = open_session(session, user=user, lifetime=policy.session_lifetime, at=now)
    audit.record(session, actor=name, action=audit.LOGIN, detail={"role": user.role.value, **where})
    return LoginResult(LoginStatus.SUCCEEDED, user=user, session=issued)


def open_session(
    session: Session, *, user: StaffUser, lifetime: dt.timedelta, at: Optional[dt.datetime] = None
) -> IssuedSession:
    """Start a session for ``user``; the token is returned once and stored only as its hash.

    Args:
        session: The caller's unit of work.
        user: Who signed in.
        lifetime: How long the session lasts (it is not extended by use).
        at: When it starts (default: now); a login passes the time of its attempt.

    Returns:
        The token, the CSRF token and the expiry.
    """
    now = at or clock.utc_now()
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    record = StaffSession(
        token_hash=token_hash(token),
        user_id=user.id,
        csrf_token=csrf_token,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(record)
    session.flush()
    return IssuedSession(token=token, csrf_token=csrf_token, expires_at=now + lifetime)


def active_session(session: Session, *, token: str) -> Optional[ActiveSession]:
    """The session ``token`` opens, if it is unrevoked, unexpired and its user still active.

    Args:
        session: The caller's unit of work.
        token: The token from the cookie (already checked against its signature).

    Returns:
        The session and user, or None.
    """
    if not token:
        return None
    row = session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.token_hash == token_hash(token), StaffSession.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    record, user = row
    if _aware(record.expires_at) <= clock.utc_now() or not user.active:
        return None
    return ActiveSession(user=user, record=record)


def log_out(session: Session, *, token: str, client: Optional[str] = None) -> Optional[StaffUser]:
    """Revoke the session ``token`` opens and audit the logout.

    Args:
        session: The caller's unit of work.
        token: The session token from the cookie.
        client: The client's address, for the audit row.

    Returns:
        The user who logged out, or None when the token opened no session (nothing is written).
    """
    current = active_session(session, token=token)
    if current is None:
        return None
    session.execute(
        update(StaffSession).where(StaffSession.id == current.record.id).values(revoked_at=clock.utc_now())
    )
    audit.record(
        session,
        actor=str(current.user.username),
        action=audit.LOGOUT,
        detail={"client": client} if client else None,
    )
    return current.user


def last_login(session: Session, *, username: str, before: dt.datetime) -> Optional[StaffLoginAttempt]:
    """The user's last successful login before ``before`` (for the home page's "last login" line).

    Args:
        session: The caller's unit of work.
        username: Whose.
        before: Only logins strictly before this moment (the current session's start, which is its login's
            time).

    Returns:
        The attempt, or None for a first login.
    """
    return session.execute(
        select(StaffLoginAttempt)
        .where(
            StaffLoginAttempt.username == staff_users.normalise_username(username),
            StaffLoginAttempt.outcome == LoginOutcome.SUCCEEDED,
            StaffLoginAttempt.attempted_at < _utc(before),
        )
        .order_by(StaffLoginAttempt.attempted_at.desc(), StaffLoginAttempt.id.desc())
        .limit(1)
    ).scalar_one_or_none()
