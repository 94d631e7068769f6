"""The human takeover (bot/conversations/handoff.py) and the outbox it writes to, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import List

import pytest
from sqlalchemy import select

from bot import clock, wording
from bot.conversations import handoff, outbox
from bot.db import models
from bot.db.models import EscalationState, OutboxKind, OutboxState
from bot.db.session import session_scope
from bot.services import escalations, queue
from bot.services.escalations import Reason

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def escalate(url: str, sender: str, *, channel: str = "socketio", minute: float = 0) -> int:
    with clock.frozen(at(minute)), session_scope(url) as session:
        made = escalations.escalate(
            session,
            reason=Reason.REQUEST_HUMAN,
            detail=None,
            owner_id=None,
            channel=channel,
            sender_id=sender,
            message_id=f"{sender}-{minute}",
        )
        return int(made.id)


def rows(url: str, sender: str, *, control: bool = True) -> List[outbox.OutboxEntry]:
    with session_scope(url) as session:
        return outbox.messages(session, sender_id=sender, include_control=control)


def test_claiming_or_assigning_leaves_the_chat_with_the_bot_until_the_explicit_takeover(database_url: str) -> None:
    """Responsibility and the chat are two steps: nobody is silenced without the owner being told."""
    claimed = escalate(database_url, "web-a")
    assigned = escalate(database_url, "web-b", minute=1)
    with clock.frozen(at(3)), session_scope(database_url) as session:
        queue.claim(session, escalation_id=claimed, staff="wang")
        queue.assign(session, escalation_id=assigned, staff="li", by="zhao")
    with session_scope(database_url) as session:
        for sender, escalation_id, staff in (("web-a", claimed, "wang"), ("web-b", assigned, "li")):
            entry = queue.get(session, escalation_id=escalation_id)
            assert (entry.state, entry.assignee, entry.claimed_at) == (EscalationState.PENDING, staff, at(3))
            assert handoff.is_held(session, sender_id=sender) is None  # the bot still answers
            assert handoff.delivery_status(session, sender_id=sender).holder is None
    assert rows(database_url, "web-a") == [] and rows(database_url, "web-b") == []

    with clock.frozen(at(6)), session_scope(database_url) as session:
        taken = handoff.take_over(session, sender_id="web-b", staff="li")
    assert (taken.escalation_id, taken.state) == (assigned, EscalationState.OPEN)
    with session_scope(database_url) as session:
        assert handoff.is_held(session, sender_id="web-b") == "li"
        assert queue.get(session, escalation_id=assigned).claimed_at == at(3)  # li has been responsible since 3
        history = queue.history(session, escalation_id=assigned)
    assert [(entry.action, entry.actor, entry.from_state, entry.to_state) for entry in history] == [
        (models.EscalationAction.ASSIGN, "zhao", EscalationState.PENDING, EscalationState.PENDING),
        (models.EscalationAction.TAKE_OVER, "li", EscalationState.PENDING, EscalationState.OPEN),
    ]
    assert [(row.kind, row.staff) for row in rows(database_url, "web-b")] == [
        (OutboxKind.CONTROL, "li"),
        (OutboxKind.JOINED, "li"),
    ]

    # Assigning the held conversation to someone else moves the hold: still a person, no second notice.
    with clock.frozen(at(8)), session_scope(database_url) as session:
        queue.assign(session, escalation_id=assigned, staff="wang", by="zhao")
        assert handoff.is_held(session, sender_id="web-b") == "wang"
    assert len(rows(database_url, "web-b")) == 2
    with clock.frozen(at(9)), session_scope(database_url) as session:
        handoff.staff_reply(session, sender_id="web-b", staff="wang", text="王先生您好，我来跟进。")
        with pytest.raises(handoff.NotHeld):
            handoff.staff_reply(session, sender_id="web-b", staff="li", text="您好")


def test_take_over_claims_the_pending_escalation_and_tells_the_owner(database_url: str) -> None:
    escalation_id = escalate(database_url, "web-1")
    with clock.frozen(at(5)), session_scope(database_url) as session:
        taken = handoff.take_over(session, sender_id="web-1", staff="wang")
    assert (taken.escalation_id, taken.state, taken.channel) == (escalation_id, EscalationState.OPEN, "socketio")
    assert taken.notice is not None and taken.notice.text == wording.text("handoff.joined")
    with session_scope(database_url) as session:
        assert handoff.is_held(session, sender_id="web-1") == "wang"
        entry = queue.get(session, escalation_id=escalation_id)
        assert entry.assignee == "wang" and entry.claimed_at == at(5)
    sent = rows(database_url, "web-1")
    assert [(row.kind, row.text, row.state) for row in sent] == [
        (OutboxKind.CONTROL, handoff.PAUSE, OutboxState.PENDING),
        (OutboxKind.JOINED, wording.text("handoff.joined"), OutboxState.PENDING),
    ]
    assert all(row.channel == "socketio" and row.staff == "wang" for row in sent)

    # Taking over what one holds changes nothing; another person is refused.
    with session_scope(database_url) as session:
        again = handoff.take_over(session, sender_id="web-1", staff="wang")
    assert again.notice is None and len(rows(database_url, "web-1")) == 2
    with pytest.raises(queue.HeldByAnother), session_scope(database_url) as session:
        handoff.take_over(session, sender_id="web-1", staff="li")


def test_take_over_without_an_escalation_opens_one(database_url: str) -> None:
    with clock.frozen(at(0)), session_scope(database_url) as session:
        session.add(models.WeChatInboundMessage(dedupe_key="msg:1", openid="oOPENID", msg_type="text"))
    with clock.frozen(at(1)), session_scope(database_url) as session:
        taken = handoff.take_over(session, sender_id="oOPENID", staff="wang")
    assert taken.channel == "wechat"
    with session_scope(database_url) as session:
        entry = queue.get(session, escalation_id=taken.escalation_id)
    assert (entry.reason, entry.state, entry.assignee, entry.channel) == (
        "staff_takeover",
        EscalationState.OPEN,
        "wang",
        "wechat",
    )


def test_reply_only_by_the_holder_and_compliance_checked(database_url: str) -> None:
    escalation_id = escalate(database_url, "web-2")
    with session_scope(database_url) as session:
        with pytest.raises(handoff.NotHeld) as nobody:
            handoff.staff_reply(session, sender_id="web-2", staff="wang", text="您好")
    assert nobody.value.holder is None
    with clock.frozen(at(2)), session_scope(database_url) as session:
        handoff.take_over(session, sender_id="web-2", staff="wang")
    with session_scope(database_url) as session:
        with pytest.raises(handoff.NotHeld) as other:
            handoff.staff_reply(session, sender_id="web-2", staff="li", text="您好")
    assert other.value.holder == "wang"
    for bad in ("再不交就停水", "可以给您减 免一部分", "   ", "长" * 1001):
        with pytest.raises(handoff.ReplyRefused) as refused, session_scope(database_url) as session:
            handoff.staff_reply(session, sender_id="web-2", staff="wang", text=bad)
        assert refused.value.reason in ("empty", "too_long", "forbidden")
    with pytest.raises(handoff.ReplyRefused) as refused, session_scope(database_url) as session:
        handoff.staff_reply(session, sender_id="web-2", staff="wang", text="不交就停 水，还要曝光")
    assert (refused.value.reason, refused.value.refusal.category) == ("forbidden", "utilities")
    with session_scope(database_url) as session:
        assert queue.get(session, escalation_id=escalation_id).first_response_at is None

    with clock.frozen(at(7)), session_scope(database_url) as session:
        sent = handoff.staff_reply(session, sender_id="web-2", staff="wang", text="  您好，我是王小明，暖气的事我来跟进。 ")
    assert (sent.kind, sent.text, sent.staff, sent.state) == (
        OutboxKind.TEXT,
        "您好，我是王小明，暖气的事我来跟进。",
        "wang",
        OutboxState.PENDING,
    )
    with clock.frozen(at(9)), session_scope(database_url) as session:
        handoff.staff_reply(session, sender_id="web-2", staff="wang", text="还有别的问题吗？")
    with session_scope(database_url) as session:
        entry = queue.get(session, escalation_id=escalation_id)
    assert entry.first_response_at == at(7) and entry.waiting == dt.timedelta(minutes=7)


def test_hand_back_returns_the_conversation_to_the_bot(database_url: str) -> None:
    escalation_id = escalate(database_url, "web-3")
    with session_scope(database_url) as session:
        with pytest.raises(handoff.NotHeld):
            handoff.hand_back(session, sender_id="web-3", staff="wang")
    with session_scope(database_url) as session:
        handoff.take_over(session, sender_id="web-3", staff="wang")
    with session_scope(database_url) as session:
        with pytest.raises(handoff.NotHeld):
            handoff.hand_back(session, sender_id="web-3", staff="li")
    with session_scope(database_url) as session:
        back = handoff.hand_back(session, sender_id="web-3", staff="wang")
    assert back.state is EscalationState.PENDING and back.escalation_id == escalation_id
    assert back.notice is not None and back.notice.text == wording.text("handoff.left")
    with session_scope(database_url) as session:
        assert handoff.is_held(session, sender_id="web-3") is None
    assert [(row.kind, row.text) for row in rows(database_url, "web-3")][-2:] == [
        (OutboxKind.LEFT, wording.text("handoff.left")),
        (OutboxKind.CONTROL, handoff.RESUME),
    ]
    assert [row.kind for row in rows(database_url, "web-3", control=False)] == [OutboxKind.JOINED, OutboxKind.LEFT]
    # It can be taken over again, by someone else too.
    with session_scope(database_url) as session:
        assert handoff.take_over(session, sender_id="web-3", staff="li").escalation_id == escalation_id


def test_wechat_window_is_48_hours_after_the_last_inbound_message(database_url: str) -> None:
    last = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.timezone.utc)  # stored as the channel stores it
    with session_scope(database_url) as session:
        session.add_all(
            [
                models.WeChatInboundMessage(dedupe_key="msg:a", openid="oA", msg_type="text", received_at=last),
                models.WeChatInboundMessage(
                    dedupe_key="event:oA:1",
                    openid="oA",
                    msg_type="event:unsubscribe",
                    received_at=last + dt.timedelta(hours=10),
                ),
                # Pushed by WeChat after a template message, a menu link, a location report: no window.
                *[
                    models.WeChatInboundMessage(
                        dedupe_key=f"event:oA:{index + 2}",
                        openid="oA",
                        msg_type=f"event:{name}",
                        received_at=last + dt.timedelta(hours=20 + index),
                    )
                    for index, name in enumerate(("TEMPLATESENDJOBFINISH", "VIEW", "LOCATION"))
                ],
            ]
        )
    escalate(database_url, "oA", channel="wechat")
    opened = last + dt.timedelta(hours=47, minutes=59)
    with clock.frozen(opened.astimezone(SHANGHAI)), session_scope(database_url) as session:
        status = handoff.delivery_status(session, sender_id="oA")
        assert handoff.wechat_window_open(session, openid="oA")
    assert (status.channel, status.can_deliver, status.window_open) == ("wechat", True, True)
    assert status.last_inbound_at == last and status.window_closes_at == last + dt.timedelta(hours=48)
    assert status.alternatives == [] and status.blocked is None
    with clock.frozen((last + dt.timedelta(hours=48, minutes=1)).astimezone(SHANGHAI)), session_scope(
        database_url
    ) as session:
        status = handoff.delivery_status(session, sender_id="oA")
        assert not handoff.wechat_window_open(session, openid="oA")
    assert (status.can_deliver, status.window_open) == (False, False)
    assert {alternative.value for alternative in status.alternatives} == {"phone_call", "wait_for_owner", "next_visit"}
    assert status.blocked is handoff.Blocked.WECHAT_WINDOW_CLOSED

    escalate(database_url, "web-4")
    with session_scope(database_url) as session:
        web = handoff.delivery_status(session, sender_id="web-4")
        unknown = handoff.delivery_status(session, sender_id="nobody")
    assert (web.channel, web.can_deliver, web.window_open) == ("socketio", True, None)
    assert (unknown.channel, unknown.can_deliver, unknown.blocked) == (None, False, handoff.Blocked.UNKNOWN_CHANNEL)


def test_outbox_claims_each_row_once_and_finishes_it(database_url: str) -> None:
    with session_scope(database_url) as session:
        first = outbox.enqueue(session, sender_id="s1", channel="socketio", kind="text", text="一", staff="wang")
        outbox.enqueue(session, sender_id="s2", channel="wechat", kind="text", text="二", staff="wang")
        outbox.enqueue(session, sender_id="s1", channel="socketio", kind="control", text="pause")
    with session_scope(database_url) as session:
        assert outbox.claim(session, worker="a", sender_ids=[]) == []
        claimed = outbox.claim(session, worker="a", channels=["socketio"], sender_ids=["s1"], kinds=["text"])
    assert [row.id for row in claimed] == [first.id]
    assert claimed[0].state is OutboxState.DELIVERING and claimed[0].attempts == 1
    with session_scope(database_url) as session:
        assert outbox.claim(session, worker="b", channels=["socketio"], kinds=["text"]) == []
        assert not outbox.mark_delivered(session, message_id=first.id, worker="b")
        assert outbox.mark_delivered(session, message_id=first.id, worker="a")
        assert not outbox.mark_delivered(session, message_id=first.id, worker="a")
        wechat = outbox.claim(session, worker="b", channels=["wechat"])
        assert outbox.mark_failed(session, message_id=wechat[0].id, worker="b", reason="window closed")
        control = outbox.claim(session, worker="c", kinds=[OutboxKind.CONTROL])
        assert outbox.release(session, message_id=control[0].id, worker="c")
    with session_scope(database_url) as session:
        assert outbox.get(session, message_id=first.id).state is OutboxState.DELIVERED  # type: ignore[union-attr]
        failed = outbox.get(session, message_id=wechat[0].id)
        assert failed is not None and (failed.state, failed.failure) == (OutboxState.FAILED, "window closed")
        assert outbox.waiting_senders(session, channel="socketio") == ["s1"]


def test_a_dead_claimants_rows_are_claimable_after_the_lease(database_url: str) -> None:
    with clock.frozen(at(0)), session_scope(database_url) as session:
        row = outbox.enqueue(session, sender_id="s1", channel="socketio", kind="text", text="一")
    with clock.frozen(at(0)), session_scope(database_url) as session:
        assert len(outbox.claim(session, worker="dead")) == 1
    with clock.frozen(at(0.5)), session_scope(database_url) as session:
        assert outbox.claim(session, worker="alive") == []
    with clock.frozen(at(2)), session_scope(database_url) as session:
        again = outbox.claim(session, worker="alive")
        assert [(entry.id, entry.attempts) for entry in again] == [(row.id, 2)]
        assert not outbox.mark_delivered(session, message_id=row.id, worker="dead")
        assert outbox.mark_delivered(session, message_id=row.id, worker="alive")
    with session_scope(database_url) as session:
        assert session.execute(select(models.OutboxMessage.claimed_by)).scalar_one() == "alive"


def test_concurrent_claims_on_postgresql_never_share_a_row(postgres_url: str) -> None:
    import threading

    from bot.db import migrate

    migrate.upgrade(postgres_url)
    with session_scope(postgres_url) as session:
        session.execute(models.OutboxMessage.__table__.delete())
        for number in range(60):
            outbox.enqueue(session, sender_id=f"s{number % 3}", channel="wechat", kind="text", text=str(number))
    start = threading.Barrier(4)
    claimed: dict[str, List[int]] = {}
    errors: List[BaseException] = []

    def worker(name: str) -> None:
        try:
            start.wait()
            mine: List[int] = []
            while True:
                with session_scope(postgres_url) as session:
                    batch = outbox.claim(session, worker=name, limit=7)
                    # hold the transaction (and the row locks) a moment, as a slow claimant would
                    threading.Event().wait(0.01)
                if not batch:
                    break
                mine.extend(row.id for row in batch)
            claimed[name] = mine
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    every = [row_id for rows_of in claimed.values() for row_id in rows_of]
    assert len(every) == 60 and len(set(every)) == 60
    assert sum(1 for rows_of in claimed.values() if rows_of) >= 2  # they really ran side by side
    with session_scope(postgres_url) as session:
        session.execute(models.OutboxMessage.__table__.delete())


def test_scanning_a_code_or_a_pushing_menu_opens_the_wechat_window_a_menu_link_does_not(database_url: str) -> None:
    start = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
    with session_scope(database_url) as session:
        for index, kind in enumerate(("event:VIEW", "event:SCAN", "event:CLICK")):
            session.add(
                models.WeChatInboundMessage(
                    dedupe_key=f"event:oB:{index}", openid=f"o{kind[6:]}", msg_type=kind,
                    received_at=start + dt.timedelta(hours=index),
                )
            )  # fmt: skip
    with clock.frozen(start + dt.timedelta(hours=3)), session_scope(database_url) as session:
        opened = {openid: handoff.wechat_window_open(session, openid=openid) for openid in ("oVIEW", "oSCAN", "oCLICK")}
    assert opened == {"oVIEW": False, "oSCAN": True, "oCLICK": True}
