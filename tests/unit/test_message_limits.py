"""Per-client message limits (bot.services.message_limits), counted in memory and in Redis (127.0.0.1:6379)."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Callable, Iterator, List

import pytest
import redis

from bot.services.message_limits import (
    REDIS_PREFIX,
    Decision,
    Limit,
    MemoryCounts,
    MessageLimiter,
    RedisCounts,
    Verdict,
    configured_limits,
    from_settings,
)
from bot.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/9"  # a database of its own; each test uses fresh client keys
START = 1_800_000_000.0  # a minute boundary (divisible by 60 and 3600)


class Clock:
    """Epoch seconds the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # Redis runs on every dev and CI machine: fail, never skip, without it
    yield client
    for key in client.scan_iter(f"{REDIS_PREFIX}{KEY_PREFIX}*"):
        client.delete(key)
    client.close()


Backend = Callable[[], object]


@pytest.fixture(params=["memory", "redis"])
def counts(request: pytest.FixtureRequest) -> Backend:
    """A factory of counts of one backend: each call is one more process (Redis: sharing the same counts)."""
    if request.param == "memory":
        return MemoryCounts
    client = request.getfixturevalue("redis_client")
    return lambda: RedisCounts(client=client)


# This process's keys: another test process (pytest-xdist's other worker) may be counting in the same database.
KEY_PREFIX = f"test-{os.getpid()}-"


def client_key() -> str:
    return f"{KEY_PREFIX}{uuid.uuid4().hex[:12]}"


def verdicts(limiter: MessageLimiter, client: str, times: int) -> List[str]:
    return [limiter.check(client).verdict.value for _ in range(times)]


def test_the_first_message_over_the_limit_is_refused_with_a_notice_then_silently(counts: Backend) -> None:
    clock = Clock()
    limiter = MessageLimiter([Limit(3, 60)], counts(), now=clock)
    client = client_key()
    assert verdicts(limiter, client, 6) == ["admit"] * 3 + ["notice", "silent", "silent"]
    # Refused messages are not counted: the window moving on lets the client in again, and a new run is told again.
    clock.now += 60 + 45  # the next window, three quarters gone: the first window's 3 weigh 0.75
    assert verdicts(limiter, client, 4) == ["admit", "admit", "notice", "silent"]
    clock.now += 120
    assert verdicts(limiter, client, 1) == ["admit"]


def test_the_retry_hint_says_when_one_more_message_fits(counts: Backend) -> None:
    clock = Clock(START + 20)  # 20 s into a minute
    limiter = MessageLimiter([Limit(3, 60)], counts(), now=clock)
    client = client_key()
    assert verdicts(limiter, client, 3) == ["admit"] * 3
    refused = limiter.check(client)
    # Next window starts in 40 s; there the first window's 3 weigh too much until a third of it has gone (20 s).
    assert refused == Decision(Verdict.NOTICE, 60)
    clock.now += 59
    assert limiter.check(client).verdict is Verdict.SILENT
    clock.now += 1
    assert limiter.check(client).verdict is Verdict.ADMIT


def test_the_hourly_limit_holds_when_each_minute_is_within_its_own(counts: Backend) -> None:
    clock = Clock()
    limiter = MessageLimiter([Limit(5, 60), Limit(8, 3600)], counts(), now=clock)
    client = client_key()
    assert verdicts(limiter, client, 5) == ["admit"] * 5
    clock.now += 120
    assert verdicts(limiter, client, 4) == ["admit"] * 3 + ["notice"]
    decision = limiter.check(client)
    assert decision.verdict is Verdict.SILENT and decision.retry_after > 60  # the hour, not the minute, refuses


def test_clients_are_counted_apart(counts: Backend) -> None:
    limiter = MessageLimiter([Limit(2, 60)], counts(), now=Clock())
    first, second = client_key(), client_key()
    assert verdicts(limiter, first, 3) == ["admit", "admit", "notice"]
    assert verdicts(limiter, second, 3) == ["admit", "admit", "notice"]


def test_a_limit_of_zero_is_off() -> None:
    limiter = MessageLimiter([Limit(0, 60), Limit(0, 3600)], now=Clock())
    assert verdicts(limiter, client_key(), 500) == ["admit"] * 500
    assert limiter.limits == ()


def test_redis_counts_are_shared_by_every_process_memory_counts_are_not(redis_client: redis.Redis) -> None:
    clock = Clock()
    client = client_key()
    first, second = (MessageLimiter([Limit(4, 60)], RedisCounts(client=redis_client), now=clock) for _ in range(2))
    assert verdicts(first, client, 2) + verdicts(second, client, 3) == ["admit"] * 4 + ["notice"]
    assert verdicts(first, client, 1) == ["silent"]  # told once, by whichever process refused first
    stored = {key.decode(): int(redis_client.get(key) or 0) for key in redis_client.scan_iter(f"{REDIS_PREFIX}{client}:60:*")}
    assert stored == {f"{REDIS_PREFIX}{client}:60:{int(START // 60)}": 4}  # the count, and nothing of the messages
    assert 60 < redis_client.ttl(f"{REDIS_PREFIX}{client}:60:{int(START // 60)}") <= 120

    apart = [MessageLimiter([Limit(4, 60)], MemoryCounts(), now=clock) for _ in range(2)]
    memory_client = client_key()
    assert verdicts(apart[0], memory_client, 3) + verdicts(apart[1], memory_client, 3) == ["admit"] * 6


def test_without_redis_a_process_counts_in_its_own_memory_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    down = RedisCounts("redis://127.0.0.1:1/0")  # nothing listens on port 1
    limiter = MessageLimiter([Limit(2, 60)], down, now=Clock())
    client = client_key()
    with caplog.at_level(logging.ERROR, logger="bot.services.message_limits"):
        assert verdicts(limiter, client, 4) == ["admit", "admit", "notice", "silent"]
    assert len([r for r in caplog.records if "Redis failed" in r.getMessage()]) == 1  # then memory, quietly
    assert len(down.fallback) == 1


def test_memory_forgets_clients_quiet_for_two_of_the_longest_windows() -> None:
    clock = Clock()
    counts = MemoryCounts()
    limiter = MessageLimiter([Limit(2, 60), Limit(10, 3600)], counts, now=clock)
    for number in range(100):
        limiter.check(f"test-{number}")
    assert len(counts) == 100
    clock.now += 2 * 3600 + 1
    limiter.check("test-late")
    assert len(counts) == 1


def test_the_configured_limits_and_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None)
    assert configured_limits(defaults) == (Limit(30, 60), Limit(300, 3600))
    assert isinstance(from_settings(defaults).counts, MemoryCounts)
    shared = from_settings(Settings(_env_file=None, redis_url=REDIS_URL, channel_messages_per_minute=5))
    assert isinstance(shared.counts, RedisCounts) and shared.limits == (Limit(5, 60), Limit(300, 3600))
    lock_store = from_settings(Settings(_env_file=None, lock_store_url=REDIS_URL, channel_messages_per_hour=0))
    assert isinstance(lock_store.counts, RedisCounts) and lock_store.limits == (Limit(30, 60),)
