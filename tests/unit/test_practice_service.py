"""Practice sessions in the database (SQLite and PostgreSQL): start, answer, the owner ending it, finish, a
collector's list, everyone's history; the stored fields, and migration 0010 matching the models."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from bot import clock
from bot.coach.practice import service
from bot.coach.practice.rubric import default_rubric, score_answer
from bot.coach.practice.simulator import Outcome, OwnerSimulator, default_lines
from bot.db import migrate
from bot.db.coach_models import PracticeSession, PracticeTurn
from bot.db.models import Base
from bot.db.session import get_engine
from bot.playbook import default_playbook
from tests.unit.test_practice_scoring import good_answer

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
HEATING = "objection_heating"


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def test_0010_matches_the_models_and_downgrades(database_url: str) -> None:
    engine = get_engine(database_url)
    assert {"practice_sessions", "practice_turns"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata) if "practice" in repr(d)]
    assert diff == []
    migrate.downgrade(database_url, "0009")
    assert not {"practice_sessions", "practice_turns"} & set(inspect(get_engine(database_url)).get_table_names())
    migrate.upgrade(database_url)


def test_start_stores_the_owner_and_their_opening(session: Session) -> None:
    with clock.frozen(NOW):
        row = service.start(session, collector="wang", objection=HEATING, temperament="angry", seed=1234)
    session.commit()
    stored = session.execute(select(PracticeSession)).scalars().one()
    expected_line, expected_state = OwnerSimulator(objection=HEATING, temperament="angry", seed=1234).opening()
    assert (stored.id, stored.collector, stored.objection, stored.temperament, stored.seed) == (
        row.id, "wang", HEATING, "angry", 1234,
    )  # fmt: skip
    assert stored.opening == expected_line and stored.resistance == expected_state.resistance == 75
    assert aware(stored.started_at) == NOW
    assert (stored.ended_at, stored.outcome, stored.score, stored.summary, stored.agreed_on) == (None,) * 5


def test_a_random_start_is_drawn_from_its_seed(session: Session) -> None:
    first = service.start(session, collector="wang", seed=77)
    second = service.start(session, collector="wang", seed=77)
    assert (first.objection, first.temperament, first.opening) == (second.objection, second.temperament, second.opening)
    unseeded = service.start(session, collector="wang")
    assert 0 <= unseeded.seed < service.SEED_LIMIT
    with pytest.raises(ValueError):
        service.start(session, collector="wang", objection="greet")


def test_answers_are_scored_stored_and_the_owner_agreeing_ends_the_session(session: Session) -> None:
    with clock.frozen(NOW):
        row = service.start(session, collector="wang", objection=HEATING, temperament="stubborn", seed=2)
    session.commit()
    first_text = "理解您的心情，屋里冷谁都难受。我今天就给您报修，安排师傅上门测室温。"
    with clock.frozen(NOW + dt.timedelta(minutes=1)):
        first = service.answer(session, session_id=row.id, collector="wang", text=f"  {first_text} ")
    session.commit()
    assert not first.ended
    stored = session.execute(select(PracticeTurn)).scalars().one()
    expected = score_answer(first_text, entry=default_playbook().get(HEATING), today=NOW.date())  # type: ignore[arg-type]
    assert (stored.session_id, stored.number, stored.collector_text) == (row.id, 1, first_text)
    assert stored.owner_reply == first.owner.reply and stored.reaction == first.owner.reaction.value
    assert stored.criteria == {
        "criteria": {"acknowledge": True, "basis": True, "offer": True, "date": False},
        "forbidden": [],
        "date": None,
    }
    assert stored.score == expected.score == 75 and stored.feedback == list(expected.feedback)
    assert "您没有提出具体的交费日期：可以问一句“您看哪天方便交？”" in stored.feedback
    assert aware(stored.created_at) == NOW + dt.timedelta(minutes=1)
    session.refresh(row)
    assert row.resistance == first.owner.state.resistance < 65 and row.ended_at is None

    with clock.frozen(NOW + dt.timedelta(minutes=2)):
        second = service.answer(session, session_id=row.id, collector="wang", text=good_answer(HEATING))
    session.commit()
    assert second.ended and second.owner.outcome is Outcome.AGREED
    session.refresh(row)
    assert row.outcome == "agreed" and row.agreed_on == dt.date(2026, 12, 4)
    assert aware(row.ended_at) == NOW + dt.timedelta(minutes=2)
    assert row.score == round((75 + 100) / 2) == 88
    assert row.summary == {
        "criteria": {
            "acknowledge": {"hits": 2, "turns": 2},
            "basis": {"hits": 2, "turns": 2},
            "offer": {"hits": 2, "turns": 2},
            "date": {"hits": 1, "turns": 2},
        },
        "forbidden": {},
        "score": 88,
        "feedback": ["业主同意下周五交费，这次演练达成了目标。"],
        "agreed": "下周五",
    }
    assert [t.number for t in row.turns] == [1, 2]
    with pytest.raises(service.SessionEnded):
        service.answer(session, session_id=row.id, collector="wang", text="还在吗？")


def test_the_owner_rebuilt_from_the_database_says_what_the_simulator_says(session: Session) -> None:
    answers = ["物业费是一定要交的。", "理解您的心情，我安排师傅上门修。", "按合同要交，您看哪天方便？"]
    row = service.start(session, collector="wang", objection=HEATING, temperament="malicious", seed=31)
    session.commit()
    replies = []
    for text in answers:
        replies.append(service.answer(session, session_id=row.id, collector="wang", text=text).owner.reply)
        session.commit()
    simulator = OwnerSimulator(objection=HEATING, temperament="malicious", seed=31)
    _line, state = simulator.opening()
    expected = []
    for text in answers:
        turn = simulator.react(
            state, answer=text, score=score_answer(text, entry=default_playbook().get(HEATING), today=clock.today()), today=clock.today()  # type: ignore[arg-type]
        )
        expected.append(turn.reply)
        state = turn.state
    assert replies == expected


def test_finishing_early_stops_a_session_with_a_capped_summary(session: Session) -> None:
    row = service.start(session, collector="wang", objection=HEATING, temperament="misunderstanding", seed=5)
    service.answer(session, session_id=row.id, collector="wang", text=good_answer(HEATING).replace("下周五", "") + "不然就停水。")
    with clock.frozen(NOW):
        finished = service.finish(session, session_id=row.id, collector="wang")
    session.commit()
    session.refresh(finished)
    rubric = default_rubric()
    assert finished.outcome == Outcome.STOPPED.value and aware(finished.ended_at) == NOW
    assert finished.score is not None and finished.score <= rubric.cap
    assert finished.summary["forbidden"] == {"utilities": 1}
    assert finished.summary["feedback"][0] == rubric.session.outcomes["stopped"]
    assert finished.summary["feedback"][1] == rubric.tactics["utilities"].feedback
    (history,) = service.history(session)
    assert history.forbidden == 1 and history.points[0].forbidden == 1
    # Finishing again changes nothing.
    assert service.finish(session, session_id=row.id, collector="wang").ended_at == finished.ended_at


def test_a_collector_cannot_touch_another_ones_session_and_bad_answers_are_refused(session: Session) -> None:
    row = service.start(session, collector="wang", objection=HEATING, temperament="angry", seed=1)
    with pytest.raises(service.SessionNotFound):
        service.answer(session, session_id=row.id, collector="liu", text="您好")
    with pytest.raises(service.SessionNotFound):
        service.finish(session, session_id=row.id, collector="liu")
    with pytest.raises(service.SessionNotFound):
        service.get(session, session_id=row.id, collector="liu")
    with pytest.raises(service.SessionNotFound):
        service.get(session, session_id=row.id + 100)
    assert service.get(session, session_id=row.id).collector == "wang"  # a supervisor's view
    for text, reason in (
        ("   ", "empty"),
        ("好" * (service.MAX_ANSWER_CHARS + 1), "too_long"),
        ("理解您\x00的心情", "control"),  # PostgreSQL cannot store NUL in text
        ("理解您\x07的心情", "control"),
    ):
        with pytest.raises(service.BadAnswer) as refused:
            service.answer(session, session_id=row.id, collector="wang", text=text)
        assert refused.value.reason == reason
    assert session.execute(select(PracticeTurn)).scalars().all() == []
    # Ids beyond the 32-bit column name no session (PostgreSQL would refuse to compare them).
    for huge in (2**31, 10**20, 0, -1):
        with pytest.raises(service.SessionNotFound):
            service.get(session, session_id=huge)
        with pytest.raises(service.SessionNotFound):
            service.answer(session, session_id=huge, collector="wang", text="理解您的心情")
        with pytest.raises(service.SessionNotFound):
            service.finish(session, session_id=huge, collector="wang")
    kept = service.answer(session, session_id=row.id, collector="wang", text="理解您的心情。\n您看哪天方便交？")
    session.commit()
    assert kept.turn.collector_text == "理解您的心情。\n您看哪天方便交？"


def test_the_owner_walking_away_ends_the_session(session: Session) -> None:
    row = service.start(session, collector="wang", objection=HEATING, temperament="angry", seed=4)
    result = service.answer(session, session_id=row.id, collector="wang", text="再不交就给您家停暖。")
    session.commit()
    assert result.ended and row.outcome == "walked_away"
    assert result.turn.owner_reply in default_lines().reactions["walked_away"]
    assert row.score == 0 and row.summary["feedback"][0] == default_rubric().session.outcomes["walked_away"]


def test_a_collectors_list_and_everyones_history_over_time(session: Session) -> None:
    def practise(collector: str, day: int, answers: list[str], *, seed: int) -> PracticeSession:
        moment = NOW + dt.timedelta(days=day)
        with clock.frozen(moment):
            row = service.start(session, collector=collector, objection=HEATING, temperament="stubborn", seed=seed)
            for text in answers:
                service.answer(session, session_id=row.id, collector=collector, text=text)
            return service.finish(session, session_id=row.id, collector=collector)

    weak = "理解您的心情。"
    first = practise("wang", 0, [weak], seed=1)
    second = practise("wang", 1, [weak, "理解您，我马上派师傅上门修。"], seed=2)
    third = practise("wang", 2, [good_answer(HEATING)], seed=3)
    zhou = practise("zhou", 1, ["物业费一定要交。"], seed=4)
    with clock.frozen(NOW + dt.timedelta(days=3)):
        running = service.start(session, collector="zhou", objection=HEATING, temperament="angry", seed=5)
    session.commit()

    assert [row.id for row in service.sessions_for(session, collector="wang")] == [third.id, second.id, first.id]
    assert [row.id for row in service.sessions_for(session, collector="zhou")] == [running.id, zhou.id]
    wang, zhou_history = service.history(session)
    assert wang.collector == "wang" and zhou_history.collector == "zhou"
    assert [p.session_id for p in wang.points] == [first.id, second.id, third.id]
    assert [p.score for p in wang.points] == [first.score, second.score, third.score] == [25, 38, 100]
    assert wang.points[0].ended_at == NOW and wang.points[0].objection == HEATING
    assert wang.average == round((25 + 38 + 100) / 3, 1) and wang.latest == 100
    assert wang.trend == round((38 + 100) / 2 - 25, 1)
    assert (zhou_history.running, [p.score for p in zhou_history.points], zhou_history.trend) == (1, [0], None)
    # wang: answers 理解 | 理解, 理解+派师傅上门修 | everything: acknowledge 4/4, basis 1/4 …
    assert wang.hit_rates == {"acknowledge": 100, "basis": 25, "offer": 50, "date": 25}
    assert wang.points[1].criteria["offer"] == {"hits": 1, "turns": 2}
    assert (wang.forbidden, zhou_history.forbidden, zhou_history.hit_rates["acknowledge"]) == (0, 0, 0)
    recent = service.history(session, since=(NOW + dt.timedelta(days=1)).astimezone(dt.timezone.utc))
    assert [p.session_id for p in recent[0].points] == [second.id, third.id]


def test_feedback_suggests_the_offer_as_a_supervisor_edited_it(session: Session) -> None:
    from bot.services import playbook_edits

    edited = "我这就给您登记暖气报修，今天安排师傅上门，测完室温把结果告诉您，好吗？"
    playbook_edits.save(session, intent=HEATING, fields={"offer.text": edited}, actor="zhao", based_on=None)
    row = service.start(session, collector="wang", objection=HEATING, temperament="stubborn", seed=1)
    result = service.answer(session, session_id=row.id, collector="wang", text="理解您的心情。")
    session.commit()
    assert f"没有提出具体的帮助：可以这样说，“{edited}”" in result.turn.feedback
    playbook_edits.clear_cache()


def test_two_answers_at_once_take_turns(database_url: str) -> None:
    """A double submit: both answers are stored, one after the other (PostgreSQL locks the session row,
    SQLite's transactions begin IMMEDIATE), numbered 1 and 2, the second seeing the first."""
    engine = get_engine(database_url)
    with Session(engine, future=True) as db:
        row = service.start(db, collector="wang", objection=HEATING, temperament="stubborn", seed=3)
        db.commit()
        session_id = row.id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def submit(text: str) -> None:
        try:
            with Session(engine, future=True) as db:
                barrier.wait(timeout=10)
                service.answer(db, session_id=session_id, collector="wang", text=text)
                db.commit()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(text,)) for text in ("理解您的心情。", "我马上派师傅上门修。")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with Session(engine, future=True) as db:
        stored = db.execute(select(PracticeTurn).order_by(PracticeTurn.number)).scalars().all()
        assert [t.number for t in stored] == [1, 2]
        assert {t.collector_text for t in stored} == {"理解您的心情。", "我马上派师傅上门修。"}
        simulator = OwnerSimulator(objection=HEATING, temperament="stubborn", seed=3)
        _line, state = simulator.opening()
        for turn in stored:  # the second answer was reacted to with the first one already heard
            entry = default_playbook().get(HEATING)
            assert entry is not None
            owner = simulator.react(
                state, answer=turn.collector_text, score=score_answer(turn.collector_text, entry=entry, today=clock.today()),
                today=clock.today(),
            )  # fmt: skip
            assert owner.reply == turn.owner_reply
            state = owner.state
        assert db.get(PracticeSession, session_id).resistance == state.resistance
