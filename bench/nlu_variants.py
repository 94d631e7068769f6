"""Compare NLU pipeline variants on the held-out test set (run: .venv/bin/python bench/nlu_variants.py).

Each variant is config.yml with a few changes; it is trained NLU-only into a temporary directory and scored
with ``rasa test nlu`` on tests/nlu/test_nlu.yml. Prints accuracy, macro F1, training time and parse time.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_SET = ROOT / "tests" / "nlu" / "test_nlu.yml"
ENCODER = {"name": "bot.components.sentence_encoder.SentenceEncoderFeaturizer"}


def _set_epochs(epochs: int) -> Callable[[Dict[str, Any]], None]:
    def change(config: Dict[str, Any]) -> None:
        for component in config["pipeline"]:
            if component["name"] == "DIETClassifier":
                component["epochs"] = epochs

    return change


def _add_encoder(config: Dict[str, Any]) -> None:
    names = [component["name"] for component in config["pipeline"]]
    config["pipeline"].insert(names.index("DIETClassifier"), dict(ENCODER))


VARIANTS: List[Tuple[str, List[Callable[[Dict[str, Any]], None]]]] = [
    ("sparse n-grams, 40 epochs", [_set_epochs(40)]),
    ("sparse n-grams + USE-m3, 40 epochs", [_set_epochs(40), _add_encoder]),
]


def _selected(argv: List[str]) -> List[Tuple[str, List[Callable[[Dict[str, Any]], None]]]]:
    """Variants whose label contains one of the arguments (all without arguments)."""
    return [v for v in VARIANTS if not argv or any(a in v[0] for a in argv)]


def _rasa(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"rasa {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def evaluate(label: str, changes: List[Callable[[Dict[str, Any]], None]], work: Path) -> None:
    """Train one variant NLU-only and print its held-out figures."""
    config = copy.deepcopy(yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8")))
    for change in changes:
        change(config)
    config_path = work / "config.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    start = time.perf_counter()
    _rasa("train", "nlu", "--config", str(config_path), "--nlu", "data/nlu", "--out", str(work), "--fixed-model-name", "nlu")
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    _rasa("test", "nlu", "--model", str(work / "nlu.tar.gz"), "--nlu", str(TEST_SET), "--out", str(work / "results"))
    test_s = time.perf_counter() - start
    report = json.loads((work / "results" / "intent_report.json").read_text(encoding="utf-8"))
    print(
        f"{label:<40} accuracy {report['accuracy']:.3f}  macro F1 {report['macro avg']['f1-score']:.3f}  "
        f"train {train_s:6.0f} s  test run {test_s:4.0f} s",
        flush=True,
    )


def main() -> None:
    """Score every variant."""
    for label, changes in _selected(sys.argv[1:]):
        with tempfile.TemporaryDirectory() as directory:
            evaluate(label, changes, Path(directory))


if __name__ == "__main__":
    main()
