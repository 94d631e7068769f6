"""Cookies and CSRF tokens of the staff console.

The session cookie holds ``<token>.<HMAC-SHA256 of the token with STAFF_SECRET_KEY>``; the server checks the
signature before it looks the token up (a forged or altered cookie never reaches the database) and a new
secret ends every session. Before login there is no session, so the login form's CSRF token travels in its
own signed cookie (double submit); after login each session has its own token, kept with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Optional

from starlette.responses import Response

SESSION_COOKIE = "staff_session"
LOGIN_CSRF_COOKIE = "staff_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_PATH = "/login"
LOGIN_CSRF_MAX_AGE = 12 * 3600


class CookieSigner:
    """Signs values with the staff secret for one purpose.

    Args:
        secret: ``STAFF_SECRET_KEY``.
        purpose: Separates these signatures from any other made with the same secret.
    """

    def __init__(self, secret: str, purpose: str) -> None:
        if not secret:
            raise ValueError("a secret is needed to sign cookies")
        self._key = secret.encode("utf-8")
        self._purpose = f"wuye-staff:{purpose}:v1:".encode()

    def _signature(self, value: str) -> str:
        return hmac.new(self._key, self._purpose + value.encode("utf-8"), hashlib.sha256).hexdigest()

    def sign(self, value: str) -> str:
        """``value`` with its signature appended (``value`` must not contain ``.``)."""
        if "." in value:
            raise ValueError("a signed value must not contain '.'")
        return f"{value}.{self._signature(value)}"

    def unsign(self, signed: Optional[str]) -> Optional[str]:
        """The value ``signed`` carries, or None when it is missing, malformed or its signature is wrong."""
        if not signed or "." not in signed:
            return None
        value, _, signature = signed.rpartition(".")
        if not value or not hmac.compare_digest(signature.encode("ascii", "replace"), self._signature(value).encode()):
            return None
        return value


def tokens_match(presented: Optional[str], expected: Optional[str]) -> bool:
    """Whether a presented CSRF token is the expected one, compared in constant time; empty never matches."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def new_csrf_token() -> str:
    """A fresh random CSRF token for the login form."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CookiePolicy:
    """How the console's cookies are set: always HttpOnly and SameSite=Lax, Secure outside local."""

    secure: bool

    def set_session(self, response: Response, signed_token: str) -> None:
        """Set the session cookie (a browser-session cookie; the server ends the session at its expiry)."""
        response.set_cookie(
            SESSION_COOKIE, signed_token, path="/", httponly=True, samesite="lax", secure=self.secure
        )

    def clear_session(self, response: Response) -> None:
        """Remove the session cookie."""
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=self.secure)

    def set_login_csrf(self, response: Response, signed_token: str) -> None:
        """Set the login form's CSRF cookie (sent back only to ``/login``)."""
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            signed_token,
            max_age=LOGIN_CSRF_MAX_AGE,
            path=LOGIN_PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def clear_login_csrf(self, response: Response) -> None:
        """Remove the login form's CSRF cookie (after a successful login)."""
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH, httponly=True, samesite="lax", secure=self.secure)


def safe_next(target: Optional[str]) -> str:
    """Where to go after login: a path on this site, never another site (``//evil``, a backslash, ``http:``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(character) < 32 for character in target):
        return "/"
    return target
