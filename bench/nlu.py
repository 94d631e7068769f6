"""NLU bench (``make bench-nlu``): the shipped pipeline against its baselines and ablations, in one run.

Everything here is trained from scratch in this run (a fresh Rasa cache for each pipeline), on
``data/nlu``, and scored on the held-out set ``tests/nlu/heldout`` (both parts, per style):

- the shipped ``config.yml``: the whole ``rasa train`` (NLU and dialogue) is timed, as a fresh
  ``make run`` would do it;
- ablations of the shipped pipeline: without the e5 embeddings, without the pinyin n-grams, without both;
- Rasa's default pipeline (its ``default_config.yml``, whose WhitespaceTokenizer refuses Chinese,
  with JiebaTokenizer in its place) and none of our components;
- char 1–3-gram TF-IDF + logistic regression, and a keyword matcher from the playbook.

It then calibrates the fallback threshold by 5-fold cross-validation on the training data alone.
Writes ``results/nlu-bench.md`` and ``results/nlu-bench.json``. ``--quick`` skips Rasa's default pipeline
(about 10 minutes on 2 cores) and the calibration.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.nlu import baselines  # noqa: E402
from bot.nlu.heldout import Example, by_intent, heldout_examples, training_examples  # noqa: E402
from bot.nlu.scoring import Scores, comparison_table, per_intent_table  # noqa: E402
from bot.rasa.nlu_scoring import rasa_parse, rasa_scores  # noqa: E402

RESULTS = ROOT / "results"
SHIPPED = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
E5 = "bot.components.e5_featurizer.E5SentenceFeaturizer"
PINYIN = "bot.components.pinyin_featurizer.PinyinFeaturizer"
MISSED_CORRECT_SHARE = 0.01
"""Calibration target: at most this share of right answers may fall under the fallback threshold."""


def _rasa(args: Sequence[str], cache: Path) -> float:
    """Run a rasa command with its own empty cache (nothing reused from earlier runs); return seconds."""
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(cache), "RASA_TELEMETRY_ENABLED": "false"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"rasa {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def _without(*names: str) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    def change(config: Dict[str, Any]) -> Dict[str, Any]:
        config = copy.deepcopy(config)
        config["pipeline"] = [c for c in config["pipeline"] if c["name"] not in names]
        return config

    return change


def rasa_default_config() -> Dict[str, Any]:
    """Rasa's own default configuration, made to run on Chinese: JiebaTokenizer for WhitespaceTokenizer."""
    import rasa.engine.recipes

    path = Path(rasa.engine.recipes.__file__).parent / "config_files" / "default_config.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["language"] = "zh"
    for component in config["pipeline"]:
        if component["name"] == "WhitespaceTokenizer":
            component["name"] = "JiebaTokenizer"
    return config


def train_and_score(
    name: str, config: Dict[str, Any], heldout: Sequence[Example], work: Path, *, full: bool = False, notes: str = ""
) -> Scores:
    """Train ``config`` from scratch (NLU only unless ``full``) and score it on ``heldout``."""
    directory = Path(tempfile.mkdtemp(dir=work))
    config_path = directory / "config.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    common = ["--config", str(config_path), "--out", str(directory), "--fixed-model-name", "model"]
    if full:
        args = ["train", "--domain", "domain.yml", "--data", "data", *common]
    else:
        args = ["train", "nlu", "--nlu", "data/nlu", *common]
    seconds = _rasa(args, directory / "cache")
    print(f"  trained {name} in {seconds:.0f} s", flush=True)
    return rasa_scores(name, directory / "model.tar.gz", heldout, train_seconds=seconds, notes=notes)


def _write_nlu(examples: Sequence[Example], path: Path) -> None:
    blocks = [
        {"intent": intent, "examples": "".join(f"- {text}\n" for text in texts)}
        for intent, texts in by_intent(examples).items()
    ]
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": blocks}, allow_unicode=True), encoding="utf-8")


def calibrate(config: Dict[str, Any], work: Path, folds: int = 5) -> Dict[str, Any]:
    """Out-of-fold confidences on the training data → the highest threshold that keeps right answers."""
    examples = training_examples()
    random.Random(7).shuffle(examples)
    no_fallback = copy.deepcopy(config)
    for component in no_fallback["pipeline"]:
        if component["name"] == "FallbackClassifier":
            component["threshold"], component["ambiguity_threshold"] = 0.0, 0.0
    scored: List[Tuple[bool, float]] = []
    for fold in range(folds):
        directory = Path(tempfile.mkdtemp(dir=work))
        held = examples[fold::folds]
        rest = [e for i, e in enumerate(examples) if i % folds != fold]
        (directory / "nlu").mkdir()
        _write_nlu(rest, directory / "nlu" / "train.yml")
        config_path = directory / "config.yml"
        config_path.write_text(yaml.safe_dump(no_fallback, allow_unicode=True), encoding="utf-8")
        _rasa(
            ["train", "nlu", "--nlu", str(directory / "nlu"), "--config", str(config_path), "--out", str(directory),
             "--fixed-model-name", "fold"],
            directory / "cache",
        )
        for example, (intent, confidence) in zip(held, rasa_parse(directory / "fold.tar.gz", held), strict=True):
            scored.append((intent == example.intent, confidence))
        print(f"  calibration fold {fold + 1}/{folds} done", flush=True)
    right = sorted(confidence for correct, confidence in scored if correct)
    wrong = [confidence for correct, confidence in scored if not correct]
    rows = []
    for step in range(1, 13):
        threshold = step * 0.05
        rows.append(
            {
                "threshold": round(threshold, 2),
                "right_answers_set_aside": sum(c < threshold for c in right) / len(right),
                "wrong_answers_caught": (sum(c < threshold for c in wrong) / len(wrong)) if wrong else 0.0,
            }
        )
    keeps = [row["threshold"] for row in rows if row["right_answers_set_aside"] <= MISSED_CORRECT_SHARE]
    return {
        "folds": folds,
        "out_of_fold_accuracy": len(right) / len(scored),
        "recommended_threshold": max(keeps) if keeps else 0.0,
        "rows": rows,
    }


def _configured_threshold() -> Optional[float]:
    for component in SHIPPED["pipeline"]:
        if component["name"] == "FallbackClassifier":
            return float(component["threshold"])
    return None


def render(results: Sequence[Scores], calibration: Optional[Dict[str, Any]]) -> str:
    """The bench's report."""
    lines = [
        "# NLU bench",
        "",
        f"Held-out: {results[0].examples} messages (`tests/nlu/heldout/`, parts dev and final, four styles). "
        "Training from scratch on this machine; ms/msg is one parse at a time through the whole pipeline.",
        "",
        *comparison_table(results),
        "",
        *[f"- {r.name}: {r.notes}" for r in results if r.notes],
        "",
        "## F1 per intent",
        "",
        *per_intent_table(results),
    ]
    if calibration:
        lines += [
            "",
            "## Fallback threshold",
            "",
            f"{calibration['folds']}-fold cross-validation on the training data only (out-of-fold accuracy "
            f"{calibration['out_of_fold_accuracy']:.3f}). Recommended: **{calibration['recommended_threshold']:.2f}**, "
            f"the highest that sets aside at most {MISSED_CORRECT_SHARE:.0%} of right answers; configured: "
            f"{_configured_threshold()}.",
            "",
            "| threshold | right answers set aside | wrong answers caught |",
            "| ---: | ---: | ---: |",
            *[
                f"| {r['threshold']:.2f} | {r['right_answers_set_aside']:.1%} | {r['wrong_answers_caught']:.1%} |"
                for r in calibration["rows"]
            ],
        ]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the bench and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip Rasa's default pipeline and the calibration")
    args = parser.parse_args(argv)
    heldout = heldout_examples()
    train = training_examples()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        results = [
            train_and_score(
                "shipped (config.yml)", SHIPPED, heldout, work, full=True,
                notes="train s is the whole `rasa train`: NLU and dialogue policies, from an empty cache",
            ),
            train_and_score("shipped without e5", _without(E5)(SHIPPED), heldout, work),
            train_and_score("shipped without pinyin", _without(PINYIN)(SHIPPED), heldout, work),
            train_and_score("shipped without e5 and pinyin", _without(E5, PINYIN)(SHIPPED), heldout, work),
        ]
        if not args.quick:
            results.append(
                train_and_score(
                    "Rasa default pipeline", rasa_default_config(), heldout, work,
                    notes="Rasa's default_config.yml with JiebaTokenizer (its WhitespaceTokenizer refuses zh)",
                )
            )
        results += [baselines.tfidf_scores(train, heldout), baselines.keyword_scores(train, heldout)]
        calibration = None if args.quick else calibrate(SHIPPED, work)
    markdown = render(results, calibration)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nlu-bench.md").write_text(markdown, encoding="utf-8")
    payload = {
        "results": [{k: v for k, v in asdict(r).items() if k != "errors"} for r in results],
        "calibration": calibration,
    }
    (RESULTS / "nlu-bench.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
