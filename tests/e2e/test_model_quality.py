"""The trained model on held-out data: NLU accuracy floor and the test stories."""

import subprocess
import sys
from pathlib import Path

import pytest

from bot import nlu_report

pytestmark = [pytest.mark.model]
ROOT = Path(__file__).resolve().parents[2]
ACCURACY_FLOOR = 0.93
MARGIN_OVER_BASELINES = 0.01


@pytest.fixture(scope="module")
def nlu(trained_model: Path) -> nlu_report.NluReport:
    return nlu_report.evaluate(trained_model)


def test_held_out_intent_accuracy_meets_the_floor(nlu: nlu_report.NluReport) -> None:
    assert (ROOT / "results" / "nlu-report.md").read_text(encoding="utf-8") == nlu.markdown
    assert (ROOT / "results" / "nlu-confusion.csv").exists()
    assert nlu.accuracy >= ACCURACY_FLOOR, nlu.markdown
    assert min(nlu.model.per_part.values()) >= ACCURACY_FLOOR, nlu.markdown


def test_the_model_beats_both_baselines_overall_and_in_every_style(nlu: nlu_report.NluReport) -> None:
    for baseline in nlu.baselines:
        assert nlu.accuracy >= baseline.accuracy + MARGIN_OVER_BASELINES, nlu.markdown
        for style, accuracy in nlu.model.per_style.items():
            assert accuracy >= baseline.per_style[style], (style, baseline.name, nlu.markdown)
    assert "| dev | final | owner | collector | regional | noisy |" in nlu.markdown


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



ENTITY_CASES = [
    ("下周五我把物业费交了", "promise_to_pay", {"time": "2026-12-04"}),
    ("月底前交2000块", "promise_to_pay", {"time": "2026-11-30", "amount": "2000.00"}),
    ("業主說15號會交管理費", "promise_to_pay", {"time": "2026-12-15"}),
    ("3栋2单元501，手机尾号6688", "provide_identity", {"room": "3栋2单元501", "phone_tail": "6688"}),
    ("楼道灯坏了好几天了，麻烦来修", "report_repair", {"repair_item": "楼道灯"}),
]


@pytest.fixture(scope="module")
def parsed(trained_model: Path) -> dict:
    import datetime as dt

    from bot import clock
    from bot.rasa.nlu_scoring import parse_all

    texts = [text for text, _, _ in ENTITY_CASES]
    with clock.frozen(dt.datetime(2026, 11, 23, 10, 0, tzinfo=clock.zone())):
        results, _ = parse_all(trained_model, texts)
    return dict(zip(texts, results, strict=True))


@pytest.mark.parametrize(("text", "intent", "entities"), ENTITY_CASES)
def test_the_trained_model_keeps_entities_right(parsed: dict, text: str, intent: str, entities: dict) -> None:
    result = parsed[text]
    assert result["intent"]["name"] == intent
    assert {e["entity"]: e["value"] for e in result["entities"]} == entities
    assert result["text"] == text
    spans = {e["entity"]: text[e["start"] : e["end"]] for e in result["entities"]}
    assert all(spans.values()), spans
