"""Score the trained model on the held-out set beside the baselines, and write the report.

``results/nlu-report.md``: accuracy overall, per part and per writing style for the model and for the
keyword and TF-IDF baselines, F1 per intent, the confusions and every miss. ``results/nlu-confusion.csv``:
the model's full confusion matrix. The test command runs this and holds the model to a floor.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

from bot.nlu import baselines
from bot.nlu.heldout import PROJECT_ROOT, heldout_examples, training_examples
from bot.nlu.scoring import Scores, comparison_table, per_intent_table
from bot.rasa.nlu_scoring import rasa_scores

RESULTS_DIR = PROJECT_ROOT / "results"


@dataclass(frozen=True)
class NluReport:
    """The model's scores, the baselines' scores and the report's text."""

    model: Scores
    baselines: List[Scores]
    markdown: str

    @property
    def accuracy(self) -> float:
        """The model's held-out accuracy, a fallback counted as a miss."""
        return self.model.accuracy


def _confusions(scores: Scores) -> List[str]:
    counts = Counter(error.intent for error in scores.errors)
    return [f"- {pair}: {n}" for pair, n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))] or ["- none"]


def render(model: Scores, others: Sequence[Scores]) -> str:
    """The report as markdown."""
    everyone = [model, *others]
    lines = [
        "# NLU report (held-out set)",
        "",
        f"{model.examples} held-out messages (`tests/nlu/heldout/`: the `dev` part guided the pipeline's design,",
        "the `final` part was written apart from the training data and kept untouched until the design was fixed).",
        "Accuracy counts a fallback as a miss; “ignoring fallback” scores the intent the fallback set aside.",
        "",
        *comparison_table(everyone),
        "",
        *[f"- {s.name}: {s.notes}" for s in everyone if s.notes],
        "",
        "## F1 per intent",
        "",
        *per_intent_table(everyone),
        "",
        f"## Confusions of {model.name} (true → predicted)",
        "",
        *_confusions(model),
        "",
        "## Every miss",
        "",
        "| part | style | true → predicted | message |",
        "| --- | --- | --- | --- |",
        *[f"| {e.part} | {e.style} | {e.intent} | {e.text} |" for e in model.errors],
        "",
        "Full matrix: `results/nlu-confusion.csv` (rows: true intent, columns: predicted).",
    ]
    return "\n".join(lines) + "\n"


def _write_confusion(scores: Scores, truth: Sequence[str], path: Path) -> None:
    wrong = Counter(tuple(error.intent.split(" → ")) for error in scores.errors)
    right = Counter(truth) - Counter(true for true, _ in wrong.elements())
    labels = sorted(set(truth) | {predicted for _, predicted in wrong})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *labels])
        for true in labels:
            writer.writerow(
                [true, *((right[true] if true == predicted else wrong[(true, predicted)]) for predicted in labels)]
            )


def evaluate(model: Path, results_dir: Path = RESULTS_DIR) -> NluReport:
    """Score ``model`` and the baselines on every part of the held-out set and write the report."""
    heldout = heldout_examples()
    train = training_examples()
    shipped = rasa_scores("shipped model", model, heldout)
    others = [baselines.tfidf_scores(train, heldout), baselines.keyword_scores(train, heldout)]
    markdown = render(shipped, others)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "nlu-report.md").write_text(markdown, encoding="utf-8")
    _write_confusion(shipped, [e.intent for e in heldout], results_dir / "nlu-confusion.csv")
    return NluReport(model=shipped, baselines=others, markdown=markdown)
