"""Who holds which conversation, kept in memory: the hold check without a database round trip per message.

A person's takeover is committed in the database (:mod:`bot.services.queue`); every Rasa process must then
stay silent in that conversation. Asking the database on every owner message costs a round trip each (and,
under load, was the largest cost of a turn after the model). Instead each process keeps one
:class:`HoldWatch`: a background task reads every held conversation in one query
(:func:`bot.services.queue.holds`) every :data:`REFRESH_SECONDS`, and the channels' hold gate answers from
memory.

**Bounded staleness, failing closed.** The answer from memory is used only while the last successful read is
younger than :data:`MAX_AGE_SECONDS`; after that (the task stopped, the database is slow or down, the process
has not read yet) :meth:`HoldWatch.holder` says it does not know, and the gate asks the database itself for
that message, and the tracker when the database cannot answer (``bot.channels.takeover``). So a takeover
silences the bot within at most :data:`MAX_AGE_SECONDS` in every process, and usually within one refresh.

**The resume check.** After a hand-back the conversation's tracker may still be paused until the ``resume``
instruction is delivered; the gate then resumes it before the bot answers (one read of the tracker store).
That read is needed only for a conversation this process has not checked yet, or one that was held or changed
hands since it was checked: :meth:`needs_resume_check` says which. A conversation is forgotten when a read
shows it held or shows a change to its escalations not seen before, also one that came and went between two
reads (each read returns the changes of the last :data:`CHANGE_LOOKBACK` events and more, so a transaction
that commits out of id order on PostgreSQL is still seen).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Callable, Dict, Optional, Set, Tuple

from bot.db.session import off_the_loop
from bot.services import queue

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 0.25  # how often a process reads who holds what
MAX_AGE_SECONDS = 1.0  # older than this, the memory is not trusted: the gate asks the database per message
CHANGE_LOOKBACK = 64  # escalation events re-read each time, for commits that land out of id order
REMEMBERED = 100_000  # conversations whose resume check is remembered (least recently seen forgotten first)


class HoldWatch:
    """One process's memory of who holds which conversation, refreshed by a background task.

    Args:
        database_url: The database; default ``DATABASE_URL``.
        refresh_seconds: Time between two reads.
        max_age_seconds: How old the last good read may be for :meth:`holder` to answer.
        monotonic: The monotonic clock (seconds), for tests.
        remembered: How many checked conversations are remembered.
    """

    def __init__(
        self,
        *,
        database_url: Optional[str] = None,
        refresh_seconds: float = REFRESH_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        remembered: int = REMEMBERED,
    ) -> None:
        self.database_url = database_url
        self.refresh_seconds = refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.monotonic = monotonic
        self.remembered = remembered
        self.holders: Dict[str, str] = {}
        self.read_at: Optional[float] = None
        self.generation = 0  # counts the reads that may have forgotten a checked conversation
        self._last_event_id: Optional[int] = None
        self._seen: Set[int] = set()  # the changes already taken in, of the last CHANGE_LOOKBACK events
        self._not_paused: OrderedDict[str, None] = OrderedDict()
        self._task: Optional[asyncio.Task[None]] = None

    def fresh(self) -> bool:
        """Whether the last good read is recent enough to answer from."""
        return self.read_at is not None and self.monotonic() - self.read_at <= self.max_age_seconds

    def holder(self, sender_id: str) -> Tuple[bool, Optional[str]]:
        """``(known, holder)``: whether memory may answer, and who holds ``sender_id`` (None: the bot)."""
        if not self.fresh():
            return False, None
        return True, self.holders.get(sender_id)

    def needs_resume_check(self, sender_id: str) -> bool:
        """Whether the gate must read the tracker store before the bot answers ``sender_id``."""
        if not self.fresh() or sender_id not in self._not_paused:
            return True
        self._not_paused.move_to_end(sender_id)
        return False

    def checked(self, sender_id: str, *, generation: int) -> None:
        """Remember that ``sender_id``'s tracker is not paused, as read while :attr:`generation` was ``generation``.

        A read that finished in between may have seen the conversation held or changed: then nothing is
        remembered and the next message checks again.
        """
        if generation != self.generation:
            return
        self._not_paused[sender_id] = None
        self._not_paused.move_to_end(sender_id)
        while len(self._not_paused) > self.remembered:
            self._not_paused.popitem(last=False)

    def apply(self, holds: queue.Holds, *, read_at: float) -> None:
        """Take in one read of the queue (:func:`bot.services.queue.holds`), made at ``read_at``.

        A conversation that is held, or has a change this watch has not seen before, is forgotten (checked
        again). The changes of the last :data:`CHANGE_LOOKBACK` events are kept to recognise them when read
        again.
        """
        new_changes = {event_id: sender for event_id, sender in holds.changes.items() if event_id not in self._seen}
        forget = set(holds.holders) | set(new_changes.values())
        for sender_id in forget & self._not_paused.keys():
            del self._not_paused[sender_id]
        oldest_kept = holds.last_event_id - CHANGE_LOOKBACK
        self._seen = {event_id for event_id in (*self._seen, *new_changes) if event_id > oldest_kept}
        self.generation += 1
        self.holders = dict(holds.holders)
        self._last_event_id = holds.last_event_id
        self.read_at = read_at

    async def refresh(self) -> None:
        """Read who holds what now (one query in a worker thread) and take it in."""
        started = self.monotonic()
        changed_after = None if self._last_event_id is None else max(self._last_event_id - CHANGE_LOOKBACK, 0)
        holds = await off_the_loop(
            queue.holds, database_url=self.database_url, read_only=True, changed_after=changed_after
        )
        self.apply(holds, read_at=started)

    async def run(self) -> None:
        """Refresh every :attr:`refresh_seconds` until cancelled; a failed read is logged and retried."""
        failing = False
        while True:
            try:
                await self.refresh()
                if failing:
                    logger.info("holds: reading who holds which conversation works again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    logger.exception("holds: could not read who holds which conversation; asking per message")
                failing = True
            await asyncio.sleep(self.refresh_seconds)

    def start(self) -> None:
        """Start refreshing in the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop refreshing; memory is no longer trusted."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self.read_at = None


_process_watch: Optional[HoldWatch] = None


def process_watch() -> HoldWatch:
    """This process's watch (``DATABASE_URL``), shared by every channel's gate."""
    global _process_watch
    if _process_watch is None:
        _process_watch = HoldWatch()
    return _process_watch
