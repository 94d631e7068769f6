"""The WeChat channel's database state, on SQLite and PostgreSQL: claims, replay memory, compare-and-set,
choices, tokens."""

import datetime as dt
import threading
import time
from typing import List, Union

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from bot.clock import utc_now
from bot.db import migrate, models
from bot.db.session import get_engine, session_scope
from bot.wechat.format import Choice
from bot.wechat.store import (
    CachedToken,
    DatabaseTokenCache,
    InboundState,
    ReplayedCallback,
    SeenSignature,
    SubscriptionEvent,
    WeChatStore,
)

WECHAT_TABLES = {
    "wechat_inbound_messages",
    "wechat_pending_choices",
    "wechat_subscription_events",
    "wechat_access_tokens",
    "wechat_callback_signatures",
}
EXPIRES = dt.datetime(2026, 11, 25, 2, 6, 0, tzinfo=dt.timezone.utc)


def rows(url: str, model) -> int:
    with session_scope(url) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def signatures(url: str) -> List[tuple]:
    """Every remembered pair as (signature, nonce, dedupe_key, expires_at), oldest first."""
    with session_scope(url) as session:
        found = session.execute(
            select(models.WeChatCallbackSignature).order_by(models.WeChatCallbackSignature.id)
        ).scalars()
        return [(row.signature, row.nonce, row.dedupe_key, aware(row.expires_at)) for row in found]


def seen(signature: str, nonce: str = "1234567890", expires_at: dt.datetime = EXPIRES) -> SeenSignature:
    return SeenSignature(signature, nonce, expires_at)


def test_a_message_is_claimed_once(database_url: str) -> None:
    store = WeChatStore(database_url)
    assert store.claim("msg:1", openid="o1", msg_type="text") is True
    assert store.claim("msg:1", openid="o1", msg_type="text") is False
    assert store.claim("msg:2", openid="o1", msg_type="text") is True
    assert rows(database_url, models.WeChatInboundMessage) == 2
    assert store.state("msg:1").status is models.WeChatDelivery.PROCESSING
    assert store.state("msg:404") is None


def test_concurrent_claims_from_threads_let_exactly_one_win(database_url: str) -> None:
    store = WeChatStore(database_url)
    barrier = threading.Barrier(6)
    results = []

    def claim() -> None:
        barrier.wait()
        results.append(store.claim("msg:race", openid="o1", msg_type="text"))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]
    assert rows(database_url, models.WeChatInboundMessage) == 1


def test_passive_answer_and_deferral_exclude_each_other(database_url: str) -> None:
    store = WeChatStore(database_url)
    store.claim("msg:a", openid="o1", msg_type="text")
    assert store.answer_passively("msg:a", "您好") is True
    assert store.defer("msg:a") is False
    assert store.state("msg:a") == InboundState(models.WeChatDelivery.REPLIED, "您好")

    store.claim("msg:b", openid="o1", msg_type="text")
    assert store.defer("msg:b") is True
    assert store.answer_passively("msg:b", "太晚了") is False
    assert store.state("msg:b").status is models.WeChatDelivery.DEFERRED
    store.finish("msg:b", models.WeChatDelivery.DELIVERED)
    assert store.state("msg:b") == InboundState(models.WeChatDelivery.DELIVERED, None)


def test_a_subscription_event_is_written_with_its_claim_and_never_twice(database_url: str) -> None:
    store = WeChatStore(database_url)
    when = dt.datetime(2026, 11, 23, 1, 2, 3, tzinfo=dt.timezone.utc)
    event = SubscriptionEvent("unsubscribe", when)
    assert store.claim("event:o1:1", openid="o1", msg_type="event:unsubscribe", subscription=event)
    assert not store.claim("event:o1:1", openid="o1", msg_type="event:unsubscribe", subscription=event)
    assert store.subscription_events("o1") == [event]
    assert rows(database_url, models.WeChatSubscriptionEvent) == 1


def test_pending_choices_are_replaced_and_cleared(database_url: str) -> None:
    store = WeChatStore(database_url)
    assert store.pending_choices("o1") == []
    store.set_pending_choices("o1", [Choice("好的", "/affirm"), Choice("不用了", "/deny")])
    store.set_pending_choices("o2", [Choice("找人工", "/ask_human")])
    assert store.pending_choices("o1") == [Choice("好的", "/affirm"), Choice("不用了", "/deny")]
    store.set_pending_choices("o1", [Choice("明天上午", "明天上午")])
    assert store.pending_choices("o1") == [Choice("明天上午", "明天上午")]
    store.set_pending_choices("o1", [])
    assert store.pending_choices("o1") == []
    assert store.pending_choices("o2") == [Choice("找人工", "/ask_human")]
    assert rows(database_url, models.WeChatPendingChoice) == 1


def test_access_token_is_shared_and_invalidated_only_if_still_current(database_url: str) -> None:
    cache = DatabaseTokenCache(WeChatStore(database_url))
    assert cache.get("wx1") is None
    expires = int(time.time()) + 7200
    cache.put("wx1", CachedToken("T1", expires))
    assert cache.get("wx1") == CachedToken("T1", expires)
    cache.put("wx1", CachedToken("T2", expires + 10))
    cache.invalidate("wx1", "T1")  # stale news: T2 stays
    assert cache.get("wx1").token == "T2"
    cache.invalidate("wx1", "T2")
    assert cache.get("wx1") is None


def test_old_message_keys_are_purged(database_url: str) -> None:
    store = WeChatStore(database_url)
    store.claim("msg:old", openid="o1", msg_type="text")
    now = utc_now()
    assert store.purge(now - dt.timedelta(days=1), now) == 0
    assert store.purge(now + dt.timedelta(minutes=1), now) == 1
    assert store.state("msg:old") is None


def test_a_signature_is_remembered_with_its_claim_and_a_replay_writes_nothing(database_url: str) -> None:
    store = WeChatStore(database_url)
    first = seen("a" * 40)
    assert store.claim("msg:1", openid="o1", msg_type="text", seen=first) is True
    assert signatures(database_url) == [("a" * 40, "1234567890", "msg:1", EXPIRES)]
    assert store.seen("a" * 40, "1234567890") and not store.seen("a" * 40, "1234567891")

    # The same pair with another message (a new MsgId) or the same one: refused, nothing written.
    event = SubscriptionEvent("subscribe", dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.timezone.utc))
    for key, subscription in (("msg:2", None), ("msg:1", None), ("event:o1:1", event)):
        with pytest.raises(ReplayedCallback):
            store.claim(key, openid="o1", msg_type="text", subscription=subscription, seen=first)
    assert store.state("msg:2") is None and store.subscription_events("o1") == []
    assert rows(database_url, models.WeChatInboundMessage) == 1

    # A retry signed afresh: not claimed again, and its own pair is remembered.
    assert store.claim("msg:1", openid="o1", msg_type="text", seen=seen("b" * 40, "42")) is False
    assert signatures(database_url) == [
        ("a" * 40, "1234567890", "msg:1", EXPIRES),
        ("b" * 40, "42", "msg:1", EXPIRES),
    ]
    # One signature with another nonce is another pair.
    assert store.claim("msg:3", openid="o1", msg_type="text", seen=seen("a" * 40, "7")) is True
    assert store.state("msg:1") == InboundState(models.WeChatDelivery.PROCESSING, None)
    assert rows(database_url, models.WeChatInboundMessage) == 2


def test_concurrent_claims_of_one_pair_let_exactly_one_in(database_url: str) -> None:
    # Server processes racing on one captured callback, each with a message of its own.
    store = WeChatStore(database_url)
    barrier = threading.Barrier(6)
    results: List[Union[bool, str]] = []

    def claim(number: int) -> None:
        barrier.wait()
        try:
            results.append(store.claim(f"msg:{number}", openid="o1", msg_type="text", seen=seen("c" * 40)))
        except ReplayedCallback:
            results.append("replayed")

    threads = [threading.Thread(target=claim, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == [True] + ["replayed"] * 5
    assert rows(database_url, models.WeChatInboundMessage) == 1
    [(signature, nonce, key, expires)] = signatures(database_url)
    assert (signature, nonce, expires) == ("c" * 40, "1234567890", EXPIRES)
    assert store.state(key) is not None


def test_signatures_are_purged_once_their_window_has_closed(database_url: str) -> None:
    store = WeChatStore(database_url)
    store.claim("msg:1", openid="o1", msg_type="text", seen=seen("d" * 40, expires_at=EXPIRES))
    store.claim("msg:2", openid="o1", msg_type="text", seen=seen("e" * 40, expires_at=EXPIRES + dt.timedelta(minutes=5)))
    long_ago = EXPIRES - dt.timedelta(days=3)
    assert store.purge(long_ago, EXPIRES) == 0  # expires_at is the last moment it is needed
    assert store.purge(long_ago, EXPIRES + dt.timedelta(seconds=1)) == 1
    assert [row[0] for row in signatures(database_url)] == ["e" * 40]
    assert rows(database_url, models.WeChatInboundMessage) == 2  # message keys are kept for days


def test_migration_0015_adds_only_the_replay_memory_and_downgrades(database_url: str) -> None:
    store = WeChatStore(database_url)
    store.claim("msg:kept", openid="o1", msg_type="text", seen=seen("f" * 40))
    engine = get_engine(database_url)
    columns = {column["name"] for column in inspect(engine).get_columns("wechat_callback_signatures")}
    assert columns == {"id", "signature", "nonce", "dedupe_key", "seen_at", "expires_at"}
    [unique] = inspect(engine).get_unique_constraints("wechat_callback_signatures")
    assert (unique["name"], unique["column_names"]) == ("uq_wechat_callback_signature", ["signature", "nonce"])
    migrate.downgrade(database_url, "0014")
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert "wechat_callback_signatures" not in tables and WECHAT_TABLES - {"wechat_callback_signatures"} <= tables
    assert store.state("msg:kept") is not None
    migrate.upgrade(database_url)
    assert "wechat_callback_signatures" in inspect(get_engine(database_url)).get_table_names()
    assert signatures(database_url) == []


def test_migration_0002_matches_the_models_and_downgrades(database_url: str) -> None:
    engine = get_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, models.Base.metadata) == []
    migrate.downgrade(database_url, "0001")
    assert not WECHAT_TABLES & set(inspect(engine).get_table_names())
    migrate.upgrade(database_url)
    assert WECHAT_TABLES <= set(inspect(get_engine(database_url)).get_table_names())
