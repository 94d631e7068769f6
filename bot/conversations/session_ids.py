"""Server-issued web chat session ids that a browser can keep but cannot invent, and that carry their age.

A session id is ``<32 hex random>.<issued, Unix seconds>.<64 hex HMAC-SHA256>``: a random token, the moment the
server issued it (read from :mod:`bot.clock`) and a signature over both made with the server's secret. The id is
the conversation's Rasa sender id, so a client that could choose it could read or continue someone else's
conversation. Only the server can sign, so a client can present an id the server issued to it (after a reload
or a reconnect) but never make one up, nor make an old one look younger; anything else is replaced.

The signature says who issued an id, not whether it still works: a session ends (idle, too old, or the owner
signed out) by :mod:`bot.conversations.webchat_sessions`. Ids of the first form, ``<token>.<signature>`` without
an issue time, are no longer accepted: a browser presenting one starts a new conversation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Any, Optional

from bot import clock

# Separates these signatures from any other HMAC the project may make with the same secret.
_PURPOSE = b"wuye-webchat-session-id:v2:"
_SESSION_ID = re.compile(r"^([0-9a-f]{32})\.([0-9]{10,12})\.([0-9a-f]{64})$")
# Any web chat session id, of this form or the first one (``<token>.<signature>``): the shape, not the signature.
WEBCHAT_ID_SHAPE = re.compile(r"^[0-9a-f]{32}(?:\.[0-9]{10,12})?\.[0-9a-f]{64}$")


def looks_like_session_id(value: Any) -> bool:
    """Whether ``value`` has the shape of a web chat session id (either form; the signature is not checked)."""
    return isinstance(value, str) and WEBCHAT_ID_SHAPE.match(value) is not None


def issued_at(session_id: Any) -> Optional[dt.datetime]:
    """When the server issued ``session_id`` (aware, UTC), read from the id; None for anything of another form.

    The signature is not checked here: call it on ids that passed :meth:`SessionIdSigner.is_valid`, or on ids
    the database holds (a conversation link), which were valid when they were stored.
    """
    if not isinstance(session_id, str):
        return None
    match = _SESSION_ID.match(session_id)
    if match is None:
        return None
    return dt.datetime.fromtimestamp(int(match.group(2)), dt.timezone.utc)


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

    def _signature(self, token: str, issued: str) -> str:
        message = _PURPOSE + token.encode("ascii") + b"." + issued.encode("ascii")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def issue(self) -> str:
        """A fresh, unguessable, signed session id, stamped with the clock's current moment.

        Returns:
            The id, e.g. ``"3f2a…c9.1795572000.8be1…04"``.
        """
        token = secrets.token_hex(16)
        issued = str(int(clock.utc_now().timestamp()))
        return f"{token}.{issued}.{self._signature(token, issued)}"

    def is_valid(self, session_id: Any) -> bool:
        """Whether ``session_id`` was issued by a server holding this secret.

        Args:
            session_id: Whatever the client sent; non-strings are never valid.

        Returns:
            ``True`` only for a well-formed id whose signature matches (however old it is).
        """
        if not isinstance(session_id, str):
            return False
        match = _SESSION_ID.match(session_id)
        if match is None:
            return False
        token, issued, signature = match.groups()
        return hmac.compare_digest(signature, self._signature(token, issued))

    def confirm(self, presented: Optional[Any]) -> str:
        """The session id to use for a client that presented ``presented`` (its signature only).

        Args:
            presented: The id stored by the client, if any.

        Returns:
            ``presented`` when it is valid, otherwise a freshly issued id.
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
