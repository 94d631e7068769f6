"""The QA screen (/quality, /quality.csv) on SQLite and PostgreSQL: supervisors and managers only, the
filters, the chart's counts from the vendored ECharts, the CSV with handles and never sender ids, the nav and
the audit rows."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from typing import Any, Dict

import pytest

from bot import clock
from bot.conversations import outbox
from bot.conversations.handles import handle_of
from bot.db import audit, models
from bot.db.models import OutboxKind, OutboxState
from bot.db.session import session_scope
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    local_settings,
    staff_db,
)
from tests.unit.test_staff_screens import as_user, audit_of  # noqa: F401  (fixtures)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
WEB = "web-quality-page-3c1d"
WX = "oWx-quality-page-openid-88"
RANGE = {"day_from": "2026-11-23", "day_to": "2026-11-24"}


@pytest.fixture
def findings_db(staff_db: str) -> Dict[str, Any]:  # noqa: F811
    """A refused reply by the collector and a flagged reply sent by the supervisor, on 2026-11-24."""
    with clock.frozen(dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)), session_scope(staff_db) as session:
        audit.record(
            session, actor="wang", action="staff_reply_refused", target=handle_of(WEB),
            detail={"category": "utilities", "reason": "不得以停水相逼。", "text": "再不交就停你家水", "handle": handle_of(WEB)},
        )  # fmt: skip
    with clock.frozen(dt.datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)), session_scope(staff_db) as session:
        entry = outbox.enqueue(
            session, sender_id=WX, channel="wechat", kind=OutboxKind.TEXT, text="再不交物业费，下周就停您家的水",
            staff="zhao",
        )  # fmt: skip
        session.get(models.OutboxMessage, entry.id).state = OutboxState.DELIVERED
    return {"url": staff_db}


def rows_of(page: str) -> list[str]:
    return re.findall(r'<tr data-kind="([a-z_]+)">', page)


def test_collectors_get_403_and_no_nav_entry(as_user: Any, findings_db: Dict[str, Any]) -> None:  # noqa: F811
    wang = as_user("wang")
    assert wang.get("/quality", params=RANGE).status_code == 403
    assert wang.get("/quality.csv", params=RANGE).status_code == 403
    assert 'href="/quality"' not in wang.get("/").text
    assert audit_of(findings_db["url"], "quality_viewed") == []
    assert audit_of(findings_db["url"], "quality_exported") == []
    for username in ("zhao", "li"):
        home = as_user(username).get("/").text
        assert '<a href="/quality">质检</a>' in home


def test_the_page_renders_the_findings_the_chart_and_the_export_link(
    as_user: Any,  # noqa: F811
    findings_db: Dict[str, Any],
) -> None:
    page = as_user("zhao").get("/quality", params=RANGE)
    assert page.status_code == 200
    text = page.text
    assert "<h1>质检</h1>" in text and 'aria-current="page">质检</a>' in text
    assert rows_of(text) == ["staff_refused", "staff_flagged"]
    assert f'<a href="/conversations/{handle_of(WEB)}">{handle_of(WEB)}</a>' in text
    assert f'<a href="/conversations/{handle_of(WX)}">{handle_of(WX)}</a>' in text
    assert "员工回复被拦截：再不交就停你家水。不得以停水相逼。" in text and "停水停电停暖" in text
    assert "赵主管" in text and "王小明" in text
    assert WEB not in text and WX not in text
    chart = json.loads(html.unescape(re.search(r"data-chart='([^']*)'", text).group(1)))
    assert chart["days"] == ["2026-11-23", "2026-11-24"]
    assert {line["kind"]: line["counts"] for line in chart["series"]} == {
        "staff_refused": [0, 1],
        "staff_flagged": [0, 1],
        "owner_threat": [0, 0],
        "unanswered": [0, 0],
        "promise_unconfirmed": [0, 0],
    }
    assert '<script src="/static/vendor/echarts.min.js"></script>' in text
    assert '<script src="/static/quality.js"></script>' in text and "cdn" not in text.lower()
    assert 'href="/quality.csv?day_from=2026-11-23&amp;day_to=2026-11-24"' in text
    script = as_user("li").get("/static/quality.js")
    assert script.status_code == 200 and "echarts.init" in script.text
    [viewed] = audit_of(findings_db["url"], "quality_viewed")
    assert viewed["actor"] == "zhao" and viewed["detail"] == {
        "start": "2026-11-23",
        "end": "2026-11-24",
        "rows": 2,
    }


def test_the_filters_narrow_the_list(as_user: Any, findings_db: Dict[str, Any]) -> None:  # noqa: F811
    li = as_user("li")
    assert rows_of(li.get("/quality", params={**RANGE, "kind": "staff_flagged"}).text) == ["staff_flagged"]
    assert rows_of(li.get("/quality", params={**RANGE, "staff": "wang"}).text) == ["staff_refused"]
    assert rows_of(li.get("/quality", params={**RANGE, "category": "utilities"}).text) == [
        "staff_refused",
        "staff_flagged",
    ]
    assert rows_of(li.get("/quality", params={**RANGE, "category": "shaming"}).text) == []
    assert rows_of(li.get("/quality", params={"day_from": "2026-11-25", "day_to": "2026-11-25"}).text) == []
    filtered = li.get("/quality", params={**RANGE, "kind": "", "category": "", "staff": "zhao"}).text
    assert rows_of(filtered) == ["staff_flagged"] and '<option value="zhao" selected>' in filtered
    assert li.get("/quality", params={**RANGE, "kind": "nonsense"}).status_code == 400
    assert li.get("/quality", params={"day_from": "2026-11-25", "day_to": "2026-11-20"}).status_code == 400
    assert li.get("/quality", params={"day_from": "2026-01-01", "day_to": "2026-11-25"}).status_code == 400
    assert li.get("/quality", params={"day_from": "yesterday"}).status_code == 400
    details = [row["detail"] for row in audit_of(findings_db["url"], "quality_viewed")]
    assert details[:2] == [
        {"start": "2026-11-23", "end": "2026-11-24", "kind": "staff_flagged", "rows": 1},
        {"start": "2026-11-23", "end": "2026-11-24", "staff": "wang", "rows": 1},
    ]


def test_the_csv_names_conversations_by_handle_never_by_sender_id(
    as_user: Any,  # noqa: F811
    findings_db: Dict[str, Any],
) -> None:
    response = as_user("zhao").get("/quality.csv", params=RANGE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    assert WEB not in body and WX not in body
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows == [
        ["时间", "类型", "类别", "会话", "员工", "编号", "摘要", "会话记录"],
        [
            "2026-11-24 10:00", "员工消息被拦截", "停水停电停暖", handle_of(WEB), "wang", "",
            "员工回复被拦截：再不交就停你家水。不得以停水相逼。", f"/conversations/{handle_of(WEB)}",
        ],
        [
            "2026-11-24 12:00", "员工消息违规已发出", "停水停电停暖", handle_of(WX), "zhao", "",
            rows[2][6], f"/conversations/{handle_of(WX)}",
        ],
    ]  # fmt: skip
    assert rows[2][6].startswith("员工回复已送达，但含违规内容：再不交物业费，下周就停您家的水。")
    only_wang = list(
        csv.reader(io.StringIO(as_user("li").get("/quality.csv", params={**RANGE, "staff": "wang"}).text))
    )
    assert [row[3] for row in only_wang[1:]] == [handle_of(WEB)]
    exported = audit_of(findings_db["url"], "quality_exported")
    assert [(row["actor"], row["detail"]) for row in exported] == [
        ("zhao", {"start": "2026-11-23", "end": "2026-11-24", "format": "csv", "rows": 2}),
        ("li", {"start": "2026-11-23", "end": "2026-11-24", "staff": "wang", "format": "csv", "rows": 1}),
    ]
