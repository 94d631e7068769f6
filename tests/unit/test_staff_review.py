"""The daily review screen, its JSON API and its CSV / XLSX exports (apps/staff/review.py) on SQLite and
PostgreSQL: the values shown and exported (parsed back), roles, and the audit rows each view and export writes.
Owners' messages are written by Rasa's own SQLTrackerStore."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Dict, Iterator, List

import pytest
from openpyxl import load_workbook

from apps.staff.review import EXPORT_HEADER, export_rows
from bot import clock
from bot.conversations.handles import handle_of
from bot.db.session import session_scope
from bot.db.staff_models import StaffRole
from bot.services import review
from tests.unit.test_review import NOW, make_records, write_messages
from tests.unit.test_staff_app import app, client, local_settings, log_in, staff_db  # noqa: F401  (fixtures)
from tests.unit.test_staff_screens import as_user, audit_of  # noqa: F401  (fixtures)
from tests.unit.test_transcripts import domain, save, tracker_store  # noqa: F401  (fixtures)

DAY = NOW.date()


@pytest.fixture
def reviewed(staff_db: str, tracker_store: Any, domain: Any) -> Iterator[Dict[str, Any]]:  # noqa: F811
    """The review estate (tests/unit/test_review.py) under the staff users, with the clock frozen at NOW."""
    write_messages(tracker_store, domain)
    ids = make_records(staff_db)
    ids["url"] = staff_db
    with session_scope(staff_db) as session:
        from bot.db.staff_models import AuditEntry

        session.execute(AuditEntry.__table__.delete())
    with clock.frozen(NOW):
        yield ids


def expected_rows(ids: Dict[str, Any]) -> List[List[str]]:
    wang = [
        ids["wang_unit"], "王建国", "13812346688", "网页聊天",
        "09:00 嫌物业费贵：物业费太贵了\n09:01 暖气问题：暖气也不热",
        f"{ids['p_today']} 800.00元 2026-11-30前 已兑现",
        f"{ids['e_wang']} 要求人工 已解决",
    ]  # fmt: skip
    zhang = [
        ids["zhang_unit"], "张伟", "13700001111", "微信公众号",
        "00:30 晚点再交：下个月再交",
        f"{ids['p_zhang']} 3600.00元 2026-12-05前 待兑现",
        "",
    ]  # fmt: skip
    anon = ["—", f"未核实（{handle_of('anon-1')}）", "", "网页聊天", "23:30 嫌物业费贵：收费太贵", "", f"{ids['e_anon']} 机器人无法处理 待机器人处理"]
    return sorted([wang, zhang], key=lambda row: row[0]) + [anon]


def test_the_review_page_shows_the_charts_container_and_the_days_list(reviewed: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    page = as_user("zhao").get("/review")
    assert page.status_code == 200
    assert "即将上线" not in page.text
    assert '<script src="/static/vendor/echarts.min.js"></script>' in page.text
    assert '<script src="/static/review.js"></script>' in page.text
    assert 'data-api="/api/review?days=14"' in page.text
    for row in expected_rows(reviewed):
        for value in row:
            assert value.replace("\n", "") in page.text.replace("\n", "")
    assert 'href="/review/export.csv?day=2026-11-24"' in page.text
    assert 'href="/review/export.xlsx?day=2026-11-24"' in page.text
    assert [(row["actor"], row["detail"]) for row in audit_of(reviewed["url"], "review_viewed")] == [
        ("zhao", {"day": "2026-11-24", "rows": 3})
    ]
    other_day = as_user("li").get("/review", params={"day": "2026-11-15"})
    assert other_day.status_code == 200 and "这一天没有业主" in other_day.text
    assert audit_of(reviewed["url"], "review_viewed")[-1]["detail"] == {"day": "2026-11-15", "rows": 0}


def test_the_vendored_chart_library_and_its_licence_are_served_locally(reviewed: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    browser = as_user("zhao")
    library = browser.get("/static/vendor/echarts.min.js")
    assert library.status_code == 200 and "echarts" in library.text[:5000].lower()
    assert "Apache License" in browser.get("/static/vendor/echarts.LICENSE").text
    assert browser.get("/static/review.js").status_code == 200


def test_the_review_api_returns_the_counts(reviewed: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    response = as_user("li").get("/api/review", params={"days": 14})
    assert response.status_code == 200
    body = response.json()
    days = [(dt.date(2026, 11, 11) + dt.timedelta(days=offset)).isoformat() for offset in range(14)]
    on_24th = [0] * 13 + [1]
    assert body["start"] == "2026-11-11" and body["end"] == "2026-11-24" and body["days"] == days
    assert body["objections"] == {
        "objection_fee_too_high": [0] * 13 + [2],
        "objection_heating": on_24th,
        "objection_pay_later": on_24th,
        "objection_poor_service": [0] * 12 + [1, 0],
    }
    assert body["escalations_by_reason"] == {"fallback": 2, "request_human": 1, "threaten_escalation": 1}
    assert body["promises"] == {"made": 3, "kept": 1, "broken": 1, "open": 1}
    assert body["repairs_by_item"] == {"暖气": 2, "电梯": 1}
    assert body["first_response"] == {"count": 3, "median_minutes": 4.0, "p90_minutes": 10.0}
    assert body["resolution"] == {"count": 2, "median_minutes": 75.0, "p90_minutes": 120.0}
    assert body["labels"]["intents"]["objection_heating"] == "暖气问题"
    assert [(row["actor"], row["detail"]) for row in audit_of(reviewed["url"], "review_viewed")] == [
        ("li", {"via": "api", "start": "2026-11-11", "end": "2026-11-24"})
    ]
    short = as_user("zhao").get("/api/review", params={"days": 2, "end": "2026-11-23"}).json()
    assert short["days"] == ["2026-11-22", "2026-11-23"] and short["objections"] == {"objection_poor_service": [0, 1]}
    assert as_user("zhao").get("/api/review", params={"days": 0}).status_code == 422


def test_the_csv_export_is_utf8_with_a_bom_and_the_exact_rows(reviewed: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    response = as_user("zhao").get("/review/export.csv", params={"day": "2026-11-24"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert rows == [list(EXPORT_HEADER), *expected_rows(reviewed)]
    assert [(row["actor"], row["detail"]) for row in audit_of(reviewed["url"], "review_exported")] == [
        ("zhao", {"day": "2026-11-24", "format": "csv", "rows": 3})
    ]


def test_the_xlsx_export_has_the_exact_rows(reviewed: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    response = as_user("li").get("/review/export.xlsx", params={"day": "2026-11-24"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "2026-11-24"
    rows = [[value if value is not None else "" for value in row] for row in sheet.iter_rows(values_only=True)]
    assert rows == [list(EXPORT_HEADER), *expected_rows(reviewed)]
    assert [(row["actor"], row["detail"]) for row in audit_of(reviewed["url"], "review_exported")] == [
        ("li", {"day": "2026-11-24", "format": "xlsx", "rows": 3})
    ]


def test_a_collector_and_anonymous_callers_are_refused(reviewed: Dict[str, Any], as_user: Any, client: Any) -> None:  # noqa: F811
    collector = as_user("wang")
    for path in ("/review", "/review/export.csv", "/review/export.xlsx", "/api/review"):
        assert collector.get(path).status_code == 403, path
    assert collector.get("/api/review").json() == {"detail": "forbidden"}
    assert client.get("/api/review").status_code == 401
    assert client.get("/review/export.csv", follow_redirects=False).status_code == 303
    assert audit_of(reviewed["url"], "review_viewed") == [] and audit_of(reviewed["url"], "review_exported") == []


def test_phones_are_masked_for_collectors_in_the_export_rows(reviewed: Dict[str, Any]) -> None:
    with session_scope(reviewed["url"]) as session:
        lines = review.day_list(session, day=DAY)
    phones = [row[2] for row in export_rows(lines, role=StaffRole.COLLECTOR)]
    assert sorted(phones) == sorted(["138****6688", "137****1111", ""])
    assert [row[2] for row in export_rows(lines, role=StaffRole.SUPERVISOR)] == [row[2] for row in expected_rows(reviewed)]
