"""Scoring one collector answer in practice mode against the rubric in ``data/coach/practice/rubric.yml``.

Four criteria (acknowledge the feeling, explain with the right basis, offer the concrete help, ask for a
concrete date), each worth its points, and the forbidden tactics (threats to cut utilities, shaming,
disclosing another owner's debt, promising a discount). A forbidden tactic deducts its points *and* caps the
answer's score, so a threat scores low however well the rest of the answer is put. What
:mod:`bot.compliance` forbids is found with its own rules, tactic by tactic (:func:`bot.compliance.tactics`);
the rubric only adds wordings compliance does not list. Which basis and which help are right
comes from the objection's playbook entry. Every sentence of feedback is rubric data.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from bot import compliance
from bot.playbook import Entry
from bot.text import dates
from bot.text.normalize import normalize

RUBRIC_FILE = Path(__file__).resolve().parents[3] / "data" / "coach" / "practice" / "rubric.yml"

ACKNOWLEDGE = "acknowledge"
BASIS = "basis"
OFFER = "offer"
DATE = "date"
CRITERIA: Tuple[str, ...] = (ACKNOWLEDGE, BASIS, OFFER, DATE)
OTHER_TACTIC = "other"
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[。？！?!；;]")
# A negation reaches only within its own clause: 没有问题，打折 promises a discount.
_CLAUSE_END = re.compile(r"[，。！？；,.!?;、：:]")
# A clause of an answer as said (whitespace breaks clauses too: 我理解 合同 明细 is three), and what breaks them.
_CLAUSE_OR_BREAK = re.compile(r"([^\s，。！？；,.!?;、：:]+)|(\s+)|([，。！？；,.!?;、：:]+)")
_PUNCTUATION = re.compile(r"[^\w]+")
# How near a date a word about paying must be for the date to be a proposed day to pay.
_PAY_WINDOW_BEFORE = 6
_PAY_WINDOW_AFTER = 8


class RubricError(ValueError):
    """The rubric file is missing a criterion, a field, or holds a bad pattern."""


def compact(text: str) -> str:
    """Normalised (Simplified, half-width, Arabic digits) and without whitespace, as every rule reads it.

    Invisible format characters (zero-width spaces and joiners, Unicode category Cf) go too: 停\u200b水 reads
    停水 to the owner, so it does to the rubric.
    """
    visible = "".join(char for char in text if unicodedata.category(char) != "Cf")
    return _SPACES.sub("", normalize(visible).text)


@dataclass(frozen=True)
class Criterion:
    """One thing a good answer does, with its points and feedback sentences."""

    name: str
    label: str
    points: int
    hit: str
    miss: str
    summary_miss: str
    keywords: Tuple[str, ...] = ()
    near: Tuple[str, ...] = ()
    by_key: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tactic:
    """A forbidden tactic: how it is found, what it costs, what the collector is told."""

    name: str
    label: str
    deduction: int
    feedback: str
    patterns: Tuple[re.Pattern[str], ...] = ()
    negations: Tuple[str, ...] = ()
    negation_gap: Tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionRules:
    """How a session's score and summary are made from its answers."""

    forbidden_cap: int
    walked_away_cap: int
    no_answers: str
    outcomes: Mapping[str, str]


@dataclass(frozen=True)
class Structure:
    """What makes an answer sentences rather than a list of keywords (``structure`` in the rubric file).

    Also what a keyword list or a very short answer can score at most.
    """

    min_clause_chars: int
    keyword_share: float
    keyword_list_cap: int
    keyword_list: str
    short_chars: int
    short_cap: int
    short: str


@dataclass(frozen=True)
class Rubric:
    """The whole rubric: criteria in order, forbidden tactics, the cap, the session rules, the structure rules."""

    criteria: Mapping[str, Criterion]
    tactics: Mapping[str, Tactic]
    cap: int
    session: SessionRules
    structure: Structure

    @property
    def max_score(self) -> int:
        """The points of all criteria together (100)."""
        return sum(criterion.points for criterion in self.criteria.values())

    def label(self, name: str) -> str:
        """The Chinese label of a criterion or a tactic."""
        if name in self.criteria:
            return self.criteria[name].label
        return self.tactics[name].label

    @classmethod
    def load(cls, path: Path = RUBRIC_FILE) -> Rubric:
        """Read and check the rubric file.

        Args:
            path: The YAML file.

        Returns:
            The rubric.

        Raises:
            RubricError: If a criterion or field is missing, or a pattern does not compile.
        """
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            criteria = {name: _criterion(name, data["criteria"][name]) for name in CRITERIA}
            forbidden = data["forbidden"]
            tactics = {name: _tactic(name, item) for name, item in forbidden["tactics"].items()}
            tactics[OTHER_TACTIC] = _tactic(OTHER_TACTIC, forbidden[OTHER_TACTIC])
            session = data["session"]
            rules = SessionRules(
                forbidden_cap=int(session["forbidden_cap"]),
                walked_away_cap=int(session["walked_away_cap"]),
                no_answers=str(session["no_answers"]),
                outcomes={str(k): str(v) for k, v in session["outcomes"].items()},
            )
            shape = data["structure"]
            structure = Structure(
                min_clause_chars=int(shape["min_clause_chars"]),
                keyword_share=float(shape["keyword_share"]),
                keyword_list_cap=int(shape["keyword_list_cap"]),
                keyword_list=str(shape["keyword_list"]),
                short_chars=int(shape["short_chars"]),
                short_cap=int(shape["short_cap"]),
                short=str(shape["short"]),
            )
            return cls(
                criteria=criteria, tactics=tactics, cap=int(forbidden["cap"]), session=rules, structure=structure
            )
        except (KeyError, TypeError) as error:
            raise RubricError(f"{path.name}: missing or malformed {error}") from error
        except re.error as error:
            raise RubricError(f"{path.name}: bad pattern: {error}") from error


def _words(values: Optional[Sequence[Any]]) -> Tuple[str, ...]:
    return tuple(compact(str(value)) for value in values or ())


def _criterion(name: str, data: Mapping[str, Any]) -> Criterion:
    by_key = data.get("by_objection") or data.get("by_offer") or {}
    known = {"label", "points", "hit", "miss", "summary_miss", "keywords", "questions", "near", "by_objection", "by_offer"}
    return Criterion(
        name=name,
        label=str(data["label"]),
        points=int(data["points"]),
        hit=str(data["hit"]),
        miss=str(data["miss"]),
        summary_miss=str(data["summary_miss"]),
        keywords=_words(data.get("keywords") or data.get("questions")),
        near=_words(data.get("near")),
        by_key={str(key): _words(values) for key, values in by_key.items()},
        extra={str(key): str(value) for key, value in data.items() if key not in known},
    )


def _tactic(name: str, data: Mapping[str, Any]) -> Tactic:
    return Tactic(
        name=name,
        label=str(data["label"]),
        deduction=int(data["deduction"]),
        feedback=str(data["feedback"]),
        patterns=tuple(re.compile(str(pattern)) for pattern in data.get("patterns") or ()),
        negations=tuple(str(word) for word in data.get("negations") or ()),
        negation_gap=tuple(str(word) for word in data.get("negation_gap") or ()),
    )


@functools.lru_cache(maxsize=1)
def default_rubric() -> Rubric:
    """The project's rubric, loaded once per process."""
    return Rubric.load()


@dataclass(frozen=True)
class AnswerScore:
    """What one answer earned.

    Attributes:
        criteria: Per criterion (in rubric order), whether the answer met it.
        forbidden: The forbidden tactics found, in rubric order.
        score: 0 to the rubric's maximum; at most the cap when anything forbidden was said.
        feedback: Sentences for the collector: forbidden tactics first, then what was missing, then what
            went well.
        date_text: The concrete date expression the collector proposed (as normalised), if any.
        date: The day it resolves to.
    """

    criteria: Mapping[str, bool]
    forbidden: Tuple[str, ...]
    score: int
    feedback: Tuple[str, ...]
    date_text: Optional[str] = None
    date: Optional[dt.date] = None

    @property
    def hits(self) -> int:
        """How many criteria were met."""
        return sum(1 for hit in self.criteria.values() if hit)

    def as_json(self) -> Dict[str, Any]:
        """The per-criterion result as stored (``practice_turns.criteria``)."""
        return {
            "criteria": dict(self.criteria),
            "forbidden": list(self.forbidden),
            "date": self.date.isoformat() if self.date else None,
        }


def _contains_any(text: str, words: Sequence[str]) -> bool:
    return any(word and word in text for word in words)


@functools.lru_cache(maxsize=16)
def _negation_pattern(negations: Tuple[str, ...], gap: Tuple[str, ...]) -> re.Pattern[str]:
    words = "|".join(re.escape(word) for word in sorted(negations, key=len, reverse=True))
    between = "|".join(re.escape(word) for word in sorted(gap, key=len, reverse=True)) or "(?!)"
    return re.compile(f"(?:{words})(?:{between})*$")


def _negated(text: str, start: int, tactic: Tactic) -> bool:
    """Whether a negation stands directly before ``start``, in the same clause, and is not itself negated.

    不能打折 and 不会给您优惠 refuse; 没有问题，打折 (another clause) and 不能不给您打折 (a double negative)
    promise.
    """
    negations = tactic.negations
    if not negations:
        return False
    clause = _CLAUSE_END.split(text[:start])[-1]
    found = _negation_pattern(negations, tactic.negation_gap).search(clause)
    if found is None:
        return False
    # A negation right after another one (不能不, 不会不, 没有不) cancels it: the two make a promise.
    before = clause[: found.start()]
    return not any(before.endswith(word) for word in negations)


def forbidden_tactics(text: str, *, rubric: Optional[Rubric] = None) -> Tuple[str, ...]:
    """The forbidden tactics in ``text``, in rubric order (compliance's phrases and the rubric's patterns).

    Args:
        text: What the collector said.
        rubric: The rubric (default: the project's).

    Returns:
        Tactic names; ``other`` for a compliance tactic the rubric does not know.
    """
    rubric = rubric or default_rubric()
    said = compact(text)
    found: set[str] = set()
    # Compliance's own rules (its normaliser, patterns, refused discounts), already sorted by tactic: whatever
    # the bot's own check refuses, the rubric penalises.
    for name, _phrase in compliance.tactics(text):
        found.add(name if name in rubric.tactics else OTHER_TACTIC)
    for tactic in rubric.tactics.values():
        for pattern in tactic.patterns:
            if any(not _negated(said, m.start(), tactic) for m in pattern.finditer(said)):
                found.add(tactic.name)
    return tuple(name for name in rubric.tactics if name in found)


def _near(text: str, found: dates.ResolvedTime, words: Sequence[str]) -> bool:
    around = text[max(0, found.start - _PAY_WINDOW_BEFORE) : found.end + _PAY_WINDOW_AFTER]
    return _contains_any(around, words)


def _basis_words(entry: Entry, criterion: Criterion) -> List[str]:
    words = list(criterion.keywords) + list(criterion.by_key.get(entry.intent, ()))
    for basis in entry.coach.legal_basis:
        words.append(compact(basis.source))
        words.append(compact(basis.article))
    return words


def _sentences(text: str, min_chars: int) -> str:
    """The answer as the criteria read it: compacted, clauses too short to be a sentence (合同, 明细) dropped.

    Whitespace breaks a clause like a comma, so 我理解 合同 明细 is three clauses, not one.
    """
    kept: List[str] = []
    for clause, _space, stop in _CLAUSE_OR_BREAK.findall(normalize(text).text):
        if clause:
            kept.append(clause if len(clause) >= min_chars else "")
        else:
            kept.append(stop or "，")
    return compact("".join(kept))


def _keyword_share(said: str, words: Sequence[str]) -> float:
    """The share of the answer's characters (punctuation aside) that are the criteria's keywords."""
    letters = _PUNCTUATION.sub("", said)
    covered = [False] * len(letters)
    for word in {_PUNCTUATION.sub("", word) for word in words}:
        for found in re.finditer(re.escape(word), letters) if word else ():
            covered[found.start() : found.end()] = [True] * (found.end() - found.start())
    return sum(covered) / len(letters) if letters else 0.0


def score_answer(text: str, *, entry: Entry, today: dt.date, rubric: Optional[Rubric] = None) -> AnswerScore:
    """Score one collector answer to an owner raising ``entry``'s objection.

    Args:
        text: What the collector said (any script or width; it is normalised first).
        entry: The objection's playbook entry: its legal basis and offer decide the right basis and help.
        today: The day relative dates (下周五) resolve against (:func:`bot.clock.today`).
        rubric: The rubric (default: the project's).

    Returns:
        The score, per-criterion results and feedback.
    """
    rubric = rubric or default_rubric()
    structure = rubric.structure
    said = _sentences(text, structure.min_clause_chars)
    criteria = rubric.criteria
    hits: Dict[str, bool] = {}
    notes: Dict[str, str] = {}

    hits[ACKNOWLEDGE] = _contains_any(said, criteria[ACKNOWLEDGE].keywords)
    hits[BASIS] = _contains_any(said, _basis_words(entry, criteria[BASIS]))
    hits[OFFER] = _contains_any(said, criteria[OFFER].by_key.get(entry.offer.kind, ()))
    citation = entry.coach.legal_basis[0].citation
    notes[BASIS] = criteria[BASIS].miss.format(citation=citation)
    notes[OFFER] = criteria[OFFER].miss.format(offer=entry.offer.text)

    date_criterion = criteria[DATE]
    found = [item for item in dates.find_times(said, today) if _near(said, item, date_criterion.near)]
    # The last day named for paying is the one proposed (今天先登记，下周五交上).
    concrete = next((item for item in reversed(found) if item.date is not None), None)
    vague = next((item for item in found if item.date is None), None)
    if concrete is not None:
        hits[DATE] = True
        notes[DATE] = date_criterion.extra["hit_date"].format(date=concrete.text)
    elif any(
        _contains_any(sentence, date_criterion.keywords) and _contains_any(sentence, date_criterion.near)
        for sentence in _SENTENCE_END.split(said)
    ):
        hits[DATE] = True
        notes[DATE] = date_criterion.hit
    elif vague is not None:
        hits[DATE] = False
        notes[DATE] = date_criterion.extra["vague"].format(vague=vague.text)
    else:
        hits[DATE] = False
        notes[DATE] = date_criterion.miss

    shape: List[str] = []
    keywords = [
        *criteria[ACKNOWLEDGE].keywords,
        *_basis_words(entry, criteria[BASIS]),
        *criteria[OFFER].by_key.get(entry.offer.kind, ()),
        *date_criterion.keywords,
        *date_criterion.near,
    ]
    if sum(hits.values()) >= 2 and _keyword_share(said, keywords) >= structure.keyword_share:
        # Keywords strung together (我理解合同明细哪天交) say nothing to the owner: no criterion is met.
        shape.append(structure.keyword_list)
        hits = {name: False for name in CRITERIA}
        notes[DATE] = date_criterion.miss
        concrete = None
    short = len(_PUNCTUATION.sub("", compact(text))) < structure.short_chars
    if short:
        shape.append(structure.short)

    tactics = forbidden_tactics(text, rubric=rubric)
    raw = sum(criteria[name].points for name in CRITERIA if hits[name])
    if structure.keyword_list in shape:
        raw = min(raw, structure.keyword_list_cap)
    if short:
        raw = min(raw, structure.short_cap)
    if tactics:
        deductions = sum(rubric.tactics[name].deduction for name in tactics)
        score = max(0, min(rubric.cap, raw - deductions))
    else:
        score = raw

    feedback: List[str] = [rubric.tactics[name].feedback for name in tactics] + shape
    for name in CRITERIA:
        if not hits[name]:
            feedback.append(notes.get(name, criteria[name].miss))
    for name in CRITERIA:
        if hits[name]:
            feedback.append(notes[name] if name == DATE else criteria[name].hit)
    return AnswerScore(
        criteria={name: hits[name] for name in CRITERIA},
        forbidden=tactics,
        score=score,
        feedback=tuple(feedback),
        date_text=concrete.text if concrete else None,
        date=concrete.date if concrete else None,
    )


def stored_score(result: Mapping[str, Any], *, score: int, feedback: Sequence[str]) -> AnswerScore:
    """An :class:`AnswerScore` back from a stored turn (its ``criteria`` JSON, score and feedback)."""
    day = result.get("date")
    return AnswerScore(
        criteria={name: bool(result.get("criteria", {}).get(name)) for name in CRITERIA},
        forbidden=tuple(result.get("forbidden") or ()),
        score=score,
        feedback=tuple(feedback),
        date=dt.date.fromisoformat(day) if day else None,
    )


@dataclass(frozen=True)
class Summary:
    """A finished session in numbers and sentences.

    Attributes:
        criteria: Per criterion, how many answers met it (``hits``) of how many (``turns``).
        forbidden: Per forbidden tactic used, in how many answers.
        score: 0–100: the answers' mean, capped when anything forbidden was said or the owner walked away.
        feedback: What mattered: how it ended, every forbidden tactic, each criterion mostly missed.
    """

    criteria: Mapping[str, Mapping[str, int]]
    forbidden: Mapping[str, int]
    score: int
    feedback: Tuple[str, ...]

    def as_json(self) -> Dict[str, Any]:
        """As stored (``practice_sessions.summary``)."""
        return {
            "criteria": {name: dict(counts) for name, counts in self.criteria.items()},
            "forbidden": dict(self.forbidden),
            "score": self.score,
            "feedback": list(self.feedback),
        }


def summarise(
    scores: Sequence[AnswerScore], *, outcome: str, agreed_text: Optional[str] = None, rubric: Optional[Rubric] = None
) -> Summary:
    """The summary of a session whose answers scored ``scores`` and which ended with ``outcome``.

    Args:
        scores: Each answer's score, in order.
        outcome: How it ended (:class:`bot.coach.practice.simulator.Outcome` value).
        agreed_text: The day agreed, as said, when the owner agreed.
        rubric: The rubric (default: the project's).

    Returns:
        The summary.
    """
    rubric = rubric or default_rubric()
    rules = rubric.session
    turns = len(scores)
    criteria = {name: {"hits": sum(1 for s in scores if s.criteria.get(name)), "turns": turns} for name in CRITERIA}
    forbidden = {
        name: count for name in rubric.tactics if (count := sum(1 for s in scores if name in s.forbidden))
    }
    feedback: List[str] = []
    if not scores:
        return Summary(criteria=criteria, forbidden={}, score=0, feedback=(rules.no_answers,))
    if outcome in rules.outcomes:
        feedback.append(rules.outcomes[outcome].format(date=agreed_text or ""))
    feedback.extend(rubric.tactics[name].feedback for name in forbidden)
    for name in CRITERIA:
        if criteria[name]["hits"] * 2 < turns:
            feedback.append(rubric.criteria[name].summary_miss)
    # Half up (62.5 → 63), not Python's round half to even.
    score = int((Decimal(sum(s.score for s in scores)) / turns).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if forbidden:
        score = min(score, rules.forbidden_cap)
    if outcome == "walked_away":
        score = min(score, rules.walked_away_cap)
    return Summary(criteria=criteria, forbidden=forbidden, score=score, feedback=tuple(feedback))
