"""The escalation queue (bot/services/queue.py) on SQLite and PostgreSQL: every transition, its stored fields,
times and history, every refusal, and every filter and order of the list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from sqlalchemy import func, select

from bot import clock
from bot.db import models
from bot.db.models import EscalationAction as Action
from bot.db.models import EscalationState as State
from bot.db.session import session_scope
from bot.owners import importer
from bot.services import escalations, queue
from bot.services.escalations import Reason

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


OUTCOME = "已电话回访：暖气已修好，业主同意月底前缴清"


def stored_outcome(url: str, escalation_id: int) -> Any:
    with session_scope(url) as session:
        return session.get(models.Escalation, escalation_id).outcome


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def estate(database_url: str) -> str:
    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
    return database_url


def owner_id(url: str, name: str) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(models.Owner.id).where(models.Owner.name == name)).scalar_one())


def escalate(
    url: str,
    *,
    minute: float,
    sender: str,
    reason: Reason = Reason.REQUEST_HUMAN,
    channel: Optional[str] = "socketio",
    owner: Optional[int] = None,
) -> int:
    with clock.frozen(at(minute)), session_scope(url) as session:
        made = escalations.escalate(
            session,
            reason=reason,
            detail=None,
            owner_id=owner,
            channel=channel,
            sender_id=sender,
            message_id=f"{sender}-{minute}-{reason.value}",
        )
        return int(made.id)


def act(url: str, minute: float, operation: Any, **arguments: Any) -> queue.QueueEntry:
    with clock.frozen(at(minute)), session_scope(url) as session:
        return operation(session, **arguments)


def stored(url: str, escalation_id: int) -> Dict[str, Any]:
    """The row as stored, read in a fresh session; times in the estate's zone."""
    with session_scope(url) as session:
        row = session.get(models.Escalation, escalation_id)
        fields = {
            "state": row.state,
            "assignee": row.assignee,
            "claimed_at": row.claimed_at,
            "first_response_at": row.first_response_at,
            "resolved_at": row.resolved_at,
            "updated_at": row.updated_at,
        }
    return {
        name: queue._maybe_aware(value) if name.endswith("_at") else value for name, value in fields.items()
    }


def events(url: str, escalation_id: int) -> List[tuple]:
    with session_scope(url) as session:
        return [
            (entry.at, entry.action, entry.actor, entry.assignee, entry.from_state, entry.to_state)
            for entry in queue.history(session, escalation_id=escalation_id)
        ]


def event_count(url: str) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(func.count()).select_from(models.EscalationEvent)).scalar_one())


# --- transitions ----------------------------------------------------------------------------------------


def test_a_new_escalation_is_pending_with_the_bot_and_nothing_else_set(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    assert stored(estate, escalation) == {
        "state": State.PENDING,
        "assignee": None,
        "claimed_at": None,
        "first_response_at": None,
        "resolved_at": None,
        "updated_at": at(0),
    }
    assert events(estate, escalation) == []


def test_claim_makes_the_claimant_responsible_and_leaves_the_chat_with_the_bot(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")

    entry = act(estate, 5, queue.claim, escalation_id=escalation, staff="zhang")

    assert stored(estate, escalation) == {
        "state": State.PENDING,
        "assignee": "zhang",
        "claimed_at": at(5),
        "first_response_at": None,
        "resolved_at": None,
        "updated_at": at(5),
    }
    assert (entry.state, entry.assignee, entry.claimed_at) == (State.PENDING, "zhang", at(5))
    assert events(estate, escalation) == [(at(5), Action.CLAIM, "zhang", "zhang", State.PENDING, State.PENDING)]
    with session_scope(estate) as session:
        assert queue.holder(session, sender_id="s1") is None  # the bot still answers the owner


def test_take_over_makes_the_assignee_hold_the_chat_and_keeps_the_claim_time(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.claim, escalation_id=escalation, staff="zhang")

    entry = act(estate, 8, queue.take_over, escalation_id=escalation, staff="zhang")
    act(estate, 9, queue.take_over, escalation_id=escalation, staff="zhang")  # again: nothing changes

    assert stored(estate, escalation) == {
        "state": State.OPEN,
        "assignee": "zhang",
        "claimed_at": at(5),
        "first_response_at": None,
        "resolved_at": None,
        "updated_at": at(8),
    }
    assert entry.state is State.OPEN
    assert events(estate, escalation)[-1] == (at(8), Action.TAKE_OVER, "zhang", "zhang", State.PENDING, State.OPEN)
    assert event_count(estate) == 2
    with session_scope(estate) as session:
        assert queue.holder(session, sender_id="s1") == "zhang"


def test_taking_over_what_a_colleague_claimed_makes_the_taker_responsible(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.claim, escalation_id=escalation, staff="zhang")

    act(estate, 7, queue.take_over, escalation_id=escalation, staff="li")

    row = stored(estate, escalation)
    assert (row["state"], row["assignee"], row["claimed_at"]) == (State.OPEN, "li", at(7))
    with pytest.raises(queue.HeldByAnother) as refused:  # but nobody takes what a person holds
        act(estate, 8, queue.take_over, escalation_id=escalation, staff="zhang")
    assert (refused.value.holder, refused.value.action) == ("li", Action.TAKE_OVER)


def test_claiming_what_one_holds_again_changes_nothing(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")

    act(estate, 9, queue.claim, escalation_id=escalation, staff="zhang")

    assert stored(estate, escalation)["claimed_at"] == at(5)
    assert stored(estate, escalation)["updated_at"] == at(5)
    assert event_count(estate) == 1


def test_claiming_what_another_person_holds_is_refused_unless_reassigning(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")

    with pytest.raises(queue.HeldByAnother) as refused:
        act(estate, 7, queue.claim, escalation_id=escalation, staff="li")
    assert (refused.value.holder, refused.value.action) == ("zhang", Action.CLAIM)
    assert stored(estate, escalation)["assignee"] == "zhang"

    act(estate, 8, queue.claim, escalation_id=escalation, staff="li", reassign=True)

    assert stored(estate, escalation) == {
        "state": State.OPEN,
        "assignee": "li",
        "claimed_at": at(8),
        "first_response_at": None,
        "resolved_at": None,
        "updated_at": at(8),
    }
    assert events(estate, escalation)[-1] == (at(8), Action.CLAIM, "li", "li", State.OPEN, State.OPEN)


def test_claiming_a_pending_case_a_colleague_claimed_is_refused_and_changes_nothing(estate: str) -> None:
    first = escalate(estate, minute=0, sender="s1", reason=Reason.FALLBACK)
    second = escalate(estate, minute=2, sender="s1", reason=Reason.REQUEST_HUMAN)
    act(estate, 5, queue.claim, escalation_id=first, staff="zhang")

    for escalation in (first, second):  # the conversation's other escalation is zhang's too
        with pytest.raises(queue.ClaimedByAnother) as refused:
            act(estate, 7, queue.claim, escalation_id=escalation, staff="li")
        assert (refused.value.assignee, refused.value.action, refused.value.escalation_id) == (
            "zhang",
            Action.CLAIM,
            escalation,
        )
        assert stored(estate, escalation) == {
            "state": State.PENDING,
            "assignee": "zhang",
            "claimed_at": at(5),
            "first_response_at": None,
            "resolved_at": None,
            "updated_at": at(5),
        }
    assert event_count(estate) == 2  # zhang's two claims, nothing of li's
    act(estate, 8, queue.claim, escalation_id=first, staff="zhang")  # claiming one's own again: no change
    assert event_count(estate) == 2

    act(estate, 9, queue.assign, escalation_id=first, staff="li", by="boss")  # a supervisor reassigns
    assert (stored(estate, second)["assignee"], stored(estate, second)["claimed_at"]) == ("li", at(9))
    assert events(estate, first)[-1] == (at(9), Action.ASSIGN, "boss", "li", State.PENDING, State.PENDING)


def test_assign_names_the_assignee_of_a_pending_one_and_the_bot_keeps_the_chat(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")

    act(estate, 3, queue.assign, escalation_id=escalation, staff="zhang", by="boss")

    assert stored(estate, escalation) == {
        "state": State.PENDING,
        "assignee": "zhang",
        "claimed_at": at(3),
        "first_response_at": None,
        "resolved_at": None,
        "updated_at": at(3),
    }
    assert events(estate, escalation) == [(at(3), Action.ASSIGN, "boss", "zhang", State.PENDING, State.PENDING)]
    with session_scope(estate) as session:
        assert queue.holder(session, sender_id="s1") is None


def test_assign_takes_it_from_the_person_holding_it(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 3, queue.take_over, escalation_id=escalation, staff="zhang")

    act(estate, 6, queue.assign, escalation_id=escalation, staff="li", by="boss")

    assert (stored(estate, escalation)["assignee"], stored(estate, escalation)["claimed_at"]) == ("li", at(6))
    assert events(estate, escalation)[-1] == (at(6), Action.ASSIGN, "boss", "li", State.OPEN, State.OPEN)


def test_the_first_staff_reply_sets_first_response_at_once(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")

    first = act(estate, 12, queue.record_staff_reply, escalation_id=escalation, staff="zhang")
    act(estate, 20, queue.record_staff_reply, escalation_id=escalation, staff="zhang")

    assert stored(estate, escalation) == {
        "state": State.OPEN,
        "assignee": "zhang",
        "claimed_at": at(5),
        "first_response_at": at(12),
        "resolved_at": None,
        "updated_at": at(20),
    }
    assert first.waiting == dt.timedelta(minutes=12)
    assert [event[:2] for event in events(estate, escalation)] == [
        (at(5), Action.TAKE_OVER),
        (at(12), Action.REPLY),
        (at(20), Action.REPLY),
    ]


def test_a_reply_needs_the_conversation_held_by_the_replier(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    with pytest.raises(queue.InvalidTransition) as pending:
        act(estate, 2, queue.record_staff_reply, escalation_id=escalation, staff="zhang")
    assert (pending.value.state, pending.value.action) == (State.PENDING, Action.REPLY)

    act(estate, 3, queue.take_over, escalation_id=escalation, staff="zhang")
    with pytest.raises(queue.HeldByAnother):
        act(estate, 4, queue.record_staff_reply, escalation_id=escalation, staff="li")

    assert stored(estate, escalation)["first_response_at"] is None
    assert event_count(estate) == 1


def test_hand_back_returns_it_to_the_bot_and_keeps_assignee_times_and_history(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")
    act(estate, 12, queue.record_staff_reply, escalation_id=escalation, staff="zhang")

    entry = act(estate, 30, queue.hand_back, escalation_id=escalation, staff="zhang")

    assert stored(estate, escalation) == {
        "state": State.PENDING,
        "assignee": "zhang",
        "claimed_at": at(5),
        "first_response_at": at(12),
        "resolved_at": None,
        "updated_at": at(30),
    }
    assert entry.state is State.PENDING
    assert events(estate, escalation)[-1] == (
        at(30),
        Action.HAND_BACK,
        "zhang",
        "zhang",
        State.OPEN,
        State.PENDING,
    )
    with session_scope(estate) as session:
        assert queue.holder(session, sender_id="s1") is None


def test_after_a_hand_back_a_reassigned_colleague_takes_it_over_and_first_response_stays(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")
    act(estate, 12, queue.record_staff_reply, escalation_id=escalation, staff="zhang")
    act(estate, 30, queue.hand_back, escalation_id=escalation, staff="zhang")

    # zhang stays responsible after handing the chat back: li is refused a claim, a supervisor reassigns.
    with pytest.raises(queue.ClaimedByAnother) as refused:
        act(estate, 38, queue.claim, escalation_id=escalation, staff="li")
    assert refused.value.assignee == "zhang"
    act(estate, 40, queue.assign, escalation_id=escalation, staff="li", by="boss")
    assert (stored(estate, escalation)["state"], stored(estate, escalation)["assignee"]) == (State.PENDING, "li")
    act(estate, 42, queue.take_over, escalation_id=escalation, staff="li")
    act(estate, 45, queue.record_staff_reply, escalation_id=escalation, staff="li")

    row = stored(estate, escalation)
    assert (row["state"], row["assignee"], row["claimed_at"], row["first_response_at"]) == (
        State.OPEN,
        "li",
        at(40),
        at(12),
    )


def test_hand_back_is_refused_when_pending_or_held_by_another(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    with pytest.raises(queue.InvalidTransition):
        act(estate, 1, queue.hand_back, escalation_id=escalation, staff="zhang")
    act(estate, 2, queue.take_over, escalation_id=escalation, staff="zhang")
    with pytest.raises(queue.HeldByAnother):
        act(estate, 3, queue.hand_back, escalation_id=escalation, staff="li")
    assert (stored(estate, escalation)["state"], stored(estate, escalation)["updated_at"]) == (
        State.OPEN,
        at(2),
    )


def test_resolve_by_the_holder_records_the_resolution_time(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")
    act(estate, 12, queue.record_staff_reply, escalation_id=escalation, staff="zhang")

    entry = act(estate, 50, queue.resolve, escalation_id=escalation, staff="zhang", outcome=OUTCOME)

    assert stored(estate, escalation) == {
        "state": State.RESOLVED,
        "assignee": "zhang",
        "claimed_at": at(5),
        "first_response_at": at(12),
        "resolved_at": at(50),
        "updated_at": at(50),
    }
    assert (entry.resolved_at, entry.waiting, entry.outcome) == (at(50), dt.timedelta(minutes=12), OUTCOME)
    assert stored_outcome(estate, escalation) == OUTCOME
    assert events(estate, escalation)[-1] == (
        at(50),
        Action.RESOLVE,
        "zhang",
        "zhang",
        State.OPEN,
        State.RESOLVED,
    )


def test_a_pending_one_settled_elsewhere_may_be_resolved_and_waited_until_then(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")

    entry = act(estate, 25, queue.resolve, escalation_id=escalation, staff="li", outcome=OUTCOME)

    assert stored(estate, escalation) == {
        "state": State.RESOLVED,
        "assignee": None,
        "claimed_at": None,
        "first_response_at": None,
        "resolved_at": at(25),
        "updated_at": at(25),
    }
    assert entry.waiting == dt.timedelta(minutes=25)
    assert events(estate, escalation) == [(at(25), Action.RESOLVE, "li", None, State.PENDING, State.RESOLVED)]


@pytest.mark.parametrize(
    "operation, arguments",
    [
        (queue.claim, {"staff": "zhang"}),
        (queue.claim, {"staff": "zhang", "reassign": True}),
        (queue.assign, {"staff": "zhang", "by": "boss"}),
        (queue.take_over, {"staff": "zhang"}),
        (queue.record_staff_reply, {"staff": "zhang"}),
        (queue.hand_back, {"staff": "zhang"}),
        (queue.resolve, {"staff": "zhang", "outcome": "已处理"}),
    ],
)
def test_nothing_but_reading_is_allowed_on_a_resolved_escalation(
    estate: str, operation: Any, arguments: dict
) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")
    act(estate, 9, queue.resolve, escalation_id=escalation, staff="zhang", outcome=OUTCOME)
    before = stored(estate, escalation)

    with pytest.raises(queue.InvalidTransition) as refused:
        act(estate, 20, operation, escalation_id=escalation, **arguments)

    assert refused.value.state is State.RESOLVED
    assert stored(estate, escalation) == before
    assert event_count(estate) == 2


def test_resolving_what_another_person_holds_is_refused(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")
    with pytest.raises(queue.HeldByAnother) as refused:
        act(estate, 6, queue.resolve, escalation_id=escalation, staff="li", outcome=OUTCOME)
    assert refused.value.holder == "zhang"
    assert stored(estate, escalation)["state"] is State.OPEN


def test_unknown_escalations_and_blank_staff_names_are_refused(estate: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    with pytest.raises(queue.EscalationNotFound):
        act(estate, 1, queue.take_over, escalation_id=escalation + 1000, staff="zhang")
    with session_scope(estate) as session, pytest.raises(queue.EscalationNotFound):
        queue.get(session, escalation_id=escalation + 1000)
    with pytest.raises(ValueError):
        act(estate, 1, queue.take_over, escalation_id=escalation, staff="  ")
    with pytest.raises(ValueError):
        act(estate, 1, queue.assign, escalation_id=escalation, staff="zhang", by="")
    assert stored(estate, escalation)["state"] is State.PENDING


# --- one conversation, several escalations ---------------------------------------------------------------


def test_taking_over_one_escalation_takes_the_whole_conversation_and_hand_back_returns_it(estate: str) -> None:
    first = escalate(estate, minute=0, sender="s1", reason=Reason.FALLBACK)
    second = escalate(estate, minute=4, sender="s1", reason=Reason.REQUEST_HUMAN)
    other_conversation = escalate(estate, minute=5, sender="s2")

    act(estate, 10, queue.take_over, escalation_id=second, staff="zhang")

    for escalation in (first, second):
        assert (stored(estate, escalation)["state"], stored(estate, escalation)["assignee"]) == (
            State.OPEN,
            "zhang",
        )
    assert stored(estate, other_conversation)["state"] is State.PENDING
    with session_scope(estate) as session:
        assert queue.holder(session, sender_id="s1") == "zhang"
        assert queue.holder(session, sender_id="s2") is None

    with pytest.raises(queue.HeldByAnother):
        act(estate, 11, queue.take_over, escalation_id=first, staff="li")

    act(estate, 15, queue.record_staff_reply, escalation_id=second, staff="zhang")
    assert stored(estate, first)["first_response_at"] == at(15)

    act(estate, 20, queue.hand_back, escalation_id=first, staff="zhang")
    for escalation in (first, second):
        assert (stored(estate, escalation)["state"], stored(estate, escalation)["updated_at"]) == (
            State.PENDING,
            at(20),
        )


def test_resolving_one_escalation_leaves_the_person_holding_the_rest(estate: str) -> None:
    first = escalate(estate, minute=0, sender="s1", reason=Reason.FALLBACK)
    second = escalate(estate, minute=4, sender="s1", reason=Reason.REQUEST_HUMAN)
    act(estate, 10, queue.take_over, escalation_id=first, staff="zhang")

    act(estate, 12, queue.resolve, escalation_id=first, staff="zhang", outcome=OUTCOME)

    assert stored(estate, first)["state"] is State.RESOLVED
    assert stored(estate, second)["state"] is State.OPEN
    with session_scope(estate) as session:
        assert queue.holder(session, sender_id="s1") == "zhang"
    act(estate, 14, queue.hand_back, escalation_id=second, staff="zhang")
    assert stored(estate, first)["state"] is State.RESOLVED


def test_reassigning_one_escalation_moves_the_whole_conversation(estate: str) -> None:
    first = escalate(estate, minute=0, sender="s1", reason=Reason.FALLBACK)
    second = escalate(estate, minute=4, sender="s1", reason=Reason.REQUEST_HUMAN)
    act(estate, 10, queue.take_over, escalation_id=first, staff="zhang")

    act(estate, 12, queue.assign, escalation_id=second, staff="li", by="boss")

    for escalation in (first, second):
        row = stored(estate, escalation)
        assert (row["state"], row["assignee"], row["claimed_at"]) == (State.OPEN, "li", at(12))


# --- the list -------------------------------------------------------------------------------------------


@pytest.fixture
def busy_queue(estate: str) -> Dict[str, int]:
    """Four escalations on three channels, two owners, every state; the clock then stands at minute 60."""
    wang = owner_id(estate, "王建国")
    zhang_wei = owner_id(estate, "张伟")
    made = {
        "fallback_web": escalate(estate, minute=0, sender="web-1", reason=Reason.FALLBACK, owner=wang),
        "human_wechat": escalate(
            estate, minute=10, sender="wx-1", reason=Reason.REQUEST_HUMAN, channel="wechat"
        ),
        "threat_wechat": escalate(
            estate,
            minute=20,
            sender="wx-2",
            reason=Reason.THREATEN_ESCALATION,
            channel="wechat",
            owner=zhang_wei,
        ),
        "locked_rest": escalate(
            estate, minute=30, sender="rest-1", reason=Reason.IDENTITY_LOCKED, channel="rest"
        ),
    }
    act(estate, 25, queue.take_over, escalation_id=made["threat_wechat"], staff="zhang")
    act(estate, 35, queue.record_staff_reply, escalation_id=made["threat_wechat"], staff="zhang")
    act(estate, 40, queue.take_over, escalation_id=made["locked_rest"], staff="li")
    act(estate, 45, queue.resolve, escalation_id=made["locked_rest"], staff="li", outcome=OUTCOME)
    return made


def listed(url: str, **filters: Any) -> List[queue.QueueEntry]:
    with clock.frozen(at(60)), session_scope(url) as session:
        return queue.list_escalations(session, **filters)


def ids(entries: List[queue.QueueEntry]) -> List[int]:
    return [entry.id for entry in entries]


def test_the_list_shows_reason_unit_channel_waiting_state_and_assignee(
    estate: str, busy_queue: Dict[str, int]
) -> None:
    entries = {entry.id: entry for entry in listed(estate)}
    web = entries[busy_queue["fallback_web"]]
    assert (web.reason, web.unit, web.channel, web.state, web.assignee, web.sender_id) == (
        "fallback",
        "3-2-501",
        "socketio",
        State.PENDING,
        None,
        "web-1",
    )
    assert (web.created_at, web.waiting, web.number[:10]) == (at(0), dt.timedelta(minutes=60), "RG20261124")
    assert web.created_at.tzinfo is not None and web.created_at.utcoffset() == dt.timedelta(hours=8)
    threat = entries[busy_queue["threat_wechat"]]
    assert (threat.unit, threat.state, threat.assignee, threat.claimed_at, threat.first_response_at) == (
        "5-1203",
        State.OPEN,
        "zhang",
        at(25),
        at(35),
    )
    assert threat.waiting == dt.timedelta(minutes=15)
    rest = entries[busy_queue["locked_rest"]]
    assert (rest.unit, rest.state, rest.resolved_at, rest.waiting) == (
        None,
        State.RESOLVED,
        at(45),
        dt.timedelta(minutes=15),
    )
    assert entries[busy_queue["human_wechat"]].waiting == dt.timedelta(minutes=50)


def test_sorted_waiting_longest_first_by_default(estate: str, busy_queue: Dict[str, int]) -> None:
    # waiting: fallback_web 60, human_wechat 50, threat_wechat 15 (answered), locked_rest 15 (resolved)
    assert ids(listed(estate)) == [
        busy_queue["fallback_web"],
        busy_queue["human_wechat"],
        busy_queue["threat_wechat"],
        busy_queue["locked_rest"],
    ]


def test_sorted_newest_first(estate: str, busy_queue: Dict[str, int]) -> None:
    assert ids(listed(estate, sort="newest")) == [
        busy_queue["locked_rest"],
        busy_queue["threat_wechat"],
        busy_queue["human_wechat"],
        busy_queue["fallback_web"],
    ]


def test_sorted_by_reason(estate: str, busy_queue: Dict[str, int]) -> None:
    assert [entry.reason for entry in listed(estate, sort=queue.Sort.REASON)] == [
        "fallback",
        "identity_locked",
        "request_human",
        "threaten_escalation",
    ]


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"state": "pending"}, ["fallback_web", "human_wechat"]),
        ({"state": State.OPEN}, ["threat_wechat"]),
        ({"state": ["open", "resolved"]}, ["threat_wechat", "locked_rest"]),
        ({"reason": "request_human"}, ["human_wechat"]),
        ({"channel": "wechat"}, ["human_wechat", "threat_wechat"]),
        ({"assignee": "li"}, ["locked_rest"]),
        ({"sender_id": "web-1"}, ["fallback_web"]),
        ({"channel": "wechat", "state": "pending"}, ["human_wechat"]),
        ({"channel": "wechat", "assignee": "li"}, []),
    ],
)
def test_filters(estate: str, busy_queue: Dict[str, int], filters: dict, expected: List[str]) -> None:
    assert ids(listed(estate, **filters)) == [busy_queue[name] for name in expected]


def test_filter_by_owner(estate: str, busy_queue: Dict[str, int]) -> None:
    assert ids(listed(estate, owner_id=owner_id(estate, "张伟"))) == [busy_queue["threat_wechat"]]


def test_unknown_state_or_sort_is_refused(estate: str, busy_queue: Dict[str, int]) -> None:
    with pytest.raises(ValueError):
        listed(estate, state="closed")
    with pytest.raises(ValueError):
        listed(estate, sort="oldest")


def test_get_matches_the_list_entry(estate: str, busy_queue: Dict[str, int]) -> None:
    with clock.frozen(at(60)), session_scope(estate) as session:
        entry = queue.get(session, escalation_id=busy_queue["threat_wechat"])
    assert entry == next(item for item in listed(estate) if item.id == busy_queue["threat_wechat"])


# --- two people at once ---------------------------------------------------------------------------------


def test_two_people_taking_over_at_once_one_wins_and_the_other_is_told_who(estate: str) -> None:
    """Both read the escalation as pending before either writes; the conversation lock lets one through."""
    import threading

    escalation = escalate(estate, minute=0, sender="s1")
    # PostgreSQL lets both read before either writes; SQLite's write transactions (BEGIN IMMEDIATE) queue
    # from the first read, so there the second simply reads the first one's claim.
    both_read = threading.Barrier(1 if estate.startswith("sqlite") else 2, timeout=20)
    original = queue._load
    outcomes: Dict[str, Any] = {}

    def load_then_wait(session: Any, escalation_id: int) -> Any:
        found = original(session, escalation_id)
        try:
            both_read.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    def claimant(name: str) -> None:
        try:
            outcomes[name] = act(estate, 5, queue.take_over, escalation_id=escalation, staff=name).assignee
        except BaseException as error:  # noqa: BLE001 - checked below
            outcomes[name] = error

    queue._load = load_then_wait  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=claimant, args=(name,)) for name in ("zhang", "li")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        queue._load = original  # type: ignore[assignment]

    winner = stored(estate, escalation)["assignee"]
    loser = "li" if winner == "zhang" else "zhang"
    assert outcomes[winner] == winner
    assert isinstance(outcomes[loser], queue.HeldByAnother) and outcomes[loser].holder == winner
    assert event_count(estate) == 1


@pytest.mark.parametrize("outcome", ["", "   ", "结" * 501])
def test_resolving_needs_a_note_of_the_outcome_and_changes_nothing_without_one(estate: str, outcome: str) -> None:
    escalation = escalate(estate, minute=0, sender="s1")
    act(estate, 5, queue.take_over, escalation_id=escalation, staff="zhang")
    before, count = stored(estate, escalation), event_count(estate)
    with pytest.raises(queue.OutcomeRequired):
        act(estate, 9, queue.resolve, escalation_id=escalation, staff="zhang", outcome=outcome)
    assert stored(estate, escalation) == before and event_count(estate) == count
    assert stored_outcome(estate, escalation) is None
    entry = act(estate, 10, queue.resolve, escalation_id=escalation, staff="zhang", outcome=f"  {OUTCOME}  ")
    assert (entry.state, entry.outcome, stored_outcome(estate, escalation)) == (State.RESOLVED, OUTCOME, OUTCOME)
