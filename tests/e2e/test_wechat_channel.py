"""A WeChat conversation against the real Rasa server and action server (the ``servers`` fixture).

The servers run with the WeChat channel in safe mode and its API pointed at the local fake WeChat API
(``tests.fakes.wechat_api.wechat_test_env``); a simulated WeChat signs and encrypts every callback. A reply
is whatever the owner would see: the passive answer plus any customer-service messages that follow it (a
slow first answer — a cold model — arrives only by the API).
"""

from __future__ import annotations

import time
import uuid
from typing import List

import pytest
import requests
from sqlalchemy import select

from bot.channels.wechat_handler import PLEASE_TYPE_TEXT, WELCOME_TEXT
from bot.db import models
from bot.db.session import session_scope
from tests.fakes.wechat_api import (
    TEST_APP_ID,
    TEST_ENCODING_AES_KEY,
    TEST_TOKEN,
    FakeWeChatAPI,
    shared_fake_api,
)
from tests.fakes.wechat_client import WeChatClient
from tests.fakes.wording import response_variants, says

pytestmark = [pytest.mark.e2e, pytest.mark.model]

QUIET_SECONDS = 2.0  # no further customer-service message for this long: the turn is complete


class WeChatUser:
    """One WeChat user talking to the account on the live servers."""

    def __init__(self, url: str, fake_api: FakeWeChatAPI) -> None:
        self.url = url
        self.fake_api = fake_api
        self.client = WeChatClient(TEST_TOKEN, TEST_APP_ID, TEST_ENCODING_AES_KEY)
        self.openid = f"oWX{uuid.uuid4().hex[:25]}"

    def send(self, xml: str, *, encrypted: bool = True) -> List[str]:
        """Post a callback; everything the user sees in answer, in order."""
        before = len(self.fake_api.texts_for(self.openid))
        reply = self.client.post(self.url, xml, encrypted=encrypted, timeout=10)
        assert reply.status == 200, reply.body
        seen: List[str] = [reply.content] if reply.content else []
        if not seen:  # answered `success`: the reply comes by the customer-service API
            assert self.fake_api.wait_for_texts(self.openid, before + 1, timeout=90)[before:], "no reply"
        last, count = time.monotonic(), len(self.fake_api.texts_for(self.openid))
        while time.monotonic() - last < QUIET_SECONDS:
            time.sleep(0.2)
            now = len(self.fake_api.texts_for(self.openid))
            if now != count:
                last, count = time.monotonic(), now
        return seen + self.fake_api.texts_for(self.openid)[before:]

    def say(self, text: str) -> str:
        return "\n\n".join(self.send(self.client.text(self.openid, text)))


def arrears_line(fields: dict) -> str:
    """``utter_arrears`` up to its first comma, for ``fields`` (unit and amount; the period depends on today)."""
    [text] = response_variants("utter_arrears", since="", months="", **fields)
    return text.split("，")[0]


@pytest.fixture
def wechat_user(servers) -> WeChatUser:
    return WeChatUser(f"{servers.rasa_url}/webhooks/wechat/webhook", shared_fake_api())


def test_url_verification_on_the_live_server(servers, wechat_user: WeChatUser) -> None:
    query = wechat_user.client.verification("live-echo")
    response = requests.get(wechat_user.url, params=query, timeout=10)
    assert (response.status_code, response.text) == (200, "live-echo")
    forged = requests.get(wechat_user.url, params={**query, "signature": "0" * 40}, timeout=10)
    assert forged.status_code == 403


def test_follow_verify_and_stay_verified_over_wechat(servers, wechat_user: WeChatUser) -> None:
    user = wechat_user
    assert user.send(user.client.event(user.openid, "subscribe")) == [WELCOME_TEXT]

    assert says(user.say("我欠多少物业费"), "utter_ask_room")
    assert says(user.say("3栋2单元501"), "utter_ask_phone_tail")
    verified = user.say("6688")
    owner = {"owner_name": "王建国"}  # data/demo/arrears.csv
    arrears = {"unit": "3栋2单元501", "amount": "2,460.00"}  # data/demo/arrears.csv
    assert says(verified, "utter_identity_verified", **owner)
    assert arrears_line(arrears) in verified

    with session_scope(servers.database_url) as session:
        link = session.execute(
            select(models.ConversationLink).where(
                models.ConversationLink.channel == "wechat", models.ConversationLink.sender_id == user.openid
            )
        ).scalar_one()
        assert link.owner.name == "王建国"

    # A new conversation (the tracker restarted: no slots left) — the openid is still bound to the owner.
    restart = requests.post(
        f"{servers.rasa_url}/conversations/{user.openid}/tracker/events",
        json={"event": "restart"},
        timeout=30,
    )
    restart.raise_for_status()
    assert restart.json()["slots"].get("verified_owner_id") is None
    again = user.say("我欠多少物业费")
    assert not says(again, "utter_ask_room")
    assert arrears_line(arrears) in again

    # Voice: asked to type, the bot is not involved; the same callback sent again is a replay and refused.
    voice = user.client.sign(user.client.voice(user.openid), encrypted=True)
    first = requests.post(user.url, params=voice.params, data=voice.body, timeout=30)
    assert user.client.read(first.status_code, first.text, encrypted=True).content == PLEASE_TYPE_TEXT
    replayed = requests.post(user.url, params=voice.params, data=voice.body, timeout=30)
    assert (replayed.status_code, replayed.text) == (403, "replayed callback")
    # The server is in safe mode: a plaintext callback, signed as anyone who saw a callback URL could sign
    # it, is refused.
    plaintext = user.client.post(user.url, user.client.text(user.openid, "我欠多少物业费"), timeout=10)
    assert (plaintext.status, plaintext.fields) == (403, None)

    with session_scope(servers.database_url) as session:
        inbound = session.execute(
            select(models.WeChatInboundMessage).where(models.WeChatInboundMessage.openid == user.openid)
        ).scalars()
        statuses = [row.status for row in inbound]
    assert len(statuses) == 6  # the replay and the plaintext callback left no row
    assert all(s in (models.WeChatDelivery.REPLIED, models.WeChatDelivery.DELIVERED) for s in statuses)


def test_a_retried_message_is_answered_once_on_the_live_server(servers, wechat_user: WeChatUser) -> None:
    user = wechat_user
    xml = user.client.text(user.openid, "你好", msg_id=WeChatClient.new_msg_id())
    first = user.send(xml)
    assert first and says(first[0], "utter_greet")
    sent_by_api = user.fake_api.texts_for(user.openid)
    retry = user.client.post(user.url, xml, encrypted=True, timeout=10)  # WeChat re-signs its retries
    assert retry.status == 200
    assert retry.is_success or retry.content == first[0]  # nothing new: success, or the same passive answer
    time.sleep(QUIET_SECONDS)
    assert user.fake_api.texts_for(user.openid) == sent_by_api
    response = requests.get(f"{servers.rasa_url}/conversations/{user.openid}/tracker", timeout=30)
    user_turns = [event for event in response.json()["events"] if event["event"] == "user"]
    assert len(user_turns) == 1, "the retry must not reach the bot"
