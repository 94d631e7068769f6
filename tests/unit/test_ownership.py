"""Owners change hands, on SQLite and PostgreSQL: the arrears import is the roster, staff record transfers, and a
former owner is found by no verification, arrears lookup, reminder, call list or staff search (history kept)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot import clock
from bot.casework import owner_view
from bot.db import models
from bot.db.models import Owner, OwnerRetirement, PromiseStatus
from bot.db.reminder_models import CallTask, CallTaskState, Reminder, ReminderPurpose, ReminderState
from bot.db.staff_models import AuditEntry
from bot.owners import arrears, identity, importer, ownership
from bot.owners.arrears import as_utc
from bot.reminders import calls, ladder, policy, schedule
from bot.services import identity as identity_service

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SHANGHAI = ZoneInfo("Asia/Shanghai")
LOADED = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)  # the demo estate's first import
CHANGED = dt.datetime(2026, 11, 28, 9, 0, tzinfo=SHANGHAI)  # the import naming the new owner
ROOM, UNIT = "3栋2单元501", "3-2-501"  # 王建国, 13812346688, owes 2460.00 since 2026-03
WANG_ROW = "3栋2单元501,王建国,13812346688"
OPENID = "oWANG-verified"


def roster(tmp_path: Path, name: str, *changes: tuple) -> Path:
    """The demo estate's list with ``changes`` (old text, new text) made; a new file under ``tmp_path``."""
    text = DEMO.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def owner_named(session: Any, name: str) -> Owner:
    return session.execute(select(Owner).where(Owner.name == name, ownership.CURRENT)).scalar_one()


def count(session: Any, model: Any, *where: Any) -> int:
    return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def reminder(session: Any, owner: Owner, key: str, state: ReminderState = ReminderState.SCHEDULED) -> Reminder:
    due = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc)
    row = Reminder(
        owner_id=owner.id, unit_id=owner.unit_id, sender_id=OPENID, channel="wechat",
        purpose=ReminderPurpose.MONTHLY_BILL, due_at=due, first_due_at=due, state=state, period="2026-12",
        dedupe_key=key, attempts=0, created_at=clock.utc_now(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def audit_rows(session: Any, action: str) -> List[Dict[str, Any]]:
    rows = session.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars()
    return [{"actor": row.actor, "target": row.target, "at": as_utc(row.at), "detail": row.detail} for row in rows]


@pytest.fixture
def wang(session: Any) -> Owner:
    """The demo estate loaded at LOADED; 王建国 verified on WeChat, one reminder pending, one sent, a call task."""
    with clock.frozen(LOADED):
        importer.import_arrears(session, DEMO)
        owner = owner_named(session, "王建国")
        identity.link_conversation(session, channel="wechat", sender_id=OPENID, owner_id=owner.id)
        reminder(session, owner, "monthly:pending")
        reminder(session, owner, "monthly:sent", ReminderState.SENT)
        calls.create(session, unit_id=int(owner.unit_id), owner_id=int(owner.id), reason="unverified")
        session.commit()
    return owner


# --- the import is the roster ------------------------------------------------------------------------------


def test_a_unit_listed_with_another_owner_retires_the_former_one(session: Any, wang: Owner, tmp_path: Path) -> None:
    path = roster(tmp_path, "changed.csv", (WANG_ROW, "3栋2单元501,孙丽,13955550001"))
    with clock.frozen(CHANGED):
        report = importer.import_arrears(session, path)
        session.commit()
    assert (report.created, report.updated, report.retired, report.phone_changed, report.errors) == (1, 5, 1, 0, [])

    former = session.get(Owner, wang.id, populate_existing=True)
    assert (former.name, former.phone, former.owned_from, former.owned_until) == (
        "王建国", "13812346688", None, dt.date(2026, 11, 28)
    )  # fmt: skip
    assert (OwnerRetirement(former.retired_reason), former.retired_by) == (OwnerRetirement.ROSTER, "import")
    assert as_utc(former.retired_at) == CHANGED and not former.current
    sun = owner_named(session, "孙丽")
    assert (sun.unit_id, sun.phone, sun.owned_from, sun.owned_until, sun.retired_at, sun.retired_reason) == (
        wang.unit_id, "13955550001", dt.date(2026, 11, 28), None, None, None
    )  # fmt: skip
    assert count(session, Owner) == 7 and count(session, Owner, ownership.CURRENT) == 6

    # The former owner verifies nothing and is told nothing; the new owner is.
    assert identity.verify(session, room=ROOM, phone_tail="6688") is None
    assert identity.verify(session, room=ROOM, phone_tail="0001").owner_id == sun.id
    with pytest.raises(arrears.FormerOwner):
        arrears.summary(session, owner_id=wang.id, today=dt.date(2026, 11, 28))
    assert arrears.summary(session, owner_id=sun.id, today=dt.date(2026, 11, 28)).amount == Decimal("2460.00")

    # His conversation is no longer verified, on WeChat or (as a claim) on REST.
    link = session.execute(select(models.ConversationLink)).scalar_one()
    assert (link.owner_id, link.closed_reason, as_utc(link.closed_at)) == (wang.id, "owner_retired:roster", CHANGED)
    assert identity.linked_owner(session, channel="wechat", sender_id=OPENID) is None
    assert identity_service.verified_owner_id(session, claimed=wang.id, channel="wechat", sender_id=OPENID) is None
    assert identity_service.verified_owner_id(session, claimed=wang.id, channel="rest", sender_id="r-1") is None
    assert identity_service.verified_owner_id(session, claimed=sun.id, channel="rest", sender_id="r-1") == sun.id

    # His pending reminder is cancelled with the reason, the sent one stays history, his call task is closed.
    rows = {row.dedupe_key: row for row in session.execute(select(Reminder)).scalars()}
    pending, sent = rows["monthly:pending"], rows["monthly:sent"]
    assert (ReminderState(pending.state), pending.reason, pending.cancelled_by, as_utc(pending.updated_at)) == (
        ReminderState.CANCELLED, "owner_retired", "import", CHANGED
    )  # fmt: skip
    assert (ReminderState(sent.state), sent.reason) == (ReminderState.SENT, None)
    task = session.execute(select(CallTask)).scalar_one()
    assert (CallTaskState(task.state), task.note, task.closed_by, as_utc(task.closed_at)) == (
        CallTaskState.DONE, "业主已变更（导入名单），前业主不再催缴", "import", CHANGED
    )  # fmt: skip
    assert calls.listing(session) == []

    [entry] = audit_rows(session, "owner_retired")
    assert (entry["actor"], entry["target"], entry["at"]) == ("import", f"owner:{wang.id}", CHANGED)
    assert entry["detail"] == {
        "reason": "roster", "unit": UNIT, "line": 2, "new_owner_id": sun.id, "until": "2026-11-28",
        "links_closed": 1, "reminders_cancelled": 1, "calls_closed": 1,
    }  # fmt: skip


def test_the_same_person_with_a_new_phone_is_updated_not_duplicated(session: Any, wang: Owner, tmp_path: Path) -> None:
    path = roster(tmp_path, "phone.csv", (WANG_ROW, "3栋2单元501,王建国,13812340000"))
    with clock.frozen(CHANGED):
        report = importer.import_arrears(session, path)
        session.commit()
    assert (report.created, report.updated, report.retired, report.phone_changed) == (0, 6, 0, 1)
    assert count(session, Owner) == 6
    same = session.get(Owner, wang.id, populate_existing=True)
    assert (same.name, same.phone, same.retired_at, same.owned_until) == ("王建国", "13812340000", None, None)
    assert identity.verify(session, room=ROOM, phone_tail="6688") is None  # the old number is not his any more
    assert identity.verify(session, room=ROOM, phone_tail="0000").owner_id == wang.id
    # Still the same person: his conversation stays verified and his reminder still goes out.
    assert identity.linked_owner(session, channel="wechat", sender_id=OPENID).owner_id == wang.id
    pending = session.execute(select(Reminder).where(Reminder.dedupe_key == "monthly:pending")).scalar_one()
    assert ReminderState(pending.state) is ReminderState.SCHEDULED
    assert audit_rows(session, "owner_retired") == []


def test_names_are_compared_without_spaces_or_full_width_forms() -> None:
    assert ownership.same_person("王建国", " 王 建国 ") and ownership.same_person("ＡＢＣ", "ABC")
    assert not ownership.same_person("王建国", "王建华")


def test_reimporting_the_same_roster_retires_nobody(session: Any, wang: Owner) -> None:
    with clock.frozen(CHANGED):
        report = importer.import_arrears(session, DEMO)
        session.commit()
    assert (report.created, report.updated, report.retired, report.phone_changed) == (0, 6, 0, 0)
    assert count(session, Owner, ~ownership.CURRENT) == 0
    assert identity.linked_owner(session, channel="wechat", sender_id=OPENID).owner_id == wang.id


def test_a_former_owner_listed_again_is_a_new_period_with_the_same_phone(session: Any, wang: Owner, tmp_path: Path) -> None:
    with clock.frozen(CHANGED):
        importer.import_arrears(session, roster(tmp_path, "sold.csv", (WANG_ROW, "3栋2单元501,孙丽,13955550001")))
        session.commit()
    back_at = CHANGED + dt.timedelta(days=3)
    with clock.frozen(back_at):
        report = importer.import_arrears(session, DEMO)
        session.commit()
    assert (report.created, report.retired) == (1, 1)
    again = owner_named(session, "王建国")
    assert again.id != wang.id and (again.phone, again.owned_from) == ("13812346688", dt.date(2026, 12, 1))
    periods = session.execute(
        select(Owner.name, Owner.owned_from, Owner.owned_until).where(Owner.unit_id == wang.unit_id).order_by(Owner.id)
    ).all()
    assert periods == [
        ("王建国", None, dt.date(2026, 11, 28)),
        ("孙丽", dt.date(2026, 11, 28), dt.date(2026, 12, 1)),
        ("王建国", dt.date(2026, 12, 1), None),
    ]
    assert identity.verify(session, room=ROOM, phone_tail="6688").owner_id == again.id
    # Among current owners a unit and phone stay unique.
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(Owner(unit_id=wang.unit_id, name="重复", phone="13812346688"))
            session.flush()


def test_owners_duplicated_before_periods_existed_are_settled_by_the_next_import(session: Any, wang: Owner) -> None:
    # The old import made a second row when a phone changed: the roster keeps the listed one only.
    session.add(Owner(unit_id=wang.unit_id, name="王建国", phone="13800000001"))
    session.add(Owner(unit_id=wang.unit_id, name="王妻", phone="13800000002"))
    session.commit()
    with clock.frozen(CHANGED):
        report = importer.import_arrears(session, DEMO)
        session.commit()
    assert report.retired == 2
    current = session.execute(select(Owner.id, Owner.phone).where(Owner.unit_id == wang.unit_id, ownership.CURRENT)).all()
    assert current == [(wang.id, "13812346688")]
    assert identity.verify(session, room=ROOM, phone_tail="0001") is None
    assert identity.verify(session, room=ROOM, phone_tail="0002") is None


# --- transfers recorded by staff ---------------------------------------------------------------------------


def test_a_transfer_retires_the_owner_from_its_date_and_creates_the_new_owner(session: Any, wang: Owner) -> None:
    with clock.frozen(CHANGED):
        done = ownership.transfer(
            session, owner_id=wang.id, on=dt.date(2026, 11, 27), actor="li", new_name=" 孙丽 ", new_phone="139-5555-0001"
        )
        session.commit()
    assert done.retired == ownership.Retired(wang.id, links_closed=1, reminders_cancelled=1, calls_closed=1)
    former = session.get(Owner, wang.id, populate_existing=True)
    assert (former.owned_until, OwnerRetirement(former.retired_reason), former.retired_by) == (
        dt.date(2026, 11, 27), OwnerRetirement.TRANSFER, "li"
    )  # fmt: skip
    assert as_utc(former.retired_at) == CHANGED
    sun = session.get(Owner, done.new_owner_id)
    assert (sun.name, sun.phone, sun.unit_id, sun.owned_from, sun.retired_at) == (
        "孙丽", "13955550001", wang.unit_id, dt.date(2026, 11, 27), None
    )  # fmt: skip
    link = session.execute(select(models.ConversationLink)).scalar_one()
    assert link.closed_reason == "owner_retired:transfer"
    pending = session.execute(select(Reminder).where(Reminder.dedupe_key == "monthly:pending")).scalar_one()
    assert (ReminderState(pending.state), pending.reason, pending.cancelled_by) == (
        ReminderState.CANCELLED, "owner_retired", "li"
    )  # fmt: skip
    assert identity.verify(session, room=ROOM, phone_tail="6688") is None
    assert identity.verify(session, room=ROOM, phone_tail="0001").owner_id == sun.id
    # Conversations verified before the transfer are not verified after it (a REST slot's claim, a WeChat link).
    assert identity_service.verified_owner_id(session, claimed=wang.id, channel="rest", sender_id="r-1") is None
    assert identity_service.verified_owner_id(session, claimed=wang.id, channel="wechat", sender_id=OPENID) is None

    # The openid verifying again as the new owner reopens the link for them.
    with clock.frozen(CHANGED + dt.timedelta(hours=1)):
        identity.link_conversation(session, channel="wechat", sender_id=OPENID, owner_id=sun.id)
        session.commit()
    link = session.execute(select(models.ConversationLink)).scalar_one()
    assert (link.owner_id, link.closed_at, link.closed_reason) == (sun.id, None, None)
    assert as_utc(link.verified_at) == CHANGED + dt.timedelta(hours=1)


def test_a_transfer_without_a_successor_leaves_the_unit_to_the_next_import(session: Any, wang: Owner) -> None:
    with clock.frozen(CHANGED):
        done = ownership.transfer(session, owner_id=wang.id, on=dt.date(2026, 11, 26), actor="zhao")
        importer.import_arrears(session, DEMO)  # the list still names him: a new period from the transfer
        session.commit()
    assert done.new_owner_id is None
    again = owner_named(session, "王建国")
    assert again.id != wang.id and again.owned_from == dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("on", "name", "phone", "code"),
    [
        (dt.date(2026, 11, 29), "", "", "future"),
        (dt.date(1970, 1, 1), "", "", "bad_date"),
        (dt.date(2026, 11, 27), "孙丽", "", "incomplete"),
        (dt.date(2026, 11, 27), "", "13955550001", "incomplete"),
        (dt.date(2026, 11, 27), "孙丽", "12345", "bad_phone"),
        (dt.date(2026, 11, 27), "孙" * 65, "13955550001", "bad_name"),
        (dt.date(2026, 11, 27), "王建国", "13812346688", "same_owner"),
    ],
)
def test_a_refused_transfer_writes_nothing(session: Any, wang: Owner, on: dt.date, name: str, phone: str, code: str) -> None:
    with clock.frozen(CHANGED), pytest.raises(ownership.TransferError) as refused:
        ownership.transfer(session, owner_id=wang.id, on=on, actor="li", new_name=name, new_phone=phone)
    session.rollback()
    assert refused.value.code == code
    assert count(session, Owner) == 6 and count(session, Owner, ~ownership.CURRENT) == 0
    assert session.execute(select(models.ConversationLink.closed_at)).scalar_one() is None


def test_a_transfer_refuses_a_former_owner_a_date_before_the_start_and_a_taken_phone(session: Any, wang: Owner) -> None:
    with clock.frozen(CHANGED):
        done = ownership.transfer(session, owner_id=wang.id, on=dt.date(2026, 11, 27), actor="li", new_name="孙丽", new_phone="13955550001")
        session.commit()
        for owner_id, on, code in [
            (wang.id, dt.date(2026, 11, 28), "not_current"),
            (done.new_owner_id, dt.date(2026, 11, 26), "before_start"),
        ]:
            with pytest.raises(ownership.TransferError) as refused:
                ownership.transfer(session, owner_id=owner_id, on=on, actor="li")
            assert refused.value.code == code
        session.add(Owner(unit_id=wang.unit_id, name="孙丽之夫", phone="13955550002", owned_from=dt.date(2026, 11, 27)))
        session.commit()
        with pytest.raises(ownership.TransferError) as refused:
            ownership.transfer(session, owner_id=done.new_owner_id, on=dt.date(2026, 11, 28), actor="li", new_name="周", new_phone="13955550002")
        assert refused.value.code == "phone_taken"
    session.rollback()
    assert count(session, Owner, ownership.CURRENT, Owner.unit_id == wang.unit_id) == 2
    with pytest.raises(LookupError):
        ownership.transfer(session, owner_id=999999, on=dt.date(2026, 11, 27), actor="li")


# --- reminders, the ladder and the call list -------------------------------------------------------------


def test_reminders_and_cases_go_to_current_owners_only(session: Any, wang: Owner) -> None:
    zhang = owner_named(session, "张伟")
    with clock.frozen(LOADED):
        # He opted out for his unit; two broken promises each for him and for 张伟.
        schedule.record_opt_out(session, owner_id=wang.id, sender_id=None, channel=None, how="chat")
        for owner, days in [(wang, 1), (wang, 2), (zhang, 1), (zhang, 2)]:
            session.add(
                models.PaymentPromise(
                    owner_id=owner.id, amount=Decimal("100"), due_date=dt.date(2026, 11, 10 + days),
                    status=PromiseStatus.BROKEN, sender_id=f"s-{owner.id}", number=f"CN-{owner.id}-{days}",
                )
            )  # fmt: skip
        session.commit()
    with clock.frozen(CHANGED):
        done = ownership.transfer(session, owner_id=wang.id, on=dt.date(2026, 11, 27), actor="li", new_name="孙丽", new_phone="13955550001")
        session.commit()
    sun = session.get(Owner, done.new_owner_id)

    with clock.frozen(dt.datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)):
        written = schedule.schedule_monthly(session, today=dt.date(2026, 12, 1))
        escalated = ladder.escalate_repeat_breakers(session, months=99)
        # A reminder of his written by anyone after the transfer is cancelled when it falls due.
        late = reminder(session, wang, "late")
        decision = policy.decide(session, late, policy=policy.Policy(), holiday=lambda day: False)
    assert sun.id in {row.owner_id for row in written} and wang.id not in {row.owner_id for row in written}
    assert [row.owner_id for row in escalated] == [zhang.id]
    assert decision == policy.Decision(policy.Verdict.CANCEL, "owner_retired")
    # His opt-out for the unit was his: it does not silence the new owner.
    assert policy.opted_out(session, owner_id=wang.id, sender_id=None)
    assert not policy.opted_out(session, owner_id=sun.id, sender_id=None)
    # His closed link is nobody's target.
    assert schedule.target(session, owner_id=wang.id) == (None, None)


# --- staff views ---------------------------------------------------------------------------------------------


def test_staff_find_current_owners_and_see_a_former_one_marked_with_his_history(session: Any, wang: Owner) -> None:
    with clock.frozen(CHANGED):
        done = ownership.transfer(session, owner_id=wang.id, on=dt.date(2026, 11, 27), actor="li", new_name="孙丽", new_phone="13955550001")
        session.commit()
        found = owner_view.search_owners(session, unit=UNIT)
        both = owner_view.search_owners(session, unit=UNIT, include_former=True)
        profile = owner_view.owner_profile(session, owner_id=wang.id)
        successor = owner_view.owner_profile(session, owner_id=done.new_owner_id)
    assert [(row.id, row.name, row.former, row.outstanding) for row in found] == [
        (done.new_owner_id, "孙丽", False, Decimal("2460.00"))
    ]
    assert [(row.name, row.former, row.owned_until, row.outstanding) for row in both] == [
        ("孙丽", False, None, Decimal("2460.00")),
        ("王建国", True, dt.date(2026, 11, 27), Decimal("0.00")),
    ]
    assert profile.former and (profile.bills, profile.outstanding, profile.arrears_since) == ([], Decimal("0.00"), None)
    assert profile.ownership == owner_view.Ownership(
        owned_from=None, owned_until=dt.date(2026, 11, 27), retired_at=CHANGED, retired_reason="transfer",
        retired_by="li", current_owners=((done.new_owner_id, "孙丽"),),
    )  # fmt: skip
    assert [summary.sender_id for summary in profile.conversations] == [OPENID]  # his conversation stays his history
    assert not successor.former and successor.outstanding == Decimal("2460.00") and successor.conversations == []


def test_the_command_line_says_how_many_owners_were_retired(database_url: str, tmp_path: Path, capsys: Any) -> None:
    from bot import cli

    assert cli.main(["import-arrears", str(DEMO), "--url", database_url]) == 0
    assert "retired" not in capsys.readouterr().out
    changed = roster(tmp_path, "sold.csv", (WANG_ROW, "3栋2单元501,孙丽,13955550001"))
    assert cli.main(["import-arrears", str(changed), "--url", database_url]) == 0
    out = capsys.readouterr().out
    assert "sold.csv: 1 created, 5 updated, 0 rejected" in out
    assert "owners: 1 former owners retired, 0 phone numbers changed" in out


def test_0014_keeps_existing_owners_current_matches_the_models_and_downgrades(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect, text

    from bot.db import migrate
    from bot.db.session import get_engine

    migrate.downgrade(database_url, "0013")
    engine = get_engine(database_url)
    with engine.begin() as connection:  # an estate with records pointing at its owner (SQLite copies the table)
        connection.execute(text("INSERT INTO units (id, code, building, room) VALUES (1, '1-101', '1', '101')"))
        connection.execute(text("INSERT INTO owners (id, unit_id, name, phone) VALUES (1, 1, 'A', '13800001111')"))
        connection.execute(text("INSERT INTO conversation_links (channel, sender_id, owner_id) VALUES ('wechat', 'o1', 1)"))
        connection.execute(
            text(
                "INSERT INTO payment_promises (number, owner_id, amount, due_date, status, created_at) "
                "VALUES ('CN1', 1, 100, '2026-11-20', 'OPEN', '2026-11-15 10:00:00+08:00')"
            )
        )
    migrate.upgrade(database_url)
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT name, phone, owned_from, owned_until, retired_at, retired_reason, retired_by FROM owners")
        ).all() == [("A", "13800001111", None, None, None, None, None)]
        assert connection.execute(text("SELECT owner_id, closed_at, closed_reason FROM conversation_links")).all() == [
            (1, None, None)
        ]
        assert connection.execute(text("SELECT owner_id FROM payment_promises")).scalar_one() == 1
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), models.Base.metadata)
        assert [entry for entry in diff if "owners" in str(entry) or "conversation_links" in str(entry)] == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:  # enforcement is back on after the migration
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    with engine.begin() as connection:  # a former owner and a current one may share the unit's phone
        connection.execute(text("UPDATE owners SET retired_at = CURRENT_TIMESTAMP, retired_reason = 'ROSTER'"))
        connection.execute(text("INSERT INTO owners (id, unit_id, name, phone) VALUES (2, 1, 'B', '13800001111')"))
        connection.execute(text("DELETE FROM owners WHERE id = 2"))
    migrate.downgrade(database_url, "0013")
    inspector = inspect(engine)
    assert "retired_at" not in {column["name"] for column in inspector.get_columns("owners")}
    assert "closed_at" not in {column["name"] for column in inspector.get_columns("conversation_links")}
    assert [c["name"] for c in inspector.get_unique_constraints("owners")] == ["uq_owners_unit_phone"]
    migrate.upgrade(database_url)
