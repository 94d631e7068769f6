"""The staff screens of reminders (提醒计划: supervisors and managers, cancel with CSRF, audited), the call list
(催缴电话: everyone, done with a note) and the reminder history on the owner page, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

import pytest
from sqlalchemy import select

from apps.staff import reminders as reminders_screen
from bot import clock
from bot.db import models
from bot.db.reminder_models import CallTask, CallTaskState, Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.reminders import calls, holidays, schedule
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
    assert "138****6688" in page.text and "13812346688" not in page.text  # masked until revealed
    assert f'action="/calls/{ids["task"]}/reveal"' in page.text and "显示号码" in page.text
    token = csrf_of(page.text)
    with clock.frozen(at(7)):
        assert wang.post(f"/calls/{ids['task']}/reveal").status_code == 403  # no CSRF token
        assert audit_of(url, "call_phone_revealed") == []
        shown = wang.post(f"/calls/{ids['task']}/reveal", data={"csrf_token": token}, follow_redirects=False)
    assert shown.status_code == 200 and "13812346688" in shown.text and "王建国" in shown.text
    assert 'href="tel:13812346688"' in shown.text  # tap to call, once revealed
    assert "tel:" not in wang.get("/calls").text  # masked again on the next look: nothing to tap
    assert audit_of(url, "call_phone_revealed") == [
        {"at": at(7), "actor": "wang", "target": f"call:{ids['task']}", "detail": {"task_id": ids["task"], "owner_id": ids["owner"]}}
    ]
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
        done_list = wang.get("/calls", params={"status": "done"}).text
        assert wang.post(f"/calls/{ids['task']}/reveal", data={"csrf_token": token}).status_code == 409  # done: stays masked
    assert "业主说周五交" in done_list and "138****6688" in done_list and "13812346688" not in done_list
    assert "显示号码" not in done_list
    assert len(audit_of(url, "call_phone_revealed")) == 1
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


@pytest.mark.parametrize("bad", [str(10**20), str(2**31), "0", "-1"])
def test_out_of_range_ids_are_refused_and_change_nothing(estate: Dict[str, Any], as_user: Any, bad: str) -> None:  # noqa: F811
    url = estate["url"]
    ids = _schedule(url, estate["promise"])
    zhao = as_user("zhao")
    token = csrf_of(zhao.get("/calls").text)
    with clock.frozen(at(6)):
        assert zhao.post(f"/reminders/{bad}/cancel", data={"csrf_token": token}).status_code == 404  # out of range: no such page
        assert zhao.post(f"/calls/{bad}/done", data={"csrf_token": token, "note": "打过了"}).status_code == 404
        assert zhao.post(f"/calls/{bad}/reveal", data={"csrf_token": token}).status_code == 404
    with session_scope(url) as session:
        assert [r.state for r in session.execute(select(Reminder).order_by(Reminder.id)).scalars()] == [ReminderState.SCHEDULED] * 2
        task = session.get(CallTask, ids["task"])
        assert (task.state, task.note, task.closed_by) == (CallTaskState.OPEN, None, None)
    assert audit_of(url, "reminder_cancelled") == [] and audit_of(url, "call_done") == []
    assert audit_of(url, "call_phone_revealed") == []


def test_history_lists_newest_first_with_pages(
    estate: Dict[str, Any], as_user: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    url = estate["url"]
    ids = _schedule(url, estate["promise"])
    monkeypatch.setattr(reminders_screen, "PAGE_SIZE", 2)
    with clock.frozen(at(1)), session_scope(url) as session:
        base = session.get(Reminder, ids["day_before"])
        for day in range(1, 6):  # five sent monthly notices, due on Nov 1..5
            session.add(
                Reminder(
                    owner_id=base.owner_id, unit_id=base.unit_id, purpose=ReminderPurpose.MONTHLY_BILL,
                    due_at=dt.datetime(2026, 11, day, 2, tzinfo=dt.timezone.utc), first_due_at=dt.datetime(2026, 11, day, 2, tzinfo=dt.timezone.utc),
                    state=ReminderState.SENT, sent_at=dt.datetime(2026, 11, day, 2, tzinfo=dt.timezone.utc),
                    dedupe_key=f"test:{day}", attempts=1, created_at=clock.utc_now(), channel="socketio", sender_id="web-1",
                )  # fmt: skip
            )
        sending = session.get(Reminder, ids["due_morning"])
        sending.state = ReminderState.SENDING
    for day in range(2, 5):  # three more call tasks, created later and later, then done
        with clock.frozen(at(day)), session_scope(url) as session:
            task = calls.create(session, unit_id=base.unit_id, owner_id=base.owner_id, reason="no_push_channel")
            calls.mark_done(session, task_id=int(task.id), actor="wang", note=f"第{day}通")
    zhao = as_user("zhao")
    with clock.frozen(at(5)):
        first = zhao.get("/reminders", params={"status": "sent"}).text
        second = zhao.get("/reminders", params={"status": "sent", "page": 2}).text
        third = zhao.get("/reminders", params={"status": "sent", "page": 3}).text
        sending_page = zhao.get("/reminders", params={"status": "sending"}).text
        calls_first = zhao.get("/calls", params={"status": "done"}).text
        calls_second = zhao.get("/calls", params={"status": "done", "page": 2}).text
        assert zhao.get("/calls", params={"page": 0}).status_code == 400
    assert _order(first, "2026-11-0") == ["2026-11-05", "2026-11-04"] and 'rel="next"' in first and 'rel="prev"' not in first
    assert _order(second, "2026-11-0") == ["2026-11-03", "2026-11-02"] and 'rel="next"' in second and 'rel="prev"' in second
    assert _order(third, "2026-11-0") == ["2026-11-01"] and 'rel="next"' not in third
    assert "发送中" in sending_page and f'data-id="{ids["due_morning"]}"' in sending_page
    assert f'data-id="{ids["day_before"]}"' not in sending_page
    assert [calls_first.index(f"第{n}通") for n in (4, 3)] == sorted(calls_first.index(f"第{n}通") for n in (4, 3))
    assert "第2通" not in calls_first and "第2通" in calls_second and "第4通" not in calls_second
    assert [row["detail"] for row in audit_of(url, "reminders_viewed")][:3] == [
        {"status": "sent", "rows": 2}, {"status": "sent", "rows": 2, "page": 2}, {"status": "sent", "rows": 1, "page": 3},
    ]


def _order(page: str, prefix: str) -> List[str]:
    """The due dates of the listed rows, in the order shown."""
    import re

    return [match[:10] for match in re.findall(r'<td class="nowrap due">(\d{4}-\d{2}-\d{2})', page) if match.startswith(prefix)]


HOLIDAYS_2027 = "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-02,holiday,元旦\n2027-02-13,workday,春节\n"  # test data


def test_a_missing_holiday_year_is_flagged_and_a_manager_loads_it(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = _schedule(url, estate["promise"])
    with session_scope(url) as session:  # the worker held one: its year (2027) has no schedule
        row = session.get(Reminder, ids["day_before"])
        row.state, row.reason = ReminderState.MOVED, holidays.SCHEDULE_MISSING
        row.due_at = dt.datetime(2027, 1, 4, 2, tzinfo=dt.timezone.utc)
    zhao, li = as_user("zhao"), as_user("li")
    page = zhao.get("/reminders").text
    assert 'data-missing-year="2027"' in page and "2027年的法定节假日安排尚未载入：1条提醒已暂停发送" in page
    assert 'action="/reminders/holidays"' not in page  # supervisors see, managers load
    refused = zhao.post("/reminders/holidays", data={"csrf_token": csrf_of(page), "source": "x", "schedule": HOLIDAYS_2027})
    assert refused.status_code == 403
    manager_page = li.get("/reminders").text
    assert 'action="/reminders/holidays"' in manager_page and "还没有载入任何年份的安排" in manager_page
    token = csrf_of(manager_page)
    assert li.post("/reminders/holidays", data={"source": "x", "schedule": HOLIDAYS_2027}).status_code == 403  # no CSRF
    bad = li.post("/reminders/holidays", data={"csrf_token": token, "source": "通知", "schedule": HOLIDAYS_2027 + "2027-02-30,holiday,春节\n"})
    assert bad.status_code == 400 and "row 5: &#39;2027-02-30&#39; is not a date" in bad.text and "整份都没有载入" in bad.text
    too_long = li.post("/reminders/holidays", data={"csrf_token": token, "source": "通知", "schedule": "x" * 20_001})
    assert too_long.status_code == 400
    no_source = li.post("/reminders/holidays", data={"csrf_token": token, "source": " ", "schedule": HOLIDAYS_2027})
    assert no_source.status_code == 400
    with session_scope(url) as session:
        assert holidays.loaded(session) == []
    with clock.frozen(at(30)):
        done = li.post("/reminders/holidays", data={"csrf_token": token, "source": "2027年安排", "schedule": HOLIDAYS_2027}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/reminders#holidays"
    with session_scope(url) as session:
        [schedule_row] = holidays.loaded(session)
        assert (schedule_row.year, schedule_row.source, schedule_row.loaded_by) == (2027, "2027年安排", "li")
        assert [(d.day, d.name) for d in holidays.days_of(session, 2027)] == [
            (dt.date(2027, 1, 1), "元旦"), (dt.date(2027, 1, 2), "元旦"), (dt.date(2027, 2, 13), "春节"),
        ]  # fmt: skip
    assert audit_of(url, "holidays_loaded") == [{
        "at": at(30), "actor": "li", "target": "holidays:2027",
        "detail": {"year": 2027, "source": "2027年安排", "holidays": 2, "workdays": 1, "replaced": False},
    }]  # fmt: skip
    listed = li.get("/reminders").text
    assert 'data-year="2027"' in listed and "2027年安排" in listed
