"""Conversation handles: the short, non-secret name staff see for a conversation instead of its sender id.

A web chat session id is a bearer credential (whoever presents it speaks in that conversation), and a WeChat
openid is a personal identifier; neither is shown on a staff screen, written into a console URL, an export or a
log. Staff see a handle instead, e.g. ``W-3F9K-2A7Q``: a prefix for the kind of conversation (``W`` web chat,
``C`` any other: WeChat, REST) and 40 bits of HMAC-SHA256 of the sender id keyed with ``SECRET_KEY``, in
Crockford's base32. Without the key nobody can compute a handle from an id, nor an id from a handle; a handle
lets nobody join a conversation (the web chat accepts only the signed session id itself).

The console maps a handle back to its conversation (:func:`resolve`) by computing the handles of the
conversations the database knows (Rasa's tracker store, records, escalations, links, the outbox); the map is
kept per process and refreshed when a handle is not in it. Two conversations sharing a handle (about one pair
in 2 million among 1,000 conversations) make the handle ambiguous: :func:`resolve` refuses it rather than guess.
A new ``SECRET_KEY`` gives every conversation a new handle (old bookmarks stop working).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from typing import Any, Dict, Iterable, List, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.rasa import events as rasa_events

_PURPOSE = b"wuye-conversation-handle:v1:"
# Crockford's base32: no I, L, O or U, so a handle read out on the phone is not misheard.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY_CHARS = 8
WEBCHAT_PREFIX = "W"
OTHER_PREFIX = "C"
HANDLE_PATTERN = re.compile(r"^([WC])-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{4})$")
# The map of a process grows with the conversations it has seen; beyond this it starts afresh.
_MAX_REMEMBERED = 200_000
_AMBIGUOUS = ""


class AmbiguousHandle(LookupError):
    """Two conversations share the handle: the console refuses it rather than show one of them."""


def _key() -> bytes:
    from bot.settings import get_settings

    return get_settings().secret_key.encode("utf-8")


def handle_of(sender_id: str, *, key: Optional[bytes] = None) -> str:
    """The handle of the conversation ``sender_id``.

    Args:
        sender_id: The Rasa sender id (a web chat session id, a WeChat openid, a REST sender).
        key: The HMAC key; default ``SECRET_KEY``.

    Returns:
        ``W-XXXX-XXXX`` for a web chat session id, ``C-XXXX-XXXX`` for any other conversation.
    """
    from bot.conversations.session_ids import looks_like_session_id

    digest = hmac.new(key or _key(), _PURPOSE + str(sender_id).encode("utf-8"), hashlib.sha256).digest()
    number = int.from_bytes(digest[:5], "big")  # 40 bits
    body = "".join(_ALPHABET[(number >> shift) & 31] for shift in range(35, -1, -5))
    prefix = WEBCHAT_PREFIX if looks_like_session_id(sender_id) else OTHER_PREFIX
    return f"{prefix}-{body[:4]}-{body[4:]}"


def normalise(text: Optional[str]) -> Optional[str]:
    """``text`` as a handle if it is one (any case, spaces or missing dashes allowed), else None.

    ``w3f9k2a7q``, ``W-3F9K-2A7Q`` and `` w-3f9k2a7q `` are the same handle; Crockford's look-alikes are read as
    the digits they stand for (O → 0, I and L → 1).
    """
    if not text:
        return None
    cleaned = re.sub(r"[\s\-]", "", text).upper().translate(str.maketrans("OIL", "011"))
    if len(cleaned) != 1 + _BODY_CHARS:
        return None
    candidate = f"{cleaned[0]}-{cleaned[1:5]}-{cleaned[5:]}"
    return candidate if HANDLE_PATTERN.match(candidate) else None


class _Directory:
    """handle → sender id, for the conversations this process has seen, per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: Dict[bytes, Dict[str, str]] = {}

    def get(self, key: bytes, handle: str) -> Optional[str]:
        with self._lock:
            return self._maps.get(key, {}).get(handle)

    def learn(self, key: bytes, sender_ids: Iterable[str]) -> None:
        with self._lock:
            known = self._maps.setdefault(key, {})
            if len(known) > _MAX_REMEMBERED:
                known.clear()
            for sender_id in sender_ids:
                handle = handle_of(sender_id, key=key)
                seen = known.get(handle)
                known[handle] = sender_id if seen in (None, sender_id) else _AMBIGUOUS


_directory = _Directory()


def _conversation_senders(session: Session) -> Iterable[str]:
    """Every sender id the database knows a conversation by."""
    from bot.db import models

    tables: List[Any] = [
        models.ConversationLink,
        models.Escalation,
        models.OutboxMessage,
        models.RepairOrder,
        models.Complaint,
        models.BillCheckRequest,
        models.PaymentPromise,
        models.InstalmentRequest,
    ]
    seen = set()
    seen.update(rasa_events.sender_ids(session))
    for model in tables:
        seen.update(
            session.execute(sa.select(model.sender_id).where(model.sender_id.is_not(None)).distinct()).scalars()
        )
    return [str(sender_id) for sender_id in seen]


def resolve(session: Session, handle: Optional[str], *, key: Optional[bytes] = None) -> Optional[str]:
    """The sender id of the conversation with ``handle``, or None when there is none.

    Args:
        session: A session on the database holding the conversations.
        handle: A handle as staff typed or a URL carried it (see :func:`normalise`).
        key: The HMAC key; default ``SECRET_KEY``.

    Returns:
        The sender id, or None for a malformed handle or one no stored conversation has.

    Raises:
        AmbiguousHandle: Two stored conversations share the handle.
    """
    wanted = normalise(handle)
    if wanted is None:
        return None
    key = key or _key()
    found = _directory.get(key, wanted)
    if found is None:
        _directory.learn(key, _conversation_senders(session))
        found = _directory.get(key, wanted)
    if found == _AMBIGUOUS:
        raise AmbiguousHandle(wanted)
    return found
