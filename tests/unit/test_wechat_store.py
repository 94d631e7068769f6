"""The WeChat channel's database state, on SQLite and PostgreSQL: claims, compare-and-set, choices, tokens."""

import datetime as dt
import threading
import time

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from bot.channels.wechat_format import Choice
from bot.channels.wechat_store import (
    CachedToken,
    DatabaseTokenCache,
    InboundState,
    SubscriptionEvent,
    WeChatStore,
)
from bot.db import migrate, models
from bot.db.session import get_engine, session_scope

WECHAT_TABLES = {
    "wechat_inbound_messages",
    "wechat_pending_choices",
    "wechat_subscription_events",
    "wechat_access_tokens",
}


def rows(url: str, model) -> int:
    with session_scope(url) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


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
    assert store.purge(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)) == 0
    assert store.purge(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)) == 1
    assert store.state("msg:old") is None


def test_migration_0002_matches_the_models_and_downgrades(database_url: str) -> None:
    engine = get_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, models.Base.metadata) == []
    migrate.downgrade(database_url, "0001")
    assert not WECHAT_TABLES & set(inspect(engine).get_table_names())
    migrate.upgrade(database_url)
    assert WECHAT_TABLES <= set(inspect(get_engine(database_url)).get_table_names())
