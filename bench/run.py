"""Benchmarks: prints figures and ratios; never asserts on time (run: .venv/bin/python bench/run.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

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


def main() -> None:
    """Time the flood check and the text layer alone, then the full trained pipeline if a model exists."""
    message_limits()
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
