"""Server-issued web chat session ids that a browser can keep but cannot invent.

A session id is ``<32 hex random>.<64 hex HMAC-SHA256>``: a random token plus a signature made with the
server's secret. The id is the conversation's Rasa sender id, so a client that could choose it could read or
continue someone else's conversation. Only the server can sign, so a client can present an id the server
issued to it (after a reload or a reconnect) but never make one up; anything else is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any, Optional

# Separates these signatures from any other HMAC the project may make with the same secret.
_PURPOSE = b"wuye-webchat-session-id:v1:"
_SESSION_ID = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{64})$")


class SessionIdSigner:
    """Issues and checks signed session ids.

    Args:
        secret: The server's secret key (``settings.secret_key``); ids stay valid for as long as it does,
            so they survive server restarts.
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret is needed to sign session ids")
        self._key = secret.encode("utf-8")

    def _signature(self, token: str) -> str:
        return hmac.new(self._key, _PURPOSE + token.encode("ascii"), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        """A fresh, unguessable, signed session id.

        Returns:
            The id, e.g. ``"3f2a…c9.8be1…04"``.
        """
        token = secrets.token_hex(16)
        return f"{token}.{self._signature(token)}"

    def is_valid(self, session_id: Any) -> bool:
        """Whether ``session_id`` was issued by a server holding this secret.

        Args:
            session_id: Whatever the client sent; non-strings are never valid.

        Returns:
            ``True`` only for a well-formed id whose signature matches.
        """
        if not isinstance(session_id, str):
            return False
        match = _SESSION_ID.match(session_id)
        if match is None:
            return False
        token, signature = match.groups()
        return hmac.compare_digest(signature, self._signature(token))

    def confirm(self, presented: Optional[Any]) -> str:
        """The session id to use for a client that presented ``presented``.

        Args:
            presented: The id stored by the client, if any.

        Returns:
            ``presented`` when it is valid (the conversation continues), otherwise a freshly issued id.
        """
        if self.is_valid(presented):
            return str(presented)
        return self.issue()


def signer_from_settings() -> SessionIdSigner:
    """The signer keyed with the process's ``SECRET_KEY`` (stable across restarts).

    Returns:
        A signer using ``bot.settings.get_settings().secret_key``.
    """
    from bot.settings import get_settings

    return SessionIdSigner(get_settings().secret_key)
