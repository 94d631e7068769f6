"""Request dependencies: the one database session, the signed-in user, role checks and the CSRF guard.

Every request gets at most one database session (:func:`get_db`), committed before the response is sent
(rolled back on any error). Screens declare who may see them::

    SUPERVISORS = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)

    @router.get("/approvals")
    def approvals(user: StaffUser = SUPERVISORS): ...

Anonymous requests to a page are redirected to the login page; to ``/api/...`` they get 401. A signed-in
user without the role gets 403. Every POST (PUT, PATCH, DELETE) must carry the session's CSRF token in the
form field ``csrf_token`` or the header ``X-CSRF-Token`` (the guard runs for every route of the app).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from apps.staff import security
from bot.db.session import session_scope
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import staff_auth, staff_users

logger = logging.getLogger("apps.staff")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/"


@dataclass(frozen=True)
class StaffConfig:
    """What the app needs from settings (kept on ``app.state.staff``)."""

    database_url: str
    session_signer: security.CookieSigner
    login_csrf_signer: security.CookieSigner
    cookies: security.CookiePolicy
    policy: staff_auth.LoginPolicy


class NotAuthenticated(Exception):
    """No valid session: a page redirects to the login page, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but the role may not do this: 403."""


class CsrfRefused(Exception):
    """An unsafe request without the right CSRF token: 403."""


def config(request: Request) -> StaffConfig:
    """The app's configuration."""
    staff: StaffConfig = request.app.state.staff
    return staff


def _db(request: Request) -> Iterator[Session]:
    with session_scope(config(request).database_url) as session:
        yield session


# The request's one session: every dependency and route asks for this same (cached) dependency.
get_db = Depends(_db, scope="function")


def client_address(request: Request) -> Optional[str]:
    """The client's address (uvicorn resolves ``X-Forwarded-For`` only from ``TRUSTED_PROXIES``)."""
    return request.client.host if request.client else None


def session_token(request: Request) -> Optional[str]:
    """The session token from the cookie, when its signature is right."""
    return config(request).session_signer.unsign(request.cookies.get(security.SESSION_COOKIE))


def _current_session(request: Request, db: Session = get_db) -> Optional[staff_auth.ActiveSession]:
    token = session_token(request)
    return staff_auth.active_session(db, token=token) if token else None


current_session = Depends(_current_session)


def _current_user(active: Optional[staff_auth.ActiveSession] = current_session) -> StaffUser:
    if active is None:
        raise NotAuthenticated()
    return active.user


current_user = Depends(_current_user)


def require_role(*roles: StaffRole) -> Any:
    """A dependency that lets only signed-in users with one of ``roles`` through.

    Use it as a parameter's default, once per module: ``SUPERVISORS = require_role(StaffRole.SUPERVISOR,
    StaffRole.MANAGER)``, then ``def approve(..., user: StaffUser = SUPERVISORS)``.

    Args:
        roles: The roles allowed.

    Returns:
        The dependency (``Depends(...)``); it gives the user, raises :class:`NotAuthenticated` for anonymous
        requests and :class:`Forbidden` for other roles.

    Raises:
        ValueError: If no role is named.
    """
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("name at least one role")

    def dependency(request: Request, user: StaffUser = current_user) -> StaffUser:
        if not staff_users.has_role(user.role, allowed):
            logger.warning("refused %s %s to %s (%s)", request.method, request.url.path, user.username, user.role.value)
            raise Forbidden()
        return user

    return Depends(dependency)


async def _presented_csrf_token(request: Request) -> Optional[str]:
    header = request.headers.get(security.CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(security.CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def login_csrf_token(request: Request) -> Optional[str]:
    """The login form's CSRF token from its signed cookie, if valid."""
    return config(request).login_csrf_signer.unsign(request.cookies.get(security.LOGIN_CSRF_COOKIE))


async def csrf_guard(
    request: Request, active: Optional[staff_auth.ActiveSession] = current_session
) -> None:
    """Refuse any unsafe request whose CSRF token is missing or wrong (403).

    The expected token is the session's; for the login form (no session yet) it is the one in the signed
    login cookie. Tokens are compared in constant time.
    """
    if request.method in SAFE_METHODS:
        return
    presented = await _presented_csrf_token(request)
    if active is not None:
        expected: Optional[str] = active.csrf_token
    elif request.url.path == security.LOGIN_PATH:
        expected = login_csrf_token(request)
    else:
        expected = None
    if not security.tokens_match(presented, expected):
        logger.warning("refused %s %s: missing or wrong CSRF token", request.method, request.url.path)
        raise CsrfRefused()
