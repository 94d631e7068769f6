"""The staff screens of reminders (提醒计划: supervisors and managers, cancel with CSRF, audited), the call list
(催缴电话: everyone, done with a note) and the reminder history on the owner page, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict

from sqlalchemy import select

from bot import clock
from bot.db import models
from bot.db.reminder_models import CallTask, CallTaskState, Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.reminders import calls, schedule
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import as_user, at, audit_of, estate  # noqa: F401  (fixtures)


def _schedule(url: str, number: str) -> Dict[str, int]:
    with clock.frozen(at(1)), session_scope(url) as session:
        promise = session.execute(select(models.PaymentPromise).where(models.PaymentPromise.number == number)).scalar_one()
        rows = schedule.schedule_for_promise(session, promise=promise)
        task = calls.create(session, unit_id=rows[0].unit_id, owner_id=rows[0].owner_id, reason="no_push_channel")
        return {"day_before": int(rows[0].id), "due_morning": int(rows[1].id), "task": int(task.id), "owner": int(rows[0].owner_id)}


def test_reminders_are_listed_and_cancelled_by_a_supervisor_not_a_collector(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = _schedule(url, estate["promise"])
    zhao, wang = as_user("zhao"), as_user("wang")
    with clock.frozen(at(5)):
        assert wang.get("/reminders").status_code == 403
        page = zhao.get("/reminders")
    assert page.status_code == 200 and "即将上线" not in page.text
    assert "到期前一天提醒" in page.text and "到期当天提醒" in page.text and "待发送" in page.text
    assert "3-2-501" in page.text and "网页聊天" in page.text and "2026-11-29 10:00" in page.text
    token = csrf_of(page.text)
    with clock.frozen(at(6)):
        assert zhao.post(f"/reminders/{ids['day_before']}/cancel").status_code == 403  # no CSRF token
        assert wang.post(f"/reminders/{ids['day_before']}/cancel", data={"csrf_token": csrf_of(wang.get("/calls").text)}).status_code == 403
        done = zhao.post(f"/reminders/{ids['day_before']}/cancel", data={"csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/reminders"
        again = zhao.post(f"/reminders/{ids['day_before']}/cancel", data={"csrf_token": token}, follow_redirects=False)
        assert again.status_code == 409
        assert zhao.post("/reminders/999999/cancel", data={"csrf_token": token}).status_code == 404
    with session_scope(url) as session:
        cancelled = session.get(Reminder, ids["day_before"])
        untouched = session.get(Reminder, ids["due_morning"])
    assert (cancelled.state, cancelled.reason, cancelled.cancelled_by) == (ReminderState.CANCELLED, "staff", "zhao")
    assert untouched.state is ReminderState.SCHEDULED
    assert audit_of(url, "reminder_cancelled") == [
        {"at": at(6), "actor": "zhao", "target": f"reminder:{ids['day_before']}", "detail": {"reminder_id": ids["day_before"]}}
    ]
    assert [row["detail"] for row in audit_of(url, "reminders_viewed")] == [{"status": "pending", "rows": 2}]
    with clock.frozen(at(7)):
        not_sent = zhao.get("/reminders", params={"status": "not_sent"}).text
    assert "已取消" in not_sent and "员工取消" in not_sent and "（zhao）" in not_sent


def test_the_call_list_for_every_role_done_with_a_note(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = _schedule(url, estate["promise"])
    wang = as_user("wang")
    with clock.frozen(at(5)):
        page = wang.get("/calls")
    assert page.status_code == 200 and "即将上线" not in page.text
    assert "王建国" in page.text and "该渠道不能主动发消息" in page.text
    assert "138****6688" in page.text and "13812346688" not in page.text  # masked for a collector
    token = csrf_of(page.text)
    with clock.frozen(at(8)):
        assert wang.post(f"/calls/{ids['task']}/done", data={"csrf_token": token, "note": " "}).status_code == 400
        assert wang.post(f"/calls/{ids['task']}/done", data={"note": "无令牌"}).status_code == 403
        done = wang.post(f"/calls/{ids['task']}/done", data={"csrf_token": token, "note": "业主说周五交"}, follow_redirects=False)
        assert done.status_code == 303
        assert wang.post(f"/calls/{ids['task']}/done", data={"csrf_token": token, "note": "again"}).status_code == 409
    with session_scope(url) as session:
        task = session.get(CallTask, ids["task"])
    assert (task.state, task.note, task.closed_by) == (CallTaskState.DONE, "业主说周五交", "wang")
    assert audit_of(url, "call_done") == [
        {"at": at(8), "actor": "wang", "target": f"call:{ids['task']}", "detail": {"record_id": ids["task"], "text": "业主说周五交"}}
    ]
    with clock.frozen(at(9)):
        assert "王建国" not in wang.get("/calls").text
        assert "业主说周五交" in wang.get("/calls", params={"status": "done"}).text
    manager = as_user("li")
    assert "13812346688" in manager.get("/calls", params={"status": "all"}).text


def test_the_owner_page_shows_the_reminder_history(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = _schedule(url, estate["promise"])
    with session_scope(url) as session:
        row = session.get(Reminder, ids["due_morning"])
        row.state, row.sent_at, row.delivered_via = ReminderState.SENT, dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc), "webchat_outbox"
    page = as_user("wang").get(f"/owners/{ids['owner']}")
    assert page.status_code == 200
    history = page.text[page.text.index('id="reminders"'):]
    assert "提醒记录" in page.text and "到期当天提醒" in history and "已发送" in history and "网页聊天" in history
    assert "2026-11-30 09:00" in history and ReminderPurpose.DAY_BEFORE.value not in history
