"""The guard's judgment: which words of a text press an owner in a forbidden way, and in which category.

A text is read once (:func:`bot.compliance.reading.normalize`, then the Mandarin reading of Cantonese), cut
into sentences and clauses, and every rule of :data:`bot.compliance.lexicon.RULES` is matched against it. A
match counts when its kind's conditions hold (see :mod:`bot.compliance.lexicon`): tied to the debt where
the category needs it, not governed by a negation in its clause, not excused by its sentence (与欠费无关,
a court's act, a discount awaiting the company's approval). A sentence no rule flags is then read by the
small classifier of :mod:`bot.compliance.model`, which flags the whole sentence when it reads as coercive
and nothing in it excuses it. Overlapping matches count once, the longest.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from bot.compliance import lexicon, model
from bot.compliance.categories import (
    CATEGORIES,
    CREDIT,
    DISCOUNT,
    HARASSMENT,
    SHAMING,
    THIRD_PARTY,
    categories,
)
from bot.compliance.reading import normalize, reading

__all__ = ["FORBIDDEN_PHRASES", "Finding", "findings", "normalize"]

# Wordings that are forbidden whenever they are said as what we will do (我们会…): the practice rubric and
# the tests spell every one of them in every writing style.
FORBIDDEN_PHRASES: Tuple[str, ...] = (
    "停水",
    "停电",
    "断水",
    "断电",
    "停暖",
    "停气",
    "停止供暖",
    "停止供水",
    "拉闸",
    "停用门禁卡",
    "冻结门禁",
    "锁车位",
    "不给修",
    "暂停报修",
    "上报征信",
    "列入失信名单",
    "拉进黑名单",
    "通知单位",
    "找你领导",
    "告诉邻居",
    "联系你父母",
    "公布姓名",
    "贴公告栏",
    "发业主群",
    "曝光",
    "天天打电话",
    "半夜上门",
    "在门口守着",
    "减免",
    "打折",
    "免单",
)


@dataclass(frozen=True)
class Finding:
    """One forbidden wording in a text.

    Attributes:
        category: One of :data:`CATEGORIES`.
        phrase: The words as they read after normalising (Simplified, half-width, no spaces).
        start: Where they start in the normalised text.
        end: Where they end in the normalised text.
        reason: One Chinese sentence for staff: why it may not be sent.
        law: The law it breaks (empty when none applies).
    """

    category: str
    phrase: str
    start: int
    end: int
    reason: str
    law: str

    @property
    def tactic(self) -> str:
        """The category, under the name the practice rubric used first."""
        return self.category


@dataclass(frozen=True)
class _Rule:
    category: str
    kind: str
    pattern: re.Pattern[str]


@functools.lru_cache(maxsize=1)
def _rules() -> Tuple[_Rule, ...]:
    return tuple(_Rule(category, kind, re.compile(pattern)) for category, kind, pattern in lexicon.RULES)


@functools.lru_cache(maxsize=1)
def _patterns() -> Tuple[re.Pattern[str], ...]:
    return tuple(
        re.compile(pattern)
        for pattern in (
            lexicon.SENTENCE_END,
            lexicon.CLAUSE_END,
            lexicon.PRESSURE,
            lexicon.NEGATION,
            lexicon.CONDITION_BREAK,
            lexicon.UNTIED,
            lexicon.COURT,
            lexicon.APPROVAL,
            lexicon.PUBLIC_NOTICE,
            lexicon.MAINTENANCE,
            lexicon.CONSENT,
            lexicon.GUARANTEE,
            lexicon.DENIAL,
        )
    )


class _Reading:
    """A text's reading with its sentence and clause bounds, and the sentence-wide facts, computed lazily."""

    def __init__(self, text: str) -> None:
        sentence_end, clause_end, *_ = _patterns()
        self.text = text
        self.sentence_ends = [match.end() for match in sentence_end.finditer(text)]
        self.clause_ends = [match.end() for match in clause_end.finditer(text)]
        self._facts: dict[Tuple[int, int, int], bool] = {}

    def sentence(self, position: int) -> Tuple[int, int]:
        index = bisect.bisect_right(self.sentence_ends, position)
        start = self.sentence_ends[index - 1] if index else 0
        end = self.sentence_ends[index] if index < len(self.sentence_ends) else len(self.text)
        return start, end

    def clause_start(self, position: int) -> int:
        index = bisect.bisect_right(self.clause_ends, position)
        return self.clause_ends[index - 1] if index else 0

    def sentence_has(self, which: int, bounds: Tuple[int, int]) -> bool:
        key = (which, bounds[0], bounds[1])
        if key not in self._facts:
            self._facts[key] = _patterns()[which].search(self.text, bounds[0], bounds[1]) is not None
        return self._facts[key]


(
    _PRESSURE, _NEGATION, _BREAK, _UNTIED, _COURT, _APPROVAL, _NOTICE, _MAINTENANCE, _CONSENT, _GUARANTEE, _DENIAL,
) = range(2, 13)


def _tied(read: _Reading, bounds: Tuple[int, int]) -> bool:
    """Whether the message ties a sentence to the debt: a debt word anywhere, and the sentence no planned works."""
    if read.sentence_has(_MAINTENANCE, bounds):
        return read.sentence_has(_PRESSURE, bounds)
    return read.sentence_has(_PRESSURE, (0, len(read.text)))


def _negated(read: _Reading, start: int) -> bool:
    """Whether a negation in the clause before ``start`` governs the words at ``start``."""
    clause_from = read.clause_start(start)
    before = read.text[clause_from:start]
    negation = _patterns()[_NEGATION]
    last: Optional[re.Match[str]] = None
    for match in negation.finditer(before):
        last = match
    if last is None:
        return False
    if _patterns()[_BREAK].search(before, last.end()):
        return False
    # A double negative (不能不给您打折, 没有不打折的道理) affirms.
    earlier = before[: last.start()]
    return not re.search(r"(?:不能|不会|没有|不可能|不可以|不是|不)$", earlier)


def _counts(read: _Reading, rule: _Rule, start: int) -> bool:
    bounds = read.sentence(start)
    if rule.kind != lexicon.ACT and rule.category in lexicon.NEEDS_PRESSURE and not _tied(read, bounds):
        return False
    if rule.category not in (DISCOUNT, HARASSMENT) and read.sentence_has(_UNTIED, bounds):
        return False
    if rule.category in lexicon.NEEDS_PRESSURE and read.sentence_has(_MAINTENANCE, bounds):
        if not read.sentence_has(_PRESSURE, bounds):
            return False
    if rule.kind == lexicon.DEPRIVE and rule.category in lexicon.NEEDS_PRESSURE and read.sentence_has(_DENIAL, bounds):
        return False
    if rule.category == CREDIT and read.sentence_has(_COURT, bounds):
        return False
    if rule.category == THIRD_PARTY and read.sentence_has(_CONSENT, bounds):
        return False
    if rule.category == SHAMING and read.sentence_has(_NOTICE, bounds):
        return False
    if rule.category == DISCOUNT and read.sentence_has(_APPROVAL, bounds):
        if not read.sentence_has(_GUARANTEE, bounds):
            return False
    if rule.kind != lexicon.WITHHOLD and _negated(read, start):
        return False
    return True


@functools.lru_cache(maxsize=1)
def _composed() -> Tuple[Tuple[str, str, re.Pattern[str], re.Pattern[str]], ...]:
    return tuple(
        (category, kind, re.compile(topic), re.compile(denial)) for category, kind, topic, denial in lexicon.COMPOSE
    )


def _composed_hits(read: _Reading) -> List[Tuple[str, int, int]]:
    """``(category, start, end)`` for every topic and denial close together in one sentence (see COMPOSE)."""
    found: List[Tuple[str, int, int]] = []
    window = lexicon.COMPOSE_WINDOW
    for category, kind, topic, denial in _composed():
        for deny in denial.finditer(read.text):
            if deny.end() == deny.start():
                continue
            bounds = read.sentence(deny.start())
            if not _tied(read, bounds) or read.sentence_has(_UNTIED, bounds):
                continue
            near_from, near_to = max(bounds[0], deny.start() - window), min(bounds[1], deny.end() + window)
            thing = topic.search(read.text, near_from, near_to)
            if thing is None:
                continue
            start, end = min(thing.start(), deny.start()), max(thing.end(), deny.end())
            if kind != lexicon.WITHHOLD and _negated(read, deny.start()):
                continue
            found.append((category, start, end))
    return found


def _finding(category: str, phrase: str, start: int, end: int) -> Finding:
    about = categories()[category]
    return Finding(category, phrase, start, end, about.reason, about.law)


def _model_hits(read: _Reading, normalized: str, ruled: List[Finding]) -> List[Finding]:
    """The classifier's findings: whole sentences no rule flagged that it reads as coercive (see model.py)."""
    found: List[Finding] = []
    excused = model.REASSURANCE.search(read.text) is not None
    start = 0
    for end in [*read.sentence_ends, len(read.text)]:
        sentence = read.text[start:end]
        if sentence.strip() and not any(start <= hit.start < end for hit in ruled):
            category = model.judge(sentence, excused=excused)
            if category is not None:
                stop = end
                while stop > start and re.match(lexicon.CLAUSE_END, read.text[stop - 1]):
                    stop -= 1
                found.append(_finding(category, normalized[start:stop], start, stop))
        start = end
    return found


def findings(text: str) -> List[Finding]:
    """Every forbidden wording in ``text``, in the order it reads; overlapping hits count once (the longest).

    Args:
        text: Any text, as typed (it is normalised here).

    Returns:
        The findings, positioned in :func:`normalize`'s output, each with its category, reason and law.
    """
    normalized = normalize(text)
    read = _Reading(reading(normalized))
    hits: List[Finding] = []
    for rule in _rules():
        for match in rule.pattern.finditer(read.text):
            if match.end() > match.start() and _counts(read, rule, match.start()):
                hits.append(_finding(rule.category, normalized[match.start() : match.end()], match.start(), match.end()))
    for category, start, end in _composed_hits(read):
        hits.append(_finding(category, normalized[start:end], start, end))
    hits.extend(_model_hits(read, normalized, hits))
    hits.sort(key=lambda hit: (hit.start, -(hit.end - hit.start), CATEGORIES.index(hit.category)))
    kept: List[Finding] = []
    for hit in hits:
        if any(hit.start < other.end and other.start < hit.end for other in kept):
            continue
        kept.append(hit)
    return kept
