"""The records workflow (工单记录) on SQLite and PostgreSQL: repair orders, complaints and bill checks moved along
with an assignee and notes, instalment requests decided by a supervisor (never a collector) with the owner told
through the outbox, payment promises by how they stand on a frozen day, CSRF, and the audit rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List, Tuple, Type

import pytest
from sqlalchemy import select

from bot import clock, wording
from bot.casework import follow_up
from bot.casework.follow_up import PromiseBucket
from bot.casework.owner_view import RecordKind, stored_time
from bot.db import models
from bot.db.models import InstalmentStatus, PromiseStatus, RecordStatus
from bot.db.session import session_scope
from bot.services import owner_requests
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import as_user, at, audit_of, estate  # noqa: F401  (fixtures)


def record_id(url: str, model: Type[Any], number: str) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(model.id).where(model.number == number)).scalar_one())


def stored(url: str, model: Type[Any], key: int) -> Any:
    with session_scope(url) as session:
        row = session.get(model, key)
        session.expunge(row)
        return row


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A time the workflow stamped (naive on SQLite: the estate's zone), comparable with an aware one."""
    return stored_time(moment)


def stored_notes(url: str) -> List[Tuple[str, int, str, str]]:
    with session_scope(url) as session:
        rows = session.execute(select(models.RecordNote).order_by(models.RecordNote.id)).scalars()
        return [(row.record_type, row.record_id, row.author, row.text) for row in rows]


def outbox_of(url: str, sender: str) -> List[Tuple[str, str, str, str]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(models.OutboxMessage).where(models.OutboxMessage.sender_id == sender).order_by(models.OutboxMessage.id)
        ).scalars()
        return [(row.kind.value, row.channel, row.staff, row.text) for row in rows]


# --- the service ------------------------------------------------------------------------------------------


def test_transitions_assignee_and_notes_are_stored_and_invalid_ones_refused(estate: Dict[str, Any]) -> None:  # noqa: F811
    url = estate["url"]
    repair = record_id(url, models.RepairOrder, estate["repair"])
    complaint = record_id(url, models.Complaint, estate["complaint"])
    check = record_id(url, models.BillCheckRequest, estate["bill_check"])
    repairs = RecordKind.REPAIRS

    with clock.frozen(at(60)), session_scope(url) as session:
        with pytest.raises(follow_up.InvalidTransition, match="'open' cannot become 'done'"):
            follow_up.change_status(session, kind=repairs, record_id=repair, status="done", staff="wang")
        with pytest.raises(follow_up.WorkflowError) as unknown:
            follow_up.change_status(session, kind=repairs, record_id=repair, status="finished", staff="wang")
        assert unknown.value.code == "unknown_status"
        with pytest.raises(follow_up.RecordNotFound):
            follow_up.change_status(session, kind=repairs, record_id=999999, status="done", staff="wang")
    row = stored(url, models.RepairOrder, repair)
    assert (row.status, row.assignee, row.updated_at) == (RecordStatus.OPEN, None, None)

    with clock.frozen(at(61)), session_scope(url) as session:
        state = follow_up.change_status(session, kind=repairs, record_id=repair, status="in_progress", staff="wang")
        assert (state.status, state.number) == (RecordStatus.IN_PROGRESS, estate["repair"])
    row = stored(url, models.RepairOrder, repair)
    assert row.status is RecordStatus.IN_PROGRESS and as_utc(row.updated_at) == at(61)

    with clock.frozen(at(62)), session_scope(url) as session:
        with pytest.raises(follow_up.WorkflowError) as ghost:
            follow_up.set_assignee(session, kind=repairs, record_id=repair, assignee="ghost", staff="zhao")
        assert ghost.value.code == "unknown_assignee"
        follow_up.set_assignee(session, kind=repairs, record_id=repair, assignee="Wang", staff="zhao")
        note = follow_up.add_note(session, kind=repairs, record_id=repair, staff="wang", text="  已约师傅周六上门  ")
        assert (note.author, note.text, note.created_at) == ("wang", "已约师傅周六上门", at(62))
        with pytest.raises(follow_up.WorkflowError) as empty:
            follow_up.add_note(session, kind=repairs, record_id=repair, staff="wang", text="   ")
        assert empty.value.code == "bad_note"
    with clock.frozen(at(63)), session_scope(url) as session:
        follow_up.change_status(session, kind=repairs, record_id=repair, status="done", staff="wang")
        with pytest.raises(follow_up.InvalidTransition):
            follow_up.change_status(session, kind=repairs, record_id=repair, status="cancelled", staff="wang")
        with pytest.raises(follow_up.WorkflowError) as closed:
            follow_up.set_assignee(session, kind=repairs, record_id=repair, assignee="zhao", staff="zhao")
        assert closed.value.code == "closed"
        # Complaints and bill checks follow the same rules; open → cancelled is allowed.
        follow_up.change_status(session, kind=RecordKind.COMPLAINTS, record_id=complaint, status="cancelled", staff="zhao")
        with pytest.raises(follow_up.InvalidTransition):
            follow_up.change_status(session, kind=RecordKind.COMPLAINTS, record_id=complaint, status="open", staff="zhao")
        follow_up.change_status(session, kind=RecordKind.BILL_CHECKS, record_id=check, status="in_progress", staff="li")
        follow_up.add_note(session, kind=RecordKind.BILL_CHECKS, record_id=check, staff="li", text="财务核对中")
        detail = follow_up.record_detail(session, kind=repairs, record_id=repair)
        assert [note.text for note in detail.notes] == ["已约师傅周六上门"] and detail.next_statuses == ()
    row = stored(url, models.RepairOrder, repair)
    assert (row.status, row.assignee, as_utc(row.updated_at)) == (RecordStatus.DONE, "wang", at(63))
    assert stored(url, models.Complaint, complaint).status is RecordStatus.CANCELLED
    assert stored(url, models.BillCheckRequest, check).status is RecordStatus.IN_PROGRESS
    assert stored_notes(url) == [("repairs", repair, "wang", "已约师傅周六上门"), ("bill_checks", check, "li", "财务核对中")]


def test_a_collector_cannot_decide_a_supervisor_approves_and_the_owner_is_told(estate: Dict[str, Any]) -> None:  # noqa: F811
    url = estate["url"]
    request = record_id(url, models.InstalmentRequest, estate["instalment"])
    with session_scope(url) as session:
        with pytest.raises(follow_up.NotAllowed):
            follow_up.decide_instalment(session, request_id=request, approve=True, staff="wang", role="collector")
    row = stored(url, models.InstalmentRequest, request)
    assert (row.status, row.decided_by, row.decided_at) == (InstalmentStatus.PENDING, None, None)
    assert [kind for kind, *_ in outbox_of(url, "web-1")] == []

    with clock.frozen(at(90)), session_scope(url) as session:
        decision = follow_up.decide_instalment(
            session, request_id=request, approve=True, staff="zhao", role="supervisor", reason="欠费时间短，同意"
        )
        assert decision.notice is not None and decision.status is InstalmentStatus.APPROVED
    row = stored(url, models.InstalmentRequest, request)
    assert (row.status, row.decided_by, as_utc(row.decided_at), row.decision_note) == (
        InstalmentStatus.APPROVED, "zhao", at(90), "欠费时间短，同意",
    )  # fmt: skip
    text = (
        f"您好，您的物业费分期申请（编号{estate['instalment']}）已审核通过，请按您提出的方案（分三个月缴清）按期缴纳。"
        "如需调整，可以随时联系物业服务中心。"
    )
    assert outbox_of(url, "web-1") == [("text", "socketio", "zhao", text)]
    with session_scope(url) as session:
        with pytest.raises(follow_up.WorkflowError) as again:
            follow_up.decide_instalment(session, request_id=request, approve=False, staff="li", role="manager", reason="x")
        assert again.value.code == "already_decided"


def test_a_rejection_needs_a_reason_and_tells_it_to_the_owner(estate: Dict[str, Any]) -> None:  # noqa: F811
    url = estate["url"]
    request = record_id(url, models.InstalmentRequest, estate["instalment"])
    with session_scope(url) as session:
        with pytest.raises(follow_up.WorkflowError) as missing:
            follow_up.decide_instalment(session, request_id=request, approve=False, staff="li", role="manager")
        assert missing.value.code == "bad_reason"
    with clock.frozen(at(95)), session_scope(url) as session:
        follow_up.decide_instalment(
            session, request_id=request, approve=False, staff="li", role="manager", reason="欠费金额不大，建议一次缴清。"
        )
    row = stored(url, models.InstalmentRequest, request)
    assert (row.status, row.decided_by, as_utc(row.decided_at)) == (InstalmentStatus.REJECTED, "li", at(95))
    expected = wording.text("instalments.rejected", number=estate["instalment"], reason="欠费金额不大，建议一次缴清")
    assert outbox_of(url, "web-1") == [("text", "socketio", "li", expected)]
    assert "原因是：欠费金额不大，建议一次缴清。如有疑问" in expected


def test_promises_by_due_today_overdue_open_kept_and_broken_on_a_frozen_day(estate: Dict[str, Any]) -> None:  # noqa: F811
    url = estate["url"]
    with clock.frozen(at(0)), session_scope(url) as session:
        owner = estate["wang"]
        for message, due, status in [
            ("p-3", dt.date(2026, 11, 28), PromiseStatus.OPEN),
            ("p-4", dt.date(2026, 11, 20), PromiseStatus.KEPT),
            ("p-5", dt.date(2026, 11, 22), PromiseStatus.BROKEN),
        ]:
            made = owner_requests.create(
                session, models.PaymentPromise, message_id=message, sender_id=f"s-{message}", owner_id=owner,
                amount=Decimal("100.00"), due_date=due,
            )  # fmt: skip
            made.status = status
    numbers: Dict[str, str] = {}
    with session_scope(url) as session:
        for promise in session.execute(select(models.PaymentPromise)).scalars():
            numbers[promise.source_message_id] = promise.number
    day = dt.datetime(2026, 11, 30, 10, 0, tzinfo=at(0).tzinfo)
    with clock.frozen(day), session_scope(url) as session:
        buckets = {
            bucket.value: [numbers_of for numbers_of in (line.number for line in follow_up.promises(session, bucket=bucket))]
            for bucket in PromiseBucket
        }
        everything = [line.number for line in follow_up.promises(session)]
    by_message = {number: message for message, number in numbers.items()}
    assert {key: [by_message[number] for number in value] for key, value in buckets.items()} == {
        "due_today": ["p-1"],
        "overdue": ["p-3"],
        "open": ["p-2"],
        "kept": ["p-4"],
        "broken": ["p-5"],
    }
    assert [by_message[number] for number in everything] == ["p-4", "p-5", "p-3", "p-1", "p-2"]  # soonest due first


# --- the screens ------------------------------------------------------------------------------------------


def test_tabs_filters_and_detail_pages_are_shown_and_audited(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    wang = as_user("wang")
    repair = record_id(url, models.RepairOrder, estate["repair"])
    with clock.frozen(at(70)):
        page = wang.get("/records")
        assert page.status_code == 200 and "即将上线" not in page.text
        assert estate["repair"] in page.text and "暖气不热" in page.text and f'href="/records/repairs/{repair}"' in page.text
        for tab, shown in [("complaints", "保安态度差"), ("bill_checks", "十月电梯费多收"), ("instalments", "分三个月缴清")]:
            listed = wang.get("/records", params={"tab": tab})
            assert listed.status_code == 200 and shown in listed.text
        assert estate["repair"] not in wang.get("/records", params={"tab": "repairs", "status": "done"}).text
        # Promises by how they stand today (the buckets themselves: the service test above).
        later = wang.get("/records", params={"tab": "promises", "status": "open"}).text
        assert estate["promise"] in later and "未到期" in later and "800.00" in later
        assert estate["promise"] not in wang.get("/records", params={"tab": "promises", "status": "overdue"}).text
        detail = wang.get(f"/records/repairs/{repair}")
        assert detail.status_code == 200 and "更改状态" in detail.text and "添加备注" in detail.text
        # No status is chosen for the person: one click on 更改状态 must not cancel the repair.
        status_select = detail.text.split('name="status"')[1].split("</select>")[0]
        assert '<option value="" selected disabled>选择新状态…</option>' in status_select
        assert status_select.count("selected") == 1 and 'value="cancelled"' in status_select
        assert wang.get("/records/repairs/999999").status_code == 404
        assert wang.get("/records/promises/1").status_code == 404
    listed = audit_of(url, "records_listed")
    assert [(row["actor"], row["target"], row["detail"]["status"]) for row in listed] == [
        ("wang", "repairs", "active"),
        ("wang", "complaints", "active"),
        ("wang", "bill_checks", "active"),
        ("wang", "instalments", "pending"),
        ("wang", "repairs", "done"),
        ("wang", "promises", "open"),
        ("wang", "promises", "overdue"),
    ]
    assert audit_of(url, "record_viewed") == [
        {
            "at": at(70),
            "actor": "wang",
            "target": estate["repair"],
            "detail": {"kind": "repairs", "record_id": repair, "owner_id": estate["wang"]},
        }
    ]


def test_status_assignee_and_notes_through_the_forms_with_refusals_and_audit(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    wang = as_user("wang")
    repair = record_id(url, models.RepairOrder, estate["repair"])
    base = f"/records/repairs/{repair}"
    token = csrf_of(wang.get(base).text)
    with clock.frozen(at(80)):
        assert wang.post(f"{base}/status", data={"csrf_token": token, "status": ""}).status_code == 400  # the placeholder
        moved = wang.post(f"{base}/status", data={"csrf_token": token, "status": "in_progress"}, follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == base
        assigned = wang.post(f"{base}/assignee", data={"csrf_token": token, "assignee": "zhao"}, follow_redirects=False)
        assert assigned.status_code == 303
        noted = wang.post(f"{base}/notes", data={"csrf_token": token, "text": "已联系业主确认时间"}, follow_redirects=False)
        assert noted.status_code == 303
        # Refusals: a skipped step, an unknown assignee, an empty note, no CSRF token; nothing changes.
        back = wang.post(f"{base}/status", data={"csrf_token": token, "status": "open"})
        assert back.status_code == 409 and "不能改成这个状态" in back.text
        ghost = wang.post(f"{base}/assignee", data={"csrf_token": token, "assignee": "ghost"})
        assert ghost.status_code == 400 and "在职的员工" in ghost.text
        assert wang.post(f"{base}/notes", data={"csrf_token": token, "text": " "}).status_code == 400
        assert wang.post(f"{base}/status", data={"status": "done"}).status_code == 403
        assert wang.post(f"{base}/notes", data={"text": "无令牌"}).status_code == 403
    row = stored(url, models.RepairOrder, repair)
    assert (row.status, row.assignee, as_utc(row.updated_at)) == (RecordStatus.IN_PROGRESS, "zhao", at(80))
    assert stored_notes(url) == [("repairs", repair, "wang", "已联系业主确认时间")]
    page = wang.get(base).text
    assert "已联系业主确认时间" in page and "赵主管" in page and "处理中" in page
    expected = {
        "record_status_changed": {"kind": "repairs", "record_id": repair, "status": "in_progress"},
        "record_assigned": {"kind": "repairs", "record_id": repair, "assignee": "zhao"},
        "record_note_added": {"kind": "repairs", "record_id": repair, "text": "已联系业主确认时间"},
    }
    for action, detail in expected.items():
        assert audit_of(url, action) == [{"at": at(80), "actor": "wang", "target": estate["repair"], "detail": detail}]


def test_a_collector_cannot_approve_a_supervisor_can_and_the_owner_is_told(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    wang, zhao = as_user("wang"), as_user("zhao")
    request = record_id(url, models.InstalmentRequest, estate["instalment"])
    base = f"/records/instalments/{request}"
    collector_page = wang.get(base)
    assert collector_page.status_code == 200 and "批准" not in collector_page.text and "由客户主管或项目经理审批" in collector_page.text
    token = csrf_of(collector_page.text)
    assert wang.post(f"{base}/approve", data={"csrf_token": token, "reason": ""}).status_code == 403
    assert wang.post(f"{base}/reject", data={"csrf_token": token, "reason": "不行"}).status_code == 403
    row = stored(url, models.InstalmentRequest, request)
    assert (row.status, row.decided_by, row.decided_at, row.decision_note) == (InstalmentStatus.PENDING, None, None, None)
    assert outbox_of(url, "web-1") == []
    assert audit_of(url, "instalment_approved") == [] and audit_of(url, "instalment_rejected") == []

    supervisor_page = zhao.get(base).text
    assert "批准" in supervisor_page and "拒绝理由" in supervisor_page
    zhao_token = csrf_of(supervisor_page)
    assert zhao.post(f"{base}/approve", data={"reason": ""}).status_code == 403  # no CSRF token
    assert stored(url, models.InstalmentRequest, request).status is InstalmentStatus.PENDING
    refused = zhao.post(f"{base}/reject", data={"csrf_token": zhao_token, "reason": " "})
    assert refused.status_code == 400 and "拒绝时请填写理由" in refused.text
    with clock.frozen(at(100)):
        approved = zhao.post(f"{base}/approve", data={"csrf_token": zhao_token, "reason": "同意"}, follow_redirects=False)
        assert approved.status_code == 303 and approved.headers["location"] == base
    row = stored(url, models.InstalmentRequest, request)
    assert (row.status, row.decided_by, as_utc(row.decided_at), row.decision_note) == (
        InstalmentStatus.APPROVED, "zhao", at(100), "同意",
    )  # fmt: skip
    text = wording.text("instalments.approved", number=estate["instalment"], plan="分三个月缴清")
    assert outbox_of(url, "web-1") == [("text", "socketio", "zhao", text)]
    with session_scope(url) as session:
        outbox_id = session.execute(select(models.OutboxMessage.id)).scalar_one()
    assert audit_of(url, "instalment_approved") == [
        {
            "at": at(100),
            "actor": "zhao",
            "target": estate["instalment"],
            "detail": {"record_id": request, "reason": "同意", "outbox_id": outbox_id},
        }
    ]
    again = zhao.post(f"{base}/reject", data={"csrf_token": zhao_token, "reason": "再议"})
    assert again.status_code == 409 and "已经审批过了" in again.text
    page = zhao.get(base).text
    assert "已批准" in page and "赵主管" in page and 'action="/records/instalments' not in page
    assert len(outbox_of(url, "web-1")) == 1


# PostgreSQL only: SQLite sessions here begin IMMEDIATE, so a second writer cannot read before the first
# commits and the race cannot happen (the sequential case is in the test above).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_people_deciding_at_once_store_one_decision_and_one_notice(estate: Dict[str, Any]) -> None:  # noqa: F811
    url = estate["url"]
    assert url.startswith("postgresql")
    request = record_id(url, models.InstalmentRequest, estate["instalment"])
    with pytest.raises(follow_up.WorkflowError) as late, session_scope(url) as slow:
        assert slow.get(models.InstalmentRequest, request).status is InstalmentStatus.PENDING  # read before the other
        with clock.frozen(at(120)), session_scope(url) as fast:
            follow_up.decide_instalment(fast, request_id=request, approve=True, staff="zhao", role="supervisor")
        follow_up.decide_instalment(slow, request_id=request, approve=False, staff="li", role="manager", reason="不同意")
    assert late.value.code == "already_decided"
    row = stored(url, models.InstalmentRequest, request)
    assert (row.status, row.decided_by, as_utc(row.decided_at)) == (InstalmentStatus.APPROVED, "zhao", at(120))
    assert [staff for _, _, staff, _ in outbox_of(url, "web-1")] == ["zhao"]


def test_a_repair_page_shows_the_units_other_unfinished_repairs_of_the_same_item(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    first = record_id(url, models.RepairOrder, estate["repair"])
    with clock.frozen(at(90)), session_scope(url) as session:
        owner = session.get(models.RepairOrder, first).owner_id
        second = owner_requests.create(
            session, models.RepairOrder, message_id="r-2", sender_id="wx-wang", owner_id=owner, item="暖气",
            location="卧室", description="暖气片冰凉", preferred_time="周日",
        )  # fmt: skip
        other_item = owner_requests.create(
            session, models.RepairOrder, message_id="r-3", sender_id="wx-wang", owner_id=owner, item="水管",
            location="厨房", description="漏水", preferred_time="周日",
        )  # fmt: skip
        second_id, second_number, other_id = int(second.id), str(second.number), int(other_item.id)
    with session_scope(url) as session:
        detail = follow_up.record_detail(session, kind=RecordKind.REPAIRS, record_id=first)
        assert detail.same_fault == ((second_id, second_number),)
        assert follow_up.record_detail(session, kind=RecordKind.REPAIRS, record_id=other_id).same_fault == ()
    page = as_user("wang").get(f"/records/repairs/{first}").text
    assert "同一房号还有未完成的同类报修" in page and f'<a href="/records/repairs/{second_id}">{second_number}</a>' in page
    with session_scope(url) as session:
        session.get(models.RepairOrder, second_id).status = RecordStatus.DONE
    assert "同一房号还有未完成的同类报修" not in as_user("wang").get(f"/records/repairs/{first}").text
