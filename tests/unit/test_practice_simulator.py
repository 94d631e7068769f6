"""Practice mode's simulated owner: lines for every playbook objection and temperament, varied wording that a
seed reproduces, softening on acknowledgement and help, hardening on threats, shaming, being ignored or
repeated, agreeing on a day only when asked for one, walking away, and running out of turns."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import List, Sequence, Tuple

import pytest

from bot.coach.practice.rubric import score_answer
from bot.coach.practice.simulator import (
    Outcome,
    OwnerSimulator,
    OwnerState,
    OwnerTurn,
    Reaction,
    choose,
    default_lines,
    objection_intents,
)
from bot.playbook import default_playbook
from tests.unit.test_practice_scoring import good_answer

TODAY = dt.date(2026, 11, 24)
TEMPERAMENTS = ("stubborn", "hardship", "misunderstanding", "angry", "malicious")
HEATING = "objection_heating"
ACKNOWLEDGE_AND_HELP = "理解您的心情，屋里冷谁都难受。我今天就给您报修，安排师傅上门测室温。"
THREAT = "再不交就给您家停暖。"
IGNORING = "物业费是一定要交的。"


def talk(simulator: OwnerSimulator, answers: Sequence[str]) -> Tuple[str, List[OwnerTurn]]:
    """The opening and the owner's turns for ``answers``, each scored by the rubric first."""
    entry = default_playbook().get(simulator.objection)
    assert entry is not None
    opening, state = simulator.opening()
    turns: List[OwnerTurn] = []
    for answer in answers:
        turn = simulator.react(state, answer=answer, score=score_answer(answer, entry=entry, today=TODAY), today=TODAY)
        turns.append(turn)
        state = turn.state
        if turn.outcome:
            break
    return opening, turns


def test_every_playbook_objection_and_every_temperament_has_lines() -> None:
    objections = sorted(entry.intent for entry in default_playbook() if entry.kind == "objection")
    assert objection_intents() == objections and len(objections) == 10
    lines = default_lines()
    assert sorted(lines.temperaments) == sorted(TEMPERAMENTS)
    assert {t.label for t in lines.temperaments.values()} == {"固执", "困难", "误解", "愤怒", "恶意拖欠"}
    for intent in objections:
        assert len(lines.openings[intent]) >= 3 and len(lines.press[intent]) >= 3, intent


def test_the_same_seed_gives_the_same_owner_and_different_seeds_vary_the_wording() -> None:
    answers = [IGNORING, ACKNOWLEDGE_AND_HELP, good_answer(HEATING)]
    first = talk(OwnerSimulator(objection=HEATING, temperament="stubborn", seed=42), answers)
    again = talk(OwnerSimulator(objection=HEATING, temperament="stubborn", seed=42), answers)
    assert first == again
    openings = {OwnerSimulator(objection=HEATING, temperament="stubborn", seed=seed).opening()[0] for seed in range(30)}
    assert len(openings) >= 8  # openings × the temperament's tone variants, not one fixed line
    cores = default_lines().openings[HEATING]
    assert all(any(core in line for core in cores) for line in openings)
    replies = {talk(OwnerSimulator(objection=HEATING, temperament="angry", seed=s), [IGNORING])[1][0].reply for s in range(30)}
    assert len(replies) >= 5


def test_a_session_does_not_repeat_one_line() -> None:
    simulator = OwnerSimulator(objection="objection_pay_later", temperament="stubborn", seed=5)
    # Different answers that all ignore the owner: the owner complains in different words each time.
    _opening, turns = talk(simulator, ["这个月要交了。", "物业费要交的。", "请尽快交费。"])
    assert [t.reaction for t in turns][:2] == [Reaction.IGNORED, Reaction.IGNORED]
    cores = default_lines().reactions["ignored"]
    used = [next(core for core in cores if core in t.reply) for t in turns if t.reaction is Reaction.IGNORED]
    assert len(used) == len(set(used))


def test_acknowledging_and_helping_softens_the_owner() -> None:
    for temperament in TEMPERAMENTS:
        simulator = OwnerSimulator(objection=HEATING, temperament=temperament, seed=1)
        _opening, state = simulator.opening()
        _opening, (turn,) = talk(simulator, [ACKNOWLEDGE_AND_HELP])
        assert turn.change < 0 and turn.state.resistance < state.resistance, temperament
        assert turn.reaction in (Reaction.SOFTENED, Reaction.LISTENING, Reaction.WAITING), temperament
        assert turn.outcome is None  # no day was asked for, so no agreement yet
    hardship = OwnerSimulator(objection="objection_financial_hardship", temperament="hardship", seed=1)
    _opening, (turn,) = talk(hardship, ["理解您的难处，我帮您申请分期，先交一部分。"])
    assert turn.reaction is Reaction.WAITING  # soft enough, but nobody asked for a day
    assert any(core in turn.reply for core in default_lines().reactions["waiting"])


def test_the_owner_agrees_on_the_day_the_collector_proposed() -> None:
    simulator = OwnerSimulator(objection=HEATING, temperament="hardship", seed=3)
    _opening, turns = talk(simulator, [good_answer(HEATING)])
    (turn,) = turns
    assert turn.reaction is Reaction.AGREED and turn.outcome is Outcome.AGREED
    assert turn.agreed_text == "下周五" and turn.agreed_on == dt.date(2026, 12, 4)
    assert "下周五" in turn.reply
    asked = OwnerSimulator(objection=HEATING, temperament="hardship", seed=3)
    _opening, turns = talk(asked, [ACKNOWLEDGE_AND_HELP + "按合同物业费要交，您看哪天方便交？"])
    (turn,) = turns
    assert turn.outcome is Outcome.AGREED and turn.agreed_text in default_lines().agree_dates
    assert turn.agreed_on is not None and turn.agreed_on >= TODAY and turn.agreed_text in turn.reply


def test_a_stubborn_or_malicious_owner_needs_more_than_one_good_answer() -> None:
    for temperament, seed in (("stubborn", 2), ("malicious", 2)):
        simulator = OwnerSimulator(objection=HEATING, temperament=temperament, seed=seed)
        answers = [
            good_answer(HEATING),
            "理解您，依据物业管理条例第七条要按时交，我请师傅明天上门修，这周六能交上吗？",
            "我明白您的难处，合同约定的费用要交，维修师傅会一直跟进，月底前交可以吗？",
            "确实让您受累了，按民法典的规定要交，修好之前我每天去看，下周一交好吗？",
        ]
        _opening, turns = talk(simulator, answers)
        assert len(turns) >= 2 and turns[0].outcome is None, temperament
        assert turns[-1].outcome is Outcome.AGREED, temperament
        resistances = [t.state.resistance for t in turns]
        assert resistances == sorted(resistances, reverse=True), temperament


def test_threats_shaming_and_disclosure_harden_the_owner() -> None:
    cases = [
        (THREAT, Reaction.THREATENED),
        ("您这样就是老赖。", Reaction.SHAMED),
        ("隔壁502也欠着呢。", Reaction.DISCLOSED),
        ("这次给您打个八折。", Reaction.BARGAINED),
    ]
    for answer, reaction in cases:
        simulator = OwnerSimulator(objection=HEATING, temperament="misunderstanding", seed=9)
        _opening, state = simulator.opening()
        _opening, (turn,) = talk(simulator, [answer])
        assert turn.reaction is reaction, answer
        assert turn.state.resistance > state.resistance, answer
        core = next(line for line in default_lines().reactions[reaction.value] if line in turn.reply)
        assert core


def test_an_angry_owner_walks_away_when_threatened() -> None:
    simulator = OwnerSimulator(objection=HEATING, temperament="angry", seed=4)
    _opening, turns = talk(simulator, [THREAT, "您听我说完。"])
    (turn,) = turns
    assert turn.reaction is Reaction.WALKED_AWAY and turn.outcome is Outcome.WALKED_AWAY
    assert turn.reply in default_lines().reactions["walked_away"]


def test_being_ignored_or_repeated_hardens_until_the_owner_leaves() -> None:
    simulator = OwnerSimulator(objection=HEATING, temperament="stubborn", seed=6)
    _opening, turns = talk(simulator, [IGNORING, IGNORING, "今天天气不错。", IGNORING, IGNORING])
    reactions = [t.reaction for t in turns]
    assert reactions[0] is Reaction.IGNORED and reactions[1] is Reaction.REPEATED
    assert all(t.change > 0 for t in turns)
    assert turns[2].change > turns[0].change  # off the point entirely costs more than ignoring the owner
    assert turns[-1].outcome is Outcome.WALKED_AWAY


def test_the_talk_ends_after_the_last_turn() -> None:
    lines = dataclasses.replace(default_lines(), max_turns=2)
    simulator = OwnerSimulator(objection="objection_fee_too_high", temperament="malicious", seed=8, lines=lines)
    _opening, turns = talk(simulator, ["按合同约定，费用还是要交的。", "收费标准来自物业服务合同，这是规定。", "还有吗"])
    assert [t.outcome for t in turns] == [None, Outcome.TIMED_OUT]
    assert any(core in turns[-1].reply for core in lines.reactions["timed_out"])


def test_an_agreement_needs_no_forbidden_words() -> None:
    simulator = OwnerSimulator(objection=HEATING, temperament="hardship", seed=3)
    _opening, turns = talk(simulator, [good_answer(HEATING) + "不然就给您打折。"])
    assert turns[0].outcome is None and turns[0].reaction is Reaction.BARGAINED


def test_random_objection_and_temperament_are_drawn_from_the_seed() -> None:
    drawn = {choose(seed) for seed in range(200)}
    assert choose(11) == choose(11)
    assert {objection for objection, _ in drawn} == set(objection_intents())
    assert {temperament for _, temperament in drawn} == set(TEMPERAMENTS)
    assert choose(11, objection=HEATING, temperament="angry") == (HEATING, "angry")
    with pytest.raises(ValueError):
        choose(1, objection="greet")
    with pytest.raises(ValueError):
        choose(1, temperament="sleepy")


def test_the_state_records_what_was_said_and_heard() -> None:
    simulator = OwnerSimulator(objection=HEATING, temperament="stubborn", seed=10)
    opening, turns = talk(simulator, [IGNORING, ACKNOWLEDGE_AND_HELP])
    assert turns[-1].state == OwnerState(
        resistance=turns[-1].state.resistance,
        turn=2,
        said=(opening, turns[0].reply, turns[1].reply),
        heard=(IGNORING, ACKNOWLEDGE_AND_HELP),
    )


def test_an_angry_owner_wants_the_feeling_acknowledged_before_the_reasons() -> None:
    reasons = "按合同约定，物业费是要交的。"
    _opening, (cold,) = talk(OwnerSimulator(objection=HEATING, temperament="angry", seed=12), [reasons])
    assert cold.change > 0 and cold.reaction is Reaction.IGNORED
    _opening, (warm,) = talk(OwnerSimulator(objection=HEATING, temperament="angry", seed=12), ["理解您的心情，" + reasons])
    assert warm.change < 0 and warm.reaction is Reaction.SOFTENED
    # A patient owner takes the same reasons without the acknowledgement a little better: no hardening.
    _opening, (calm,) = talk(OwnerSimulator(objection=HEATING, temperament="misunderstanding", seed=12), [reasons])
    assert calm.change < 0 and calm.reaction is Reaction.LISTENING
