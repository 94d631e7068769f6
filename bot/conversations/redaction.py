"""Conversation ids out of what people read: text shows handles, logged paths show nothing of an id.

A web chat session id is a bearer credential and a WeChat openid a personal identifier
(:mod:`bot.conversations.handles`). :func:`redact_ids` turns any of them found in a text (an audit row written
before staff saw handles) into the conversation's handle; :func:`redact_path` is how a request path may be
logged: its query left out, a conversation segment kept only when it is a handle, and any other segment kept
only when it is short plain text that is not an id.
"""

from __future__ import annotations

import re

from bot.conversations.handles import HANDLE_PATTERN, handle_of

# A web chat session id anywhere in a text (either form; see bot.conversations.session_ids).
_WEBCHAT_ID = re.compile(r"[0-9a-f]{32}(?:\.[0-9]{10,12})?\.[0-9a-f]{64}")
# A WeChat openid: 28 characters, starting with "o" (only a whole value is taken for one).
_OPENID = re.compile(r"^o[A-Za-z0-9_-]{27}$")
# A path segment that may be logged as it is: short, plain, no percent-escapes.
_PLAIN_SEGMENT = re.compile(r"^[A-Za-z0-9_.~-]{1,40}$")
REDACTED = "…"
QUERY_REDACTED = "?…"


def redact_ids(text: str) -> str:
    """``text`` with every web chat session id in it, or a whole-value openid, replaced by its handle."""
    stripped = text.strip()
    if _OPENID.match(stripped):
        return handle_of(stripped)
    return _WEBCHAT_ID.sub(lambda match: handle_of(match.group(0)), text)


def _segment(segment: str, *, after_conversations: bool) -> str:
    if not segment:
        return segment
    if after_conversations:
        return segment if HANDLE_PATTERN.match(segment) else REDACTED
    if not _PLAIN_SEGMENT.match(segment) or _OPENID.match(segment):
        return REDACTED
    return segment


def redact_path(full_path: str) -> str:
    """A request path as it may be logged.

    Args:
        full_path: The path with its query, as the server received it (``/api/conversations/x?after=3``).

    Returns:
        The path with its query replaced by ``?…``, the segment after ``conversations`` kept only when it is a
        handle, and every other segment kept only when it is plain, short and not an openid; anything else is
        ``…``. E.g. ``/api/conversations/W-3F9K-2A7Q?…``, ``/conversations/…``.
    """
    path, has_query, _ = full_path.partition("?")
    segments = path.split("/")
    shown = [
        _segment(segment, after_conversations=index > 0 and segments[index - 1] == "conversations")
        for index, segment in enumerate(segments)
    ]
    return "/".join(shown) + (QUERY_REDACTED if has_query else "")
