"""The retention job (bot/privacy/retention.py): what is older than its horizon goes, what is younger stays,
on SQLite and PostgreSQL; the worker's daily run applies it and logs it."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Dict, Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, text

from bot import clock
from bot.db import models
from bot.db.reminder_models import CallTask, CallTaskState
from bot.db.session import get_engine, session_scope
from bot.db.staff_models import AuditEntry, LoginOutcome, StaffLoginAttempt
from bot.owners import importer
from bot.privacy import retention
from bot.privacy.retention import RetentionPolicy
from bot.rasa.events import events
from bot.reminders.delivery import Template
from bot.reminders.policy import Policy
from bot.reminders.worker import ReminderWorker

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2027, 6, 1, 10, 0, tzinfo=SH)
POLICY = RetentionPolicy(conversation_days=365, audit_days=1095, attempt_days=30, outbox_days=90, former_owner_days=1095)


def days_ago(days: float) -> dt.datetime:
    return (NOW - dt.timedelta(days=days)).astimezone(dt.timezone.utc)


@pytest.fixture
def estate(database_url: str) -> Iterator[str]:
    with session_scope(database_url) as session:
        importer.import_arrears(session, ROOT / "data" / "demo" / "arrears.csv")
    yield database_url
    with get_engine(database_url).begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS events"))


def create_events_table(url: str) -> None:
    """Rasa's events table as its SQLTrackerStore creates it (only the columns we read and write)."""
    from rasa.core.tracker_store import SQLTrackerStore

    SQLTrackerStore.SQLEvent.__table__.create(get_engine(url), checkfirst=True)


def event(sender: str, moment: dt.datetime, client: str = "ip:203.0.113.7") -> Dict[str, object]:
    data = {"event": "user", "text": "我欠多少物业费", "metadata": {"client": client}, "timestamp": moment.timestamp()}
    return {"sender_id": sender, "type_name": "user", "timestamp": moment.timestamp(), "intent_name": "ask_arrears",
            "action_name": None, "data": json.dumps(data, ensure_ascii=False)}  # fmt: skip


def seed(url: str) -> None:
    create_events_table(url)
    with session_scope(url) as session:
        owner = session.execute(select(models.Owner).order_by(models.Owner.id)).scalars().first()
        session.execute(insert(events), [
            event("web-old", days_ago(400)), event("web-old", days_ago(366)),   # silent for over a year
            event("web-mixed", days_ago(500)), event("web-mixed", days_ago(10)),  # still talking
            event("web-new", days_ago(1)),
        ])  # fmt: skip
        for sender in ("web-old", "web-mixed"):
            session.add(models.ConversationLink(channel="socketio", sender_id=sender, owner_id=owner.id, verified_at=days_ago(400)))
        session.add_all([
            AuditEntry(at=days_ago(1100), actor="zhao", action="owner_viewed", target=f"owner:{owner.id}", detail={}),
            AuditEntry(at=days_ago(1000), actor="zhao", action="owner_viewed", target=f"owner:{owner.id}", detail={}),
            models.IdentityAttempt(client_key="ip:x", channel="socketio", sender_id="web-old", succeeded=False, attempted_at=days_ago(31)),
            models.IdentityAttempt(client_key="ip:x", channel="socketio", sender_id="web-new", succeeded=False, attempted_at=days_ago(29)),
            StaffLoginAttempt(username="zhao", outcome=LoginOutcome.FAILED, client_key="k", attempted_at=days_ago(45)),
            StaffLoginAttempt(username="zhao", outcome=LoginOutcome.FAILED, client_key="k", attempted_at=days_ago(2)),
            models.RateLimitHit(key="webchat-session:ip:x", at=days_ago(31)),
            models.RateLimitHit(key="webchat-session:ip:x", at=days_ago(0.5)),
            models.OutboxMessage(sender_id="web-old", kind=models.OutboxKind.TEXT, text="提醒", state=models.OutboxState.DELIVERED,
                                 created_at=days_ago(100), delivered_at=days_ago(95)),
            models.OutboxMessage(sender_id="web-new", kind=models.OutboxKind.TEXT, text="提醒", state=models.OutboxState.DELIVERED,
                                 created_at=days_ago(20), delivered_at=days_ago(20)),
            models.OutboxMessage(sender_id="web-old", kind=models.OutboxKind.TEXT, text="待发", state=models.OutboxState.PENDING,
                                 created_at=days_ago(200)),  # never delivered: kept for the worker to settle
            CallTask(unit_id=owner.unit_id, owner_id=owner.id, reason="no_push_channel", state=CallTaskState.DONE,
                     created_at=days_ago(120), closed_at=days_ago(100), closed_by="wang", note="已电话联系"),
            CallTask(unit_id=owner.unit_id, owner_id=owner.id, reason="no_push_channel", state=CallTaskState.OPEN,
                     created_at=days_ago(120)),
            models.WeChatInboundMessage(dedupe_key="msg:1", openid="oWX-1", msg_type="text", received_at=days_ago(370)),
            models.WeChatInboundMessage(dedupe_key="msg:2", openid="oWX-1", msg_type="text", received_at=days_ago(3)),
        ])  # fmt: skip


def count(url: str, table: object, *where: object) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_what_is_older_than_its_horizon_goes_and_the_rest_stays(estate: str) -> None:
    seed(estate)
    with clock.frozen(NOW), session_scope(estate) as session:
        counts = retention.apply(session, policy=POLICY)
    assert counts == {
        "conversations": 1, "events": 2, "conversation_links": 1, "wechat_messages": 1, "audit_rows": 1,
        "identity_attempts": 1, "staff_login_attempts": 1, "rate_limit_hits": 1, "outbox_messages": 1, "call_tasks": 1,
        "former_owners": 0,
    }  # fmt: skip
    with session_scope(estate) as session:
        assert sorted(session.execute(select(events.c.sender_id)).scalars()) == ["web-mixed", "web-mixed", "web-new"]
        assert [link.sender_id for link in session.execute(select(models.ConversationLink)).scalars()] == ["web-mixed"]
        assert [a.at.year for a in session.execute(select(AuditEntry)).scalars()] == [2024]  # 1000 days old
        assert [a.sender_id for a in session.execute(select(models.IdentityAttempt)).scalars()] == ["web-new"]
        assert session.execute(select(func.count()).select_from(StaffLoginAttempt)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(models.RateLimitHit)).scalar_one() == 1
        assert sorted((o.sender_id, models.OutboxState(o.state)) for o in session.execute(select(models.OutboxMessage)).scalars()) == [
            ("web-new", models.OutboxState.DELIVERED), ("web-old", models.OutboxState.PENDING),
        ]  # fmt: skip
        assert [CallTaskState(t.state) for t in session.execute(select(CallTask)).scalars()] == [CallTaskState.OPEN]
        assert [m.dedupe_key for m in session.execute(select(models.WeChatInboundMessage)).scalars()] == ["msg:2"]
    with clock.frozen(NOW), session_scope(estate) as session:  # idempotent: a second run finds nothing
        assert set(retention.apply(session, policy=POLICY).values()) == {0}


def test_without_rasa_events_the_rest_is_still_applied(database_url: str) -> None:
    with session_scope(database_url) as session:
        session.add(AuditEntry(at=days_ago(2000), actor="x", action="login", target=None, detail={}))
    with clock.frozen(NOW), session_scope(database_url) as session:
        counts = retention.apply(session, policy=POLICY)
    assert (counts["conversations"], counts["audit_rows"]) == (0, 1)


def test_the_policy_comes_from_settings_and_refuses_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from bot.settings import Settings, get_settings

    monkeypatch.setenv("RETENTION_CONVERSATION_DAYS", "180")
    monkeypatch.setenv("RETENTION_ATTEMPT_DAYS", "7")
    get_settings.cache_clear()
    try:
        assert RetentionPolicy.from_settings() == RetentionPolicy(conversation_days=180, attempt_days=7)
    finally:
        get_settings.cache_clear()
    with pytest.raises(ValidationError, match="at least one day"):
        Settings(_env_file=None, retention_audit_days=0)


def test_the_workers_daily_run_applies_it_and_logs_it(estate: str, caplog: pytest.LogCaptureFixture) -> None:
    seed(estate)
    worker = ReminderWorker(
        database_url=estate, name="worker-1", wechat=False, template=Template(), policy=Policy(max_per_week=2),
        now=lambda: NOW, poll_seconds=0.01,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="bot.privacy.retention"):
        report = worker.daily(NOW.date())
    assert report.errors == []
    assert (report.retention["events"], report.retention["audit_rows"], report.retention["identity_attempts"]) == (2, 1, 1)
    assert any(record.getMessage().startswith("retention: deleted {") for record in caplog.records)
    assert count(estate, events) == 3


def test_former_owners_are_erased_three_years_after_the_flat_changed_hands(estate: str) -> None:
    from bot.db.models import OwnerRetirement
    from bot.privacy import subject

    with session_scope(estate) as session:
        first, second = session.execute(select(models.Owner).order_by(models.Owner.id).limit(2)).scalars().all()
        first_id, second_id, second_name = int(first.id), int(second.id), str(second.name)
        for owner, days in ((first, 1100), (second, 1000)):
            owner.retired_at, owner.retired_reason, owner.retired_by = days_ago(days), OwnerRetirement.TRANSFER, "zhao"
            owner.owned_until = days_ago(days).date()
    with clock.frozen(NOW), session_scope(estate) as session:
        assert retention.apply(session, policy=POLICY)["former_owners"] == 1
    with session_scope(estate) as session:
        erased, kept = session.get(models.Owner, first_id), session.get(models.Owner, second_id)
        assert (erased.name, erased.phone, subject.is_erased(erased)) == (subject.ERASED_NAME, subject.ERASED_PHONE, True)
        assert (kept.name, subject.is_erased(kept)) == (second_name, False)
        row = session.execute(select(AuditEntry).where(AuditEntry.action == subject.PRIVACY_ERASED)).scalar_one()
        assert (row.actor, row.target) == (retention.RETENTION_ACTOR, f"owner:{first_id}")
    with clock.frozen(NOW), session_scope(estate) as session:  # an erased owner is not erased again
        assert retention.apply(session, policy=POLICY)["former_owners"] == 0
