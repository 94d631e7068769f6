"""Benchmarks: prints figures and ratios; never asserts on time (run: .venv/bin/python bench/run.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = [
    "管理費太貴了，我唔交",
    "我是3栋2单元501的，手机尾号6688，下周五交两千块",
    "暖气一点都不热，屋里才十五度，这物业费我不交",
    "业主说房子一直空着没人住，不想交物业费",
    "楼道灯坏了一个星期了，麻烦派人来修一下",
]


def timed(label: str, fn: Callable[[], object], repeat: int) -> float:
    """Run ``fn`` ``repeat`` times, print and return the median in milliseconds."""
    times: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    median = statistics.median(times) * 1000
    print(f"{label:<48} median {median:8.3f} ms  (n={repeat})")
    return median


def per_message(label: str, fn: Callable[[int], object], calls: int, repeat: int) -> float:
    """Run ``fn(i)`` for ``calls`` values of ``i`` per sample; print and return the median per call in milliseconds."""
    times: List[float] = []
    for sample in range(repeat):
        start = time.perf_counter()
        for i in range(calls):
            fn(sample * calls + i)
        times.append((time.perf_counter() - start) / calls)
    median = statistics.median(times) * 1000
    print(f"{label:<48} median {median:8.4f} ms  (n={repeat}x{calls})")
    return median


def message_limits(redis_url: str = "redis://127.0.0.1:6379/15") -> None:
    """The per-message flood check (bot.services.message_limits) with the default limits, in memory and in Redis.

    1,000 clients take turns (an address each), so most messages are admitted and counted, as in real traffic.
    """
    import redis

    from bot.services.message_limits import (
        REDIS_PREFIX,
        MemoryCounts,
        MessageLimiter,
        RedisCounts,
        configured_limits,
    )
    from bot.settings import Settings

    limits = configured_limits(Settings(_env_file=None))
    clients = [f"ip:10.0.{n // 256}.{n % 256}" for n in range(1000)]
    memory = MessageLimiter(limits, MemoryCounts())
    per_message("message limit check, memory (1 message)", lambda i: memory.check(clients[i % 1000]), 2000, 20)
    connection = redis.Redis.from_url(redis_url)
    try:
        connection.ping()
    except redis.RedisError:
        print(f"message limit check, Redis: no Redis at {redis_url} (start one for the shared figure)")
        return
    counts = RedisCounts(client=connection)
    shared = MessageLimiter(limits, counts)
    try:
        per_message("message limit check, Redis (1 message)", lambda i: shared.check(f"bench-{clients[i % 1000]}"), 500, 20)
        if len(counts.fallback):
            print("  (Redis failed during the run: part of that figure is the in-memory fallback)")
    finally:
        for key in connection.scan_iter(f"{REDIS_PREFIX}bench-*"):
            connection.delete(key)
        connection.close()


def hold_check(postgres_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/test") -> None:
    """The channels' hold gate (bot/channels/takeover.py) per owner message: asked from memory, and per message.

    The per-message path is what every message paid before the hold watch (bot/conversations/holds.py), and
    what it still pays when the watch's memory is older than a second: who holds the conversation, then its
    pause state in the tracker store, two reads. 200 conversations, 5 of them held; messages from the others,
    one at a time and 8 at once. On SQLite, and on PostgreSQL when it is reachable.
    """
    import tempfile
    from types import SimpleNamespace

    from bot.channels.takeover import HoldGate
    from bot.conversations import handoff, holds
    from bot.db import migrate
    from bot.db.session import get_engine, session_scope

    class Stale:
        """A watch that never read: every message takes the per-message path."""

        generation = 0

        def holder(self, _sender_id: str) -> tuple:
            return False, None

        def needs_resume_check(self, _sender_id: str) -> bool:
            return True

        def checked(self, _sender_id: str, *, generation: int) -> None:
            return None

    async def nothing(_message: object) -> None:
        return None

    def rasa_store(url: str) -> Any:
        from rasa.core.tracker_store import SQLTrackerStore
        from rasa.shared.core.domain import Domain
        from sqlalchemy.engine import make_url

        parts = make_url(url)
        if parts.get_backend_name() == "sqlite":
            return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=parts.database)
        return SQLTrackerStore(
            Domain.empty(), dialect="postgresql", host=parts.host, port=parts.port, db=parts.database,
            username=parts.username,
        )  # fmt: skip

    def run(label: str, url: str) -> None:
        from rasa.shared.core.events import BotUttered, UserUttered
        from rasa.shared.core.trackers import DialogueStateTracker

        migrate.upgrade(url)
        store = rasa_store(url)
        loop = asyncio.new_event_loop()
        for n in range(200):  # Rasa's events table as 200 conversations of 15 turns leave it
            tracker = DialogueStateTracker(f"bench-owner-{n}", slots=[])
            for turn in range(15):
                tracker.update(UserUttered(f"第{turn}句", intent={"name": "greet"}))
                tracker.update(BotUttered("您好"))
            loop.run_until_complete(store.save(tracker))
        with session_scope(url) as session:
            for n in range(5):
                handoff.take_over(session, sender_id=f"bench-held-{n}", staff="wang")
        from rasa.core.channels.channel import UserMessage

        app = SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(processor=object())))
        watch = holds.HoldWatch(database_url=url)
        loop.run_until_complete(watch.refresh())
        senders = [f"bench-owner-{n}" for n in range(200)]
        memory = HoldGate(nothing, database_url=url, app=app, watch=watch)
        asking = HoldGate(nothing, database_url=url, app=app, watch=Stale())  # type: ignore[arg-type]
        for sender in senders:  # this process has checked each conversation once
            loop.run_until_complete(memory(UserMessage("你好", None, sender)))

        def timed_call(make: Callable[[int], Any]) -> Callable[[int], object]:
            def call(i: int) -> object:
                if not watch.fresh():
                    loop.run_until_complete(watch.refresh())  # the background task's work, kept off the clock
                return loop.run_until_complete(make(i))

            return call

        def one(gate: HoldGate) -> Callable[[int], object]:
            return timed_call(lambda i: gate(UserMessage("你好", None, senders[i % 200])))

        def eight(gate: HoldGate) -> Callable[[int], object]:
            async def together(i: int) -> None:
                await asyncio.gather(*(gate(UserMessage("你好", None, senders[(i * 8 + k) % 200])) for k in range(8)))

            return timed_call(together)

        before = per_message(f"hold check, per message, {label} (1 message)", one(asking), 200, 10)
        after = per_message(f"hold check, from memory, {label} (1 message)", one(memory), 2000, 10)
        print(f"{'  per message / from memory':<48} {before / after:8.1f}x")
        before8 = per_message(f"hold check, per message, {label} (8 at once)", eight(asking), 50, 10) / 8
        after8 = per_message(f"hold check, from memory, {label} (8 at once)", eight(memory), 500, 10) / 8
        print(f"{'  per message / from memory, 8 at once':<48} {before8 / after8:8.1f}x  ({before8:.3f} vs {after8:.4f} ms a message)")
        refresh = timed(f"hold watch refresh, {label} (one read, every 0.25 s)", lambda: loop.run_until_complete(watch.refresh()), 50)
        print(f"{'  refresh cost per second of wall time':<48} {refresh * 4:8.3f} ms")
        loop.close()
        get_engine(url).dispose()

    with tempfile.TemporaryDirectory() as work:
        run("SQLite", f"sqlite:///{work}/bench.db")
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = "bench_hold_check"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception:
        print(f"hold check, PostgreSQL: no PostgreSQL at {postgres_url}")
        return
    try:
        run("PostgreSQL", postgres_url.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    """Time the flood check, the hold check and the text layer alone, then the full trained pipeline."""
    message_limits()
    hold_check()
    from bot.text.entities import RuleEntityExtractor
    from bot.text.normalize import normalize

    extractor = RuleEntityExtractor()
    today = dt.date(2026, 11, 23)
    extractor.extract("预热", today)
    normalise_ms = timed("normalize (5 messages)", lambda: [normalize(s) for s in SAMPLES], 200)
    extract_ms = timed(
        "normalize + rule entities (5 messages)",
        lambda: [extractor.extract(normalize(s).text, today) for s in SAMPLES],
        200,
    )
    print(f"{'rule entities / normalize ratio':<48} {extract_ms / normalise_ms:8.2f}x")

    model = ROOT / "models" / "current.tar.gz"
    if not model.exists():
        print("no trained model: run `make train` for the full-pipeline figure")
        return
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def parse_all() -> None:
        for sample in SAMPLES:
            await agent.parse_message(sample)

    asyncio.run(parse_all())
    loop = asyncio.new_event_loop()
    full_ms = timed("full NLU pipeline parse (5 messages)", lambda: loop.run_until_complete(parse_all()), 30)
    print(f"{'full pipeline / rule entities ratio':<48} {full_ms / extract_ms:8.2f}x")
    print(f"{'full pipeline per message':<48} {full_ms / len(SAMPLES):8.3f} ms")


if __name__ == "__main__":
    main()
