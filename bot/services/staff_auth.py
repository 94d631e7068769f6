"""Staff logins, lock-outs and sessions.

Every login attempt is stored under the username as typed (normalised) — known or not — so nobody learns
from the console whether a username exists, and a restart resets nothing. After
``staff_login_max_failures`` failures within ``staff_login_window_minutes`` the username is locked for
``staff_lockout_minutes``: every login, even with the right password, is refused unchecked (and not counted,
so the lock-out ends on time). A successful login, or a manager's unlock, starts the count afresh.

The client's address is counted too, under a keyed hash (:mod:`bot.services.client_addresses`): after
``staff_login_max_failures_per_client`` failures from one address within the window, whatever the usernames,
every login from it is refused unchecked for ``staff_lockout_minutes``. So one address cannot keep every staff
account locked, and a success from it does not reset its count.

A refused login costs no argon2 work at all; a login for no (active) account costs one verification against a
fixed dummy hash (:func:`bot.services.staff_users.dummy_check`), like a wrong password.

A session is a random token held by the browser; the database keeps its SHA-256 with the user, a CSRF token
and an expiry. Logging out revokes it; so do deactivating the account, resetting its password and changing
its role (:mod:`bot.services.staff_lifecycle`).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot import clock
from bot.db import audit
from bot.db.staff_models import LoginOutcome, StaffLoginAttempt, StaffSession, StaffUser
from bot.services import client_addresses, staff_users
from bot.services.rate_limits import serialise

if TYPE_CHECKING:
    from bot.settings import Settings

# Outcomes after which a username's failures are counted afresh.
_USERNAME_RESETS = frozenset({LoginOutcome.SUCCEEDED, LoginOutcome.UNLOCKED})


@dataclass(frozen=True)
class LoginPolicy:
    """Lock-out and session limits, from settings.

    ``client_secret`` (``STAFF_SECRET_KEY``) keys the hash client addresses are counted under.
    """

    max_failures: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    session_lifetime: dt.timedelta = dt.timedelta(hours=12)
    max_client_failures: int = 20
    client_secret: str = field(default="", repr=False)

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
            max_client_failures=settings.staff_login_max_failures_per_client,
            client_secret=settings.staff_secret_key.get_secret_value(),
        )

    def client_key(self, client: Optional[str]) -> Optional[str]:
        """The keyed hash ``client``'s failures are counted under (None without an address)."""
        return client_addresses.client_key(client, secret=self.client_secret)


class LoginStatus(enum.Enum):
    """How a login ended, as the console may tell the person at the keyboard."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # wrong password or no such (active) user: one message for all
    LOCKED = (
        "locked"  # too many failures for the name or the address: try again later (maybe this try locked)
    )


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


def _lock_end(
    moments: Sequence[Tuple[Any, dt.datetime]],
    *,
    resets: Iterable[LoginOutcome],
    limit: int,
    policy: LoginPolicy,
) -> Optional[dt.datetime]:
    # ``moments`` are (outcome, time) in time order; a lock-out starts at the limit-th failure in the window.
    failures: List[dt.datetime] = []
    resetting = frozenset(resets)
    for outcome, at in moments:
        if outcome in resetting:
            failures = []
        elif outcome == LoginOutcome.FAILED:
            failures.append(_aware(at))
    until: Optional[dt.datetime] = None
    limit = max(1, limit)
    for index in range(limit - 1, len(failures)):  # the last lock-out wins
        if failures[index] - failures[index - limit + 1] <= policy.window:
            until = failures[index] + policy.lockout
    return until if until is not None and until > clock.utc_now() else None


def locked_until(session: Session, *, username: str, policy: LoginPolicy) -> Optional[dt.datetime]:
    """When the lock-out of ``username`` ends, or None when it is not locked now.

    A username is locked for ``policy.lockout`` from its ``max_failures``-th failure within ``policy.window``,
    counting only failures since its last successful login or unlock.

    Args:
        session: The caller's unit of work.
        username: The username as typed (normalised here).
        policy: Limits.

    Returns:
        The end of the current lock-out, or None.
    """
    name = staff_users.normalise_username(username)
    attempts = session.execute(
        select(StaffLoginAttempt.outcome, StaffLoginAttempt.attempted_at)
        .where(
            StaffLoginAttempt.username == name,
            StaffLoginAttempt.attempted_at >= clock.utc_now() - policy.window - policy.lockout,
            StaffLoginAttempt.outcome != LoginOutcome.LOCKED,
        )
        .order_by(StaffLoginAttempt.attempted_at, StaffLoginAttempt.id)
    ).all()
    return _lock_end(attempts, resets=_USERNAME_RESETS, limit=policy.max_failures, policy=policy)


def client_locked_until(
    session: Session, *, client_key: Optional[str], policy: LoginPolicy
) -> Optional[dt.datetime]:
    """When the lock-out of the client counted under ``client_key`` ends, or None when it is not locked now.

    A client is locked for ``policy.lockout`` from its ``max_client_failures``-th failure within
    ``policy.window``, whatever usernames it tried; its successes reset nothing.

    Args:
        session: The caller's unit of work.
        client_key: The client's keyed hash (:meth:`LoginPolicy.client_key`); None is never locked.
        policy: Limits.

    Returns:
        The end of the current lock-out, or None.
    """
    if not client_key:
        return None
    failures = session.execute(
        select(StaffLoginAttempt.outcome, StaffLoginAttempt.attempted_at)
        .where(
            StaffLoginAttempt.client_key == client_key,
            StaffLoginAttempt.attempted_at >= clock.utc_now() - policy.window - policy.lockout,
            StaffLoginAttempt.outcome == LoginOutcome.FAILED,
        )
        .order_by(StaffLoginAttempt.attempted_at, StaffLoginAttempt.id)
    ).all()
    return _lock_end(failures, resets=(), limit=policy.max_client_failures, policy=policy)


def _later(*moments: Optional[dt.datetime]) -> Optional[dt.datetime]:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def record_attempt(
    session: Session,
    *,
    username: str,
    outcome: LoginOutcome,
    at: dt.datetime,
    client: Optional[str] = None,
    client_key: Optional[str] = None,
) -> StaffLoginAttempt:
    """Store one login attempt (or a manager's unlock): the address only as its network and keyed hash.

    Args:
        session: The caller's unit of work.
        username: The normalised username.
        outcome: How it ended.
        at: When.
        client: The client's address (stored as :func:`bot.services.client_addresses.client_network`).
        client_key: Its keyed hash, for the per-client count.

    Returns:
        The row, flushed.
    """
    row = StaffLoginAttempt(
        username=username,
        outcome=outcome,
        client=client_addresses.client_network(client),
        client_key=client_key,
        attempted_at=at,
    )
    session.add(row)
    session.flush()
    return row


def log_in(
    session: Session,
    *,
    username: str,
    password: str,
    client: Optional[str] = None,
    policy: Optional[LoginPolicy] = None,
) -> LoginResult:
    """Check a login, count it, audit it and on success open a session.

    A locked username or client is refused before any password work; a username with no active account costs
    one dummy verification; only a known active account's own hash is verified.

    Args:
        session: The caller's unit of work (the attempt, the audit row and the session commit with it).
        username: As typed.
        password: As typed.
        client: The client's address, counted under its keyed hash; the attempt and the audit row keep only
            its network.
        policy: Limits (default: from settings).

    Returns:
        The result: ``SUCCEEDED`` with the user and session, ``FAILED``, or ``LOCKED`` with its end.
    """
    policy = policy or LoginPolicy.from_settings()
    name = staff_users.normalise_username(username) or "-"
    key = policy.client_key(client)
    # Concurrent tries on one name, and from one client, take turns (PostgreSQL): name first, then client.
    serialise(session, f"staff-login:{name}")
    if key:
        serialise(session, f"staff-login-client:{key}")
    shown = client_addresses.client_network(client)
    where = {"client": shown} if shown else {}
    now = clock.utc_now()

    def attempt(outcome: LoginOutcome) -> None:
        record_attempt(session, username=name, outcome=outcome, at=now, client=client, client_key=key)

    name_until = locked_until(session, username=name, policy=policy)
    client_until = client_locked_until(session, client_key=key, policy=policy)
    if name_until is not None or client_until is not None:
        attempt(LoginOutcome.LOCKED)
        reason = "locked" if name_until is not None else "client_locked"
        audit.record(session, actor=name, action=audit.LOGIN_FAILED, detail={"reason": reason, **where})
        return LoginResult(LoginStatus.LOCKED, locked_until=_later(name_until, client_until))

    user = staff_users.find(session, username=name)
    if user is None or not user.active:
        staff_users.dummy_check(password)  # as long as a wrong password takes; no hash is made
        matches = False
    else:
        matches = staff_users.password_matches(str(user.password_hash), password)
    if user is None or not user.active or not matches:
        reason = "unknown_user" if user is None else ("inactive" if not user.active else "wrong_password")
        attempt(LoginOutcome.FAILED)
        audit.record(session, actor=name, action=audit.LOGIN_FAILED, detail={"reason": reason, **where})
        until = _later(
            locked_until(session, username=name, policy=policy),
            client_locked_until(session, client_key=key, policy=policy),
        )
        return (
            LoginResult(LoginStatus.LOCKED, locked_until=until) if until else LoginResult(LoginStatus.FAILED)
        )

    if staff_users.needs_rehash(str(user.password_hash)):
        user.password_hash = staff_users.hash_password(password)
    attempt(LoginOutcome.SUCCEEDED)
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
    shown = client_addresses.client_network(client)
    audit.record(
        session,
        actor=str(current.user.username),
        action=audit.LOGOUT,
        detail={"client": shown} if shown else None,
    )
    return current.user


def revoke_sessions(session: Session, *, user: StaffUser, at: Optional[dt.datetime] = None) -> int:
    """End every open session of ``user`` (each browser must log in again).

    Args:
        session: The caller's unit of work.
        user: Whose sessions.
        at: When (default: now).

    Returns:
        How many sessions were still open (unrevoked and unexpired) and are now revoked.
    """
    now = at or clock.utc_now()
    result = session.execute(
        update(StaffSession)
        .where(
            StaffSession.user_id == user.id,
            StaffSession.revoked_at.is_(None),
            StaffSession.expires_at > _utc(now),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


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


def prune_login_attempts(session: Session, *, before: dt.datetime) -> int:
    """Delete failed and refused login attempts (and unlocks) older than ``before`` (the retention job).

    Lock-outs look back ``STAFF_LOGIN_WINDOW_MINUTES`` plus ``STAFF_LOCKOUT_MINUTES`` only. Successful logins are
    kept: only someone with the password makes one, and the home page shows the one before the current session
    (:func:`last_login`).

    Returns:
        How many rows were deleted.
    """
    result = session.execute(
        delete(StaffLoginAttempt).where(
            StaffLoginAttempt.attempted_at < _utc(before), StaffLoginAttempt.outcome != LoginOutcome.SUCCEEDED
        )
    )
    return int(result.rowcount or 0)
