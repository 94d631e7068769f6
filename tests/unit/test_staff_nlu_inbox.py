"""The NLU inbox screen on SQLite and PostgreSQL: who may see it, what it lists, the decision stored and
audited, and CSRF."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import models
from bot.db.session import session_scope
from tests.unit.test_nlu_inbox import conversation, domain, store  # noqa: F401  (fixtures)
from tests.unit.test_staff_app import app, client, csrf_of, log_in, staff_db  # noqa: F401  (fixtures)
from tests.unit.test_staff_screens import audit_of


def test_a_collector_may_not_open_the_inbox(client: TestClient) -> None:  # noqa: F811
    assert log_in(client, "wang").status_code == 303
    assert client.get("/nlu").status_code == 403
    assert 'href="/nlu"' not in client.get("/").text


def test_a_supervisor_sees_the_unsure_messages_and_corrects_one(
    client: TestClient, staff_db: str, conversation: Any  # noqa: F811
) -> None:
    assert log_in(client, "zhao").status_code == 303
    page = client.get("/nlu")
    assert page.status_code == 200
    assert 'href="/nlu"' in page.text
    assert "3栋2单元501那个事咋整" in page.text and "额" in page.text and "暖气不热" not in page.text
    rows = [int(x) for x in re.findall(r"<tr data-id=\"(\d+)\"", page.text)]
    fallback = rows[1]
    token = csrf_of(page.text)

    refused = client.post(f"/nlu/{fallback}", data={"intent": "report_repair"}, follow_redirects=False)
    assert refused.status_code == 403
    unknown = client.post(f"/nlu/{fallback}", data={"intent": "bogus", "csrf_token": token}, follow_redirects=False)
    assert unknown.status_code == 400 and "请从列表里选择一个意图" in unknown.text

    done = client.post(
        f"/nlu/{fallback}", data={"intent": "report_repair", "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/nlu"
    dismissed = client.post(f"/nlu/{rows[0]}", data={"intent": "__dismiss__", "csrf_token": token}, follow_redirects=False)
    assert dismissed.status_code == 303
    assert "没有待审的消息" in client.get("/nlu").text

    with session_scope(staff_db) as session:
        stored = session.execute(select(models.NluCorrection).order_by(models.NluCorrection.event_id)).scalars().all()
        assert [(r.event_id, r.intent, r.decision, r.decided_by) for r in stored] == [
            (rows[1], "report_repair", models.NluDecision.CORRECTED, "zhao"),
            (rows[0], None, models.NluDecision.DISMISSED, "zhao"),
        ]
    decided = audit_of(staff_db, "nlu_decided")
    assert [(a["actor"], a["target"], a["detail"]["intent"]) for a in decided] == [
        ("zhao", f"event:{rows[1]}", "report_repair"),
        ("zhao", f"event:{rows[0]}", None),
    ]
    assert decided[0]["detail"]["text"] == "3栋2单元501那个事咋整"
    assert [a["detail"] for a in audit_of(staff_db, "nlu_inbox_viewed")][:1] == [{"rows": 2}]
