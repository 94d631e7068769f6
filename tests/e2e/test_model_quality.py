"""The trained model on held-out data: NLU accuracy floor and the test stories."""

import subprocess
import sys
from pathlib import Path

import pytest

from bot import nlu_report

pytestmark = [pytest.mark.model]
ROOT = Path(__file__).resolve().parents[2]
ACCURACY_FLOOR = 0.90


def test_held_out_intent_accuracy_meets_the_floor(trained_model: Path) -> None:
    summary = nlu_report.evaluate(trained_model)
    assert (ROOT / "results" / "nlu-report.md").exists()
    assert (ROOT / "results" / "nlu-confusion.csv").exists()
    assert summary.accuracy >= ACCURACY_FLOOR, summary.markdown


def test_stories_without_prediction_errors(trained_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa",
            "test",
            "core",
            "--model",
            str(trained_model),
            "--stories",
            str(ROOT / "tests" / "test_stories.yml"),
            "--out",
            str(tmp_path),
            "--fail-on-prediction-errors",
            "--no-plot",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
