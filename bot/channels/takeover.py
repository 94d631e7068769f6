"""The Rasa side of a human takeover: silence while a person holds a conversation, and the outbox's delivery.

The services (:mod:`bot.conversations.handoff`, :mod:`bot.conversations.outbox`) know nothing of Rasa; this
module adapts them to Rasa's agent (tracker store, lock store, processor) for the channels.

**Silence** (:class:`HoldGate`). Every channel hands its messages to Rasa through the gate. It answers who
holds the conversation from the process's memory of the queue (:class:`bot.conversations.holds.HoldWatch`,
read every quarter second, trusted for at most a second), and asks the database for that one message
(:func:`bot.conversations.handoff.is_held`) when the memory is older or names a person (a hand-back counts
at once); so the bot is silent within a second of the takeover's commit, in every Rasa process, also before
the ``pause`` instruction reached this process. While a person holds it, the owner's message is parsed and stored in the
tracker (the staff view shows it live, with its intent) under Rasa's own ``ConversationPaused``, through the
agent's lock store and tracker store — but no action is predicted and nothing is sent, not even a fallback
(whatever session start says goes to a discarded output). Once the conversation is handed back, the first
message appends ``ConversationResumed`` (if the ``resume`` instruction has not done so yet) and the bot
answers it with the conversation's context.

**The channels' own answers are silenced too.** What a channel would answer by itself — the over-long message
refusal, WeChat's "please type" for voice and pictures, the "busy" apology when the bot failed — is not sent
while a person holds the conversation (:meth:`HoldGate.refused_while_held`, and a failure to store a held
message never reaches the owner). The message is still stored for the staff view, unparsed: an over-long one
cut to :data:`HELD_TEXT_CHARS` characters with a note of its length, a non-text one as a note of its type
(``handoff.held_*`` in ``data/wording.yml``), marked ``{"held_note": {...}}`` in its metadata.

**When the database cannot be asked** who holds a conversation, the tracker's paused state decides (a
``ConversationPaused`` not followed by a ``ConversationResumed``); when the tracker cannot be read either,
the gate fails closed: nothing is sent, not even the channel's refusal, and the failure is logged
(:meth:`HoldGate.holder`).

**Delivery** is not here: every Rasa process runs the outbox's deliverer (:mod:`bot.conversations.delivery`,
started by :mod:`bot.rasa.delivery`), whichever channels it runs. REST rows are the exception handled here: the
channel cannot push, so :meth:`HoldGate.outbox_reply` claims them while answering the owner's next REST message
and puts them in its response, before the bot's own answer (the same claim, so once).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import UserMessage

from bot import wording
from bot.channels.inbound import HELD_NOTE_KEY
from bot.conversations import handoff, holds, outbox
from bot.conversations.delivery.deliverer import OWNER_KINDS, WORKER, bot_metadata
from bot.conversations.handles import handle_of
from bot.db.session import off_the_loop
from bot.rasa.trackers import (
    agent_of,
    append_bot_message,
    delivered_before,
    log_refused_while_held,
    log_while_held,
    paused_in_store,
    sanic_app_of_handler,
    set_paused,
)

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
HELD_TEXT_CHARS = 300  # how much of a refused over-long message the staff view shows
# The metadata key marking a message stored in place of a channel's refusal (clients cannot send it:
# bot.channels.inbound.server_metadata drops it).
HELD_NOTE = HELD_NOTE_KEY
# Who "holds" a conversation when the database cannot say but the tracker is paused (or unreadable).
UNKNOWN_HOLDER = "(unknown)"



def held_note_text(*, problem: str, text: Optional[str], kind: Optional[str] = None) -> str:
    """What the staff view shows for a message the channel refused while a person holds the conversation.

    Args:
        problem: ``too long`` or ``not text`` (as :class:`bot.channels.inbound.Screened` says).
        text: The owner's text, if any (an over-long one is cut to :data:`HELD_TEXT_CHARS`).
        kind: For ``not text``: the message type (``voice``, ``image``, …).
    """
    if problem == "too long" and text:
        from bot.channels.inbound import clean_text

        shown = clean_text(text[: HELD_TEXT_CHARS * 2])[:HELD_TEXT_CHARS]  # never clean megabytes for a preview
        return wording.text("handoff.held_too_long", chars=len(text), text=shown)
    return wording.text("handoff.held_not_text", kind=kind or problem)


class HoldGate:
    """Rasa's message handler, silenced while a person holds the conversation.

    Args:
        on_new_message: Rasa's handler (from ``InputChannel.blueprint``).
        database_url: The database; default ``DATABASE_URL``.
        app: The Rasa server's Sanic app; default the one Rasa's handler closes over. Without an app with an
            agent (unit tests with a fake handler), messages pass straight through.
        watch: Who holds what, in memory; default the process's (started by the Rasa server,
            :mod:`bot.rasa.delivery`). Until it has read, and whenever it is older than a second, the gate asks
            the database per message.
    """

    def __init__(
        self,
        on_new_message: OnNewMessage,
        database_url: Optional[str] = None,
        app: Any = None,
        watch: Optional[holds.HoldWatch] = None,
    ) -> None:
        self.on_new_message = on_new_message
        self.database_url = database_url
        self.app = app if app is not None else sanic_app_of_handler(on_new_message)
        if watch is None:  # the process's watch reads DATABASE_URL; another database gets one never started
            watch = holds.process_watch() if database_url is None else holds.HoldWatch(database_url=database_url)
        self.watch = watch

    async def holder(self, sender_id: str) -> Optional[str]:
        """Who holds the conversation, or None when the bot does.

        The process's memory of the queue (:mod:`bot.conversations.holds`) answers "the bot" while it is
        fresh: no database round trip for the conversations the bot holds, nearly all of them. When it says
        a person holds the conversation, or is too old to say, the database is asked (a takeover is committed
        there before Rasa hears of it), so a hand-back takes effect at once rather than at the next read. When it cannot say, the tracker decides: a conversation whose latest pause / resume
        event is ``ConversationPaused`` is held (:data:`UNKNOWN_HOLDER`). When the tracker cannot be read
        either, the conversation is treated as held — nothing is sent (fail closed): a bot or channel answer
        talking over a person is worse than a silent minute while the database is down, and the bot could not
        answer without its tracker anyway.
        """
        known, held_by = self.watch.holder(sender_id)
        if known and held_by is None:
            return None
        try:
            return await off_the_loop(
                handoff.is_held, database_url=self.database_url, read_only=True, sender_id=sender_id
            )
        except Exception:
            logger.exception("takeover: could not ask the database who holds %s; asking the tracker", handle_of(sender_id))
        agent = agent_of(self.app)
        try:
            tracker = await agent.tracker_store.retrieve(sender_id) if agent is not None else None
        except Exception:
            logger.exception("takeover: nor could the tracker of %s be read; nothing is sent", handle_of(sender_id))
            return UNKNOWN_HOLDER
        if tracker is not None and tracker.is_paused():
            logger.warning("takeover: %s is paused in its tracker; treated as held", handle_of(sender_id))
            return UNKNOWN_HOLDER
        return None

    async def refused_while_held(
        self,
        sender_id: str,
        *,
        input_channel: str,
        problem: str,
        text: Optional[str] = None,
        kind: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> bool:
        """Whether a person holds the conversation; if so, the refused message is stored for them instead.

        A channel calls this before answering a message by itself (an over-long message, a voice message on
        WeChat): when it returns True the channel sends nothing — the person holding the conversation answers.

        Args:
            sender_id: The conversation.
            input_channel: The channel's name (``rest``, ``socketio``, ``wechat``).
            problem: Why the channel refused it (``too long``, ``not text``).
            text: The owner's text, if any.
            kind: The message type, for ``not text``.
            metadata: The server-built metadata of the message.

        Returns:
            True when held (the channel must stay silent), False when the bot holds it (or there is no agent).
        """
        agent = agent_of(self.app)
        if agent is None:
            return False
        holder = await self.holder(sender_id)
        if holder is None:
            return False
        note: Dict[str, Any] = {"problem": problem}
        if text is not None:
            note["chars"] = len(text)
        if kind is not None:
            note["kind"] = kind
        logger.info("takeover: %s holds %s; a refused message (%s) is kept for them", holder, handle_of(sender_id), problem)
        try:
            await log_refused_while_held(
                agent,
                sender_id,
                text=held_note_text(problem=problem, text=text, kind=kind),
                input_channel=input_channel,
                metadata={**(metadata or {}), HELD_NOTE: note},
            )
        except Exception:
            logger.exception("takeover: could not store a refused message of %s", handle_of(sender_id))
        return True

    async def outbox_reply(self, sender_id: str, channel: str) -> List[Dict[str, Any]]:
        """The outbox rows waiting for ``sender_id`` on ``channel``, claimed and delivered in this response.

        For channels that only answer requests (REST): each row is claimed atomically, appended to the tracker
        (not twice after a crash), marked delivered, and returned as a message of Rasa's collected output. A
        row whose claim was lost is left out.

        Args:
            sender_id: The conversation the request is for.
            channel: The channel the rows were written for (``rest``).

        Returns:
            ``{"recipient_id": sender_id, "text": ...}`` messages, oldest first.
        """
        from bot.services.refused_texts import checked_outgoing

        worker = f"{channel}:{WORKER}"
        agent = agent_of(self.app)
        if agent is None:  # no Rasa agent (a fake handler in unit tests): nothing to deliver from
            return []
        try:
            rows = await off_the_loop(
                outbox.claim, database_url=self.database_url, worker=worker, kinds=OWNER_KINDS, channels=[channel],
                sender_ids=[sender_id],
            )  # fmt: skip
        except Exception:
            logger.exception("outbox: could not read the messages waiting for %s", handle_of(sender_id))
            return []
        messages: List[Dict[str, Any]] = []
        for row in rows:
            text = checked_outgoing(row.text, source="staff")
            try:
                if not (row.attempts > 1 and await delivered_before(agent, sender_id, row.id)):
                    await append_bot_message(agent, sender_id, text, bot_metadata(row))
                if not await off_the_loop(
                    outbox.mark_delivered, database_url=self.database_url, message_id=row.id, worker=worker, via=channel
                ):
                    continue  # another process took it over after the lease: it answers for it
            except Exception:
                logger.exception("outbox: could not deliver row %d in a %s response", row.id, channel)
                await off_the_loop(
                    outbox.release, database_url=self.database_url, message_id=row.id, worker=worker
                )
                continue
            messages.append({"recipient_id": sender_id, "text": text})
        return messages

    async def __call__(self, message: UserMessage) -> None:
        """Handle one owner message: stored silently while held, otherwise answered by the bot.

        Args:
            message: The owner's message as the channel built it.
        """
        agent = agent_of(self.app)
        if agent is None:
            await self.on_new_message(message)
            return
        sender_id = message.sender_id
        holder = await self.holder(sender_id)
        if holder is not None:
            logger.info("takeover: %s holds %s; the bot stays silent", holder, handle_of(sender_id))
            try:
                await log_while_held(agent, message)
            except Exception:  # never an apology from the channel while a person holds the chat
                logger.exception("takeover: could not store a held message of %s", handle_of(sender_id))
            return
        await self.resume_if_paused(agent, sender_id)
        await self.on_new_message(message)

    async def resume_if_paused(self, agent: Any, sender_id: str) -> None:
        """Resume a handed-back conversation whose tracker is still paused, before the bot answers.

        Read only for a conversation this process has not checked since it was last held or changed hands
        (:meth:`bot.conversations.holds.HoldWatch.needs_resume_check`).
        """
        if not self.watch.needs_resume_check(sender_id):
            return
        generation = self.watch.generation
        try:
            if await off_the_loop(
                paused_in_store, database_url=self.database_url, read_only=True, sender_id=sender_id
            ):
                await set_paused(agent, sender_id, False)
            self.watch.checked(sender_id, generation=generation)
        except Exception:
            logger.exception("takeover: could not resume %s", handle_of(sender_id))


