"""Domain services in bot/services, on SQLite and PostgreSQL, without Rasa: records, identity, escalations."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models
from bot.db.session import get_engine, session_scope
from bot.owners import importer
from bot.services import escalations, owner_requests
from bot.services import identity as identity_service
from bot.services.identity import IdentityPolicy, Outcome

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
POLICY = IdentityPolicy(max_failures_per_unit=5, max_failures_per_client=10, window=dt.timedelta(hours=24))
# The demo estate: 王建国, 3栋2单元501, phone ending 6688, owes 2,460.00.
ROOM, TAIL, NAME = "3栋2单元501", "6688", "王建国"


@pytest.fixture
def estate(database_url: str) -> str:
    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
    return database_url


def count(url: str, model: Any) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def owner_id(url: str) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(models.Owner.id).where(models.Owner.name == NAME)).scalar_one())


# --- records -------------------------------------------------------------------------------------------


def test_every_record_type_is_declared_once_with_prefix_and_confirmation() -> None:
    import yaml

    types = owner_requests.record_types()
    assert {t.__name__ for t in types} == {
        "RepairOrder",
        "Complaint",
        "BillCheckRequest",
        "PaymentPromise",
        "InstalmentRequest",
        "Escalation",
    }
    prefixes = [model.number_prefix for model in types]
    assert len(set(prefixes)) == len(prefixes) and all(len(p) == 2 for p in prefixes)
    responses = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"]
    assert all(model.confirmation_response in responses for model in types)


def test_record_fields_and_number_are_stored_and_a_retry_returns_the_same_record(estate: str) -> None:
    with clock.frozen(NOW), session_scope(estate) as session:
        order = owner_requests.create(
            session,
            models.RepairOrder,
            message_id="m-1",
            sender_id="s1",
            owner_id=None,
            item="暖气",
            location="3栋2单元501 客厅",
            description="暖气片是凉的",
            preferred_time="明天上午",
        )
        again = owner_requests.create(
            session,
            models.RepairOrder,
            message_id="m-1",
            sender_id="s1",
            owner_id=None,
            item="暖气",
            location="3栋2单元501 客厅",
            description="暖气片是凉的",
            preferred_time="明天上午",
        )
        assert again.id == order.id
        stored = (order.number, order.item, order.location, order.description, order.preferred_time)
    assert stored == (f"BX20261124{order.id:04d}", "暖气", "3栋2单元501 客厅", "暖气片是凉的", "明天上午")
    assert count(estate, models.RepairOrder) == 1


def test_an_identical_request_said_twice_is_one_record_but_a_different_one_is_new(estate: str) -> None:
    owner = owner_id(estate)
    fields = {"owner_id": owner, "amount": Decimal("2460.00"), "due_date": dt.date(2026, 12, 4)}
    with clock.frozen(NOW), session_scope(estate) as session:
        first = owner_requests.create(session, models.PaymentPromise, message_id="a", sender_id="s", **fields)
        second = owner_requests.create(session, models.PaymentPromise, message_id="b", sender_id="s", **fields)
        other = owner_requests.create(
            session, models.PaymentPromise, message_id="c", sender_id="s", **{**fields, "amount": Decimal("100")}
        )
        ids = (first.id, second.id, other.id)
    assert ids[0] == ids[1] != ids[2]
    with session_scope(estate) as session:
        rows = session.execute(select(models.PaymentPromise).order_by(models.PaymentPromise.id)).scalars().all()
        assert [(r.amount, r.due_date, r.status) for r in rows] == [
            (Decimal("2460.00"), dt.date(2026, 12, 4), models.PromiseStatus.OPEN),
            (Decimal("100.00"), dt.date(2026, 12, 4), models.PromiseStatus.OPEN),
        ]


def test_two_processes_racing_on_one_message_make_one_record_and_both_get_its_number(estate: str) -> None:
    """Both writers pass the duplicate check before either commits; the loser returns the winner's record."""
    # PostgreSQL lets both check before either writes; SQLite queues whole write transactions (BEGIN
    # IMMEDIATE), so there the second simply finds the first's record.
    both_checked = threading.Barrier(1 if estate.startswith("sqlite") else 2, timeout=20)
    numbers: List[str] = []
    errors: List[BaseException] = []
    original = owner_requests._by_message

    def checked_then_wait(session: Session, model: Any, message_id: str) -> Any:
        found = original(session, model, message_id)
        if found is None and threading.current_thread().name.startswith("writer"):
            try:
                both_checked.wait()
            except threading.BrokenBarrierError:
                pass
        return found

    def writer() -> None:
        try:
            with session_scope(estate) as session:
                record = owner_requests.create(
                    session,
                    models.Complaint,
                    message_id="same-message",
                    sender_id=f"s-{threading.current_thread().name}",
                    owner_id=None,
                    description="保安态度不好",
                )
                numbers.append(record.number)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    owner_requests._by_message = checked_then_wait  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=writer, name=f"writer-{i}") for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        owner_requests._by_message = original  # type: ignore[assignment]
    if estate.startswith("sqlite") and errors:
        # SQLite serialises writers: the second may be refused as busy rather than race. What must hold
        # either way is that nothing was doubled and no writer saw a false success.
        assert count(estate, models.Complaint) == 1 and len(numbers) == 1
        return
    assert errors == []
    assert count(estate, models.Complaint) == 1
    assert len(numbers) == 2 and numbers[0] == numbers[1]


def test_a_database_that_is_down_raises_instead_of_confirming() -> None:
    from sqlalchemy.exc import SQLAlchemyError

    with pytest.raises(SQLAlchemyError):
        with session_scope("postgresql://nobody@127.0.0.1:1/none") as session:
            owner_requests.create(
                session, models.Complaint, message_id="x", sender_id="s", owner_id=None, description="d"
            )
    get_engine("postgresql://nobody@127.0.0.1:1/none").dispose()


# --- identity ------------------------------------------------------------------------------------------


def attempt(url: str, room: str, tail: str, *, client: str, sender: str, channel: str = "socketio"):
    with session_scope(url) as session:
        return identity_service.verify(
            session, room=room, phone_tail=tail, client=client, channel=channel, sender_id=sender, policy=POLICY
        )


def test_right_tail_verifies_and_binds_a_trusted_channel_only(estate: str) -> None:
    result = attempt(estate, ROOM, TAIL, client="ip:10.0.0.1", sender="web-1")
    assert result.outcome is Outcome.VERIFIED and result.owner is not None and result.owner.name == NAME
    owner = owner_id(estate)
    with session_scope(estate) as session:
        assert identity_service.linked_owner_id(session, channel="socketio", sender_id="web-1") == owner
    attempt(estate, ROOM, TAIL, client="rest:x", sender="rest-1", channel="rest")
    with session_scope(estate) as session:
        assert identity_service.linked_owner_id(session, channel="rest", sender_id="rest-1") is None
    with session_scope(estate) as session:
        stored = session.execute(select(models.IdentityAttempt).order_by(models.IdentityAttempt.id)).scalars().all()
        assert [(a.unit_code, a.client_key, a.channel, a.succeeded) for a in stored] == [
            ("3-2-501", "ip:10.0.0.1", "socketio", True),
            ("3-2-501", "rest:x", "rest", True),
        ]


def test_attacker_sweeping_200_tails_on_one_unit_from_fresh_sessions_learns_nothing(estate: str) -> None:
    """The right tail is among the 200; by the time it comes, the unit is locked and it is not compared."""
    outcomes = []
    with clock.frozen(NOW):
        for n in range(200):
            tail = TAIL if n == 150 else f"{(n * 37 + 1000) % 10000:04d}"
            if tail == TAIL and n != 150:
                tail = "0000"
            # a fresh session and a fresh address every time: only the per-unit count can stop this
            outcomes.append(attempt(estate, ROOM, tail, client=f"ip:10.1.{n // 250}.{n % 250}", sender=f"s{n}"))
    assert all(result.owner is None for result in outcomes)
    assert [r.outcome for r in outcomes[:4]] == [Outcome.MISMATCH] * 4
    assert outcomes[4].outcome is Outcome.UNIT_LOCKED and outcomes[4].locked_now
    assert {r.outcome for r in outcomes[5:]} == {Outcome.UNIT_LOCKED}
    assert not any(r.locked_now for r in outcomes[5:])
    # only the tries before the lock touched the owner's phone
    assert count(estate, models.IdentityAttempt) == 5


def test_one_client_sweeping_200_units_with_one_tail_is_stopped(estate: str) -> None:
    units = [f"{b}栋{e}单元{r}" for b in range(1, 11) for e in (1, 2) for r in range(501, 511)]
    assert ROOM in units
    units.remove(ROOM)
    units.insert(120, ROOM)  # the one unit the tail opens comes late
    with clock.frozen(NOW):
        outcomes = [attempt(estate, unit, TAIL, client="wechat:oAttacker", sender=f"s{i}") for i, unit in enumerate(units)]
    assert all(r.owner is None for r in outcomes)
    assert [r.outcome for r in outcomes[:10]] == [Outcome.MISMATCH] * 10
    assert {r.outcome for r in outcomes[10:]} == {Outcome.CLIENT_LOCKED}


def test_a_verified_owner_is_not_slowed_down_by_an_attack_elsewhere(estate: str) -> None:
    with clock.frozen(NOW):
        for n in range(12):
            attempt(estate, "5号楼1203", f"{n:04d}", client="ip:203.0.113.9", sender=f"a{n}")
        owner = attempt(estate, ROOM, TAIL, client="ip:198.51.100.7", sender="owner")
    assert owner.outcome is Outcome.VERIFIED


def test_locks_expire_with_the_window(estate: str) -> None:
    with clock.frozen(NOW):
        for n in range(5):
            attempt(estate, ROOM, f"{n:04d}", client=f"ip:10.2.0.{n}", sender=f"s{n}")
        assert attempt(estate, ROOM, TAIL, client="ip:10.3.0.1", sender="o").outcome is Outcome.UNIT_LOCKED
    with clock.frozen(NOW + dt.timedelta(hours=24, minutes=1)):
        assert attempt(estate, ROOM, TAIL, client="ip:10.3.0.1", sender="o").outcome is Outcome.VERIFIED


@pytest.mark.parametrize(
    ("channel", "metadata", "expected"),
    [
        ("rest", {"client": "rest:s1"}, "rest:s1"),
        ("rest", {"client": "ip:1.2.3.4"}, "ip:1.2.3.4"),  # unauthenticated REST: its address
        ("socketio", {"client": "ip:1.2.3.4"}, "ip:1.2.3.4"),
        ("wechat", {"client": "wechat:oX"}, "wechat:oX"),
        ("socketio", {}, "socketio:s1"),
        ("socketio", {"client": 5}, "socketio:s1"),
    ],
)
def test_client_key_comes_from_the_server(channel: str, metadata: Dict[str, Any], expected: str) -> None:
    assert identity_service.client_key(channel=channel, sender_id="s1", metadata=metadata) == expected


# --- escalations ---------------------------------------------------------------------------------------


def test_escalation_reason_and_fields_are_stored(estate: str) -> None:
    with clock.frozen(NOW), session_scope(estate) as session:
        escalation = escalations.escalate(
            session,
            reason=escalations.reason_for_intent("threaten_escalation"),
            detail="我要投诉到住建局",
            owner_id=None,
            channel="wechat",
            sender_id="oX",
            message_id="m-9",
        )
        stored = (escalation.number[:10], escalation.reason, escalation.detail, escalation.channel, escalation.state)
        times = (escalation.updated_at, escalation.claimed_at, escalation.first_response_at, escalation.resolved_at)
    assert stored == ("RG20261124", "threaten_escalation", "我要投诉到住建局", "wechat", models.EscalationState.PENDING)
    assert times == (NOW, None, None, None)
    assert escalations.reason_for_intent("affirm") is escalations.Reason.FALLBACK


def test_staff_answer_follows_the_configured_hours() -> None:
    from bot import wording

    inside = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)  # Monday 10:00 in Shanghai
    outside = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.timezone.utc)  # Monday 22:00
    config_phone = escalations.get_service_config().staff.phone
    assert escalations.staff_answer(inside) == wording.text(
        "staff.answer_open", closes=f"{escalations.get_service_config().staff.closes:%H:%M}", phone=config_phone
    )
    assert escalations.staff_answer(outside) == wording.text(
        "staff.answer_closed", month=11, day=24, opens="09:00", phone=config_phone
    )


def test_concurrent_wrong_tails_cannot_all_pass_the_count(estate: str) -> None:
    """Eight tries at once on one unit: exactly five are compared before the lock, never more."""
    start = threading.Barrier(8, timeout=20)
    outcomes: List[Outcome] = []
    errors: List[str] = []  # a thread's exception would otherwise vanish with it

    def try_once(n: int) -> None:
        try:
            start.wait()
            outcomes.append(attempt(estate, ROOM, f"{n:04d}", client=f"ip:10.9.0.{n}", sender=f"c{n}").outcome)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=try_once, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(o.value for o in outcomes) == sorted(["mismatch"] * 4 + ["unit_locked"] * 4)
    assert count(estate, models.IdentityAttempt) == 5
