"""The WeChat channel's durable state, shared by every server process through ``DATABASE_URL``.

* Deduplication: a message is claimed by inserting its key first; the unique key makes the insert of a
  retry fail (``IntegrityError``), in this process or any other, so the bot runs once per message.
* Replay memory: the claim also remembers the callback's verified signature and nonce, unique too, so a
  captured request sent again (with any body, any MsgId) is refused while its timestamp is still accepted.
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

from bot.db.models import (
    WeChatAccessToken,
    WeChatCallbackSignature,
    WeChatDelivery,
    WeChatInboundMessage,
    WeChatPendingChoice,
    WeChatSubscriptionEvent,
    now,
)
from bot.db.session import session_scope
from bot.wechat.format import Choice


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
class SeenSignature:
    """A callback's verified signature and nonce, to remember until ``expires_at``.

    Args:
        signature: The callback's ``signature`` (lower-case hex), checked with everything else.
        nonce: The callback's nonce.
        expires_at: When the timestamp check starts refusing the callback by itself.
    """

    signature: str
    nonce: str
    expires_at: dt.datetime


class ReplayedCallback(Exception):
    """A callback whose signature and nonce were remembered already: a captured request sent again."""


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
        seen: Optional[SeenSignature] = None,
    ) -> bool:
        """Remember the callback's signature and insert the message's row, in one transaction.

        Args:
            key: The deduplication key (``msg:<MsgId>`` or ``event:<openid>:<CreateTime>``).
            openid: The sender.
            msg_type: ``text``, ``voice``, ``event:subscribe`` …
            subscription: A follow/unfollow to record with the claim, so a retry never writes it twice.
            seen: The callback's verified signature and nonce. Remembered for a retry too (a retry is signed
                afresh), so the retry's request cannot be replayed either.

        Returns:
            Whether this call claimed the message (and must answer it); ``False`` for a retry.

        Raises:
            ReplayedCallback: ``seen`` was remembered already; nothing is written.
        """
        try:
            with session_scope(self.url) as session:
                if seen is not None:
                    session.add(
                        WeChatCallbackSignature(
                            signature=seen.signature,
                            nonce=seen.nonce,
                            dedupe_key=key,
                            seen_at=now(),
                            expires_at=seen.expires_at,
                        )
                    )
                    session.flush()
                try:
                    with session.begin_nested():
                        session.add(
                            WeChatInboundMessage(
                                dedupe_key=key,
                                openid=openid,
                                msg_type=msg_type,
                                status=WeChatDelivery.PROCESSING,
                                received_at=now(),
                            )
                        )
                        session.flush()
                        if subscription is not None:
                            session.add(
                                WeChatSubscriptionEvent(
                                    openid=openid, event=subscription.event, event_time=subscription.event_time
                                )
                            )
                            session.flush()
                except IntegrityError:
                    if not self._message_exists(session, key):  # not a duplicate key: a real error
                        raise
                    return False  # the signature is remembered all the same (committed on the way out)
        except IntegrityError:
            if seen is not None and self.seen(seen.signature, seen.nonce):
                raise ReplayedCallback(f"signature and nonce of {key} seen before") from None
            raise
        return True

    @staticmethod
    def _message_exists(session: Any, key: str) -> bool:
        found = session.execute(
            select(WeChatInboundMessage.id).where(WeChatInboundMessage.dedupe_key == key)
        ).first()
        return found is not None

    def seen(self, signature: str, nonce: str) -> bool:
        """Whether this signature and nonce are remembered."""
        with session_scope(self.url) as session:
            found = session.execute(
                select(WeChatCallbackSignature.id).where(
                    WeChatCallbackSignature.signature == signature, WeChatCallbackSignature.nonce == nonce
                )
            ).first()
        return found is not None

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

    def purge(self, older_than: dt.datetime, now: dt.datetime) -> int:
        """Forget old message keys and signatures whose window has closed; rows deleted.

        Args:
            older_than: Messages received before it are forgotten (WeChat retries within seconds).
            now: Signatures that expired before it are forgotten (their timestamp is refused by now).
        """
        with session_scope(self.url) as session:
            messages = session.execute(
                delete(WeChatInboundMessage)
                .where(WeChatInboundMessage.received_at < older_than)
                .execution_options(synchronize_session=False)
            )
            signatures = session.execute(
                delete(WeChatCallbackSignature)
                .where(WeChatCallbackSignature.expires_at < now)
                .execution_options(synchronize_session=False)
            )
            return int(messages.rowcount or 0) + int(signatures.rowcount or 0)

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
