"""The WeChat channel's durable state, shared by every server process through ``DATABASE_URL``.

* Deduplication: a message is claimed by inserting its key first; the unique key makes the insert of a
  retry fail (``IntegrityError``), in this process or any other, so the bot runs once per message.
* Who answers: the claimed row moves from ``processing`` by compare-and-set, so exactly one of "the first
  request answers passively" and "the reply goes out by the customer-service API" happens.
* Pending numbered choices per openid, follow/unfollow events, and the shared API access token.

Every method is a short synchronous transaction; the channel calls them in an executor thread.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from bot.channels.wechat_format import Choice
from bot.db.models import (
    WeChatAccessToken,
    WeChatDelivery,
    WeChatInboundMessage,
    WeChatPendingChoice,
    WeChatSubscriptionEvent,
    now,
)
from bot.db.session import session_scope


@dataclass(frozen=True)
class InboundState:
    """Where a claimed message stands: its delivery status and, once answered passively, the reply."""

    status: WeChatDelivery
    reply: Optional[str]


@dataclass(frozen=True)
class SubscriptionEvent:
    """A follow or unfollow, written in the same transaction as the claim of its event."""

    event: str
    event_time: dt.datetime


@dataclass(frozen=True)
class CachedToken:
    """An access token and when it stops working (epoch seconds)."""

    token: str
    expires_at: float


class WeChatStore:
    """Database access for the WeChat channel.

    Args:
        url: A SQLAlchemy URL; default the configured ``DATABASE_URL``.
    """

    def __init__(self, url: Optional[str] = None) -> None:
        self.url = url

    # --- deduplication and delivery ------------------------------------------------------------------

    def claim(
        self,
        key: str,
        *,
        openid: str,
        msg_type: str,
        subscription: Optional[SubscriptionEvent] = None,
    ) -> bool:
        """Insert the message's row; ``False`` when it exists already (a retry).

        Args:
            key: The deduplication key (``msg:<MsgId>`` or ``event:<openid>:<CreateTime>``).
            openid: The sender.
            msg_type: ``text``, ``voice``, ``event:subscribe`` …
            subscription: A follow/unfollow to record with the claim, so a retry never writes it twice.

        Returns:
            Whether this call claimed the message (and must answer it).
        """
        try:
            with session_scope(self.url) as session:
                session.add(
                    WeChatInboundMessage(
                        dedupe_key=key, openid=openid, msg_type=msg_type, status=WeChatDelivery.PROCESSING
                    )
                )
                session.flush()
                if subscription is not None:
                    session.add(
                        WeChatSubscriptionEvent(
                            openid=openid, event=subscription.event, event_time=subscription.event_time
                        )
                    )
        except IntegrityError:
            if self.state(key) is None:  # not a duplicate key: a real error
                raise
            return False
        return True

    def state(self, key: str) -> Optional[InboundState]:
        """The delivery state of a claimed message, or ``None`` if there is no such row."""
        with session_scope(self.url) as session:
            row = session.execute(
                select(WeChatInboundMessage.status, WeChatInboundMessage.reply).where(
                    WeChatInboundMessage.dedupe_key == key
                )
            ).one_or_none()
        return InboundState(status=row.status, reply=row.reply) if row is not None else None

    def _move(
        self, key: str, source: WeChatDelivery, target: WeChatDelivery, reply: Optional[str] = None
    ) -> bool:
        values: Dict[str, Any] = {"status": target, "updated_at": now()}
        if reply is not None:
            values["reply"] = reply
        with session_scope(self.url) as session:
            result = session.execute(
                update(WeChatInboundMessage)
                .where(WeChatInboundMessage.dedupe_key == key, WeChatInboundMessage.status == source)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)

    def answer_passively(self, key: str, reply: str) -> bool:
        """``processing`` → ``replied`` with ``reply``; ``False`` if a retry moved it to ``deferred`` first."""
        return self._move(key, WeChatDelivery.PROCESSING, WeChatDelivery.REPLIED, reply)

    def defer(self, key: str) -> bool:
        """``processing`` → ``deferred``: whoever finishes the bot must use the customer-service API."""
        return self._move(key, WeChatDelivery.PROCESSING, WeChatDelivery.DEFERRED)

    def finish(self, key: str, status: WeChatDelivery) -> None:
        """Record the final status (``delivered``, ``failed`` or ``ignored``)."""
        with session_scope(self.url) as session:
            session.execute(
                update(WeChatInboundMessage)
                .where(WeChatInboundMessage.dedupe_key == key)
                .values(status=status, updated_at=now())
                .execution_options(synchronize_session=False)
            )

    def purge(self, older_than: dt.datetime) -> int:
        """Forget messages received before ``older_than`` (WeChat retries within seconds); rows deleted."""
        with session_scope(self.url) as session:
            result = session.execute(
                delete(WeChatInboundMessage)
                .where(WeChatInboundMessage.received_at < older_than)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)

    # --- numbered choices ---------------------------------------------------------------------------

    def pending_choices(self, openid: str) -> List[Choice]:
        """The choices last offered to ``openid`` (empty when none)."""
        with session_scope(self.url) as session:
            raw = session.execute(
                select(WeChatPendingChoice.choices).where(WeChatPendingChoice.openid == openid)
            ).scalar_one_or_none()
        if not raw:
            return []
        return [Choice.from_dict(item) for item in json.loads(raw)]

    def set_pending_choices(self, openid: str, choices: List[Choice]) -> None:
        """Replace the choices on offer to ``openid``; an empty list clears them."""
        payload = json.dumps([choice.to_dict() for choice in choices], ensure_ascii=False)
        with session_scope(self.url) as session:
            if not choices:
                session.execute(delete(WeChatPendingChoice).where(WeChatPendingChoice.openid == openid))
                return
            updated = session.execute(
                update(WeChatPendingChoice)
                .where(WeChatPendingChoice.openid == openid)
                .values(choices=payload, updated_at=now())
                .execution_options(synchronize_session=False)
            )
            if not updated.rowcount:
                session.add(WeChatPendingChoice(openid=openid, choices=payload, updated_at=now()))

    def subscription_events(self, openid: str) -> List[SubscriptionEvent]:
        """Every recorded follow and unfollow of ``openid``, oldest first."""
        with session_scope(self.url) as session:
            rows = session.execute(
                select(WeChatSubscriptionEvent.event, WeChatSubscriptionEvent.event_time)
                .where(WeChatSubscriptionEvent.openid == openid)
                .order_by(WeChatSubscriptionEvent.event_time, WeChatSubscriptionEvent.id)
            ).all()
        return [SubscriptionEvent(event=row.event, event_time=_aware(row.event_time)) for row in rows]


class DatabaseTokenCache:
    """The access token in the database, so server processes share one instead of invalidating each other.

    Args:
        store: Where the database is.
    """

    def __init__(self, store: WeChatStore) -> None:
        self.store = store

    def get(self, app_id: str) -> Optional[CachedToken]:
        """The stored token for ``app_id``, expired or not."""
        with session_scope(self.store.url) as session:
            row = session.get(WeChatAccessToken, app_id)
            if row is None:
                return None
            return CachedToken(token=row.access_token, expires_at=_aware(row.expires_at).timestamp())

    def put(self, app_id: str, token: CachedToken) -> None:
        """Store a freshly fetched token."""
        expires = dt.datetime.fromtimestamp(token.expires_at, dt.timezone.utc)
        try:
            with session_scope(self.store.url) as session:
                row = session.get(WeChatAccessToken, app_id)
                if row is None:
                    session.add(
                        WeChatAccessToken(app_id=app_id, access_token=token.token, expires_at=expires)
                    )
                else:
                    row.access_token, row.expires_at = token.token, expires
        except IntegrityError:  # another process stored one at the same moment; theirs is as good
            pass

    def invalidate(self, app_id: str, token: str) -> None:
        """Forget ``token`` if it is still the stored one (WeChat said it is invalid or expired)."""
        with session_scope(self.store.url) as session:
            session.execute(
                delete(WeChatAccessToken).where(
                    WeChatAccessToken.app_id == app_id, WeChatAccessToken.access_token == token
                )
            )


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
