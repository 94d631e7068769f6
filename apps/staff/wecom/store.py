"""Callbacks already handled, shared by every staff-console process through ``DATABASE_URL``.

A callback is claimed by inserting its row first. Its message key (WeCom retries a message it got no answer
to with the same ``MsgId``) and its ``msg_signature`` (a captured request replayed as is) are both unique, so
the insert of a retry or a replay fails — in this process or another — and the coach answers once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Optional

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from bot import clock
from bot.db.session import session_scope
from bot.db.wecom_models import WeComCallback, WeComCallbackStatus

# The timestamp check refuses anything older than five minutes; a day covers WeCom's retries many times over.
KEEP_CALLBACKS_FOR = dt.timedelta(days=1)
PRUNE_EVERY_SECONDS = 3600
_ERROR_LENGTH = WeComCallback.__table__.c.error.type.length


class WeComStore:
    """Database access for the WeCom channel.

    Args:
        url: A SQLAlchemy URL; default the configured ``DATABASE_URL``.
        keep_for: How long handled callbacks are remembered.
    """

    def __init__(self, url: Optional[str] = None, *, keep_for: dt.timedelta = KEEP_CALLBACKS_FOR) -> None:
        self.url = url
        self.keep_for = keep_for
        self._pruned_at = 0.0
        self._prune_lock = threading.Lock()

    def claim(
        self,
        key: str,
        *,
        msg_signature: str,
        nonce: str,
        user_id: str,
        agent_id: Optional[str],
        msg_type: str,
        status: WeComCallbackStatus = WeComCallbackStatus.PROCESSING,
    ) -> bool:
        """Insert the callback's row; ``False`` when its key or its signature is there already.

        Args:
            key: ``msg:<MsgId>`` or ``event:<UserID>:<CreateTime>:<Event>``.
            msg_signature: The request's signature (lower case).
            nonce: The request's nonce.
            user_id: The sender's WeCom UserID.
            agent_id: The app it was sent to.
            msg_type: ``text``, ``image``, ``event:enter_agent`` …
            status: The row's first status (``ignored`` for what the coach does not read).

        Returns:
            Whether this call claimed the callback (and must handle it).
        """
        self.prune_now_and_then()
        try:
            with session_scope(self.url) as session:
                session.add(
                    WeComCallback(
                        dedupe_key=key,
                        msg_signature=msg_signature,
                        nonce=nonce,
                        user_id=user_id,
                        agent_id=agent_id,
                        msg_type=msg_type,
                        status=status,
                        received_at=clock.utc_now(),
                        handled_at=clock.utc_now() if status != WeComCallbackStatus.PROCESSING else None,
                    )
                )
        except IntegrityError:
            if not self.seen(key, msg_signature):  # not a duplicate: a real error
                raise
            return False
        return True

    def seen(self, key: str, msg_signature: str) -> bool:
        """Whether a callback with this key or this signature is remembered."""
        with session_scope(self.url) as session:
            found = session.execute(
                select(WeComCallback.id).where(
                    (WeComCallback.dedupe_key == key) | (WeComCallback.msg_signature == msg_signature)
                )
            ).first()
        return found is not None

    def finish(self, key: str, status: WeComCallbackStatus, error: Optional[str] = None) -> None:
        """Record what became of a claimed callback."""
        with session_scope(self.url) as session:
            session.execute(
                update(WeComCallback)
                .where(WeComCallback.dedupe_key == key)
                .values(
                    status=status,
                    error=error[:_ERROR_LENGTH] if error else None,
                    handled_at=clock.utc_now(),
                )
                .execution_options(synchronize_session=False)
            )

    def prune(self, older_than: dt.datetime) -> int:
        """Forget callbacks received before ``older_than``; rows deleted."""
        with session_scope(self.url) as session:
            result = session.execute(
                delete(WeComCallback)
                .where(WeComCallback.received_at < older_than)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)

    def prune_now_and_then(self) -> None:
        """Prune at most once an hour per process (on the way in, so no scheduler is needed)."""
        with self._prune_lock:
            if time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS and self._pruned_at:
                return
            self._pruned_at = time.monotonic()
        self.prune(clock.utc_now() - self.keep_for)
