"""Staff accounts: usernames, roles, WeCom UserIDs, password rules and hashes, and what each role may see.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's low-memory profile); a hash made
with weaker parameters is upgraded at the next successful login (:func:`bot.services.staff_auth.log_in`).
A login for no (active) account is checked once against a fixed dummy hash (:func:`dummy_check`), so it takes
as long as a wrong password and costs no more. What a manager does to an existing account (deactivate, reset
its password, change its role, ...) is :mod:`bot.services.staff_lifecycle`.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from typing import Iterable, Optional, Union

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import audit
from bot.db.models import mask_phone
from bot.db.staff_models import USERNAME_LENGTH, WECOM_USER_ID_LENGTH, StaffRole, StaffUser
from bot.services.rate_limits import serialise

_hasher = PasswordHasher()

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
# WeCom's rule for a UserID: 1 to 64 letters, digits, '_', '-', '@' or '.', starting with a letter or digit.
WECOM_USER_ID_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.@-]{{0,{WECOM_USER_ID_LENGTH - 1}}}$")
MIN_PASSWORD_LENGTH = 10  # the floor: STAFF_PASSWORD_MIN_LENGTH may raise it, never lower it
# A login for no (active) account is verified against this, once: made with today's default parameters from a
# random password nobody knows, so that login costs what a wrong password costs and no hash is computed.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$OLhUa2UuizN9xTKCsiJvjQ$RxgyqV8HX3+G9THz19lfM7yJFDBVNadWHBS22BtxnK4"
)
# Long enough that a single kind of character (a passphrase of words) is fine.
PASSPHRASE_LENGTH = 16
# Longer passwords are refused at login without hashing (argon2 would hash them, slowly, for nothing).
MAX_PASSWORD_LENGTH = 1024
# The most common passwords that satisfy the length rule; refused whatever the case.
_COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "a123456789",
        "abc1234567",
        "abcd123456",
        "admin12345",
        "admin123456",
        "iloveyou123",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "qwerty1234",
        "qwerty123456",
        "qwertyuiop",
        "qwertyuiop123",
        "woaini1314",
        "woaini520",
        "zxcvbnm123",
        "zxcvbnm1234",
        "wuye123456",
        "qwe1234567",
        "aa12345678",
        "abc123456789",
        "woaini123456",
        "5201314520",
        "1314520520",
        "1qaz2wsx3edc4rfv",
        "qazwsx123456",
    }
)
# Roles that see owners' phone numbers whole; the others see 138****5678.
FULL_PHONE_ROLES = frozenset({StaffRole.SUPERVISOR, StaffRole.MANAGER})


class AccountError(ValueError):
    """An account cannot be created or changed as asked.

    ``code`` says why, for a screen to word it: a password rule (:data:`PASSWORD_RULES`), ``bad_username``,
    ``bad_role``, ``bad_display_name``, ``bad_wecom_user_id``, ``taken``, ``wecom_taken``, ``not_found``,
    ``already_active``, ``already_inactive``, ``same_role``, ``same_password``, ``last_manager``, ``self``.
    The message is the English sentence for the command line.
    """

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PasswordProblem:
    """Why a password is refused: a code from :data:`PASSWORD_RULES` and the operator's sentence."""

    code: str
    message: str


# The password rules' codes, in the order they are checked.
PASSWORD_RULES = (
    "empty",
    "too_long",
    "too_short",
    "one_kind",
    "repetitive",
    "contains_username",
    "common",
)


def normalise_username(username: str) -> str:
    """The stored form of a username: trimmed, lower case, at most the column's width.

    Logins and lock-out counts use the same form, so ``Alice`` and ``alice `` are one account and one count.
    """
    return username.strip().lower()[:USERNAME_LENGTH]


def parse_role(value: Union[str, StaffRole]) -> StaffRole:
    """The role named ``value`` (``collector``, ``supervisor`` or ``manager``).

    Raises:
        AccountError: For any other value.
    """
    try:
        return StaffRole(value)
    except ValueError:
        choices = ", ".join(role.value for role in StaffRole)
        raise AccountError(f"unknown role {value!r}; choose one of: {choices}", code="bad_role") from None


def minimum_password_length() -> int:
    """The shortest password accepted: ``STAFF_PASSWORD_MIN_LENGTH``, but never under 10."""
    from bot.settings import get_settings

    return max(MIN_PASSWORD_LENGTH, get_settings().staff_password_min_length)


def check_password(
    password: str, *, username: str = "", min_length: Optional[int] = None
) -> Optional[PasswordProblem]:
    """Why ``password`` is too weak for a staff account, or None when it is acceptable.

    Rules: at least ``min_length`` characters; under 16, letters together with digits or symbols; not mostly
    one character; not containing the username; not one of the most common passwords.

    Args:
        password: The proposed password.
        username: The account's username, which the password must not contain.
        min_length: The shortest length accepted (default: :func:`minimum_password_length`).

    Returns:
        The problem (its code and the operator's sentence), or None.
    """
    shortest = max(MIN_PASSWORD_LENGTH, min_length if min_length is not None else minimum_password_length())
    if not password.strip():
        return PasswordProblem("empty", "the password is empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        return PasswordProblem("too_long", f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    if len(password) < shortest:
        return PasswordProblem("too_short", f"the password is shorter than {shortest} characters")
    kinds = sum(
        (
            any(character.isalpha() for character in password),
            any(character.isdigit() for character in password),
            any(not character.isalnum() for character in password),
        )
    )
    if len(password) < PASSPHRASE_LENGTH and kinds < 2:
        return PasswordProblem(
            "one_kind",
            f"a password shorter than {PASSPHRASE_LENGTH} characters needs letters together with digits "
            "or symbols",
        )
    if len(set(password)) < 5:
        return PasswordProblem("repetitive", "the password repeats too few different characters")
    if username and username.lower() in password.lower():
        return PasswordProblem("contains_username", "the password contains the username")
    if password.lower() in _COMMON_PASSWORDS:
        return PasswordProblem("common", "the password is one of the most common passwords")
    return None


def password_problem(password: str, *, username: str = "", min_length: Optional[int] = None) -> Optional[str]:
    """The operator's sentence for :func:`check_password`'s problem, or None for an acceptable password."""
    problem = check_password(password, username=username, min_length=min_length)
    return problem.message if problem else None


def require_strong_password(password: str, *, username: str) -> None:
    """Refuse a weak password.

    Raises:
        AccountError: With the rule's code, when :func:`check_password` finds a problem.
    """
    problem = check_password(password, username=username)
    if problem is not None:
        raise AccountError(problem.message, code=problem.code)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; the parameters are stored in the hash)."""
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from (constant time inside argon2)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (then it is replaced at login)."""
    return _hasher.check_needs_rehash(password_hash)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # The fixed hash, unless argon2-cffi's defaults have moved away from it: then one made once per process
    # with today's parameters, so a missing account still costs exactly what a wrong password does.
    if not _hasher.check_needs_rehash(DUMMY_HASH):
        return DUMMY_HASH
    return _hasher.hash(secrets.token_urlsafe(24))


def dummy_check(password: str) -> None:
    """Spend what checking a password costs, for a login that names no (active) account; the answer is no.

    One argon2 verification against a fixed hash (no new hash is made), so a missing or inactive account
    takes as long as a wrong password and costs no more.
    """
    password_matches(_dummy_hash(), password)


def find(session: Session, *, username: str) -> Optional[StaffUser]:
    """The account named ``username`` (in any case), active or not."""
    return session.execute(
        select(StaffUser).where(StaffUser.username == normalise_username(username))
    ).scalar_one_or_none()


def parse_wecom_user_id(value: Optional[str]) -> Optional[str]:
    """A WeCom UserID as it is stored (trimmed), or None for an empty value (no binding).

    Raises:
        AccountError: ``bad_wecom_user_id`` when it is not a WeCom UserID (1 to 64 letters, digits, ``_``,
            ``-``, ``@`` or ``.``, starting with a letter or digit).
    """
    cleaned = (value or "").strip()
    if not cleaned:
        return None
    if not WECOM_USER_ID_PATTERN.match(cleaned):
        raise AccountError(
            "a WeCom UserID is 1 to 64 letters, digits, '_', '-', '@' or '.', "
            "starting with a letter or digit",
            code="bad_wecom_user_id",
        )
    return cleaned


def find_by_wecom_user_id(session: Session, *, wecom_user_id: str) -> Optional[StaffUser]:
    """The account bound to exactly this WeCom UserID (active or not); never a name match."""
    if not wecom_user_id:
        return None
    return session.execute(
        select(StaffUser).where(StaffUser.wecom_user_id == wecom_user_id)
    ).scalar_one_or_none()


def wecom_user_id_holder(session: Session, *, wecom_user_id: str) -> Optional[StaffUser]:
    """The account already bound to ``wecom_user_id`` in any case (WeCom itself ignores case in UserIDs)."""
    return session.execute(
        select(StaffUser).where(func.lower(StaffUser.wecom_user_id) == wecom_user_id.lower())
    ).scalar_one_or_none()


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Union[str, StaffRole],
    display_name: Optional[str] = None,
    wecom_user_id: Optional[str] = None,
    actor: str,
) -> StaffUser:
    """Create an active staff account and audit it (never with the password).

    Args:
        session: The caller's unit of work.
        username: Lower-case letters, digits, ``_``, ``.`` or ``-``; 2 to 32 characters.
        password: Checked against :func:`check_password`, stored only as an argon2 hash.
        role: ``collector``, ``supervisor`` or ``manager``.
        display_name: The name shown in the console (default: the username).
        wecom_user_id: The member's WeCom UserID, for the WeCom app (default: none, WeCom is not answered).
        actor: Who creates the account (for the audit log).

    Returns:
        The new account, flushed.

    Raises:
        AccountError: For a bad username, role, display name or WeCom UserID, a weak password, or a username
            or WeCom UserID in use.
    """
    name = normalise_username(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            "a username is 2 to 32 characters: lower-case letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            code="bad_username",
        )
    staff_role = parse_role(role)
    shown = (display_name or name).strip()
    if not shown or len(shown) > 64:
        raise AccountError("a display name is 1 to 64 characters", code="bad_display_name")
    wecom_id = parse_wecom_user_id(wecom_user_id)
    require_strong_password(password, username=name)
    if find(session, username=name) is not None:
        raise AccountError(f"the username {name!r} is taken", code="taken")
    if wecom_id is not None:
        serialise(session, f"staff-wecom:{wecom_id.lower()}")  # as staff_lifecycle.set_wecom_user_id does
        if wecom_user_id_holder(session, wecom_user_id=wecom_id) is not None:
            raise AccountError(f"the WeCom UserID {wecom_id!r} is bound to another account", code="wecom_taken")
    now = clock.utc_now()
    user = StaffUser(
        username=name,
        display_name=shown,
        role=staff_role,
        password_hash=hash_password(password),
        active=True,
        created_at=now,
        wecom_user_id=wecom_id,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    detail = {"role": staff_role.value, "name": shown, **({"wecom_user_id": wecom_id} if wecom_id else {})}
    audit.record(session, actor=actor, action=audit.USER_ADDED, target=name, detail=detail)
    return user


def has_role(role: Union[str, StaffRole], allowed: Iterable[StaffRole]) -> bool:
    """Whether ``role`` is one of ``allowed``."""
    try:
        return StaffRole(role) in set(allowed)
    except ValueError:
        return False


def phone_for(phone: Optional[str], *, role: Union[str, StaffRole]) -> str:
    """An owner's phone number as a staff member of ``role`` may see it.

    Supervisors and managers see it whole; collectors (and any unknown role) see ``138****5678``.

    Args:
        phone: The stored number (None or empty gives "").
        role: The viewer's role.

    Returns:
        The number, whole or masked.
    """
    if not phone:
        return ""
    return phone if has_role(role, FULL_PHONE_ROLES) else mask_phone(phone)
