"""The daily review service (bot/services/review.py) on SQLite and PostgreSQL: exact counts on a frozen clock,
with owners' messages written by Rasa's own SQLTrackerStore and records made through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from sqlalchemy import select

from bot import clock
from bot.db import models
from bot.db.models import PromiseStatus
from bot.db.session import session_scope
from bot.owners import identity, importer
from bot.services import escalations, owner_requests, review
from bot.services.escalations import Reason
from bot.services.review import Durations, EscalationNote, Objection, PromiseNote
from tests.unit.test_transcripts import domain, save, tracker_store  # noqa: F401  (fixtures)

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
TODAY = NOW.date()
YESTERDAY = TODAY - dt.timedelta(days=1)


def local(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


# (sender, moment, text, intent, channel): what owners said, in the order each conversation said it.
MESSAGES = [
    ("web-1", local(11, 10, 10), "物业费太贵了", "objection_fee_too_high", "socketio"),  # before the range
    ("web-1", local(11, 23, 10), "你们服务太差了", "objection_poor_service", "socketio"),
    ("web-1", local(11, 24, 9, 0), "物业费太贵了", "objection_fee_too_high", "socketio"),
    ("web-1", local(11, 24, 9, 1), "暖气也不热", "objection_heating", "socketio"),
    ("web-1", local(11, 24, 9, 2), "好的", "affirm", "socketio"),  # not an objection
    ("web-1", local(11, 25, 0, 10), "暖气还是不热", "objection_heating", "socketio"),  # after the range
    ("wx-zhang", local(11, 24, 0, 30), "下个月再交", "objection_pay_later", "wechat"),  # 16:30 UTC the day before
    ("anon-1", local(11, 24, 23, 30), "收费太贵", "objection_fee_too_high", "socketio"),
]


def write_messages(store: Any, domain: Any) -> None:  # noqa: F811
    from rasa.shared.core.events import ActionExecuted, UserUttered

    by_sender: Dict[str, List[Any]] = {}
    for number, (sender, moment, text, intent, channel) in enumerate(MESSAGES):
        by_sender.setdefault(sender, []).extend(
            [
                UserUttered(
                    text,
                    intent={"name": intent, "confidence": 0.9},
                    input_channel=channel,
                    message_id=f"m-{number}",
                    timestamp=moment.timestamp(),
                ),
                ActionExecuted("action_listen", timestamp=moment.timestamp() + 1),
            ]
        )
    for sender, events in by_sender.items():
        save(store, domain, sender, events)


def make_records(url: str) -> Dict[str, Any]:
    """Promises, repairs and escalations in and around the range; returns their numbers and the owners."""
    ids: Dict[str, Any] = {}
    with session_scope(url) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(models.Owner).where(models.Owner.name == "王建国")).scalar_one()
        zhang = session.execute(select(models.Owner).where(models.Owner.name == "张伟")).scalar_one()
        ids.update(wang=int(wang.id), zhang=int(zhang.id), wang_unit=str(wang.unit.code), zhang_unit=str(zhang.unit.code))
        identity.link_conversation(session, channel="socketio", sender_id="web-1", owner_id=wang.id)

    def make(moment: dt.datetime, model: Any, message_id: str, sender: str, **fields: Any) -> str:
        with clock.frozen(moment), session_scope(url) as session:
            return str(owner_requests.create(session, model, message_id=message_id, sender_id=sender, **fields).number)

    def promise(moment: dt.datetime, key: str, sender: str, owner: int, amount: str, due: dt.date, status: PromiseStatus) -> None:
        ids[key] = make(moment, models.PaymentPromise, key, sender, owner_id=owner, amount=Decimal(amount), due_date=due)
        with session_scope(url) as session:
            row = session.execute(select(models.PaymentPromise).where(models.PaymentPromise.number == ids[key])).scalar_one()
            row.status = status

    # Oldest first: owner_requests.create returns an identical record the same conversation made since.
    promise(local(11, 1, 15), "p_old", "web-1", ids["wang"], "100.00", dt.date(2026, 11, 3), PromiseStatus.KEPT)
    promise(local(11, 20, 15), "p_broken", "web-1", ids["wang"], "500.00", dt.date(2026, 11, 22), PromiseStatus.BROKEN)
    promise(local(11, 24, 8, 0), "p_zhang", "wx-zhang", ids["zhang"], "3600.00", dt.date(2026, 12, 5), PromiseStatus.OPEN)
    promise(local(11, 24, 9, 5), "p_today", "web-1", ids["wang"], "800.00", dt.date(2026, 11, 30), PromiseStatus.KEPT)

    def repair(moment: dt.datetime, key: str, item: str) -> None:
        make(moment, models.RepairOrder, key, "web-1", owner_id=ids["wang"], item=item, location="客厅",
             description=f"{item}坏了", preferred_time="周六上午")  # fmt: skip

    repair(local(11, 1, 9), "r-4", "暖气")  # before the range
    repair(local(11, 22, 9), "r-2", "暖气")
    repair(local(11, 23, 9), "r-3", "电梯")
    repair(local(11, 24, 9, 3), "r-1", "暖气")

    def escalate(
        moment: dt.datetime, key: str, sender: str, reason: Reason, channel: str, owner: Optional[int],
        responded: Optional[float], resolved: Optional[float],
    ) -> None:  # fmt: skip
        with clock.frozen(moment), session_scope(url) as session:
            made = escalations.escalate(
                session, reason=reason, detail=None, owner_id=owner, channel=channel, sender_id=sender, message_id=key
            )
            ids[key] = str(made.number)
            if responded is not None:
                made.first_response_at = clock.now() + dt.timedelta(minutes=responded)
            if resolved is not None:
                made.resolved_at = clock.now() + dt.timedelta(minutes=resolved)

    escalate(local(11, 5, 8), "e_old", "web-1", Reason.REQUEST_HUMAN, "socketio", ids["wang"], 100, 200)  # before
    escalate(local(11, 12, 8), "e_rest", "rest-1", Reason.FALLBACK, "rest", None, None, None)
    escalate(local(11, 23, 10), "e_zhang", "wx-zhang", Reason.THREATEN_ESCALATION, "wechat", ids["zhang"], 10, 120)
    escalate(local(11, 24, 9, 10), "e_wang", "web-1", Reason.REQUEST_HUMAN, "socketio", ids["wang"], 4, 30)
    escalate(local(11, 24, 23, 40), "e_anon", "anon-1", Reason.FALLBACK, "socketio", None, 2, None)
    with session_scope(url) as session:
        for key in ("e_wang", "e_zhang"):
            row = session.execute(select(models.Escalation).where(models.Escalation.number == ids[key])).scalar_one()
            row.state = models.EscalationState.RESOLVED
    return ids


@pytest.fixture
def review_estate(database_url: str, tracker_store: Any, domain: Any) -> Dict[str, Any]:  # noqa: F811
    write_messages(tracker_store, domain)
    ids = make_records(database_url)
    ids["url"] = database_url
    return ids


def test_the_overview_counts_the_last_14_days_exactly(review_estate: Dict[str, Any]) -> None:
    with clock.frozen(NOW), session_scope(review_estate["url"]) as session:
        result = review.overview(session)
    assert result.days == tuple(dt.date(2026, 11, 11) + dt.timedelta(days=offset) for offset in range(14))

    def series(**counts: int) -> List[int]:
        values = [0] * 14
        for day, count in counts.items():
            values[int(day[1:]) - 11] = count
        return values

    assert result.objections == {
        "objection_fee_too_high": series(d24=2),
        "objection_heating": series(d24=1),
        "objection_pay_later": series(d24=1),
        "objection_poor_service": series(d23=1),
    }
    assert result.escalations_by_reason == {"fallback": 2, "request_human": 1, "threaten_escalation": 1}
    assert result.promises == {"made": 3, "kept": 1, "broken": 1, "open": 1}
    assert result.repairs_by_item == {"暖气": 2, "电梯": 1}
    assert result.first_response == Durations(count=3, median_minutes=4.0, p90_minutes=10.0)
    assert result.resolution == Durations(count=2, median_minutes=75.0, p90_minutes=120.0)


def test_a_shorter_range_ending_on_a_given_day(review_estate: Dict[str, Any]) -> None:
    with clock.frozen(NOW), session_scope(review_estate["url"]) as session:
        result = review.overview(session, days=2, end=YESTERDAY)
    assert result.days == (dt.date(2026, 11, 22), YESTERDAY)
    assert result.objections == {"objection_poor_service": [0, 1]}
    assert result.escalations_by_reason == {"threaten_escalation": 1}
    assert result.promises == {"made": 0, "kept": 0, "broken": 0, "open": 0}
    assert result.repairs_by_item == {"暖气": 1, "电梯": 1}
    assert result.first_response == Durations(count=1, median_minutes=10.0, p90_minutes=10.0)


def test_the_days_list_names_each_owner_with_their_reasons(review_estate: Dict[str, Any]) -> None:
    ids = review_estate
    with clock.frozen(NOW), session_scope(ids["url"]) as session:
        lines = review.day_list(session)
    summary = [(line.owner_id, line.name, line.phone, line.unit, line.channels, line.senders) for line in lines]
    assert summary == sorted(
        [
            (ids["wang"], "王建国", "13812346688", ids["wang_unit"], ("socketio",), ("web-1",)),
            (ids["zhang"], "张伟", "13700001111", ids["zhang_unit"], ("wechat",), ("wx-zhang",)),
        ],
        key=lambda row: row[3],
    ) + [(None, "", "", "", ("socketio",), ("anon-1",))]
    by_name = {line.name: line for line in lines}
    assert by_name["王建国"].objections == (
        Objection("objection_fee_too_high", "物业费太贵了", local(11, 24, 9, 0)),
        Objection("objection_heating", "暖气也不热", local(11, 24, 9, 1)),
    )
    assert by_name["王建国"].promises == (PromiseNote(ids["p_today"], "800.00", dt.date(2026, 11, 30), "kept"),)
    assert by_name["王建国"].escalations == (EscalationNote(ids["e_wang"], "request_human", "resolved"),)
    assert by_name["张伟"].objections == (Objection("objection_pay_later", "下个月再交", local(11, 24, 0, 30)),)
    assert by_name["张伟"].promises == (PromiseNote(ids["p_zhang"], "3600.00", dt.date(2026, 12, 5), "open"),)
    assert by_name["张伟"].escalations == ()
    assert by_name[""].objections == (Objection("objection_fee_too_high", "收费太贵", local(11, 24, 23, 30)),)
    assert by_name[""].escalations == (EscalationNote(ids["e_anon"], "fallback", "pending"),)


def test_the_day_before_and_a_quiet_day(review_estate: Dict[str, Any]) -> None:
    ids = review_estate
    with clock.frozen(NOW), session_scope(ids["url"]) as session:
        yesterday = review.day_list(session, day=YESTERDAY)
        quiet = review.day_list(session, day=dt.date(2026, 11, 15))
    assert [(line.name, [o.intent for o in line.objections], line.escalations) for line in yesterday] == sorted(
        [
            ("王建国", ["objection_poor_service"], ()),
            ("张伟", [], (EscalationNote(ids["e_zhang"], "threaten_escalation", "resolved"),)),
        ],
        key=lambda row: {"王建国": ids["wang_unit"], "张伟": ids["zhang_unit"]}[str(row[0])],
    )
    assert quiet == []


def test_without_an_events_table_there_are_no_objections(database_url: str) -> None:
    ids = make_records(database_url)
    with clock.frozen(NOW), session_scope(database_url) as session:
        result = review.overview(session)
        lines = review.day_list(session)
    assert result.objections == {}
    assert result.promises == {"made": 3, "kept": 1, "broken": 1, "open": 1}
    assert [(line.name, line.objections, len(line.promises), len(line.escalations)) for line in lines] == sorted(
        [("王建国", (), 1, 1), ("张伟", (), 1, 0)], key=lambda row: {"王建国": ids["wang_unit"], "张伟": ids["zhang_unit"]}[str(row[0])]
    ) + [("", (), 0, 1)]


def test_the_range_is_kept_between_one_day_and_a_year() -> None:
    with clock.frozen(NOW):
        assert review.date_range(days=0) == (TODAY,)
        assert len(review.date_range(days=10_000)) == review.MAX_DAYS
