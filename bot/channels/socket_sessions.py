"""Which conversation each live socket speaks for.

A socket is bound to exactly one session id, chosen by the server at ``session_request`` time. A message
is accepted only under that id: a client cannot switch to another conversation by writing a different
``session_id`` into its messages. Whether a signed id still works (it may have expired or been signed out) is
asked separately (:mod:`bot.channels.webchat_lifetime`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

from bot.conversations.session_ids import SessionIdSigner


class SocketSessions:
    """Binds socket ids to server-issued session ids.

    Args:
        signer: Checks and issues the signed session ids.
    """

    def __init__(self, signer: SessionIdSigner) -> None:
        self._signer = signer
        self._by_socket: Dict[str, str] = {}

    def signed(self, presented: Optional[Any]) -> bool:
        """Whether ``presented`` is a session id this server signed (however old)."""
        return self._signer.is_valid(presented)

    def resume(self, sid: str, presented: Optional[Any]) -> Optional[str]:
        """Bind ``sid`` to ``presented`` if the server signed it (a reload or a reconnect).

        Args:
            sid: The socket.io id of the connection.
            presented: The session id the client stored, if any.

        Returns:
            The session id now bound, or ``None`` when ``presented`` is not a valid id.
        """
        if not self._signer.is_valid(presented):
            return None
        self._by_socket[sid] = str(presented)
        return str(presented)

    def issue(self, sid: str) -> str:
        """Bind ``sid`` to a freshly issued session id (the caller has checked the client may have one).

        Args:
            sid: The socket.io id of the connection.

        Returns:
            The new session id.
        """
        session_id = self._signer.issue()
        self._by_socket[sid] = session_id
        return session_id

    def request(self, sid: str, presented: Optional[Any]) -> str:
        """Handle a ``session_request``: keep a valid presented id, otherwise issue a new one.

        Args:
            sid: The socket.io id of the connection.
            presented: The session id the client stored, if any.

        Returns:
            The session id the socket is now bound to.
        """
        session_id = self._signer.confirm(presented)
        self._by_socket[sid] = session_id
        return session_id

    def sender_for(self, sid: str, claimed: Optional[Any]) -> Optional[str]:
        """The sender id a message from ``sid`` claiming ``claimed`` may be handled under.

        A socket that is bound accepts only its own id. A socket that is not bound yet (its message
        overtook its ``session_request`` after a reconnect) is bound to ``claimed`` if the server signed it.

        Args:
            sid: The socket.io id of the connection.
            claimed: The ``session_id`` written in the message.

        Returns:
            The sender id, or ``None`` when the message must be refused.
        """
        bound = self._by_socket.get(sid)
        if bound is not None:
            return bound if claimed == bound else None
        if self._signer.is_valid(claimed):
            self._by_socket[sid] = str(claimed)
            return str(claimed)
        return None

    def bound(self, sid: str) -> Optional[str]:
        """The session id ``sid`` is bound to, if any."""
        return self._by_socket.get(sid)

    def sockets_of(self, session_id: str) -> List[str]:
        """The sockets of this process bound to ``session_id``."""
        return [sid for sid, bound in self._by_socket.items() if bound == session_id]

    def senders(self) -> Set[str]:
        """The session ids (sender ids) some live socket of this process is bound to."""
        return set(self._by_socket.values())

    def forget(self, sid: str) -> None:
        """Drop a disconnected socket."""
        self._by_socket.pop(sid, None)
