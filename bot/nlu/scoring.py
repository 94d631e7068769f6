"""Scores of one classifier on the held-out set, and the table that sets several side by side."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from bot.nlu.heldout import PARTS, STYLES, Example

FALLBACK_INTENT = "nlu_fallback"


@dataclass(frozen=True)
class Scores:
    """How one classifier did.

    ``accuracy`` counts a fallback as wrong; ``accuracy_ignoring_fallback`` scores the top intent that the
    fallback set aside instead.
    """

    name: str
    examples: int
    accuracy: float
    macro_f1: float
    per_style: Dict[str, float]
    per_part: Dict[str, float]
    per_intent_f1: Dict[str, float]
    accuracy_ignoring_fallback: Optional[float] = None
    train_seconds: Optional[float] = None
    ms_mean: Optional[float] = None
    ms_p95: Optional[float] = None
    notes: str = ""
    errors: List[Example] = field(default_factory=list)


def _accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])) if truth else 0.0


def score(
    name: str,
    examples: Sequence[Example],
    predicted: Sequence[str],
    *,
    predicted_ignoring_fallback: Optional[Sequence[str]] = None,
    train_seconds: Optional[float] = None,
    latencies_ms: Optional[Sequence[float]] = None,
    notes: str = "",
) -> Scores:
    """Score ``predicted`` (one intent per example, ``nlu_fallback`` allowed) against ``examples``."""
    from sklearn.metrics import f1_score

    truth = [e.intent for e in examples]
    labels = sorted(set(truth))
    per_intent = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)

    def subset(key: str, value: str) -> float:
        pairs = [(e.intent, p) for e, p in zip(examples, predicted, strict=True) if getattr(e, key) == value]
        return _accuracy([t for t, _ in pairs], [p for _, p in pairs])

    return Scores(
        name=name,
        examples=len(examples),
        accuracy=_accuracy(truth, predicted),
        macro_f1=float(np.mean(per_intent)),
        per_style={style: subset("style", style) for style in STYLES if any(e.style == style for e in examples)},
        per_part={part: subset("part", part) for part in PARTS if any(e.part == part for e in examples)},
        per_intent_f1={label: float(f1) for label, f1 in zip(labels, per_intent, strict=True)},
        accuracy_ignoring_fallback=(
            None if predicted_ignoring_fallback is None else _accuracy(truth, predicted_ignoring_fallback)
        ),
        train_seconds=train_seconds,
        ms_mean=None if not latencies_ms else float(np.mean(latencies_ms)),
        ms_p95=None if not latencies_ms else float(np.percentile(latencies_ms, 95)),
        notes=notes,
        errors=[
            Example(e.text, f"{e.intent} → {p}", e.style, e.part)
            for e, p in zip(examples, predicted, strict=True)
            if e.intent != p
        ],
    )


def _figure(value: Optional[float], pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def comparison_table(results: Sequence[Scores]) -> List[str]:
    """Markdown: one row per classifier with overall, per-part and per-style accuracy, F1 and costs."""
    parts = [p for p in PARTS if any(p in r.per_part for r in results)]
    styles = [s for s in STYLES if any(s in r.per_style for r in results)]
    header = ["pipeline", "accuracy", "ignoring fallback", "macro F1", *parts, *styles, "train s", "ms/msg", "p95 ms"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for r in results:
        cells = [
            r.name,
            f"**{r.accuracy:.3f}**",
            _figure(r.accuracy_ignoring_fallback, "{:.3f}"),
            f"{r.macro_f1:.3f}",
            *(_figure(r.per_part.get(p), "{:.3f}") for p in parts),
            *(_figure(r.per_style.get(s), "{:.3f}") for s in styles),
            _figure(r.train_seconds, "{:.0f}"),
            _figure(r.ms_mean, "{:.1f}"),
            _figure(r.ms_p95, "{:.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def per_intent_table(results: Sequence[Scores]) -> List[str]:
    """Markdown: F1 per intent (rows) for every classifier (columns), weakest first for the first one."""
    intents = sorted(results[0].per_intent_f1, key=lambda i: (results[0].per_intent_f1[i], i))
    lines = ["| intent | " + " | ".join(r.name for r in results) + " |", "| --- |" + " ---: |" * len(results)]
    for intent in intents:
        lines.append(
            f"| {intent} | " + " | ".join(f"{r.per_intent_f1.get(intent, 0.0):.2f}" for r in results) + " |"
        )
    return lines
