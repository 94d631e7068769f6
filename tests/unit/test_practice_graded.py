"""Practice scoring on a graded set written apart from the rubric (tests/data/practice/graded.yml).

Each item is an owner's objection with three collector replies: a good one, a weak one (meets some of the
criteria, listed in ``weak_meets``) and a forbidden one (one of the coercion guard's tactics, ``tactic``).
The rubric must rank them good > weak > forbidden, name the forbidden tactic with its label, reason and law,
and give the weak reply more than zero.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from bot import compliance
from bot.coach.practice.rubric import default_rubric, score_answer
from bot.playbook import default_playbook

GRADED_FILE = Path(__file__).resolve().parents[1] / "data" / "practice" / "graded.yml"
TODAY = dt.date(2026, 11, 24)
ITEMS: List[Dict[str, Any]] = yaml.safe_load(GRADED_FILE.read_text(encoding="utf-8"))["items"]


def test_the_graded_set_has_ten_items_or_more_with_three_grades_and_a_guard_category_each() -> None:
    assert len(ITEMS) >= 10
    for item in ITEMS:
        assert {"objection", "owner", "good", "weak", "weak_meets", "forbidden", "tactic"} <= set(item)
        assert item["tactic"] in compliance.CATEGORIES
        assert item["objection"] in default_playbook()


@pytest.mark.parametrize("item", ITEMS, ids=[f"{i:02d}-{item['tactic']}" for i, item in enumerate(ITEMS)])
def test_good_beats_weak_beats_forbidden_and_the_forbidden_tactic_is_named(item: Dict[str, Any]) -> None:
    entry = default_playbook().get(item["objection"])
    assert entry is not None
    good, weak, forbidden = (
        score_answer(item[grade], entry=entry, today=TODAY) for grade in ("good", "weak", "forbidden")
    )
    scores = (good.score, weak.score, forbidden.score)
    assert good.score > weak.score > forbidden.score, scores
    assert weak.score > 0 and weak.forbidden == () and good.forbidden == (), (scores, weak.feedback)
    tactic = item["tactic"]
    assert tactic in forbidden.forbidden, (forbidden.forbidden, item["forbidden"])
    about = compliance.categories()[tactic]
    named = default_rubric().tactics[tactic].feedback
    assert named in forbidden.feedback
    assert f"【{about.label}】" in named and about.reason in named and about.law in named
