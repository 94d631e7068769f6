"""The coach's own data, ``data/coach/coach.yml``: how a collector's note is read, and the coach's labels."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import yaml

COACH_FILE = Path(__file__).resolve().parents[2] / "data" / "coach" / "coach.yml"


class CoachDataError(ValueError):
    """``data/coach/coach.yml`` is missing a field or holds a value of the wrong shape."""


@dataclass(frozen=True)
class NextStepData:
    """A next step the coach sets itself: its kind (one of ``next_step_kinds``) and what to do."""

    kind: str
    text: str


@dataclass(frozen=True)
class ServiceCardData:
    """How the coach shows a repair or complaint request (``service_requests.cards.<intent>``).

    Attributes:
        kind: The next step's kind (one of ``next_step_kinds``): repair_order, complaint_record.
        link: Where the staff console opens it (a path, e.g. ``/records?tab=repairs``).
        summary: What the card says the note is, for the collector.
        next_step: What the collector does next.
        script: Playbook references (``entry.field`` or ``entry.field.N``) for the lines to say.
        strategy: Playbook references for how to handle it.
        donts: Playbook references for what never to do.
    """

    kind: str
    link: str
    summary: str
    next_step: str
    script: Tuple[str, ...]
    strategy: Tuple[str, ...]
    donts: Tuple[str, ...]


@dataclass(frozen=True)
class ServiceRequestData:
    """Repair and complaint requests: when a piece is one, when it is an objection after all, and its card."""

    intents: Tuple[str, ...]
    objections: Tuple[str, ...]
    as_objection: str
    request_words: Mapping[str, Tuple[str, ...]]
    refusal: Tuple[re.Pattern[str], ...]
    cards: Mapping[str, ServiceCardData]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per file, cached
class CoachData:
    """Reporting frames, connectors, thresholds, labels and messages."""

    subjects: Tuple[str, ...]
    adverbs: Tuple[str, ...]
    verbs: Tuple[str, ...]
    subject_verbs: Tuple[str, ...]
    verbs_not_before_time: Tuple[str, ...]
    time_words: Tuple[str, ...]
    connectors: Tuple[str, ...]
    quotes: Tuple[str, ...]
    rewrites: Mapping[str, str]
    resolved: Tuple[str, ...]
    service_requests: ServiceRequestData
    card_threshold: float
    clause_threshold: float
    max_guesses: int
    guess_floor: float
    old_arrears_months: int
    labels: Mapping[str, str]
    messages: Mapping[str, str]
    next_step_kinds: Mapping[str, str]
    next_steps: Mapping[str, NextStepData]
    intent_names: Mapping[str, str]
    punctuation: Mapping[str, str]
    wecom_lookup_commands: Tuple[str, ...]
    wecom_unit_words: str

    def label(self, key: str) -> str:
        """The label stored under ``labels.<key>``."""
        return self.labels[key]

    def mark(self, key: str) -> str:
        """The punctuation mark stored under ``punctuation.<key>``."""
        return self.punctuation[key]


def _strings(data: Mapping[str, Any], key: str) -> Tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise CoachDataError(f"{COACH_FILE.name}: '{key}' must be a non-empty list of strings")
    return tuple(value)


def _mapping(data: Mapping[str, Any], key: str) -> Dict[str, str]:
    value = data.get(key)
    if not isinstance(value, dict) or not value:
        raise CoachDataError(f"{COACH_FILE.name}: '{key}' must be a mapping")
    return {str(k): str(v).strip() for k, v in value.items()}


def _mapping_raw(data: Mapping[str, Any], key: str) -> Dict[str, str]:
    """Like :func:`_mapping`, keeping the values' spaces (punctuation such as "✗ ")."""
    value = data.get(key)
    if not isinstance(value, dict) or not value or not all(isinstance(v, str) and v for v in value.values()):
        raise CoachDataError(f"{COACH_FILE.name}: '{key}' must be a mapping of strings")
    return {str(k): v for k, v in value.items()}


def _next_steps(data: Mapping[str, Any], kinds: Mapping[str, str]) -> Dict[str, NextStepData]:
    value = data.get("next_steps")
    if not isinstance(value, dict) or not value:
        raise CoachDataError(f"{COACH_FILE.name}: 'next_steps' must be a mapping")
    steps = {}
    for name, step in value.items():
        if not isinstance(step, dict) or not str(step.get("text") or "").strip() or step.get("kind") not in kinds:
            raise CoachDataError(f"{COACH_FILE.name}: next_steps.{name} needs a text and a kind from next_step_kinds")
        steps[str(name)] = NextStepData(kind=str(step["kind"]), text=str(step["text"]).strip())
    for required in ("promise_to_pay", "old_arrears"):
        if required not in steps:
            raise CoachDataError(f"{COACH_FILE.name}: next_steps.{required} is missing")
    return steps


def _service_requests(data: Mapping[str, Any], kinds: Mapping[str, str]) -> ServiceRequestData:
    value = data.get("service_requests")
    if not isinstance(value, dict):
        raise CoachDataError(f"{COACH_FILE.name}: 'service_requests' must be a mapping")
    intents = _strings(value, "intents")
    words = value.get("request_words")
    cards = value.get("cards")
    if not isinstance(words, dict) or not isinstance(cards, dict) or set(cards) != set(intents):
        raise CoachDataError(f"{COACH_FILE.name}: service_requests needs request_words and a card per intent")
    built: Dict[str, ServiceCardData] = {}
    for intent in intents:
        card = cards[intent]
        if not isinstance(card, dict) or card.get("kind") not in kinds:
            raise CoachDataError(f"{COACH_FILE.name}: service_requests.cards.{intent} needs a kind from next_step_kinds")
        built[intent] = ServiceCardData(
            kind=str(card["kind"]),
            link=str(card.get("link") or ""),
            summary=str(card.get("summary") or "").strip(),
            next_step=str(card.get("next_step") or "").strip(),
            script=_strings(card, "script"),
            strategy=_strings(card, "strategy"),
            donts=_strings(card, "donts"),
        )
    try:
        refusal = tuple(re.compile(pattern) for pattern in _strings(value, "refusal"))
    except re.error as error:
        raise CoachDataError(f"{COACH_FILE.name}: service_requests.refusal: {error}") from error
    return ServiceRequestData(
        intents=intents,
        objections=_strings(value, "objections"),
        as_objection=str(value.get("as_objection") or ""),
        request_words={str(kind): _strings(words, kind) for kind in words},
        refusal=refusal,
        cards=built,
    )


def parse(data: Mapping[str, Any]) -> CoachData:
    """Build :class:`CoachData` from the file's YAML, checking every field."""
    frames = data.get("frames")
    if not isinstance(frames, dict):
        raise CoachDataError(f"{COACH_FILE.name}: 'frames' must be a mapping")
    wecom = data.get("wecom")
    if not isinstance(wecom, dict) or not str(wecom.get("unit_words") or ""):
        raise CoachDataError(f"{COACH_FILE.name}: 'wecom' must hold lookup_commands and unit_words")
    kinds = _mapping(data, "next_step_kinds")
    return CoachData(
        subjects=_strings(frames, "subjects"),
        adverbs=_strings(frames, "adverbs"),
        verbs=_strings(frames, "verbs"),
        subject_verbs=_strings(frames, "subject_verbs"),
        verbs_not_before_time=_strings(frames, "verbs_not_before_time"),
        time_words=_strings(frames, "time_words"),
        connectors=_strings(data, "connectors"),
        quotes=_strings(data, "quotes"),
        rewrites=_mapping(data, "rewrites"),
        resolved=_strings(data, "resolved"),
        service_requests=_service_requests(data, kinds),
        card_threshold=float(data["card_threshold"]),
        clause_threshold=float(data["clause_threshold"]),
        max_guesses=int(data["max_guesses"]),
        guess_floor=float(data["guess_floor"]),
        old_arrears_months=int(data["old_arrears_months"]),
        labels=_mapping(data, "labels"),
        messages=_mapping(data, "messages"),
        next_step_kinds=kinds,
        next_steps=_next_steps(data, kinds),
        intent_names=_mapping(data, "intent_names"),
        punctuation=_mapping_raw(data, "punctuation"),
        wecom_lookup_commands=_strings(wecom, "lookup_commands"),
        wecom_unit_words=str(wecom["unit_words"]),
    )


@functools.lru_cache(maxsize=1)
def coach_data(path: Path = COACH_FILE) -> CoachData:
    """The coach's data, read once per process."""
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
