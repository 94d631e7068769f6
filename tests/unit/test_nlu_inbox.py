"""The NLU inbox on SQLite and PostgreSQL, over events that Rasa's own SQLTrackerStore wrote."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import yaml
from sqlalchemy import select, text

from bot import clock
from bot.cli import main as cli
from bot.db import models
from bot.db.session import get_engine, session_scope
from bot.rasa.endpoints import tracker_store_config
from bot.services import nlu_inbox

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[2]
INTENTS = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"]
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="module")
def domain() -> Any:
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture
def store(database_url: str, domain: Any) -> Iterator[Any]:
    from rasa.core.tracker_store import TrackerStore
    from rasa.utils.endpoints import EndpointConfig

    tracker_store = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), domain)
    yield tracker_store
    tracker_store.engine.dispose()
    with get_engine(database_url).begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS events"))


def said(text_: str, intent: str, confidence: float, ranking: List[Any], offset: int) -> Any:
    from rasa.shared.core.events import UserUttered

    return UserUttered(
        text_,
        intent={"name": intent, "confidence": confidence},
        parse_data={
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": ranking,
            "entities": [],
            "text": text_,
        },
        timestamp=NOW.timestamp() + offset,
    )


def save(store: Any, domain: Any, sender: str, events: List[Any]) -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    asyncio.run(store.save(DialogueStateTracker.from_events(sender, events, domain.slots)))


@pytest.fixture
def conversation(store: Any, domain: Any) -> None:
    save(
        store,
        domain,
        "owner-1",
        [
            said("暖气不热", "objection_heating", 0.97, [{"name": "objection_heating", "confidence": 0.97}], 0),
            said(
                "3栋2单元501那个事咋整",
                "nlu_fallback",
                0.15,
                [
                    {"name": "nlu_fallback", "confidence": 0.15},
                    {"name": "report_repair", "confidence": 0.12},
                    {"name": "provide_identity", "confidence": 0.1},
                ],
                10,
            ),
            said("额", "affirm", 0.31, [{"name": "affirm", "confidence": 0.31}, {"name": "deny", "confidence": 0.3}], 20),
            said("/affirm", "affirm", 1.0, [{"name": "affirm", "confidence": 1.0}], 30),
        ],
    )


def test_the_inbox_lists_fallbacks_and_unsure_messages_newest_first(database_url: str, conversation: None) -> None:
    with session_scope(database_url) as session:
        items = nlu_inbox.inbox(session, threshold=0.5)
    assert [(i.text, i.predicted_intent, i.fell_back) for i in items] == [
        ("额", "affirm", False),
        ("3栋2单元501那个事咋整", "report_repair", True),
    ]
    assert items[1].confidence == pytest.approx(0.12)
    assert items[1].sender_id == "owner-1"
    assert items[1].received_at == NOW + dt.timedelta(seconds=10)
    with session_scope(database_url) as session:
        assert [i.text for i in nlu_inbox.inbox(session, threshold=0.2)] == ["3栋2单元501那个事咋整"]
        assert nlu_inbox.inbox(session, sender_id="someone-else") == []


def test_a_held_note_hides_only_a_message_the_nlu_never_parsed(store: Any, domain: Any, database_url: str) -> None:
    from rasa.shared.core.events import UserUttered

    forged = said("物业费太贵了不交", "nlu_fallback", 0.2, [{"name": "nlu_fallback", "confidence": 0.2}, {"name": "objection_fee_too_high", "confidence": 0.18}], 0)
    forged.metadata = {"held_note": {"problem": "too long"}, "client": "ip:10.0.0.9"}  # an old, owner-forged key
    kept = UserUttered(  # what bot.channels.takeover stores in place of a refusal: never parsed
        "〔业主发来一段语音〕", input_channel="wechat", metadata={"held_note": {"problem": "not text", "kind": "voice"}},
        timestamp=NOW.timestamp() + 5,
    )  # fmt: skip
    save(store, domain, "owner-2", [forged, kept])

    with session_scope(database_url) as session:
        items = nlu_inbox.inbox(session, sender_id="owner-2")
    assert [(i.text, i.predicted_intent, i.fell_back, i.confidence) for i in items] == [
        ("物业费太贵了不交", "objection_fee_too_high", True, pytest.approx(0.18))
    ]


def test_a_decision_is_stored_and_leaves_the_inbox(database_url: str, conversation: None) -> None:
    with session_scope(database_url) as session:
        fallback, unsure = nlu_inbox.inbox(session)[::-1]
    with clock.frozen(NOW), session_scope(database_url) as session:
        nlu_inbox.decide(session, event_id=fallback.event_id, staff="li", intent="report_repair", known_intents=INTENTS)
        nlu_inbox.decide(session, event_id=unsure.event_id, staff="li", intent=None, known_intents=INTENTS)
    with session_scope(database_url) as session:
        assert nlu_inbox.inbox(session) == []
        rows = session.execute(select(models.NluCorrection).order_by(models.NluCorrection.event_id)).scalars().all()
        stored = [
            (r.event_id, r.sender_id, r.text, r.predicted_intent, r.confidence, r.decision, r.intent, r.decided_by)
            for r in rows
        ]
        assert stored == [
            (fallback.event_id, "owner-1", "3栋2单元501那个事咋整", "report_repair", Decimal("0.12000"),
             models.NluDecision.CORRECTED, "report_repair", "li"),
            (unsure.event_id, "owner-1", "额", "affirm", Decimal("0.31000"), models.NluDecision.DISMISSED, None, "li"),
        ]
        decided_at = rows[0].decided_at
        # SQLite keeps no zone: times are written in the estate's zone, as bot.clock gives them.
        assert (decided_at if decided_at.tzinfo else decided_at.replace(tzinfo=clock.zone())) == NOW
        assert rows[0].exported_at is None


def test_decisions_are_checked(database_url: str, conversation: None) -> None:
    with session_scope(database_url) as session:
        item = nlu_inbox.inbox(session)[0]
        with pytest.raises(nlu_inbox.InboxError, match="unknown intent"):
            nlu_inbox.decide(session, event_id=item.event_id, staff="li", intent="pay_tomorrow", known_intents=INTENTS)
        with pytest.raises(nlu_inbox.InboxError, match="no owner message"):
            nlu_inbox.decide(session, event_id=987654, staff="li", intent="greet", known_intents=INTENTS)


def test_no_events_table_means_an_empty_inbox(database_url: str) -> None:
    with session_scope(database_url) as session:
        assert nlu_inbox.inbox(session) == []


def test_export_writes_only_corrections_once_without_digits(
    database_url: str, conversation: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(database_url) as session:
        fallback, unsure = nlu_inbox.inbox(session)[::-1]
        nlu_inbox.decide(session, event_id=fallback.event_id, staff="li", intent="report_repair", known_intents=INTENTS)
        nlu_inbox.decide(session, event_id=unsure.event_id, staff="li", intent=None, known_intents=INTENTS)
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "corrections.yml"
    assert cli(["nlu", "export", "--out", str(out), "--url", database_url]) == 0
    exported = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert exported["nlu"] == [{"intent": "report_repair", "examples": "- 1栋1单元111那个事咋整\n"}]
    assert "3栋" not in out.read_text(encoding="utf-8")
    assert cli(["nlu", "export", "--out", str(out), "--url", database_url]) == 2  # never overwrites
    with session_scope(database_url) as session:
        assert nlu_inbox.export(session, path=tmp_path / "again.yml") == 0
        with pytest.raises(nlu_inbox.InboxError, match="already exported"):
            nlu_inbox.decide(session, event_id=fallback.event_id, staff="li", intent="greet", known_intents=INTENTS)
    assert not (tmp_path / "again.yml").exists()


def test_export_skips_what_the_training_data_already_has(database_url: str, conversation: None, tmp_path: Path) -> None:
    training = tmp_path / "nlu"
    training.mkdir()
    (training / "x.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: report_repair\n  examples: |\n    - [1栋1单元111](room)那个事咋整\n',
        encoding="utf-8",
    )
    with session_scope(database_url) as session:
        item = nlu_inbox.inbox(session)[1]
        nlu_inbox.decide(session, event_id=item.event_id, staff="li", intent="report_repair", known_intents=INTENTS)
        assert nlu_inbox.export(session, path=tmp_path / "out.yml", training_dir=training) == 0
        row = session.execute(select(models.NluCorrection)).scalar_one()
        assert row.exported_at is not None
