"""Records made without identity are capped per client per estate day, and staff are flagged once
(bot.services.unverified_records, and the record actions that use it), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actions import owner_data as record_actions
from bot import clock, wording
from bot.db import migrate, models
from bot.db.models import EscalationState, RateLimitHit
from bot.db.session import get_engine, session_scope
from bot.owners import identity as owner_records
from bot.owners import importer
from bot.services import escalations, unverified_records
from bot.services.escalations import Reason
from bot.settings import get_settings
from tests.builders import run, tracker
from tests.db_fixtures import DEMO_ESTATE_FILE

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MORNING = dt.datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
ENOUGH = wording.text("floods.enough_today")


def repair(session: Session, client: str, n: int, *, sender: str = "anon-1", message_id: str = "") -> Any:
    return unverified_records.create(
        session, models.RepairOrder, client=client, input_channel="socketio", message_id=message_id or f"{client}-{n}",
        sender_id=sender, owner_id=None, item="楼道灯", location=f"{n}栋", description=f"第{n}处不亮", preferred_time="明天",
    )  # fmt: skip


def rows(session: Session, model: Any) -> List[Any]:
    return list(session.execute(select(model).order_by(model.id)).scalars())


def hits(session: Session, client: str) -> int:
    key = f"unverified-record:{client}"
    return int(session.execute(select(func.count()).select_from(RateLimitHit).where(RateLimitHit.key == key)).scalar_one())


def test_past_the_cap_nothing_is_written_and_staff_are_flagged_once(session: Session) -> None:
    client = "ip:203.0.113.5"
    with clock.frozen(MORNING):
        made = [repair(session, client, n) for n in (1, 2, 3)]
        session.commit()
        assert all(record is not None for record in made)
        past = [repair(session, client, n, sender="anon-2") for n in (4, 5)]
        session.commit()
    assert past == [None, None]
    orders = rows(session, models.RepairOrder)
    assert [(o.location, o.description, o.owner_id, o.sender_id) for o in orders] == [
        ("1栋", "第1处不亮", None, "anon-1"), ("2栋", "第2处不亮", None, "anon-1"), ("3栋", "第3处不亮", None, "anon-1"),
    ]  # fmt: skip
    (flag,) = rows(session, models.Escalation)
    digest = hashlib.sha256(client.encode()).hexdigest()[:24]
    assert (flag.reason, flag.owner_id, flag.channel, flag.sender_id, flag.state, flag.assignee) == (
        "flood", None, "socketio", "anon-2", EscalationState.PENDING, None,
    )  # fmt: skip
    assert flag.detail == "client ip:203.0.113.5 went past 3 records without identity on 2026-11-25; later ones not stored"
    assert flag.source_message_id == f"flood:20261125:{digest}" and flag.number.startswith("RG20261125")
    assert hits(session, client) == 3  # the count: one row per record written, none for the refused


@pytest.fixture(autouse=True)
def cap_of_three(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("UNVERIFIED_RECORDS_PER_DAY", "3")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_kinds_share_the_cap_clients_do_not_and_a_new_day_starts_afresh(session: Session) -> None:
    with clock.frozen(MORNING):
        assert repair(session, "wechat:o-1", 1) is not None
        complaint = unverified_records.create(
            session, models.Complaint, client="wechat:o-1", input_channel="wechat", message_id="c-1",
            sender_id="o-1", owner_id=None, description="保安态度差",
        )  # fmt: skip
        assert complaint is not None
        kwargs: Dict[str, Any] = {"client": "wechat:o-1", "channel": "wechat", "sender_id": "o-1"}
        asked = unverified_records.escalate(session, reason=Reason.REQUEST_HUMAN, detail="我要找人工", message_id="e-1", **kwargs)
        assert asked is not None
        again = unverified_records.escalate(session, reason=Reason.REQUEST_HUMAN, detail="人呢", message_id="e-2", **kwargs)
        assert again is None
        assert repair(session, "wechat:o-2", 1) is not None  # another client
        session.commit()
    # Past midnight in Shanghai (16:00 UTC) the day's count starts again, and so would a new flag.
    with clock.frozen(dt.datetime(2026, 11, 26, 0, 1, tzinfo=SHANGHAI)):
        assert repair(session, "wechat:o-1", 9) is not None
        session.commit()
        assert unverified_records.used_today(session, client="wechat:o-1") == 1
    escalated = [(e.reason, e.source_message_id) for e in rows(session, models.Escalation)]
    assert escalated[0] == ("request_human", "e-1") and escalated[1][0] == "flood" and len(escalated) == 2
    assert hits(session, "wechat:o-1") == 1  # yesterday's rows of this client went on the way


def test_a_request_already_recorded_counts_nothing(session: Session) -> None:
    with clock.frozen(MORNING):
        first = repair(session, "ip:198.51.100.7", 1, message_id="same")
        session.commit()
        again = repair(session, "ip:198.51.100.7", 1, message_id="same")  # the message processed twice
        said_twice = repair(session, "ip:198.51.100.7", 1, message_id="other")  # the same words within minutes
        session.commit()
    assert first is not None and again.id == first.id and said_twice.id == first.id
    assert len(rows(session, models.RepairOrder)) == 1 and hits(session, "ip:198.51.100.7") == 1


# --- the record actions ---------------------------------------------------------------------------------


@pytest.fixture
def estate(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The demo estate on each backend, found by the actions through DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    migrate.upgrade(database_url)
    with session_scope(database_url) as db_session:
        importer.import_arrears(db_session, Path(DEMO_ESTATE_FILE))
    yield database_url
    get_engine(database_url).dispose()
    get_settings.cache_clear()


REPAIR_SLOTS = {"repair_item": "电梯", "repair_location": "5号楼", "repair_time": "今天"}


def anonymous(n: int, **kwargs: Any) -> Any:
    slots = {**REPAIR_SLOTS, "repair_description": f"第{n}次报修", **kwargs.pop("slots", {})}
    metadata = {"client": "ip:203.0.113.77", "date": "2026-11-25"}
    return tracker(slots=slots, message_id=f"m-{n}", channel="socketio", sender="anon-web", metadata=metadata, **kwargs)


def test_the_actions_say_enough_today_past_the_cap_and_write_nothing_more(estate: str) -> None:
    with clock.frozen(MORNING):
        for n in (1, 2, 3):
            messages, _ = run(record_actions.ActionRecordRepair(), anonymous(n))
            assert messages[0]["response"] == "utter_repair_recorded"
        messages, events = run(record_actions.ActionRecordRepair(), anonymous(4))
        assert messages == [{**messages[0], "text": ENOUGH}] and messages[0].get("response") is None
        assert SlotSet("repair_description", None) in events
        escalate = anonymous(5, slots={})
        messages, events = run(record_actions.ActionEscalate(), escalate)
        assert [m.get("text") for m in messages] == [ENOUGH] and events == [SlotSet("pending_offer", None)]
        messages, events = run(record_actions.ActionRecordInstalment(), anonymous(6, slots={"instalment_plan": "分三期"}))
        assert [m.get("text") for m in messages] == [ENOUGH]  # unverified: its identity_failed escalation is capped too
        assert SlotSet("identity_failed", False) in events
    with session_scope(estate) as session:
        assert [o.description for o in rows(session, models.RepairOrder)] == ["第1次报修", "第2次报修", "第3次报修"]
        assert [(e.reason, e.sender_id, e.channel, e.owner_id) for e in rows(session, models.Escalation)] == [
            ("flood", "anon-web", "socketio", None)
        ]
        assert rows(session, models.InstalmentRequest) == []


def test_a_verified_owner_is_never_capped(estate: str) -> None:
    with session_scope(estate) as session:
        owner = owner_records.verify(session, room="3栋2单元501", phone_tail="6688")
        assert owner is not None
        owner_id = float(owner.owner_id)
        owner_records.link_conversation(session, channel="socketio", sender_id="anon-web", owner_id=owner.owner_id)
    with clock.frozen(MORNING):
        # Five different faults (one fault is one order however often it is reported: test_record_actions.py).
        for n, item in enumerate(("电梯", "水管", "门禁", "楼道灯", "暖气"), start=1):
            verified = anonymous(n, slots={"verified_owner_id": owner_id, "repair_item": item})
            messages, _ = run(record_actions.ActionRecordRepair(), verified)
            assert messages[0]["response"] == "utter_repair_recorded"
        messages, _ = run(record_actions.ActionEscalate(), anonymous(9, slots={"verified_owner_id": owner_id}))
        assert messages[0]["response"] == "utter_escalated"
    with session_scope(estate) as session:
        assert len(rows(session, models.RepairOrder)) == 5
        assert [e.reason for e in rows(session, models.Escalation)] == [escalations.Reason.FALLBACK.value]
        assert hits(session, "ip:203.0.113.77") == 0
