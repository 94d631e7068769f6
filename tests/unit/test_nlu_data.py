"""Size, coverage and separation of the training data and the held-out test set."""

import re
from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from bot.contract import CONTRACT_INTENTS, OBJECTION_INTENTS
from bot.nlu.heldout import HELDOUT_DIR, PARTS, STYLES, heldout_files

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_INTENTS = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"]
ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)\)")


def read_examples(*paths: Path) -> Dict[str, List[str]]:
    examples: Dict[str, List[str]] = {}
    for path in paths:
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in block:
                lines = [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]
                examples.setdefault(block["intent"], []).extend(lines)
    return examples


TRAIN = read_examples(*sorted((ROOT / "data" / "nlu").glob("*.yml")))
TEST = read_examples(*heldout_files())
FINAL = read_examples(*heldout_files(["final"]))


def plain(example: str) -> str:
    return ANNOTATION.sub(r"\1", example)


@pytest.mark.parametrize("intent", DOMAIN_INTENTS)
def test_enough_training_examples(intent: str) -> None:
    floor = 40 if intent in OBJECTION_INTENTS else 20
    assert len(TRAIN.get(intent, [])) >= floor


@pytest.mark.parametrize("intent", DOMAIN_INTENTS)
def test_enough_held_out_examples(intent: str) -> None:
    assert len(TEST.get(intent, [])) >= 32
    assert len(FINAL.get(intent, [])) >= 12


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("style", STYLES)
def test_every_part_has_every_style(part: str, style: str) -> None:
    examples = read_examples(HELDOUT_DIR / part / f"{style}.yml")
    assert sum(len(texts) for texts in examples.values()) >= 60


def test_data_uses_only_domain_intents() -> None:
    assert set(TRAIN) <= set(DOMAIN_INTENTS)
    assert set(TEST) <= set(DOMAIN_INTENTS)
    assert set(CONTRACT_INTENTS) <= set(TRAIN)


def test_held_out_set_does_not_overlap_training() -> None:
    train = {plain(e) for examples in TRAIN.values() for e in examples}
    overlap = sorted(plain(e) for examples in TEST.values() for e in examples if plain(e) in train)
    assert overlap == []


def test_no_example_is_labelled_twice() -> None:
    for data in (TRAIN, TEST):
        counts = Counter(plain(e) for examples in data.values() for e in examples)
        assert [text for text, n in counts.items() if n > 1] == []


def test_annotations_use_known_entities() -> None:
    known = {"time", "amount", "room", "phone_tail", "repair_item"}
    for data in (TRAIN, TEST):
        for examples in data.values():
            for example in examples:
                assert {name for _, name in ANNOTATION.findall(example)} <= known, example


@pytest.mark.parametrize(
    ("style", "pattern"),
    [
        ("collector third person", r"业主|这户|客户|住户"),
        ("traditional or cantonese", r"[費業暖氣錢電話點係唔冇咁嘅啲]"),
        ("emoji", r"[\U0001F300-\U0001FAFF\u2600-\u27BF]"),
        ("pinyin", r"[a-z]{3,}"),
    ],
)
def test_training_data_covers_each_style(style: str, pattern: str) -> None:
    for intent in OBJECTION_INTENTS:
        assert any(re.search(pattern, e) for e in TRAIN[intent]), f"{intent} lacks {style}"
