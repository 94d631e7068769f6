"""A real human takeover on the real servers: the web chat owner (a python-socketio client), the staff side
through ``bot.conversations.handoff`` on the same database, and the Rasa process delivering the outbox.

The bot is silent while a person holds the conversation, the staff reply and the joined / left notices reach
the owner's socket, the bot answers again after the hand-back; an outbox row survives a restart of the Rasa
process and is delivered once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List
from urllib.parse import quote

import pytest
import requests

from bot import clock, wording
from bot.cli import start_rasa_server, stop
from bot.conversations import handoff, outbox
from bot.db.models import OutboxKind, OutboxState
from bot.db.session import session_scope
from tests.conftest import demo_database, server_plan, start_and_wait, wait_for
from tests.e2e.test_webchat_socket import WebChatClient
from tests.fakes.wording import says

pytestmark = [pytest.mark.e2e, pytest.mark.model]
REPLY = "您好，我是物业服务中心的王小明，暖气的问题我已经派师傅今天下午上门查看。"


def tracker_events(rasa_url: str, sender_id: str) -> List[Dict[str, Any]]:
    response = requests.get(f"{rasa_url}/conversations/{quote(sender_id)}/tracker", timeout=30)
    response.raise_for_status()
    return list(response.json()["events"])


def rows(database_url: str, sender_id: str) -> List[outbox.OutboxEntry]:
    with session_scope(database_url) as session:
        return outbox.messages(session, sender_id=sender_id, include_control=True)


def wait_delivered(database_url: str, sender_id: str, timeout: float = 20) -> List[outbox.OutboxEntry]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(database_url, sender_id)
        if all(row.state is OutboxState.DELIVERED for row in found):
            return found
        time.sleep(0.3)
    raise AssertionError(f"not delivered: {rows(database_url, sender_id)}")


def test_takeover_silences_the_bot_delivers_the_reply_and_hands_back(servers) -> None:
    owner = WebChatClient(servers.rasa_url)
    try:
        sender = owner.session_id
        assert sender is not None
        owner.say("你好")
        assert says(owner.replies(), "utter_greet")

        with session_scope(servers.database_url) as session:
            taken = handoff.take_over(session, sender_id=sender, staff="wang")
        assert taken.channel == "socketio"
        assert owner.replies(first_timeout=15, quiet=2) == [wording.text("handoff.joined")]

        # The owner writes while the person holds the conversation: stored, not answered (not even a fallback).
        owner.say("暖气不热，物业费我不交了")
        assert owner.replies(first_timeout=8, quiet=1) == []
        events = tracker_events(servers.rasa_url, sender)
        held_message = [event for event in events if event["event"] == "user"][-1]
        assert held_message["text"] == "暖气不热，物业费我不交了" and held_message["parse_data"]["intent"]["name"]
        assert "pause" in [event["event"] for event in events]
        after = events[events.index(held_message) + 1 :]
        assert not [event for event in after if event["event"] in ("bot", "action")]

        with session_scope(servers.database_url) as session:
            handoff.staff_reply(session, sender_id=sender, staff="wang", text=REPLY)
        assert owner.replies(first_timeout=15, quiet=2) == [REPLY]

        with session_scope(servers.database_url) as session:
            handoff.hand_back(session, sender_id=sender, staff="wang")
        assert owner.replies(first_timeout=15, quiet=2) == [wording.text("handoff.left")]

        owner.say("你好")
        answer = owner.replies()
        assert answer and says(answer, "utter_greet")

        delivered = wait_delivered(servers.database_url, sender)
        assert [(row.kind, row.attempts) for row in delivered] == [
            (OutboxKind.CONTROL, 1),
            (OutboxKind.JOINED, 1),
            (OutboxKind.TEXT, 1),
            (OutboxKind.LEFT, 1),
            (OutboxKind.CONTROL, 1),
        ]
        events = tracker_events(servers.rasa_url, sender)
        staff_said = [event for event in events if event["event"] == "bot" and (event.get("metadata") or {}).get("staff")]
        assert [(event["text"], event["metadata"]["staff"]) for event in staff_said] == [(REPLY, "wang")]
        kinds = [event["event"] for event in events]
        assert kinds.index("pause") < kinds.index("resume")
    finally:
        owner.close()


def test_an_outbox_row_survives_a_restart_and_is_delivered_once(trained_model: Path, tmp_path: Path) -> None:
    plan = server_plan(trained_model, tmp_path, demo_database(tmp_path))
    processes = start_and_wait(plan)
    try:
        first = WebChatClient(plan.rasa_url)
        sender = first.session_id
        assert sender is not None
        first.say("你好")
        assert first.replies()
        first.close()  # the owner leaves: what follows waits for their next visit

        stop([processes[1]])  # the Rasa process goes away; meanwhile a staff member takes over and answers
        with session_scope(plan.database_url) as session:
            handoff.take_over(session, sender_id=sender, staff="wang")
            handoff.staff_reply(session, sender_id=sender, staff="wang", text=REPLY)
        assert [row.state for row in rows(plan.database_url, sender)] == [OutboxState.PENDING] * 3
        processes[1] = start_rasa_server(plan)
        wait_for(f"{plan.rasa_url}/status", processes[1], 180)

        back = WebChatClient(plan.rasa_url, stored_id=sender)
        try:
            assert back.session_id == sender
            assert back.replies(first_timeout=20, quiet=3) == [wording.text("handoff.joined"), REPLY]
            assert back.replies(first_timeout=4, quiet=1) == []
        finally:
            back.close()
        again = WebChatClient(plan.rasa_url, stored_id=sender)  # another visit: nothing is sent twice
        try:
            assert again.replies(first_timeout=4, quiet=1) == []
        finally:
            again.close()

        delivered = wait_delivered(plan.database_url, sender)
        assert [(row.kind, row.attempts) for row in delivered] == [
            (OutboxKind.CONTROL, 1),
            (OutboxKind.JOINED, 1),
            (OutboxKind.TEXT, 1),
        ]
        assert "pause" in [event["event"] for event in tracker_events(plan.rasa_url, sender)]
        owner_rows = {row.id for row in delivered if row.kind is not OutboxKind.CONTROL}
        in_tracker = [
            (event.get("metadata") or {}).get("outbox_id")
            for event in tracker_events(plan.rasa_url, sender)
            if event["event"] == "bot" and (event.get("metadata") or {}).get("outbox_id")
        ]
        assert sorted(in_tracker) == sorted(owner_rows)
    finally:
        stop(processes)


def test_wechat_takeover_within_and_outside_the_48_hour_window(servers) -> None:
    import datetime as dt
    import uuid

    from bot.db import models
    from bot.services import escalations
    from tests.e2e.test_wechat_channel import WeChatUser
    from tests.fakes.wechat_api import shared_fake_api

    fake_api = shared_fake_api()
    user = WeChatUser(f"{servers.rasa_url}/webhooks/wechat/webhook", fake_api)
    assert user.say("你好")
    seen = len(fake_api.texts_for(user.openid))

    with session_scope(servers.database_url) as session:
        assert handoff.delivery_status(session, sender_id=user.openid).window_open
        assert handoff.take_over(session, sender_id=user.openid, staff="li").channel == "wechat"
    texts = fake_api.wait_for_texts(user.openid, seen + 1, timeout=20)
    assert texts[seen:] == [wording.text("handoff.joined")]

    # Held: the callback is answered `success` and the bot sends nothing, now or later.
    reply = user.client.post(user.url, user.client.text(user.openid, "暖气不热"), encrypted=True, timeout=10)
    assert reply.status == 200 and not reply.content
    # Nor does the channel itself: no "please type" for a voice message while a person holds the chat; the
    # staff view gets a note of it instead.
    voice = user.client.post(user.url, user.client.voice(user.openid), encrypted=True, timeout=10)
    assert voice.status == 200 and not voice.content
    time.sleep(4)
    assert len(fake_api.texts_for(user.openid)) == seen + 1
    owner_said = [event for event in tracker_events(servers.rasa_url, user.openid) if event["event"] == "user"]
    assert [event["text"] for event in owner_said[-2:]] == ["暖气不热", wording.text("handoff.held_not_text", kind="voice")]
    assert owner_said[-1]["metadata"]["held_note"] == {"problem": "not text", "kind": "voice"}

    with session_scope(servers.database_url) as session:
        handoff.staff_reply(session, sender_id=user.openid, staff="li", text=REPLY)
    assert fake_api.wait_for_texts(user.openid, seen + 2, timeout=20)[seen + 1 :] == [REPLY]
    with session_scope(servers.database_url) as session:
        handoff.hand_back(session, sender_id=user.openid, staff="li")
    assert fake_api.wait_for_texts(user.openid, seen + 3, timeout=20)[seen + 2 :] == [wording.text("handoff.left")]
    assert all(row.state is OutboxState.DELIVERED for row in wait_delivered(servers.database_url, user.openid))
    assert user.say("你好")  # the bot answers again

    # An owner who last wrote 49 hours ago: the window is closed, the screen is told, nothing is sent.
    stale = f"oWX{uuid.uuid4().hex[:25]}"
    with session_scope(servers.database_url) as session:
        session.add(
            models.WeChatInboundMessage(
                dedupe_key=f"msg:{stale}",
                openid=stale,
                msg_type="text",
                received_at=clock.utc_now() - dt.timedelta(hours=49),
            )
        )
        escalations.escalate(
            session,
            reason=escalations.Reason.REQUEST_HUMAN,
            detail=None,
            owner_id=None,
            channel="wechat",
            sender_id=stale,
            message_id=f"wechat-{stale}",
        )
    with session_scope(servers.database_url) as session:
        status = handoff.delivery_status(session, sender_id=stale)
        assert (status.can_deliver, status.window_open, status.blocked) == (
            False,
            False,
            handoff.Blocked.WECHAT_WINDOW_CLOSED,
        )
        handoff.take_over(session, sender_id=stale, staff="li")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        joined = [row for row in rows(servers.database_url, stale) if row.kind is OutboxKind.JOINED]
        if joined and joined[0].state is OutboxState.FAILED:
            break
        time.sleep(0.3)
    assert (joined[0].state, joined[0].failure) == (OutboxState.FAILED, "wechat_window_closed")
    assert fake_api.texts_for(stale) == []


def test_a_rest_owner_gets_staff_messages_in_the_response_to_their_next_message_once(servers) -> None:
    import uuid

    from bot.channels.inbound import max_message_chars

    sender = f"rest-takeover-{uuid.uuid4().hex[:8]}"
    assert says(servers.say(sender, "你好"), "utter_greet")
    with session_scope(servers.database_url) as session:
        assert handoff.take_over(session, sender_id=sender, staff="zhao").channel == "rest"
        status = handoff.delivery_status(session, sender_id=sender)
    assert (status.can_deliver, status.blocked) == (True, None)
    time.sleep(3)  # the deliverers poll every second: a REST row is left waiting for the owner, not failed
    assert [(row.kind, row.state) for row in rows(servers.database_url, sender) if row.kind is OutboxKind.JOINED] == [
        (OutboxKind.JOINED, OutboxState.PENDING)
    ]

    # Held: the bot says nothing; what staff sent so far comes with the response.
    assert servers.say(sender, "暖气不热，物业费不交") == [wording.text("handoff.joined")]
    assert [event["text"] for event in tracker_events(servers.rasa_url, sender) if event["event"] == "user"][-1] == (
        "暖气不热，物业费不交"
    )
    # An over-long message while held: no automatic refusal (the person answers); kept for them, cut, with a note.
    too_long = "暖气一直不热" * (max_message_chars() // 6 + 20)
    assert servers.say(sender, too_long) == []
    kept = [event for event in tracker_events(servers.rasa_url, sender) if event["event"] == "user"][-1]
    assert kept["text"].startswith("〔") and str(len(too_long)) in kept["text"] and too_long[:100] in kept["text"]
    assert len(kept["text"]) < 400 and kept["metadata"]["held_note"] == {"problem": "too long", "chars": len(too_long)}

    with session_scope(servers.database_url) as session:
        handoff.staff_reply(session, sender_id=sender, staff="zhao", text=REPLY)
    assert servers.say(sender, "好的，谢谢") == [REPLY]
    assert servers.say(sender, "在吗") == []  # nothing twice

    with session_scope(servers.database_url) as session:
        handoff.hand_back(session, sender_id=sender, staff="zhao")
    answer = servers.say(sender, "你好")
    assert answer[0] == wording.text("handoff.left") and says(answer[1:], "utter_greet")  # the bot is back

    delivered = wait_delivered(servers.database_url, sender)
    assert [(row.kind, row.attempts) for row in delivered] == [
        (OutboxKind.CONTROL, 1),
        (OutboxKind.JOINED, 1),
        (OutboxKind.TEXT, 1),
        (OutboxKind.LEFT, 1),
        (OutboxKind.CONTROL, 1),
    ]
    in_tracker = [
        (event.get("metadata") or {}).get("outbox_id")
        for event in tracker_events(servers.rasa_url, sender)
        if event["event"] == "bot" and (event.get("metadata") or {}).get("outbox_id")
    ]
    assert in_tracker == [row.id for row in delivered if row.kind is not OutboxKind.CONTROL]
