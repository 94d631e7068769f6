"""The web chat's side of a session's end: asking the database, writing the end into the tracker, the sweep.

The rules are :mod:`bot.conversations.webchat_sessions`; this module runs them off the event loop for the
channel, and appends the end marker (a ``ConversationPaused`` whose metadata names the reason) to the
conversation's tracker through the agent's lock store and tracker store, as the takeover does its pauses.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from rasa.shared.core.events import ConversationPaused

from bot.conversations import webchat_sessions
from bot.conversations.handles import handle_of
from bot.conversations.webchat_sessions import END_MARK, Lifetime, SessionEnd
from bot.db.session import off_the_loop
from bot.rasa.trackers import agent_of

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0


def _marked(tracker: Any) -> bool:
    return any(
        isinstance(event, ConversationPaused) and (event.metadata or {}).get(END_MARK) for event in tracker.events
    )


async def mark_ended(agent: Any, sender_id: str, reason: SessionEnd, *, create: bool) -> bool:
    """Append the end marker to the conversation's tracker, once.

    Args:
        agent: The Rasa agent.
        sender_id: The conversation.
        reason: Why the session ended.
        create: Also for a conversation with no tracker yet (a sign-out before the first message); otherwise
            such a conversation is left alone (there is nothing to end).

    Returns:
        Whether the marker was appended.
    """
    if not create and not await agent.tracker_store.exists(sender_id):
        return False
    async with agent.lock_store.lock(sender_id):
        tracker = await agent.processor.get_tracker(sender_id)
        if _marked(tracker):
            return False
        tracker.update(ConversationPaused(metadata={END_MARK: reason.value}))
        await agent.tracker_store.save(tracker)
        return True


class SessionLifetimeGuard:
    """Whether a signed session id still works; ends sessions (link closed, tracker marked).

    Args:
        database_url: The database; default ``DATABASE_URL``.
        lifetime: The limits; default read from the settings at each check.
        app: The Rasa server's Sanic app, whose agent's tracker is marked; None (unit tests): not marked.
    """

    def __init__(
        self, *, database_url: Optional[str] = None, lifetime: Optional[Lifetime] = None, app: Any = None
    ) -> None:
        self.database_url = database_url
        self.lifetime = lifetime
        self.app = app

    def _lifetime(self) -> Lifetime:
        return self.lifetime or Lifetime.from_settings()

    async def _mark(self, session_id: str, reason: SessionEnd, *, create: bool) -> None:
        agent = agent_of(self.app)
        if agent is None:
            return
        try:
            await mark_ended(agent, session_id, reason, create=create)
        except Exception:  # the link is closed and the id refused all the same; the marker is for staff
            logger.exception("web chat: could not mark the end of %s in its tracker", handle_of(session_id))

    async def check(self, session_id: str) -> Optional[SessionEnd]:
        """Why the session no longer works (its link is closed then, and its tracker marked), or None.

        Raises:
            Exception: The database could not be asked (the caller refuses politely and binds nothing).
        """
        ended = await off_the_loop(
            webchat_sessions.check, database_url=self.database_url, sender_id=session_id, lifetime=self._lifetime()
        )
        if ended is not None:
            await self._mark(session_id, ended, create=False)
        return ended

    async def end(self, session_id: str, reason: SessionEnd = SessionEnd.SIGNED_OUT) -> SessionEnd:
        """End the session now (the owner signed out): close its link and mark its tracker.

        Returns:
            ``reason``, or the reason it had already ended for.

        Raises:
            Exception: The database could not be asked.
        """
        ended = await off_the_loop(
            _end, database_url=self.database_url, sender_id=session_id, reason=reason, lifetime=self._lifetime()
        )
        await self._mark(session_id, ended, create=True)
        logger.info("web chat: session %s ended (%s)", handle_of(session_id), ended.value)
        return ended

    async def sweep(self) -> int:
        """Close the links of every web chat session that has expired; how many were closed."""
        return await off_the_loop(
            webchat_sessions.close_expired_links, database_url=self.database_url, lifetime=self._lifetime()
        )

    async def sweep_forever(self, every: float = SWEEP_SECONDS) -> None:
        """:meth:`sweep` every ``every`` seconds, logging (not raising) its failures."""
        while True:
            try:
                closed = await self.sweep()
                if closed:
                    logger.info("web chat: closed the verified links of %d expired sessions", closed)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("web chat: the sweep of expired sessions failed")
            await asyncio.sleep(every)


def _end(session: Any, *, sender_id: str, reason: SessionEnd, lifetime: Lifetime) -> SessionEnd:
    """The session's earlier end if it had one, else ``reason``; its link closed either way."""
    ended = webchat_sessions.judge(session, sender_id=sender_id, lifetime=lifetime) or reason
    webchat_sessions.close_link(session, sender_id=sender_id, reason=ended)
    return ended
