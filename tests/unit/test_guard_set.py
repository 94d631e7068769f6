"""The coercion guard measured on the labelled guard set (issue 17 point 3), not asserted by hand.

The final part (tests/data/guard/final.yml) is held out: written apart from the guard, never used to tune it,
scored here and by ``bench/guard.py`` only as aggregates. The dev part, the guard helper's own sentences
(own.yml), the retired first and second final parts (first_final.yml, second_final.yml) and two breadth parts
written apart (breadth.yml, breadth2.yml) guided the rules and trained the classifier, so they hold higher floors
that catch regressions.
"""

from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from bot.compliance import CATEGORIES, findings

GUARD_SETS = Path(__file__).resolve().parents[1] / "data" / "guard"
STYLES = {"simplified", "traditional", "cantonese", "noisy"}
VOICES = {"staff", "bot"}


def load(name: str) -> List[Dict[str, Any]]:
    return yaml.safe_load((GUARD_SETS / name).read_text(encoding="utf-8"))["sentences"]


def rates(rows: List[Dict[str, Any]]) -> Tuple[float, float, Dict[str, float]]:
    """Recall, false-alarm rate, and recall per category (blocked: the guard finds anything)."""
    coercive = [row for row in rows if row["label"] == "coercive"]
    lawful = [row for row in rows if row["label"] == "lawful"]
    blocked = {id(row): bool(findings(row["text"])) for row in rows}
    recall = sum(blocked[id(row)] for row in coercive) / len(coercive)
    false_alarms = sum(blocked[id(row)] for row in lawful) / len(lawful)
    per_category = {
        category: sum(blocked[id(row)] for row in coercive if row["category"] == category)
        / sum(row["category"] == category for row in coercive)
        for category in CATEGORIES
    }
    return recall, false_alarms, per_category


@pytest.mark.parametrize(
    "name", ["dev.yml", "final.yml", "first_final.yml", "second_final.yml", "breadth.yml", "breadth2.yml"]
)
def test_each_part_covers_every_category_both_classes_every_style_and_voice(name: str) -> None:
    rows = load(name)
    assert {row["label"] for row in rows} == {"coercive", "lawful"}
    assert {row["category"] for row in rows if row["label"] == "coercive"} == set(CATEGORIES)
    assert {row["style"] for row in rows} == STYLES
    assert {row["voice"] for row in rows} == VOICES


def test_the_set_has_at_least_400_sentences() -> None:
    assert len(load("dev.yml")) + len(load("final.yml")) >= 400


# Issue 17's target on the held-out part is recall 0.95 and false alarms 0.05, and this test holds it. The first
# final part (now first_final.yml, retired to tuning) was scored at 0.907/0.075, then 0.900/0.067. The second
# (second_final.yml, retired too) scored 0.778/0.071 on the guard as it stood, then 0.915/0.052 and 0.915/0.045
# after training on the tuning parts. The third, final.yml, written apart on 2026-12-07 by a hand that saw neither
# the guard nor the other parts, was scored once, after training on every other part (the second final part and a
# second breadth part added) and rule fixes found on them: recall 0.953, false alarms 0.042.
FINAL_RECALL_FLOOR = 0.95
FINAL_FALSE_ALARM_CEILING = 0.05


def test_final_part_recall_and_false_alarms() -> None:
    """Held out: recall and false alarms no worse than when first scored; printed as aggregates only."""
    recall, false_alarms, per_category = rates(load("final.yml"))
    figures = f"final part: recall {recall:.3f}, false alarms {false_alarms:.3f}, per category " + ", ".join(
        f"{category} {share:.2f}" for category, share in per_category.items()
    )
    print(figures)
    assert recall >= FINAL_RECALL_FLOOR, figures
    assert false_alarms <= FINAL_FALSE_ALARM_CEILING, figures


@pytest.mark.parametrize(
    ("name", "recall_floor", "false_alarm_ceiling"),
    [
        ("dev.yml", 0.98, 0.02),
        ("own.yml", 0.97, 0.02),
        ("first_final.yml", 0.97, 0.05),
        ("second_final.yml", 0.97, 0.05),
        ("breadth.yml", 0.97, 0.05),
        ("breadth2.yml", 0.97, 0.05),
    ],
)
def test_tuning_sets_hold_their_floors(name: str, recall_floor: float, false_alarm_ceiling: float) -> None:
    recall, false_alarms, per_category = rates(load(name))
    assert recall >= recall_floor, (name, recall)
    assert false_alarms <= false_alarm_ceiling, (name, false_alarms)
    assert min(per_category.values()) >= 0.9, (name, per_category)
