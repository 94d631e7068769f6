from pathlib import Path

import pytest

from bot.playbook import OFFER_KINDS, Playbook, PlaybookError, default_playbook, parse_entry

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
        "donts": ["d"],
    },
}


def test_parses_a_valid_entry() -> None:
    entry = parse_entry(VALID, "t.yml")
    assert entry.answer(0) == "a" and entry.answer(4) == "b"
    assert entry.coach.legal_basis[0].citation == "《民法典》第九百四十四条"
    assert list(entry.owner_facing_texts()) == ["a", "b", "c", "哪天交？", "要报修吗？"]


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
