"""A small linear classifier the guard consults where its rules find nothing: char n-grams of the reading.

The rules (:mod:`bot.compliance.lexicon`) name what they know; a threat worded in a way no rule foresaw
(我哋今晚會喺你門口坐到你返嚟, 把你删了) still reads like the threats the model learnt from. The model is a
multinomial logistic regression over TF-IDF-weighted character 1-3-grams of the Mandarin reading, trained
offline by ``bench/train_guard.py`` on ``data/compliance/train.yml`` and shipped as weights in
``data/compliance/model.json``; scoring here is plain Python (no numpy or scikit-learn at run time).

A sentence the model calls coercive still passes when its message reads as a reassurance or a lawful step
anywhere (:data:`REASSURANCE`: 不会, 不影响, 放心, 审批, 法院, 检修 …), unless the model is sure of it
(:data:`SURE`: 欠费期间，垃圾我们不再上门收取 holds 不再 and is still a threat); the rules, which judge clause by
clause, still read such a message.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from bot.compliance.categories import PROJECT_ROOT

MODEL_FILE = PROJECT_ROOT / "data" / "compliance" / "model.json"
LAWFUL = "lawful"

# A shorter sentence carries too few n-grams to read a threat from (a button's 再查一次欠费 read as shaming); the
# rules still judge it.
MIN_LENGTH = 8

# From this probability of "not lawful" a sentence is flagged even beside reassuring words (cross-validated on the
# guard set's tuning parts with the rules: recall 0.935 → 0.944 for false alarms 0.054 → 0.057).
SURE = 0.7

# Words that make a sentence a reassurance, a consented or planned contact, or a lawful step.
REASSURANCE = re.compile(
    r"不会|不影响|无关|没关系|照常|放心|审批|批准|公司决定|法院|不再|只会|只在|只通过|本人|经您同意|您同意|方便|"
    r"预约|检修|维修|报修|难为|遭罪|委屈|受罪|受苦|计划|升级|收支|明细|没有权限|无权|没权|不可以|申请|谢谢|多谢|感谢|不关|故障|坏了|"
    r"(?:不能|无法|没法|没办法|做不到)(?:再)?(?:给您|给你|帮您|帮你)?(?:打折|优惠|减免|免|少收|抹零)"
)


@dataclass(frozen=True)
class Model:
    """Weights of the shipped classifier.

    Attributes:
        classes: ``lawful`` and the categories, in the weights' order.
        intercepts: One per class.
        features: n-gram → (idf, one weight per class).
        max_n: The longest n-gram.
        threshold: The probability of "not lawful" from which a sentence is flagged.
    """

    classes: Tuple[str, ...]
    intercepts: Tuple[float, ...]
    features: Dict[str, Tuple[float, Tuple[float, ...]]]
    max_n: int
    threshold: float


@functools.lru_cache(maxsize=1)
def load(path: Path = MODEL_FILE) -> Model:
    """The shipped model."""
    data = json.loads(path.read_text(encoding="utf-8"))
    features = {gram: (float(row[0]), tuple(float(w) for w in row[1:])) for gram, row in data["features"].items()}
    return Model(
        classes=tuple(data["classes"]),
        intercepts=tuple(float(value) for value in data["intercepts"]),
        features=features,
        max_n=int(data["max_n"]),
        threshold=float(data["threshold"]),
    )


def probabilities(sentence: str, model: Optional[Model] = None) -> Dict[str, float]:
    """Each class's probability for one sentence of a reading (as :func:`bot.compliance.reading.reading` gives)."""
    model = model or load()
    counts = Counter(
        sentence[i : i + n] for n in range(1, model.max_n + 1) for i in range(len(sentence) - n + 1)
    )
    weighted: List[Tuple[float, Tuple[float, ...]]] = []
    for gram, count in counts.items():
        known = model.features.get(gram)
        if known is not None:
            weighted.append(((1.0 + math.log(count)) * known[0], known[1]))
    norm = math.sqrt(sum(value * value for value, _ in weighted)) or 1.0
    scores = list(model.intercepts)
    for value, weights in weighted:
        for index, weight in enumerate(weights):
            scores[index] += value / norm * weight
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return {name: exp / total for name, exp in zip(model.classes, exps, strict=True)}


def judge(sentence: str, model: Optional[Model] = None, *, excused: bool = False) -> Optional[str]:
    """The category a sentence's wording presses with, or None when it reads as lawful or is excused.

    Args:
        sentence: One sentence of a reading.
        model: The weights (default: the shipped model).
        excused: Whether the rest of its message reads as a reassurance (the model must then be sure).
    """
    model = model or load()
    if len(sentence) < MIN_LENGTH:
        return None
    probs = probabilities(sentence, model)
    coercive = 1.0 - probs[LAWFUL]
    if coercive < model.threshold or (coercive < SURE and (excused or REASSURANCE.search(sentence))):
        return None
    return max((name for name in model.classes if name != LAWFUL), key=lambda name: probs[name])
