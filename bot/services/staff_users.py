"""Staff accounts: usernames, roles, password rules and hashes, and what each role may see.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's low-memory profile); a hash made
with weaker parameters is upgraded at the next successful login (:func:`bot.services.staff_auth.log_in`).
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Union

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import mask_phone
from bot.db.staff_models import USERNAME_LENGTH, StaffRole, StaffUser
from bot.services import audit

_hasher = PasswordHasher()

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_LENGTH = 10
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
    }
)
# Roles that see owners' phone numbers whole; the others see 138****5678.
FULL_PHONE_ROLES = frozenset({StaffRole.SUPERVISOR, StaffRole.MANAGER})


class AccountError(ValueError):
    """A user cannot be created as asked (bad username or role, weak password, name taken)."""


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
        raise AccountError(f"unknown role {value!r}; choose one of: {choices}") from None


def password_problem(password: str, *, username: str = "") -> Optional[str]:
    """Why ``password`` is too weak for a staff account, or None when it is acceptable.

    Rules: at least 10 characters; under 16, letters together with digits or symbols; not mostly one
    character; not the username; not one of the most common passwords.

    Args:
        password: The proposed password.
        username: The account's username, which the password must not contain.

    Returns:
        The reason, in English for the operator, or None.
    """
    if not password.strip():
        return "the password is empty"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password is longer than {MAX_PASSWORD_LENGTH} characters"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is shorter than {MIN_PASSWORD_LENGTH} characters"
    kinds = sum(
        (
            any(character.isalpha() for character in password),
            any(character.isdigit() for character in password),
            any(not character.isalnum() for character in password),
        )
    )
    if len(password) < PASSPHRASE_LENGTH and kinds < 2:
        return (
            f"a password shorter than {PASSPHRASE_LENGTH} characters needs letters together with digits "
            "or symbols"
        )
    if len(set(password)) < 5:
        return "the password repeats too few different characters"
    if username and username.lower() in password.lower():
        return "the password contains the username"
    if password.lower() in _COMMON_PASSWORDS:
        return "the password is one of the most common passwords"
    return None


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


def find(session: Session, *, username: str) -> Optional[StaffUser]:
    """The account named ``username`` (in any case), active or not."""
    return session.execute(
        select(StaffUser).where(StaffUser.username == normalise_username(username))
    ).scalar_one_or_none()


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Union[str, StaffRole],
    display_name: Optional[str] = None,
    actor: str,
) -> StaffUser:
    """Create an active staff account and audit it.

    Args:
        session: The caller's unit of work.
        username: Lower-case letters, digits, ``_``, ``.`` or ``-``; 2 to 32 characters.
        password: Checked against :func:`password_problem`, stored only as an argon2 hash.
        role: ``collector``, ``supervisor`` or ``manager``.
        display_name: The name shown in the console (default: the username).
        actor: Who creates the account (for the audit log).

    Returns:
        The new account, flushed.

    Raises:
        AccountError: For a bad username, role or display name, a weak password, or a username in use.
    """
    name = normalise_username(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            "a username is 2 to 32 characters: lower-case letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    staff_role = parse_role(role)
    shown = (display_name or name).strip()
    if not shown or len(shown) > 64:
        raise AccountError("a display name is 1 to 64 characters")
    problem = password_problem(password, username=name)
    if problem:
        raise AccountError(problem)
    if find(session, username=name) is not None:
        raise AccountError(f"the username {name!r} is taken")
    user = StaffUser(
        username=name,
        display_name=shown,
        role=staff_role,
        password_hash=hash_password(password),
        active=True,
        created_at=clock.utc_now(),
    )
    session.add(user)
    session.flush()
    audit.record(
        session, actor=actor, action=audit.USER_ADDED, target=name, detail={"role": staff_role.value, "name": shown}
    )
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
