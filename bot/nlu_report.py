"""Score the trained model on the held-out NLU test set and write an easy-to-read report.

``rasa test nlu`` writes JSON reports; this module turns them into ``results/nlu-report.md`` (accuracy,
per-intent precision/recall/F1, the confusions that happened, entity scores) and
``results/nlu-confusion.csv`` (the full confusion matrix).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_SET = PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml"
RESULTS_DIR = PROJECT_ROOT / "results"


@dataclass(frozen=True)
class NluSummary:
    """The headline figures and the report's text."""

    accuracy: float
    per_intent_f1: Dict[str, float]
    confusions: List[Tuple[str, str, int]]
    markdown: str


def run_rasa_test(model: Path, out: Path) -> None:
    """Run ``rasa test nlu`` on the held-out set, keeping successes and errors for the matrix."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa",
            "test",
            "nlu",
            "--nlu",
            str(TEST_SET),
            "--model",
            str(model),
            "--out",
            str(out),
            "--successes",
            "--no-plot",
        ],
        cwd=PROJECT_ROOT,
        check=True,
    )


def _predictions(out: Path) -> List[Tuple[str, str]]:
    pairs = []
    for name in ("intent_successes.json", "intent_errors.json"):
        path = out / name
        if path.exists():
            for item in json.loads(path.read_text(encoding="utf-8")):
                predicted = (item.get("intent_prediction") or {}).get("name") or "None"
                pairs.append((item["intent"], predicted))
    return pairs


def summarize(out: Path, results_dir: Path = RESULTS_DIR) -> NluSummary:
    """Read rasa's reports in ``out`` and write the markdown report and the confusion matrix."""
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    accuracy = float(report["accuracy"])
    intents = sorted(
        k for k, v in report.items() if isinstance(v, dict) and "support" in v and "avg" not in k
    )
    per_intent = {name: report[name] for name in intents}
    pairs = _predictions(out)
    counts = Counter(pairs)
    confusions = sorted(
        ((true, predicted, n) for (true, predicted), n in counts.items() if true != predicted),
        key=lambda c: (-c[2], c[0], c[1]),
    )

    lines = [
        "# NLU report (held-out test set)",
        "",
        f"Test set: `{TEST_SET.relative_to(PROJECT_ROOT)}`, {len(pairs)} examples. "
        f"**Intent accuracy: {accuracy:.3f}**, macro F1: {report['macro avg']['f1-score']:.3f}, "
        f"weighted F1: {report['weighted avg']['f1-score']:.3f}.",
        "",
        "| intent | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in sorted(intents, key=lambda n: per_intent[n]["f1-score"]):
        row = per_intent[name]
        lines.append(
            f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1-score']:.2f} | {row['support']} |"
        )
    lines += ["", "## Confusions (true → predicted)", ""]
    lines += [f"- {true} → {predicted}: {n}" for true, predicted, n in confusions] or ["- none"]
    entity_report = next(iter(sorted(out.glob("*Extractor*_report.json"))), None)
    if entity_report is not None:
        entities = json.loads(entity_report.read_text(encoding="utf-8"))
        lines += [
            "",
            "## Entities",
            "",
            "| entity | precision | recall | F1 | support |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, row in sorted(entities.items()):
            if isinstance(row, dict) and "support" in row and "avg" not in name:
                lines.append(
                    f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1-score']:.2f} | {row['support']} |"
                )
    lines += ["", "Full matrix: `results/nlu-confusion.csv` (rows: true intent, columns: predicted)."]
    markdown = "\n".join(lines) + "\n"

    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "nlu-report.md").write_text(markdown, encoding="utf-8")
    labels = sorted({label for pair in pairs for label in pair})
    with (results_dir / "nlu-confusion.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *labels])
        for true in labels:
            writer.writerow([true, *(counts.get((true, predicted), 0) for predicted in labels)])
    return NluSummary(
        accuracy=accuracy,
        per_intent_f1={name: float(per_intent[name]["f1-score"]) for name in intents},
        confusions=confusions,
        markdown=markdown,
    )


def evaluate(model: Path, results_dir: Path = RESULTS_DIR) -> NluSummary:
    """Test ``model`` on the held-out set and summarise."""
    out = results_dir / "nlu"
    run_rasa_test(model, out)
    return summarize(out, results_dir)
