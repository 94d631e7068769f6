"""Train the guard's classifier (bot/compliance/model.py) and report cross-validated figures.

The labelled sentences are every part of the guard set but the held-out final part (:data:`SOURCES`: dev,
own, the retired first and second final parts and two breadth parts under tests/data/guard/), with every sentence of the
stored owner-facing wording as lawful (domain.yml, data/playbook, data/wording.yml); they are copied to
data/compliance/train.yml so the shipped model's data sits beside it, and the weights are written to
data/compliance/model.json. Run: ``.venv/bin/python bench/train_guard.py``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.compliance.lexicon import SENTENCE_END  # noqa: E402
from bot.compliance.model import LAWFUL, REASSURANCE, SURE  # noqa: E402
from bot.compliance.reading import normalize, reading  # noqa: E402
from bot.compliance.sources import sendable_texts  # noqa: E402

# Every labelled part except the held-out final part: dev, the guard helper's own sentences, the first and second
# final parts (each retired to tuning once a new final part was written) and two breadth parts written apart.
SOURCES = tuple(
    ROOT / "tests" / "data" / "guard" / name
    for name in ("dev.yml", "own.yml", "first_final.yml", "second_final.yml", "breadth.yml", "breadth2.yml")
)
TRAIN_FILE = ROOT / "data" / "compliance" / "train.yml"
MODEL_FILE = ROOT / "data" / "compliance" / "model.json"
C = 16.0
MIN_DF = 2
MAX_N = 3
THRESHOLD = 0.4


def _label(row: Dict[str, Any]) -> str:
    return str(row["category"]) if row["label"] == "coercive" else LAWFUL


def _fit(texts: List[str], labels: List[str]) -> tuple[TfidfVectorizer, LogisticRegression]:
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, MAX_N), sublinear_tf=True, min_df=MIN_DF)
    model = LogisticRegression(C=C, max_iter=5000).fit(vectorizer.fit_transform(texts), labels)
    return vectorizer, model


def main() -> None:
    """Write data/compliance/train.yml and model.json; print the cross-validated figures."""
    rows: List[Dict[str, Any]] = []
    for source in SOURCES:
        rows.extend(yaml.safe_load(source.read_text(encoding="utf-8"))["sentences"])
    kept = [{"text": row["text"], "label": _label(row)} for row in rows]
    # The stored owner-facing wording is lawful by construction (it is reviewed, and the start-up check holds
    # it): every sentence of it teaches the model what ordinary collection talk reads like.
    labelled = len(kept)
    seen = {row["text"] for row in kept}
    for item in sendable_texts(ROOT):
        for sentence in re.split(f"(?<={SENTENCE_END})", item.text):
            if sentence.strip() and sentence not in seen:
                seen.add(sentence)
                kept.append({"text": sentence, "label": LAWFUL})
    TRAIN_FILE.write_text(
        "# The guard classifier's training sentences (bench/train_guard.py copies them from the guard set's dev\n"
        "# set's parts named in its SOURCES; never the final part). label: lawful or a category.\n"
        + yaml.safe_dump({"sentences": kept}, allow_unicode=True, sort_keys=False, width=200),
        encoding="utf-8",
    )
    texts = [reading(normalize(row["text"])) for row in kept]
    labels = [row["label"] for row in kept]
    truth = np.array([label != LAWFUL for label in labels])
    excused = np.array([bool(REASSURANCE.search(text)) for text in texts])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    coercive = np.zeros(len(texts))
    for train, test in folds.split(np.zeros(len(texts)), labels):
        vectorizer, model = _fit([texts[i] for i in train], [labels[i] for i in train])
        lawful = list(model.classes_).index(LAWFUL)
        probs = model.predict_proba(vectorizer.transform([texts[i] for i in test]))
        coercive[test] = 1.0 - probs[:, lawful]
    scored = np.arange(len(texts)) < labelled  # figures on the labelled set only, not on the stored wording
    for threshold in sorted({0.3, 0.4, 0.5, 0.6, THRESHOLD}):
        predicted = coercive >= threshold
        gated = predicted & ~(excused & (coercive < SURE))
        recall = (gated & truth & scored).sum() / (truth & scored).sum()
        false_alarms = (gated & ~truth & scored).sum() / (~truth & scored).sum()
        print(f"5-fold gated classifier at {threshold}: recall {recall:.3f}, false alarms {false_alarms:.3f}")
    predicted = coercive >= THRESHOLD
    gated = predicted & ~(excused & (coercive < SURE))
    for name, guess in (("classifier", predicted), ("classifier, gated", gated)):
        recall = (guess & truth & scored).sum() / (truth & scored).sum()
        false_alarms = (guess & ~truth & scored).sum() / (~truth & scored).sum()
        wording = (guess & ~scored).sum()
        print(
            f"5-fold {name}: recall {recall:.3f}, false alarms {false_alarms:.3f} on {labelled} labelled sentences; "
            f"{wording} of {len(texts) - labelled} stored wording sentences flagged"
        )
    vectorizer, model = _fit(texts, labels)
    coef = model.coef_
    features = {
        gram: [round(float(vectorizer.idf_[index]), 5), *(round(float(w), 5) for w in coef[:, index])]
        for gram, index in vectorizer.vocabulary_.items()
    }
    MODEL_FILE.write_text(
        json.dumps(
            {
                "classes": [str(name) for name in model.classes_],
                "intercepts": [round(float(value), 5) for value in model.intercept_],
                "max_n": MAX_N,
                "threshold": THRESHOLD,
                "features": dict(sorted(features.items())),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ),
        encoding="utf-8",
    )
    print(f"wrote {MODEL_FILE.relative_to(ROOT)} ({len(features)} n-grams) and {TRAIN_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
