"""The WeChat API client against the fake API server: token caching and refresh, customer-service texts."""

import asyncio
import json
from pathlib import Path
from typing import Iterator

import pytest

from bot.db import migrate
from bot.db.session import get_engine
from bot.wechat.api import WeChatAPI, WeChatAPIError
from bot.wechat.store import DatabaseTokenCache, WeChatStore
from tests.fakes.wechat_api import TEST_APP_ID, TEST_APP_SECRET, FakeWeChatAPI


@pytest.fixture
def fake_api() -> Iterator[FakeWeChatAPI]:
    fake = FakeWeChatAPI().start()
    yield fake
    fake.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(url)
    yield url
    get_engine(url).dispose()


def test_texts_are_sent_in_order_with_one_cached_token(fake_api: FakeWeChatAPI) -> None:
    api = WeChatAPI(fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET)
    asyncio.run(api.send_texts("o1", ["第一条", "第二条"]))
    asyncio.run(api.send_text("o1", "第三条"))
    assert fake_api.texts_for("o1") == ["第一条", "第二条", "第三条"]
    assert fake_api.token_requests == 1
    raw = fake_api.sent[0].raw
    assert "第一条".encode() in raw, "Chinese must go out as UTF-8, not \\u escapes"
    assert json.loads(raw) == {"touser": "o1", "msgtype": "text", "text": {"content": "第一条"}}


@pytest.mark.parametrize("expire", ["expired", "invalid"])
def test_a_refused_token_is_refreshed_once(fake_api: FakeWeChatAPI, expire: str) -> None:
    api = WeChatAPI(fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET)
    asyncio.run(api.send_text("o1", "一"))
    if expire == "expired":
        fake_api.expire_tokens()  # 42001
    else:
        fake_api.expire_tokens()
        fake_api._expired_tokens.clear()  # unknown token: 40001
    asyncio.run(api.send_text("o1", "二"))
    assert fake_api.texts_for("o1") == ["一", "二"]
    assert fake_api.token_requests == 2
    assert [r["errcode"] for r in fake_api.rejected] == [42001 if expire == "expired" else 40001]


def test_processes_share_the_token_through_the_database(fake_api: FakeWeChatAPI, sqlite_url: str) -> None:
    first = WeChatAPI(
        fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET, DatabaseTokenCache(WeChatStore(sqlite_url))
    )
    second = WeChatAPI(
        fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET, DatabaseTokenCache(WeChatStore(sqlite_url))
    )
    asyncio.run(first.send_text("o1", "甲"))
    asyncio.run(second.send_text("o1", "乙"))
    assert fake_api.token_requests == 1

    fake_api.expire_tokens()
    asyncio.run(second.send_text("o1", "丙"))  # refreshes and stores the new token ...
    asyncio.run(first.send_text("o1", "丁"))  # ... which the other process picks up after one refusal
    assert fake_api.texts_for("o1") == ["甲", "乙", "丙", "丁"]
    assert fake_api.token_requests == 2


def test_concurrent_senders_fetch_one_token(fake_api: FakeWeChatAPI) -> None:
    api = WeChatAPI(fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET)

    async def send_many() -> None:
        await asyncio.gather(*(api.send_text(f"o{n}", "hi") for n in range(5)))

    asyncio.run(send_many())
    assert fake_api.token_requests == 1 and len(fake_api.sent) == 5


def test_wrong_secret_and_refused_sends_raise_with_a_hint(fake_api: FakeWeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as error:
        asyncio.run(WeChatAPI(fake_api.base_url, TEST_APP_ID, "s3cr3t-typo").send_text("o1", "hi"))
    assert error.value.errcode == 40125 and "WECHAT_APP_SECRET" in str(error.value)
    assert "s3cr3t-typo" not in str(error.value)

    fake_api.fail_next_sends(45015)
    with pytest.raises(WeChatAPIError) as error:
        asyncio.run(WeChatAPI(fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET).send_text("o1", "hi"))
    assert error.value.errcode == 45015 and "48 hours" in str(error.value)


def test_unreachable_api_is_an_api_error_without_the_secret_in_it() -> None:
    api = WeChatAPI("http://127.0.0.1:9", TEST_APP_ID, TEST_APP_SECRET, timeout=2)
    with pytest.raises(WeChatAPIError) as error:
        asyncio.run(api.send_text("o1", "hi"))
    assert error.value.errcode == -2
    assert TEST_APP_SECRET not in str(error.value) and error.value.__cause__ is None
