"""The WeCom API client (apps/staff/wecom/api.py) against the fake WeCom API over HTTP: gettoken once and
cached, refreshed before expiry and when WeCom calls the token expired, message/send's JSON, errors."""

from __future__ import annotations

import threading
from typing import Iterator, List

import pytest

from apps.staff.wecom.api import WeComAPI, WeComAPIError
from tests.fakes.wecom_api import TEST_AGENT_ID, TEST_CORP_ID, TEST_SECRET, FakeWeComAPI


@pytest.fixture
def fake() -> Iterator[FakeWeComAPI]:
    api = FakeWeComAPI().start()
    yield api
    api.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def client(fake: FakeWeComAPI, *, secret: str = TEST_SECRET, clock: Clock | None = None) -> WeComAPI:
    return WeComAPI(
        fake.base_url, corp_id=TEST_CORP_ID, secret=secret, agent_id=TEST_AGENT_ID, clock=clock or Clock()
    )


def test_send_text_posts_wecoms_json_with_a_cached_token(fake: FakeWeComAPI) -> None:
    api = client(fake)
    answer = api.send_text("wang", "您好，第一条")
    api.send_text("wang", "第二条")
    assert answer["errcode"] == 0 and answer["msgid"] == "msg1"
    assert fake.token_requests == 1
    first, second = fake.messages_for("wang")
    assert first.body == {
        "touser": "wang",
        "msgtype": "text",
        "agentid": TEST_AGENT_ID,
        "text": {"content": "您好，第一条"},
        "safe": 0,
    }
    assert second.content == "第二条" and first.access_token == second.access_token == "WECOM_TOKEN_1"


def test_an_expired_token_is_refreshed_once_and_the_message_sent(fake: FakeWeComAPI) -> None:
    api = client(fake)
    api.send_text("wang", "一")
    fake.expire_tokens()
    api.send_text("wang", "二")
    assert fake.token_requests == 2
    assert [rejected["errcode"] for rejected in fake.rejected] == [42001]
    assert [(m.content, m.access_token) for m in fake.messages_for("wang")] == [
        ("一", "WECOM_TOKEN_1"),
        ("二", "WECOM_TOKEN_2"),
    ]


def test_a_token_near_its_expiry_is_replaced_before_sending(fake: FakeWeComAPI) -> None:
    clock = Clock()
    api = client(fake, clock=clock)
    api.send_text("wang", "一")
    clock.now += 7200 - 299  # within the refresh margin
    api.send_text("wang", "二")
    assert fake.token_requests == 2 and fake.rejected == []


def test_a_second_refusal_after_the_refresh_is_raised_not_retried_forever(fake: FakeWeComAPI) -> None:
    api = client(fake)
    fake.fail_next_sends(42001, 42001)
    with pytest.raises(WeComAPIError) as failure:
        api.send_text("wang", "一")
    assert failure.value.errcode == 42001 and fake.token_requests == 2 and fake.sent == []


def test_errors_carry_wecoms_errcode_and_a_hint(fake: FakeWeComAPI) -> None:
    fake.fail_next_sends(60020)
    with pytest.raises(WeComAPIError, match="60020.*企业可信IP") as failure:
        client(fake).send_text("wang", "一")
    assert failure.value.errcode == 60020
    with pytest.raises(WeComAPIError) as wrong_secret:
        client(fake, secret="not-the-secret-123").send_text("wang", "一")
    assert wrong_secret.value.errcode == 40001 and "not-the-secret-123" not in str(wrong_secret.value)


def test_an_unreachable_api_is_an_error_without_the_secret_in_it() -> None:
    api = WeComAPI(
        "http://127.0.0.1:9", corp_id=TEST_CORP_ID, secret=TEST_SECRET, agent_id=TEST_AGENT_ID, timeout=2
    )
    with pytest.raises(WeComAPIError) as failure:
        api.send_text("wang", "一")
    assert failure.value.errcode == -2 and TEST_SECRET not in str(failure.value)


def test_concurrent_first_sends_share_one_token(fake: FakeWeComAPI) -> None:
    api = client(fake)
    errors: List[BaseException] = []

    def send(number: int) -> None:
        try:
            api.send_text("wang", f"消息{number}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=send, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and fake.token_requests == 1
    assert sorted(m.content for m in fake.messages_for("wang")) == sorted(f"消息{n}" for n in range(8))
