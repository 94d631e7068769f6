"""The coach's own data, ``data/coach/coach.yml``: how a collector's note is read, and the coach's labels."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import yaml

COACH_FILE = Path(__file__).resolve().parents[2] / "data" / "coach" / "coach.yml"


class CoachDataError(ValueError):
    """``data/coach/coach.yml`` is missing a field or holds a value of the wrong shape."""


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per file, cached
class CoachData:
    """Reporting frames, connectors, thresholds, labels and messages."""

    subjects: Tuple[str, ...]
    adverbs: Tuple[str, ...]
    verbs: Tuple[str, ...]
    subject_verbs: Tuple[str, ...]
    connectors: Tuple[str, ...]
    quotes: Tuple[str, ...]
    card_threshold: float
    clause_threshold: float
    max_guesses: int
    guess_floor: float
    old_arrears_months: int
    labels: Mapping[str, str]
    messages: Mapping[str, str]
    next_step_kinds: Mapping[str, str]
    intent_names: Mapping[str, str]

    def label(self, key: str) -> str:
        """The label stored under ``labels.<key>``."""
        return self.labels[key]


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


def parse(data: Mapping[str, Any]) -> CoachData:
    """Build :class:`CoachData` from the file's YAML, checking every field."""
    frames = data.get("frames")
    if not isinstance(frames, dict):
        raise CoachDataError(f"{COACH_FILE.name}: 'frames' must be a mapping")
    return CoachData(
        subjects=_strings(frames, "subjects"),
        adverbs=_strings(frames, "adverbs"),
        verbs=_strings(frames, "verbs"),
        subject_verbs=_strings(frames, "subject_verbs"),
        connectors=_strings(data, "connectors"),
        quotes=_strings(data, "quotes"),
        card_threshold=float(data["card_threshold"]),
        clause_threshold=float(data["clause_threshold"]),
        max_guesses=int(data["max_guesses"]),
        guess_floor=float(data["guess_floor"]),
        old_arrears_months=int(data["old_arrears_months"]),
        labels=_mapping(data, "labels"),
        messages=_mapping(data, "messages"),
        next_step_kinds=_mapping(data, "next_step_kinds"),
        intent_names=_mapping(data, "intent_names"),
    )


@functools.lru_cache(maxsize=1)
def coach_data(path: Path = COACH_FILE) -> CoachData:
    """The coach's data, read once per process."""
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
