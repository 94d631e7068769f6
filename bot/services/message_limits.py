"""Per-client message rate limits: a flood is refused before Rasa sees it, with one polite word.

Every channel asks :meth:`MessageLimiter.check` about each message before the message reaches Rasa, with the
client key the server derived (:mod:`bot.channels.inbound`: ``ip:<keyed hash of the address>``, ``wechat:<openid>``,
``rest:<sender>`` for the authenticated REST integration). A client may send ``CHANNEL_MESSAGES_PER_MINUTE``
messages per minute and ``CHANNEL_MESSAGES_PER_HOUR`` per hour (0 turns a limit off). Over either:

* the message never reaches Rasa: no tracker event, no record, nothing stored but the count;
* the first refused message of a run gets one polite answer (:data:`Verdict.NOTICE`), the following ones none
  (:data:`Verdict.SILENT`) until a message is admitted again; a refused message is not counted, so a client
  that keeps sending is let in again as its window moves on.

Each limit is a sliding-window counter (the current fixed window's count plus the previous window's, weighted
by how much of it still overlaps the last ``seconds``): two numbers per client and limit, O(1) per message.
The counts live in this process's memory (:class:`MemoryCounts`), or in Redis when ``REDIS_URL`` or
``LOCK_STORE_URL`` is set (:class:`RedisCounts`, one Lua script per message), so several Rasa processes share
them. Redis unreachable: the process counts in its own memory for a while and logs it, never refusing
everyone or letting a flood through uncounted. No database write per message: the check costs microseconds
(``make bench`` prints the figure).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import redis

from bot import clock

logger = logging.getLogger(__name__)

REDIS_PREFIX = "msglimit:"
# How long a process counts in memory after Redis failed, before it tries Redis again.
REDIS_RETRY_SECONDS = 30.0
# Redis answers a local script in well under a millisecond; a stalled one must not stall the event loop long.
REDIS_TIMEOUT_SECONDS = 0.1


class Verdict(str, enum.Enum):
    """What a channel does with one message."""

    ADMIT = "admit"  # hand it to Rasa
    NOTICE = "notice"  # refused, the first of a run: answer once, politely
    SILENT = "silent"  # refused, the client was already told: no answer

    @property
    def refused(self) -> bool:
        """Whether the message must not reach Rasa."""
        return self is not Verdict.ADMIT


@dataclass(frozen=True)
class Limit:
    """At most ``count`` messages in any ``seconds`` (sliding)."""

    count: int
    seconds: int


@dataclass(frozen=True)
class Decision:
    """The verdict on one message, and for a refusal roughly when the client may send again.

    Attributes:
        verdict: Admit, refuse with the notice, or refuse silently.
        retry_after: Whole seconds until one more message would be admitted (0 when admitted).
    """

    verdict: Verdict
    retry_after: int = 0

    @property
    def refused(self) -> bool:
        """Whether the message must not reach Rasa."""
        return self.verdict.refused


def _retry_after(limit: Limit, now: float, current: float, previous: float) -> int:
    """Seconds until ``previous * overlap + current + 1 <= count`` holds again (nothing else being sent)."""
    window = float(limit.seconds)
    start = math.floor(now / window) * window
    if current + 1 > limit.count:
        # Not within this window: in the next one, ``current`` becomes the previous window's count.
        overlap_needed = (limit.count - 1) / current if current else 1.0
        wait = (start + window - now) + window * max(0.0, 1.0 - overlap_needed)
    else:
        overlap_needed = (limit.count - current - 1) / previous if previous else 1.0
        wait = start + window * max(0.0, 1.0 - overlap_needed) - now
    return max(1, math.ceil(wait))


def _wait(limits: Sequence[Limit], now: float, counts: Sequence[Tuple[float, float]]) -> int:
    """0 when one more message fits every limit, else the seconds until it would (the longest wait)."""
    waits = [
        _retry_after(limit, now, current, previous)
        for limit, (current, previous) in zip(limits, counts, strict=True)
        if previous * _weight(limit, now)[1] + current + 1 > limit.count
    ]
    return max(waits, default=0)


def _weight(limit: Limit, now: float) -> Tuple[int, float]:
    """The index of the window ``now`` falls in, and how much of the previous window still overlaps."""
    index = math.floor(now / limit.seconds)
    return index, 1.0 - (now - index * limit.seconds) / limit.seconds


@dataclass
class _Window:
    index: int = 0
    current: int = 0
    previous: int = 0


@dataclass
class _Client:
    windows: List[_Window]
    told: bool = False
    seen: float = 0.0


@dataclass
class MemoryCounts:
    """The counts in this process's memory; clients quiet for two of the longest windows are forgotten."""

    _clients: Dict[str, _Client] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _swept: float = 0.0

    def check(self, client: str, limits: Sequence[Limit], now: float) -> Decision:
        """Admit one message of ``client`` (and count it) or refuse it (uncounted); see the module docstring."""
        with self._lock:
            state = self._clients.get(client)
            if state is None or len(state.windows) != len(limits):
                state = self._clients[client] = _Client([_Window() for _ in limits])
            state.seen = now
            for limit, window in zip(limits, state.windows, strict=True):
                index, _overlap = _weight(limit, now)
                if window.index != index:
                    window.previous = window.current if window.index == index - 1 else 0
                    window.current, window.index = 0, index
            wait = _wait(limits, now, [(window.current, window.previous) for window in state.windows])
            if wait:
                verdict = Verdict.SILENT if state.told else Verdict.NOTICE
                state.told = True
                return Decision(verdict, wait)
            for window in state.windows:
                window.current += 1
            state.told = False
            self._sweep(limits, now)
            return Decision(Verdict.ADMIT)

    def _sweep(self, limits: Sequence[Limit], now: float) -> None:
        longest = max(limit.seconds for limit in limits)
        if now - self._swept < longest:
            return
        self._swept = now
        stale = [client for client, state in self._clients.items() if now - state.seen > 2 * longest]
        for client in stale:
            del self._clients[client]

    def __len__(self) -> int:
        return len(self._clients)


# KEYS: for each limit its current and previous window's counter, then the "already told" flag.
# ARGV: the number of limits; for each limit its count, the previous window's overlap and the counters' TTL;
# the flag's TTL. Returns {verdict (0 admit, 1 notice, 2 silent), refusing limit (1-based, 0 none), then the
# current and previous count of each limit}.
_CHECK_SCRIPT = """
local n = tonumber(ARGV[1])
local refusing = 0
local counts = {}
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  counts[#counts + 1] = current
  counts[#counts + 1] = previous
  if refusing == 0 and previous * tonumber(ARGV[3 * i]) + current + 1 > tonumber(ARGV[3 * i - 1]) then
    refusing = i
  end
end
local told = KEYS[2 * n + 1]
if refusing > 0 then
  local first = redis.call('SET', told, '1', 'NX', 'EX', ARGV[3 * n + 2])
  local verdict = 2
  if first then verdict = 1 end
  return {verdict, refusing, unpack(counts)}
end
for i = 1, n do
  redis.call('INCR', KEYS[2 * i - 1])
  redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[3 * i + 1])
end
redis.call('DEL', told)
return {0, 0, unpack(counts)}
"""
_VERDICTS = {0: Verdict.ADMIT, 1: Verdict.NOTICE, 2: Verdict.SILENT}


class RedisCounts:
    """The counts in Redis, shared by every process on the same Redis; memory while Redis is unreachable.

    Args:
        url: ``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS).
        client: A ready ``redis.Redis`` instead (tests).
        fallback: Where to count while Redis fails; default a fresh :class:`MemoryCounts`.
    """

    def __init__(self, url: Optional[str] = None, *, client: Any = None, fallback: Optional[MemoryCounts] = None):
        self.redis = client if client is not None else redis.Redis.from_url(
            str(url), socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._script = self.redis.register_script(_CHECK_SCRIPT)
        self.fallback = fallback or MemoryCounts()
        self._down_until = 0.0

    def check(self, client: str, limits: Sequence[Limit], now: float) -> Decision:
        """As :meth:`MemoryCounts.check`, counted in Redis (in memory while Redis is unreachable)."""
        if time.monotonic() < self._down_until:
            return self.fallback.check(client, limits, now)
        keys: List[str] = []
        args: List[Any] = [len(limits)]
        for limit in limits:
            index, overlap = _weight(limit, now)
            base = f"{REDIS_PREFIX}{client}:{limit.seconds}:"
            keys += [f"{base}{index}", f"{base}{index - 1}"]
            args += [limit.count, repr(overlap), 2 * limit.seconds]
        keys.append(f"{REDIS_PREFIX}{client}:told")
        args.append(2 * max(limit.seconds for limit in limits))
        try:
            answer = self._script(keys=keys, args=args)
        except (redis.RedisError, OSError) as error:
            self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
            logger.error(
                "message limits: Redis failed (%s); counting in this process's memory for %.0f s",
                error, REDIS_RETRY_SECONDS,
            )  # fmt: skip
            return self.fallback.check(client, limits, now)
        verdict = _VERDICTS[int(answer[0])]
        if verdict is Verdict.ADMIT:
            return Decision(verdict)
        counts = [(float(answer[2 + 2 * i]), float(answer[3 + 2 * i])) for i in range(len(limits))]
        return Decision(verdict, max(1, _wait(limits, now, counts)))


Counts = Any  # MemoryCounts or RedisCounts: ``check(client, limits, now) -> Decision``


def estate_seconds() -> float:
    """Now on the bot's one clock (:mod:`bot.clock`), as epoch seconds."""
    return clock.utc_now().timestamp()


class MessageLimiter:
    """The per-client message limits of one process (see the module docstring).

    Args:
        limits: The limits; those with a count or window of 0 or less are off.
        counts: Where the counts live; default this process's memory.
        now: Epoch seconds now; default the bot's clock.
    """

    def __init__(
        self,
        limits: Sequence[Limit],
        counts: Optional[Counts] = None,
        now: Callable[[], float] = estate_seconds,
    ) -> None:
        self.limits: Tuple[Limit, ...] = tuple(limit for limit in limits if limit.count > 0 and limit.seconds > 0)
        self.counts = counts if counts is not None else MemoryCounts()
        self.now = now

    def check(self, client: str) -> Decision:
        """Whether one more message of ``client`` may reach Rasa; an admitted one is counted.

        Args:
            client: The server-derived client key (``ip:…``, ``wechat:…``, ``rest:…``).

        Returns:
            The decision (see :class:`Verdict`).
        """
        if not self.limits:
            return Decision(Verdict.ADMIT)
        return self.counts.check(client, self.limits, self.now())


def configured_limits(settings: Any = None) -> Tuple[Limit, ...]:
    """``CHANNEL_MESSAGES_PER_MINUTE`` and ``CHANNEL_MESSAGES_PER_HOUR`` as limits."""
    if settings is None:
        from bot.settings import get_settings

        settings = get_settings()
    return (
        Limit(int(settings.channel_messages_per_minute), 60),
        Limit(int(settings.channel_messages_per_hour), 3600),
    )


def from_settings(settings: Any = None) -> MessageLimiter:
    """A limiter with the configured limits, counting in Redis when ``LOCK_STORE_URL``/``REDIS_URL`` is set."""
    from bot.settings import configured_lock_store_url

    if settings is None:
        from bot.settings import get_settings

        settings = get_settings()
    url = configured_lock_store_url(settings)
    return MessageLimiter(configured_limits(settings), RedisCounts(url) if url else MemoryCounts())
