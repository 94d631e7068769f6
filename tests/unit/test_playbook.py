from pathlib import Path

import pytest

from bot.compliance import violations
from bot.playbook import (
    NEXT_STEP_KINDS,
    OFFER_KINDS,
    SCRIPT_LINES,
    Playbook,
    PlaybookError,
    default_playbook,
    parse_entry,
)

VALID = {
    "intent": "objection_heating",
    "title": "暖气不热",
    "kind": "objection",
    "summary": "s",
    "answers": ["a", "b", "c"],
    "follow_up": "哪天交？",
    "offer": {"kind": "repair_order", "text": "要报修吗？"},
    "coach": {
        "strategy": ["x"],
        "legal_basis": [{"source": "民法典", "article": "第九百四十四条", "point": "p"}],
        "next_step": "n",
        "next_step_kind": "repair_order",
        "donts": ["d"],
        "ask": "哪个房间不热？",
        "script": ["我马上安排师傅。", "您看哪天方便交？"],
    },
}


def _with_coach(**change: object) -> dict:
    return {**VALID, "coach": {**VALID["coach"], **change}}


def test_parses_a_valid_entry() -> None:
    entry = parse_entry(VALID, "t.yml")
    assert entry.answer(0) == "a" and entry.answer(4) == "b"
    assert entry.coach.legal_basis[0].citation == "《民法典》第九百四十四条"
    assert entry.coach.script == ("我马上安排师傅。", "您看哪天方便交？")
    assert entry.coach.next_step_kind == "repair_order"
    assert entry.coach.ask == "哪个房间不热？"
    # The script and the question are said to owners, so the compliance check reads them too.
    assert list(entry.owner_facing_texts()) == [
        "a", "b", "c", "哪天交？", "要报修吗？", "我马上安排师傅。", "您看哪天方便交？", "哪个房间不热？"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answers": ["only one"]}, "at least two"),
        ({"offer": {"kind": "discount", "text": "t"}}, "offer kind"),
        ({"kind": "other"}, "kind"),
        ({"follow_up": ""}, "follow_up"),
    ],
)
def test_rejects_malformed_entries(change: dict, message: str) -> None:
    with pytest.raises(PlaybookError, match=message):
        parse_entry({**VALID, **change}, "t.yml")


@pytest.mark.parametrize(
    ("coach", "message"),
    [
        ({"script": ["only one line"]}, "2 to 3 spoken lines"),
        ({"script": ["1", "2", "3", "4"]}, "2 to 3 spoken lines"),
        ({"script": []}, "script"),
        ({"next_step_kind": "cut_the_water"}, "next_step_kind"),
        ({"next_step_kind": ""}, "next_step_kind"),
        ({"ask": ""}, "ask"),
    ],
)
def test_rejects_malformed_coaching(coach: dict, message: str) -> None:
    with pytest.raises(PlaybookError, match=message):
        parse_entry(_with_coach(**coach), "t.yml")


def test_every_project_entry_has_a_spoken_script_a_question_and_a_next_step_kind() -> None:
    for entry in default_playbook():
        assert SCRIPT_LINES[0] <= len(entry.coach.script) <= SCRIPT_LINES[1], entry.intent
        assert entry.coach.next_step_kind in NEXT_STEP_KINDS, entry.intent
        assert entry.coach.ask.endswith(("？", "?")), entry.intent
        # Spoken to a person, not pasted from the chat: no line is one of the bot's chat answers.
        assert not set(entry.coach.script) & set(entry.answers), entry.intent
        assert all(violations(line) == [] for line in (*entry.coach.script, entry.coach.ask)), entry.intent
    kinds = {entry.intent: entry.coach.next_step_kind for entry in default_playbook()}
    assert kinds["objection_heating"] == "repair_order"
    assert kinds["objection_financial_hardship"] == "instalment_request"
    assert kinds["threaten_escalation"] == "escalate_supervisor"
    assert kinds["objection_pay_later"] == "agree_date"


def test_file_name_must_match_intent(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "objection_fee_too_high.yml").write_text(
        yaml.safe_dump(VALID, allow_unicode=True), encoding="utf-8"
    )
    with pytest.raises(PlaybookError, match="does not match"):
        Playbook.load(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError):
        Playbook.load(tmp_path)


def test_project_playbook_loads_with_known_offer_kinds() -> None:
    playbook = default_playbook()
    assert playbook.intents
    assert all(entry.offer.kind in OFFER_KINDS for entry in playbook)
