"""Full phone numbers on the call list (催缴电话): a collector sees only the numbers of tasks assigned to them,
supervisors and managers any, nobody more than STAFF_PHONE_REVEALS_PER_HOUR an hour; tasks are assigned when
made and reassigned by supervisors (bot.reminders.calls, apps/staff/reminders.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import select

from bot import clock
from bot.db import models
from bot.db.reminder_models import CallTask
from bot.db.session import session_scope
from bot.db.staff_models import StaffRole, StaffUser
from bot.reminders import calls
from bot.services import staff_users
from bot.settings import get_settings
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    PASSWORD,
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import as_user, at, audit_of, estate, owner_named  # noqa: F401  (fixtures)

WANG_PHONE, ZHANG_PHONE = "13812346688", "13700001111"
NOT_ASSIGNED = "这通电话不是分派给您的，不能查看完整号码"
TOO_MANY = "您这一小时查看完整号码的次数已经达到上限（2次）"


@pytest.fixture(autouse=True)
def two_reveals_an_hour(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STAFF_PHONE_REVEALS_PER_HOUR", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def add_collector(url: str, username: str, *, active: bool = True) -> None:
    with session_scope(url) as session:
        user = staff_users.create_user(
            session, username=username, password=PASSWORD, role=StaffRole.COLLECTOR, display_name=username, actor="cli:test"
        )
        user.active = active


def tasks(url: str) -> Dict[str, int]:
    """One open call task for 王建国 (made while wang is the only collector) and one for 张伟 (when chen is too)."""
    with clock.frozen(at(1)), session_scope(url) as session:
        wang = owner_named(session, "王建国")
        first = calls.create(session, unit_id=wang.unit_id, owner_id=wang.id, reason="no_push_channel")
        ids = {"wang_task": int(first.id)}
    add_collector(url, "chen")
    with clock.frozen(at(2)), session_scope(url) as session:
        zhang = owner_named(session, "张伟")
        second = calls.create(session, unit_id=zhang.unit_id, owner_id=zhang.id, reason="no_push_channel")
        ids["zhang_task"] = int(second.id)
    return ids


def assignees(url: str) -> List[Any]:
    with session_scope(url) as session:
        return [(t.id, t.assignee) for t in session.execute(select(CallTask).order_by(CallTask.id)).scalars()]


def test_tasks_go_to_the_owners_collector_else_the_least_busy(estate: Dict[str, Any]) -> None:  # noqa: F811
    url = estate["url"]
    ids = tasks(url)
    # wang was the only collector for the first; chen had no open task when the second was made.
    assert assignees(url) == [(ids["wang_task"], "wang"), (ids["zhang_task"], "chen")]
    with clock.frozen(at(3)), session_scope(url) as session:
        wang = owner_named(session, "王建国")
        again = calls.create(session, unit_id=wang.unit_id, owner_id=wang.id, reason="wechat_error_45015")
        assert again.assignee == "wang"  # the collector who had this owner's last task
        session.execute(select(StaffUser).where(StaffUser.username == "wang")).scalar_one().active = False
        session.flush()
        assert calls.responsible_collector(session, owner_id=int(wang.id)) == "chen"  # deactivated: someone else
        assert calls.collectors(session) == ["chen"]
    add_collector(url, "sun", active=False)
    with session_scope(url) as session:
        assert calls.collectors(session) == ["chen"]


def test_a_collector_sees_only_the_numbers_of_their_own_tasks(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = tasks(url)
    chen = as_user("chen")
    with clock.frozen(at(5)):
        page = chen.get("/calls")
    assert page.status_code == 200 and WANG_PHONE not in page.text and ZHANG_PHONE not in page.text
    assert f'action="/calls/{ids["zhang_task"]}/reveal"' in page.text  # the button only on chen's own task
    assert f'action="/calls/{ids["wang_task"]}/reveal"' not in page.text
    assert "/assign" not in page.text  # collectors do not assign
    token = csrf_of(page.text)
    with clock.frozen(at(6)):
        refused = chen.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": token})
        shown = chen.post(f"/calls/{ids['zhang_task']}/reveal", data={"csrf_token": token})
    assert refused.status_code == 403 and NOT_ASSIGNED in refused.text and WANG_PHONE not in refused.text
    assert shown.status_code == 200 and ZHANG_PHONE in shown.text and WANG_PHONE not in shown.text
    assert audit_of(url, "call_phone_reveal_refused") == [
        {"at": at(6), "actor": "chen", "target": f"call:{ids['wang_task']}", "detail": {"task_id": ids["wang_task"], "reason": "not_assigned"}}
    ]
    with session_scope(url) as session:
        zhang_id = int(owner_named(session, "张伟").id)
    assert audit_of(url, "call_phone_revealed") == [
        {"at": at(6), "actor": "chen", "target": f"call:{ids['zhang_task']}", "detail": {"task_id": ids["zhang_task"], "owner_id": zhang_id}}
    ]
    with session_scope(url) as session:  # the refusal counted nothing: one reveal in chen's hour
        keys = [row.key for row in session.execute(select(models.RateLimitHit)).scalars()]
    assert keys == ["phone-reveal:chen"]


def test_reveals_are_limited_per_hour_for_everyone(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = tasks(url)
    zhao = as_user("zhao")  # a supervisor may reveal any task's number, as often as the limit allows
    token = csrf_of(zhao.get("/calls").text)
    with clock.frozen(at(10)):
        first = zhao.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": token})
    with clock.frozen(at(40)):
        second = zhao.post(f"/calls/{ids['zhang_task']}/reveal", data={"csrf_token": token})
        third = zhao.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": token})
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429 and TOO_MANY in third.text and third.headers["Retry-After"] == "3600"
    assert [row["detail"] for row in audit_of(url, "call_phone_reveal_refused")] == [
        {"task_id": ids["wang_task"], "reason": "too_many"}
    ]
    with clock.frozen(at(71)):  # an hour after the first (not the second): one more fits
        assert zhao.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": token}).status_code == 200
        assert zhao.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": token}).status_code == 429
    assert len(audit_of(url, "call_phone_revealed")) == 3
    wang = as_user("wang")  # each person has their own hour
    with clock.frozen(at(72)):
        assert wang.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": csrf_of(wang.get("/calls").text)}).status_code == 200


def test_supervisors_reassign_open_tasks_to_active_collectors(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    ids = tasks(url)
    zhao, wang = as_user("zhao"), as_user("wang")
    page = zhao.get("/calls")
    assert f'action="/calls/{ids["wang_task"]}/assign"' in page.text and '<option value="chen"' in page.text
    token = csrf_of(page.text)
    with clock.frozen(at(20)):
        assert wang.post(f"/calls/{ids['wang_task']}/assign", data={"csrf_token": csrf_of(wang.get("/calls").text), "assignee": "wang"}).status_code == 403
        assert zhao.post(f"/calls/{ids['wang_task']}/assign", data={"assignee": "chen"}).status_code == 403  # no CSRF
        moved = zhao.post(f"/calls/{ids['wang_task']}/assign", data={"csrf_token": token, "assignee": "chen"}, follow_redirects=False)
        for bad in ("zhao", "nobody", ""):  # a supervisor, an unknown name, none: not an active collector
            refused = zhao.post(f"/calls/{ids['wang_task']}/assign", data={"csrf_token": token, "assignee": bad})
            assert refused.status_code == 400 and "请选择一位在职的催费员" in refused.text
        assert zhao.post("/calls/999999/assign", data={"csrf_token": token, "assignee": "chen"}).status_code == 404
    assert moved.status_code == 303 and moved.headers["location"] == "/calls"
    assert assignees(url) == [(ids["wang_task"], "chen"), (ids["zhang_task"], "chen")]
    assert audit_of(url, "call_assigned") == [
        {"at": at(20), "actor": "zhao", "target": f"call:{ids['wang_task']}", "detail": {"task_id": ids["wang_task"], "assignee": "chen"}}
    ]
    with clock.frozen(at(21)):  # wang no longer holds it: no number for wang
        assert wang.post(f"/calls/{ids['wang_task']}/reveal", data={"csrf_token": csrf_of(wang.get("/calls").text)}).status_code == 403
        done = wang.post(f"/calls/{ids['wang_task']}/done", data={"csrf_token": csrf_of(wang.get("/calls").text), "note": "已联系"})
        assert done.status_code == 200
        assert zhao.post(f"/calls/{ids['wang_task']}/assign", data={"csrf_token": token, "assignee": "chen"}).status_code == 409
