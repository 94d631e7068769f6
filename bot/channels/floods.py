"""What a channel does with a message the per-client limits refuse (:mod:`bot.services.message_limits`).

Every channel asks its limiter before anything reaches Rasa or the database, with the client key it puts into
the message's metadata. A refused message is dropped: no tracker event, no record, no outbox delivery. The first
refused message of a run is answered once, politely (:func:`refusal_text`); later ones get no answer:

* REST: ``429`` with ``Retry-After`` and ``{"error": "too many messages", "retry_after": s, "messages": [...]}``,
  ``messages`` holding the polite answer the first time (as the bot's messages are given) and empty after;
* web chat: the polite answer as a bot message the first time, nothing after;
* WeChat: the polite answer as the passive reply the first time, ``success`` after (WeChat must hear quickly);
* WeCom (staff): the polite answer as the app's message the first time, nothing after.
"""

from __future__ import annotations

import math
from typing import Optional

from bot import wording
from bot.services.message_limits import Decision, MessageLimiter, Verdict, from_settings
from bot.services.refused_texts import checked_outgoing

__all__ = ["Decision", "MessageLimiter", "limiter", "refusal_text"]


def limiter(given: Optional[MessageLimiter] = None) -> MessageLimiter:
    """``given``, or a limiter with the configured limits (Redis-backed when Redis is configured)."""
    return given if given is not None else from_settings()


def refusal_text(decision: Decision, *, source: str) -> Optional[str]:
    """The polite answer to a refused message: for the first of a run only, ``None`` for the rest.

    Args:
        decision: The limiter's decision on the message (refused).
        source: The channel, for the compliance log.

    Returns:
        ``floods.too_many_messages`` with the minutes to wait, checked like every outgoing text, or ``None``.
    """
    if decision.verdict is not Verdict.NOTICE:
        return None
    minutes = max(1, math.ceil(decision.retry_after / 60))
    return checked_outgoing(wording.text("floods.too_many_messages", minutes=minutes), source=source)
