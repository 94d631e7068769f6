"""Scoring one collector answer in practice mode against the rubric in ``data/coach/practice/rubric.yml``.

Four criteria (acknowledge the feeling, explain with the right basis, offer the concrete help, ask for a
concrete date), each worth its points, and the forbidden tactics. The tactics are the coercion guard's
categories (:data:`bot.compliance.CATEGORIES`: utilities, access, services, credit, third_party, shaming,
harassment, discount), found by the guard itself (:func:`bot.compliance.findings`, one guard for the bot,
staff and practice); the rubric only adds practice wordings the guard has no reason to block in a staff
reply (insults, another owner's debt, 优惠), each under a guard category. Every tactic found is named in
the feedback with its label, the guard's reason and the law it breaks.

How the parts make a score (every number is rubric data):

* a clean answer earns the points of the criteria it meets, capped when it is very short or a list of
  keywords; an answer that meets any criterion scores at least ``meets_floor`` (never 0);
* an answer with a forbidden tactic scores ``min(points, cap) − the deductions of every tactic found``.
  The cap is below every deduction, so a forbidden answer always scores below zero — below every clean
  answer, however weak, and however well the rest of it was put.

Which basis and which help are right comes from the objection's playbook entry. Every sentence of feedback
is rubric or guard data.
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
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[。？！?!；;]")
# A negation reaches only within its own clause: 没有问题，打折 promises a discount.
_CLAUSE_END = re.compile(r"[，。！？；,.!?;、：:]")
# A clause of an answer as said (whitespace breaks clauses too: 我理解 合同 明细 is three), and what breaks them.
_CLAUSE_OR_BREAK = re.compile(r"([^\s，。！？；,.!?;、：:]+)|(\s+)|([，。！？；,.!?;、：:]+)")
_PUNCTUATION = re.compile(r"[^\w]+")
# Joins the words of a keyword that are met when all of them stand in one sentence (开发商+反映).
KEYWORD_JOIN = "+"
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
    """A forbidden tactic (one of the guard's categories): what it costs and what the collector is told.

    Attributes:
        name: The guard's category (:data:`bot.compliance.CATEGORIES`).
        label: The guard's label for it (停水停电停暖, 限制出入 …).
        reason: The guard's sentence on why it may not be said.
        law: The law it breaks, as the guard names it (empty when none applies).
        deduction: The points it costs.
        feedback: The sentence the collector reads: the label, the reason, the law and the rubric's advice.
        patterns: Practice wordings the guard does not block (insults, another owner's debt), as regexes.
        negations: Words that, directly before a pattern's hit in its clause, refuse rather than promise.
        negation_gap: Words that may stand between such a negation and the hit.
    """

    name: str
    label: str
    reason: str
    law: str
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
    """The whole rubric: criteria in order, forbidden tactics, the caps and floor, the session and structure rules.

    Attributes:
        cap: A forbidden answer's points before deductions are at most this (below every deduction).
        meets_floor: A clean answer that meets any criterion scores at least this (above zero).
    """

    criteria: Mapping[str, Criterion]
    tactics: Mapping[str, Tactic]
    cap: int
    meets_floor: int
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
            RubricError: If a criterion or field is missing, a guard category has no tactic (or a tactic is no
                guard category), a pattern does not compile, or the cap is not below every deduction.
        """
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            criteria = {name: _criterion(name, data["criteria"][name]) for name in CRITERIA}
            forbidden = data["forbidden"]
            listed = tuple(forbidden["tactics"])
            if set(listed) != set(compliance.CATEGORIES):
                raise RubricError(
                    f"{path.name}: forbidden.tactics must name exactly the guard's categories "
                    f"{compliance.CATEGORIES}, found {listed}"
                )
            template = str(forbidden["feedback"])
            template_no_law = str(forbidden["feedback_no_law"])
            tactics = {
                name: _tactic(name, forbidden["tactics"][name], template, template_no_law)
                for name in compliance.CATEGORIES
            }
            cap = int(forbidden["cap"])
            if any(cap >= tactic.deduction for tactic in tactics.values()):
                raise RubricError(f"{path.name}: forbidden.cap ({cap}) must be below every tactic's deduction")
            meets_floor = int(data["meets_floor"])
            if meets_floor <= 0:
                raise RubricError(f"{path.name}: meets_floor must be above zero")
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
            if structure.short_cap < meets_floor:
                raise RubricError(f"{path.name}: structure.short_cap must not be below meets_floor")
            return cls(
                criteria=criteria, tactics=tactics, cap=cap, meets_floor=meets_floor, session=rules,
                structure=structure,
            )  # fmt: skip
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


def _tactic(name: str, data: Mapping[str, Any], template: str, template_no_law: str) -> Tactic:
    """A tactic from its rubric entry and the guard's category (label, reason, law)."""
    about = compliance.categories()[name]
    filled = template if about.law else template_no_law
    return Tactic(
        name=name,
        label=about.label,
        reason=about.reason,
        law=about.law,
        deduction=int(data["deduction"]),
        feedback=filled.format(label=about.label, reason=about.reason, law=about.law, advice=str(data["advice"])),
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
        forbidden: The forbidden tactics found (guard categories), in the guard's order.
        score: 0 to the rubric's maximum for a clean answer (at least ``meets_floor`` when it meets a
            criterion); below zero when anything forbidden was said.
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
    """Whether ``text`` holds any of ``words``; a word ``A+B`` holds when A and B stand in one sentence."""
    sentences: Optional[List[str]] = None
    for word in words:
        if not word:
            continue
        if KEYWORD_JOIN not in word:
            if word in text:
                return True
            continue
        if sentences is None:
            sentences = _SENTENCE_END.split(text)
        parts = [part for part in word.split(KEYWORD_JOIN) if part]
        if any(all(part in sentence for part in parts) for sentence in sentences):
            return True
    return False


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
    """The forbidden tactics in ``text``, in the guard's category order.

    Args:
        text: What the collector said.
        rubric: The rubric (default: the project's).

    Returns:
        Guard categories: what :func:`bot.compliance.findings` finds, and the rubric's own practice wordings.
    """
    rubric = rubric or default_rubric()
    said = compact(text)
    # The guard's own rules (its normaliser, meaning rules, negations and reassurances): whatever the guard
    # refuses in a staff reply, practice penalises, under the same category.
    found = {finding.category for finding in compliance.findings(text)}
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
    parts = {part for word in words for part in word.split(KEYWORD_JOIN)}
    for word in {_PUNCTUATION.sub("", part) for part in parts}:
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
    score = _points(rubric, hits, tactics, keyword_list=structure.keyword_list in shape, short=short)

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


def _points(rubric: Rubric, hits: Mapping[str, bool], tactics: Sequence[str], *, keyword_list: bool, short: bool) -> int:
    """The score from the criteria met, the structure caps, the floor and the forbidden tactics.

    A clean answer: its criteria's points, capped for a keyword list or a very short answer, and at least
    ``meets_floor`` when it meets anything. A forbidden one: its points capped at ``cap`` less every
    tactic's deduction, which the rubric keeps below zero (the cap is below each deduction), so it ranks
    below every clean answer; never below minus the maximum.
    """
    structure = rubric.structure
    raw = sum(rubric.criteria[name].points for name in CRITERIA if hits[name])
    if keyword_list:
        raw = min(raw, structure.keyword_list_cap)
    if short:
        raw = min(raw, structure.short_cap)
    if tactics:
        deductions = sum(rubric.tactics[name].deduction for name in tactics)
        return max(-rubric.max_score, min(rubric.cap, raw) - deductions)
    if any(hits.values()):
        return max(raw, rubric.meets_floor)
    return raw


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
        score: 0–100: the answers' mean (0 at least), capped when anything forbidden was said or the owner
            walked away.
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
    mean = (Decimal(sum(s.score for s in scores)) / turns).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    score = max(0, int(mean))  # a forbidden answer's negative score pulls the mean down, never below 0
    if forbidden:
        score = min(score, rules.forbidden_cap)
    if outcome == "walked_away":
        score = min(score, rules.walked_away_cap)
    return Summary(criteria=criteria, forbidden=forbidden, score=score, feedback=tuple(feedback))
