"""The hold check from memory (bot/conversations/holds.py) and the gate that uses it (bot/channels/takeover.py).

The watch reads the real queue on SQLite and PostgreSQL; the gate runs against Rasa's own SQL tracker store
and lock store on the same SQLite file, and the statements it sends to the database are counted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, List, Tuple

import pytest
from rasa.core.channels.channel import UserMessage
from sqlalchemy import event

from bot.channels.takeover import HoldGate
from bot.conversations import handoff, holds
from bot.db.session import get_engine, session_scope
from bot.services import queue


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take_over(url: str, sender: str, staff: str = "wang") -> None:
    with session_scope(url) as session:
        handoff.take_over(session, sender_id=sender, staff=staff)


def hand_back(url: str, sender: str, staff: str = "wang") -> None:
    with session_scope(url) as session:
        handoff.hand_back(session, sender_id=sender, staff=staff)


def test_one_read_names_every_holder_and_the_conversations_changed_since_a_read(database_url: str) -> None:
    take_over(database_url, "owner-a")
    take_over(database_url, "owner-b", "li")
    with session_scope(database_url) as session:
        first = queue.holds(session)
    assert first.holders == {"owner-a": "wang", "owner-b": "li"}
    assert first.changes == {} and first.last_event_id > 0

    hand_back(database_url, "owner-b", "li")
    take_over(database_url, "owner-c", "zhao")
    hand_back(database_url, "owner-c", "zhao")  # held and handed back between two reads
    with session_scope(database_url) as session:
        second = queue.holds(session, changed_after=first.last_event_id)
    assert second.holders == {"owner-a": "wang"}
    assert sorted(second.changes.values()) == ["owner-b", "owner-c", "owner-c"]  # hand-back; take-over, hand-back
    assert min(second.changes) > first.last_event_id and max(second.changes) == second.last_event_id
    with session_scope(database_url) as session:
        assert queue.holds(session, changed_after=second.last_event_id).changes == {}


def test_memory_answers_only_while_fresh_and_forgets_checks_of_conversations_that_were_held(database_url: str) -> None:
    ticks = Ticks()
    watch = holds.HoldWatch(database_url=database_url, monotonic=ticks, max_age_seconds=1.0)
    assert watch.holder("owner-a") == (False, None)  # never read: the gate must ask the database
    assert watch.needs_resume_check("owner-a")

    asyncio.run(watch.refresh())
    assert watch.holder("owner-a") == (True, None)
    generation = watch.generation
    watch.checked("owner-a", generation=generation)
    watch.checked("owner-b", generation=generation)
    assert not watch.needs_resume_check("owner-a") and not watch.needs_resume_check("owner-b")

    take_over(database_url, "owner-a")
    take_over(database_url, "owner-b")
    hand_back(database_url, "owner-b")  # came and went before the next read
    ticks.now += 0.25
    asyncio.run(watch.refresh())
    assert watch.holder("owner-a") == (True, "wang")
    assert watch.holder("owner-b") == (True, None)
    assert watch.needs_resume_check("owner-a") and watch.needs_resume_check("owner-b")

    # A check that was under way while a read came in is not remembered (the read may have seen a change).
    watch.checked("owner-b", generation=generation)
    assert watch.needs_resume_check("owner-b")
    watch.checked("owner-b", generation=watch.generation)
    assert not watch.needs_resume_check("owner-b")

    ticks.now += 1.01  # no read for longer than the bound: memory no longer answers
    assert watch.holder("owner-a") == (False, None)
    assert watch.needs_resume_check("owner-b")


def test_the_remembered_checks_are_bounded(database_url: str) -> None:
    watch = holds.HoldWatch(database_url=database_url, remembered=3)
    asyncio.run(watch.refresh())
    for sender in ("s1", "s2", "s3"):
        watch.checked(sender, generation=watch.generation)
    assert not watch.needs_resume_check("s1")  # s1 is now the most recently seen
    watch.checked("s4", generation=watch.generation)
    assert [watch.needs_resume_check(sender) for sender in ("s1", "s2", "s3", "s4")] == [False, True, False, False]


def test_the_background_task_keeps_memory_fresh_and_stopping_it_fails_closed(database_url: str) -> None:
    async def scenario() -> Tuple[Any, Any, Any]:
        watch = holds.HoldWatch(database_url=database_url, refresh_seconds=0.02)
        watch.start()
        watch.start()  # once
        for _ in range(200):
            if watch.fresh():
                break
            await asyncio.sleep(0.01)
        before = watch.holder("owner-a")
        await asyncio.to_thread(take_over, database_url, "owner-a")
        for _ in range(200):
            if watch.holder("owner-a") == (True, "wang"):
                break
            await asyncio.sleep(0.01)
        during = watch.holder("owner-a")
        await watch.stop()
        return before, during, watch.holder("owner-a")

    before, during, after = asyncio.run(scenario())
    assert before == (True, None)
    assert during == (True, "wang")
    assert after == (False, None)


def test_a_failed_read_leaves_memory_to_age_and_the_task_keeps_trying(caplog: pytest.LogCaptureFixture) -> None:
    watch = holds.HoldWatch(database_url="postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", refresh_seconds=0.01)

    async def scenario() -> None:
        watch.start()
        await asyncio.sleep(0.3)
        await watch.stop()

    asyncio.run(scenario())
    assert not watch.fresh()
    failures = [r for r in caplog.records if "could not read who holds" in r.getMessage()]
    assert len(failures) == 1  # logged once, not every quarter second


# --- the gate, with Rasa's SQL tracker store on the same database --------------------------------------------


class SQLAgent:
    """Rasa's SQL tracker store and in-memory lock store on our SQLite file, standing in for the agent."""

    def __init__(self, path: Path) -> None:
        from rasa.core.lock_store import InMemoryLockStore
        from rasa.core.tracker_store import SQLTrackerStore
        from rasa.shared.core.domain import Domain

        self.tracker_store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
        self.lock_store = InMemoryLockStore()
        self.processor = self

    async def get_tracker(self, sender_id: str) -> Any:
        return await self.tracker_store.get_or_create_tracker(sender_id)

    async def fetch_tracker_and_update_session(self, sender_id: str, _output: Any, _metadata: Any) -> Any:
        return await self.get_tracker(sender_id)

    async def _handle_message_with_tracker(self, message: UserMessage, tracker: Any) -> None:
        from rasa.shared.core.events import UserUttered

        tracker.update(UserUttered(message.text, input_channel=message.input_channel))

    async def save_tracker(self, tracker: Any) -> None:
        await self.tracker_store.save(tracker)


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_file: Path) -> Iterator[str]:
    import shutil

    path = tmp_path_factory.mktemp("holds") / "bot.db"
    shutil.copyfile(migrated_sqlite_file, path)
    yield f"sqlite:///{path}"


def counted_statements(url: str) -> List[str]:
    statements: List[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith(("BEGIN", "PRAGMA")):
            statements.append(statement)

    event.listen(get_engine(url), "before_cursor_execute", count)
    return statements


def test_in_the_steady_state_the_gate_sends_no_statement_per_message(sqlite_url: str) -> None:
    agent = SQLAgent(Path(sqlite_url.removeprefix("sqlite:///")))
    answered: List[str] = []

    async def on_new_message(message: UserMessage) -> None:
        answered.append(message.text or "")

    watch = holds.HoldWatch(database_url=sqlite_url)
    gate = HoldGate(on_new_message, database_url=sqlite_url, app=SimpleNamespace(ctx=SimpleNamespace(agent=agent)), watch=watch)
    statements = counted_statements(sqlite_url)

    async def say(text: str, sender: str = "owner-a") -> None:
        await gate(UserMessage(text, None, sender, input_channel="rest"))

    asyncio.run(watch.refresh())
    del statements[:]
    asyncio.run(say("你好"))  # first message of a conversation in this process: one read of its pause state
    assert len(statements) == 1 and "events" in statements[0]
    del statements[:]
    for n in range(20):
        asyncio.run(say(f"第{n}条"))
    assert statements == []  # steady state: memory answers, nothing is read
    assert len(answered) == 21

    # A person takes over; once memory has read it, the bot is silent and the message is stored for them.
    take_over(sqlite_url, "owner-a")
    asyncio.run(watch.refresh())
    asyncio.run(say("暖气不热"))
    assert len(answered) == 21
    tracker = asyncio.run(agent.tracker_store.retrieve("owner-a"))
    assert tracker is not None and tracker.is_paused() and tracker.latest_message.text == "暖气不热"

    # Handed back, before memory has read it: memory naming a person is checked with the database, so the
    # hand-back counts at once; the tracker is still paused (the resume instruction has not come), and the
    # gate resumes it.
    hand_back(sqlite_url, "owner-a")
    asyncio.run(say("好的"))
    assert answered[-1] == "好的"
    tracker = asyncio.run(agent.tracker_store.retrieve("owner-a"))
    assert tracker is not None and not tracker.is_paused()
    asyncio.run(watch.refresh())  # the read sees the hand-back: the conversation is checked once more …
    asyncio.run(say("谢谢"))
    asyncio.run(watch.refresh())
    del statements[:]
    asyncio.run(say("再见"))  # … and then costs nothing again
    assert statements == [] and answered[-2:] == ["谢谢", "再见"]


def test_with_stale_memory_the_gate_asks_the_database_per_message(sqlite_url: str) -> None:
    ticks = Ticks()
    agent = SQLAgent(Path(sqlite_url.removeprefix("sqlite:///")))
    answered: List[str] = []

    async def on_new_message(message: UserMessage) -> None:
        answered.append(message.text or "")

    watch = holds.HoldWatch(database_url=sqlite_url, monotonic=ticks)
    gate = HoldGate(on_new_message, database_url=sqlite_url, app=SimpleNamespace(ctx=SimpleNamespace(agent=agent)), watch=watch)
    asyncio.run(watch.refresh())
    take_over(sqlite_url, "owner-a")  # memory has not read this yet …
    ticks.now += 1.5  # … and is past its bound
    asyncio.run(gate(UserMessage("在吗", None, "owner-a", input_channel="rest")))
    assert answered == []  # the database said a person holds it


def test_a_change_is_taken_in_once_also_when_it_commits_out_of_id_order() -> None:
    watch = holds.HoldWatch()
    watch.apply(queue.Holds({}, 10, {}), read_at=watch.monotonic())
    watch.checked("owner-s", generation=watch.generation)
    watch.apply(queue.Holds({}, 12, {11: "owner-x", 12: "owner-y"}), read_at=watch.monotonic())
    watch.apply(queue.Holds({}, 12, {11: "owner-x", 12: "owner-y"}), read_at=watch.monotonic())  # read again
    assert not watch.needs_resume_check("owner-s")
    watch.checked("owner-x", generation=watch.generation)
    watch.apply(queue.Holds({}, 12, {11: "owner-x", 12: "owner-y"}), read_at=watch.monotonic())
    assert not watch.needs_resume_check("owner-x")  # a change already taken in forgets nothing again
    # Event 9 committed after 11 and 12 (PostgreSQL hands out ids before commit): it is still seen.
    watch.apply(queue.Holds({}, 12, {9: "owner-s", 11: "owner-x", 12: "owner-y"}), read_at=watch.monotonic())
    assert watch.needs_resume_check("owner-s") and not watch.needs_resume_check("owner-x")
