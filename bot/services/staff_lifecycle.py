"""What managers do to existing staff accounts.

List them, deactivate, reactivate, reset the password, change the role, end the sessions, lift a lock-out,
bind the WeCom UserID. Shared by ``bot user`` (:mod:`bot.staff_cli`) and the managers' users page
(``apps/staff/users.py``). Every change is audited in the caller's unit of work with the actor and the account
(never a password). Deactivating, resetting the password and changing the role also end every open session of
the account, so an open browser keeps neither the old password's access nor the old role's powers. The last
active manager can be neither deactivated nor demoted (nobody would be left to manage the accounts), and a
manager cannot deactivate or demote themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import audit
from bot.db.staff_models import LoginOutcome, StaffLoginAttempt, StaffRole, StaffSession, StaffUser
from bot.services import staff_auth, staff_users
from bot.services.rate_limits import serialise
from bot.services.staff_users import AccountError

USERS_VIEWED = "users_viewed"
USER_VIEWED = "user_viewed"
USER_DEACTIVATED = "user_deactivated"
USER_REACTIVATED = "user_reactivated"
USER_PASSWORD_RESET = "user_password_reset"
USER_ROLE_CHANGED = "user_role_changed"
USER_SESSIONS_REVOKED = "user_sessions_revoked"
USER_UNLOCKED = "user_unlocked"
USER_WECOM_CHANGED = "user_wecom_changed"

# Codes of refusals that are about the account's state rather than the input (a page answers 409 for them).
CONFLICTS = frozenset(
    {
        "taken",
        "wecom_taken",
        "already_active",
        "already_inactive",
        "same_role",
        "same_password",
        "same_wecom",
        "last_manager",
        "self",
    }
)


@dataclass(frozen=True)
class AccountSummary:
    """One account as the users page and ``bot user list`` show it."""

    username: str
    display_name: str
    role: StaffRole
    active: bool
    wecom_user_id: Optional[str]
    created_at: dt.datetime
    deactivated_at: Optional[dt.datetime]
    password_changed_at: Optional[dt.datetime]
    last_login_at: Optional[dt.datetime]
    open_sessions: int
    locked_until: Optional[dt.datetime]


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def existing(session: Session, *, username: str) -> StaffUser:
    """The account named ``username``.

    Raises:
        AccountError: ``not_found`` when there is none.
    """
    user = staff_users.find(session, username=username)
    if user is None:
        raise AccountError(
            f"there is no staff account {staff_users.normalise_username(username)!r}", code="not_found"
        )
    return user


def _summaries(
    session: Session, users: List[StaffUser], policy: staff_auth.LoginPolicy
) -> List[AccountSummary]:
    names = [str(user.username) for user in users]
    last_logins: Dict[str, dt.datetime] = {}
    open_sessions: Dict[int, int] = {}
    if users:
        last_logins = {
            str(name): at
            for name, at in session.execute(
                select(StaffLoginAttempt.username, func.max(StaffLoginAttempt.attempted_at))
                .where(
                    StaffLoginAttempt.username.in_(names), StaffLoginAttempt.outcome == LoginOutcome.SUCCEEDED
                )
                .group_by(StaffLoginAttempt.username)
            )
        }
        now = clock.utc_now().astimezone(dt.timezone.utc)
        open_sessions = {
            int(user_id): int(count)
            for user_id, count in session.execute(
                select(StaffSession.user_id, func.count())
                .where(
                    StaffSession.user_id.in_([user.id for user in users]),
                    StaffSession.revoked_at.is_(None),
                    StaffSession.expires_at > now,
                )
                .group_by(StaffSession.user_id)
            )
        }
    return [
        AccountSummary(
            username=str(user.username),
            display_name=str(user.display_name),
            role=user.role,
            active=bool(user.active),
            wecom_user_id=user.wecom_user_id,
            created_at=_aware(user.created_at) or user.created_at,
            deactivated_at=_aware(user.deactivated_at),
            password_changed_at=_aware(user.password_changed_at),
            last_login_at=_aware(last_logins.get(str(user.username))),
            open_sessions=open_sessions.get(int(user.id), 0),
            locked_until=staff_auth.locked_until(session, username=str(user.username), policy=policy),
        )
        for user in users
    ]


def list_accounts(session: Session, *, policy: staff_auth.LoginPolicy) -> List[AccountSummary]:
    """Every staff account: active ones first, then by username.

    Args:
        session: The caller's unit of work.
        policy: The lock-out limits (to say whether each account is locked now).

    Returns:
        The accounts, with their last login, open sessions and lock-out.
    """
    users = list(
        session.execute(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.username)).scalars()
    )
    return _summaries(session, users, policy)


def summary(session: Session, *, username: str, policy: staff_auth.LoginPolicy) -> AccountSummary:
    """One account as :func:`list_accounts` shows it.

    Raises:
        AccountError: ``not_found``.
    """
    return _summaries(session, [existing(session, username=username)], policy)[0]


def _not_self(user: StaffUser, actor: str, what: str) -> None:
    if actor == user.username:
        raise AccountError(f"you cannot {what} your own account; ask another manager", code="self")


def _keep_a_manager(session: Session, user: StaffUser) -> None:
    # Changes to managers take turns (PostgreSQL), so two managers cannot remove each other at once.
    serialise(session, "staff-managers")
    if user.role is not StaffRole.MANAGER or not user.active:
        return
    others = session.execute(
        select(func.count())
        .select_from(StaffUser)
        .where(StaffUser.role == StaffRole.MANAGER, StaffUser.active.is_(True), StaffUser.id != user.id)
    ).scalar_one()
    if not others:
        raise AccountError(
            f"{user.username!r} is the last active manager; make another manager first", code="last_manager"
        )


def deactivate(session: Session, *, username: str, actor: str) -> int:
    """Deactivate an account: it can no longer log in (web or WeCom) and its open sessions end.

    Args:
        session: The caller's unit of work.
        username: The account.
        actor: Who does it (a username, or ``cli:<os user>``).

    Returns:
        How many open sessions were ended.

    Raises:
        AccountError: ``not_found``, ``already_inactive``, ``self``, ``last_manager``.
    """
    user = existing(session, username=username)
    if not user.active:
        raise AccountError(f"{user.username!r} is already deactivated", code="already_inactive")
    _not_self(user, actor, "deactivate")
    _keep_a_manager(session, user)
    now = clock.utc_now()
    user.active = False
    user.deactivated_at = now
    ended = staff_auth.revoke_sessions(session, user=user, at=now)
    audit.record(
        session,
        actor=actor,
        action=USER_DEACTIVATED,
        target=str(user.username),
        detail={"sessions_ended": ended},
    )
    return ended


def reactivate(session: Session, *, username: str, actor: str) -> None:
    """Let a deactivated account log in again (with its old password, unless that is reset too).

    Raises:
        AccountError: ``not_found``, ``already_active``.
    """
    user = existing(session, username=username)
    if user.active:
        raise AccountError(f"{user.username!r} is active", code="already_active")
    user.active = True
    user.deactivated_at = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=USER_REACTIVATED,
        target=str(user.username),
        detail={"role": user.role.value},
    )


def reset_password(session: Session, *, username: str, password: str, actor: str) -> int:
    """Give an account a new password (the same rules as a new account's) and end its open sessions.

    Args:
        session: The caller's unit of work.
        username: The account.
        password: The new password; stored only as its argon2 hash, never audited.
        actor: Who does it.

    Returns:
        How many open sessions were ended.

    Raises:
        AccountError: ``not_found``, a password rule's code, ``same_password``.
    """
    user = existing(session, username=username)
    staff_users.require_strong_password(password, username=str(user.username))
    if staff_users.password_matches(str(user.password_hash), password):
        raise AccountError("the new password is the account's current one", code="same_password")
    now = clock.utc_now()
    user.password_hash = staff_users.hash_password(password)
    user.password_changed_at = now
    ended = staff_auth.revoke_sessions(session, user=user, at=now)
    audit.record(
        session,
        actor=actor,
        action=USER_PASSWORD_RESET,
        target=str(user.username),
        detail={"sessions_ended": ended},
    )
    return ended


def set_role(session: Session, *, username: str, role: Union[str, StaffRole], actor: str) -> int:
    """Change an account's role and end its open sessions (an open browser keeps no old powers).

    Returns:
        How many open sessions were ended.

    Raises:
        AccountError: ``not_found``, ``bad_role``, ``same_role``, ``self``, ``last_manager``.
    """
    user = existing(session, username=username)
    new_role = staff_users.parse_role(role)
    previous = user.role
    if new_role is previous:
        raise AccountError(f"{user.username!r} is already a {new_role.value}", code="same_role")
    _not_self(user, actor, "change the role of")
    if previous is StaffRole.MANAGER:
        _keep_a_manager(session, user)
    now = clock.utc_now()
    user.role = new_role
    ended = staff_auth.revoke_sessions(session, user=user, at=now)
    audit.record(
        session,
        actor=actor,
        action=USER_ROLE_CHANGED,
        target=str(user.username),
        detail={"role": new_role.value, "previous_role": previous.value, "sessions_ended": ended},
    )
    return ended


def revoke_sessions(session: Session, *, username: str, actor: str) -> int:
    """End every open session of an account (it must log in again everywhere).

    Returns:
        How many open sessions were ended (0 is not an error, and is audited too).

    Raises:
        AccountError: ``not_found``.
    """
    user = existing(session, username=username)
    ended = staff_auth.revoke_sessions(session, user=user)
    audit.record(
        session,
        actor=actor,
        action=USER_SESSIONS_REVOKED,
        target=str(user.username),
        detail={"sessions_ended": ended},
    )
    return ended


def unlock(session: Session, *, username: str, actor: str, policy: staff_auth.LoginPolicy) -> bool:
    """Lift an account's login lock-out: its failure count starts afresh, as after a successful login.

    Args:
        session: The caller's unit of work.
        username: The account.
        actor: Who does it.
        policy: The lock-out limits (to report whether it was locked).

    Returns:
        Whether it was locked.

    Raises:
        AccountError: ``not_found``.
    """
    user = existing(session, username=username)
    name = str(user.username)
    serialise(session, f"staff-login:{name}")  # as a login on that name does
    was_locked = staff_auth.locked_until(session, username=name, policy=policy) is not None
    staff_auth.record_attempt(session, username=name, outcome=LoginOutcome.UNLOCKED, at=clock.utc_now())
    audit.record(session, actor=actor, action=USER_UNLOCKED, target=name, detail={"was_locked": was_locked})
    return was_locked


def set_wecom_user_id(
    session: Session, *, username: str, wecom_user_id: Optional[str], actor: str
) -> Optional[str]:
    """Bind an account to a WeCom UserID (the WeCom app answers only that member), or unbind it (empty).

    Args:
        session: The caller's unit of work.
        username: The account.
        wecom_user_id: The member's UserID exactly as WeCom sends it (通讯录 → 成员 → 账号); empty unbinds.
        actor: Who does it.

    Returns:
        The UserID now bound, or None.

    Raises:
        AccountError: ``not_found``, ``bad_wecom_user_id``, ``same_wecom``, ``wecom_taken``.
    """
    user = existing(session, username=username)
    value = staff_users.parse_wecom_user_id(wecom_user_id)
    previous = user.wecom_user_id
    if value == previous:
        raise AccountError(f"{user.username!r} is already bound to {value!r}", code="same_wecom")
    if value is not None:
        serialise(session, f"staff-wecom:{value.lower()}")
        holder = staff_users.wecom_user_id_holder(session, wecom_user_id=value)
        if holder is not None and holder.id != user.id:
            raise AccountError(
                f"the WeCom UserID {value!r} is bound to {holder.username!r}", code="wecom_taken"
            )
    user.wecom_user_id = value
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=USER_WECOM_CHANGED,
        target=str(user.username),
        detail={"wecom_user_id": value, "previous_wecom_user_id": previous},
    )
    return value
