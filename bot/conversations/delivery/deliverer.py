"""The outbox's deliverer: claims due rows, sends each through its channel's sender, records and marks it.

Exactly once: a row is claimed atomically (:func:`bot.conversations.outbox.claim`) and committed as
``delivering`` before anything is sent, so no second process can send it. After the send, the text is
appended to the conversation with the row's id, and only then is the row marked ``delivered``. If the process
dies in between, the row's lease runs out and another process takes it over: it first looks for the row's id in
the conversation and, when found, only marks it delivered. The one window left is a crash after the send and
before the conversation is saved (milliseconds); a duplicate is possible then, a loss never.

``control`` rows (``pause`` / ``resume``) are applied to the conversation by any process. Rows without a
channel fail with ``unknown_channel``; rows of a channel no sender here serves are left for another process (a
web chat socket held elsewhere) or for the owner's next request (REST).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any, Callable, Collection, Dict, List, Optional, Protocol, Sequence

from bot.conversations import handoff, outbox
from bot.conversations.delivery.senders import Sender
from bot.conversations.handles import handle_of
from bot.conversations.outbox import OutboxEntry
from bot.db.models import OutboxKind
from bot.db.session import off_the_loop
from bot.services.refused_texts import checked_outgoing

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
OWNER_KINDS = (OutboxKind.TEXT, OutboxKind.JOINED, OutboxKind.LEFT)
WORKER = f"rasa:{socket.gethostname()}:{os.getpid()}"


class ConversationLog(Protocol):
    """The conversations as the deliverer records in them (Rasa's trackers, through ``bot.rasa.delivery``)."""

    def ready(self) -> bool:
        """Whether conversations can be read and written now (the model is loaded)."""
        ...

    async def set_paused(self, sender_id: str, paused: bool) -> bool:
        """Pause or resume the bot in the conversation; whether anything changed."""
        ...

    async def append_bot_message(self, sender_id: str, text: str, metadata: Dict[str, Any]) -> None:
        """Record a delivered text as said to the owner, with ``metadata``."""
        ...

    async def delivered_before(self, sender_id: str, outbox_id: int) -> bool:
        """Whether the conversation already holds the text of outbox row ``outbox_id``."""
        ...


def bot_metadata(row: OutboxEntry) -> Dict[str, Any]:
    """How a delivered row is marked in the conversation: who spoke (a staff reply) or which notice it was."""
    if row.kind is OutboxKind.TEXT:
        return {"staff": row.staff, "outbox_id": row.id}
    return {"handoff": row.kind.value, "outbox_id": row.id}


class Deliverer:
    """Delivers the outbox from one process (see the module docstring).

    Args:
        log: Where delivered texts and pause / resume are recorded.
        senders: The senders this process has now, one per channel (asked every round: a channel may register
            its sender after the deliverer started).
        database_url: The database; default ``DATABASE_URL``.
        poll_seconds: How often the outbox is read when nothing wakes the deliverer.
        worker: This process's name in ``claimed_by``.
    """

    def __init__(
        self,
        log: ConversationLog,
        senders: Callable[[], Sequence[Sender]],
        *,
        database_url: Optional[str] = None,
        poll_seconds: float = POLL_SECONDS,
        worker: str = WORKER,
    ) -> None:
        self.log = log
        self.senders = senders
        self.database_url = database_url
        self.poll_seconds = poll_seconds
        self.worker = worker
        self._wake: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None

    def kick(self) -> None:
        """Deliver now (an owner's socket has just confirmed its session, a reply was queued here)."""
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """Start the polling task on the running loop."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop the polling task (rows it had claimed are released or taken over after their lease)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """Deliver, then wait for a kick or the poll interval; forever."""
        if self._wake is None:
            self._wake = asyncio.Event()
        logger.info("outbox: delivering as %s", self.worker)
        while True:
            try:
                await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox: a delivery round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def deliver_once(self) -> int:
        """One round: control rows, then each sender's rows, then rows no channel can take.

        Returns:
            How many rows this round finished (delivered or failed).
        """
        if not self.log.ready():
            return 0
        done = await self._controls()
        for sender in self.senders():
            done += await self._deliver(sender)
        done += await self._undeliverable()
        return done

    # --- rows -------------------------------------------------------------------------------------------

    async def _claim(self, **filters: Any) -> List[OutboxEntry]:
        return await off_the_loop(outbox.claim, database_url=self.database_url, worker=self.worker, **filters)

    async def _finish(self, row: OutboxEntry, failure: Optional[str] = None, *, via: Optional[str] = None) -> bool:
        if failure is None:
            return await off_the_loop(
                outbox.mark_delivered, database_url=self.database_url, message_id=row.id, worker=self.worker, via=via
            )
        logger.warning("outbox: row %d to %s failed: %s", row.id, handle_of(row.sender_id), failure)
        return await off_the_loop(
            outbox.mark_failed, database_url=self.database_url, message_id=row.id, worker=self.worker, reason=failure
        )

    async def _release(self, row: OutboxEntry) -> None:
        await off_the_loop(
            outbox.release, database_url=self.database_url, message_id=row.id, worker=self.worker
        )

    async def _controls(self) -> int:
        done = 0
        for row in await self._claim(kinds=[OutboxKind.CONTROL], limit=50):
            try:
                await self.log.set_paused(row.sender_id, row.text == handoff.PAUSE)
            except Exception:
                logger.exception("outbox: could not %s %s", row.text, handle_of(row.sender_id))
                await self._release(row)
                continue
            done += await self._finish(row)
        return done

    async def _deliver(self, sender: Sender) -> int:
        reachable = _as_set(sender.reachable())
        if reachable is not None and not reachable:
            return 0
        filters: Dict[str, Any] = {"kinds": OWNER_KINDS, "channels": [sender.channel]}
        if reachable is not None:
            filters["sender_ids"] = reachable
        done = 0
        for row in await self._claim(**filters):
            try:
                if row.attempts > 1 and await self.log.delivered_before(row.sender_id, row.id):
                    done += await self._finish(row, via=sender.channel)  # before a crash; which way is not known
                    continue
                still = _as_set(sender.reachable())
                if still is not None and row.sender_id not in still:  # the socket closed meanwhile
                    await self._release(row)
                    continue
                text = checked_outgoing(row.text, source="staff")
                outcome = await sender.send(row.sender_id, text, attempts=row.attempts, template=row.template)
                if outcome.retry:
                    logger.warning("outbox: %s unreachable for row %d; will retry", sender.channel, row.id)
                    await self._release(row)
                    continue
                if outcome.failure is not None:
                    done += await self._finish(row, outcome.failure)
                    continue
                await self.log.append_bot_message(row.sender_id, text, bot_metadata(row))
            except Exception:
                logger.exception("outbox: could not deliver row %d by %s", row.id, sender.channel)
                await self._release(row)
                continue
            done += await self._finish(row, via=outcome.via or sender.channel)
        return done

    async def _undeliverable(self) -> int:
        done = 0
        for row in await self._claim(kinds=OWNER_KINDS, channels=[None]):
            done += await self._finish(row, handoff.Blocked.UNKNOWN_CHANNEL.value)
        return done


def _as_set(senders: Optional[Collection[str]]) -> Optional[set]:
    return None if senders is None else set(senders)
