"""Baselines the shipped pipeline must beat: a keyword matcher and char n-gram TF-IDF + logistic regression.

Both train in seconds, so the test command scores them beside the model on every run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import yaml

from bot.nlu.heldout import Example, texts_and_labels
from bot.nlu.scoring import Scores, score
from bot.playbook import default_playbook
from bot.text.normalize import normalize

KEYWORDS_FILE = Path(__file__).with_name("keywords.yml")
NO_MATCH = "out_of_scope"


class KeywordMatcher:
    """Counts keyword hits per intent in the normalised text; the most hits wins, longer keywords break ties."""

    def __init__(self, keywords: Mapping[str, Sequence[str]]) -> None:
        """Builds the matcher from intent → keywords."""
        self._keywords = {intent: sorted(set(words), key=len, reverse=True) for intent, words in keywords.items()}

    @classmethod
    def from_playbook(cls, path: Path = KEYWORDS_FILE) -> KeywordMatcher:
        """The hand list plus, for every playbook entry, its title's words."""
        import jieba

        keywords: Dict[str, List[str]] = {
            intent: list(words) for intent, words in yaml.safe_load(path.read_text(encoding="utf-8")).items()
        }
        for entry in default_playbook():
            words = [w for w in jieba.lcut(normalize(entry.title).text) if len(w) >= 2]
            keywords.setdefault(entry.intent, []).extend(words)
        return cls(keywords)

    def predict(self, text: str) -> str:
        """The best-matching intent, or ``out_of_scope`` when nothing matches."""
        normalised = normalize(text).text
        best: Tuple[int, int, str] = (0, 0, NO_MATCH)
        for intent, words in self._keywords.items():
            hits = [w for w in words if w.lower() in normalised]
            if hits:
                best = max(best, (len(hits), len(hits[0]), intent), key=lambda b: (b[0], b[1]))
        return best[2]


def keyword_scores(train: Sequence[Example], heldout: Sequence[Example]) -> Scores:
    """Score the keyword matcher (it does not learn from ``train``)."""
    start = time.perf_counter()
    matcher = KeywordMatcher.from_playbook()
    setup = time.perf_counter() - start
    latencies, predicted = [], []
    for example in heldout:
        begin = time.perf_counter()
        predicted.append(matcher.predict(example.text))
        latencies.append((time.perf_counter() - begin) * 1000)
    return score("keywords (playbook)", heldout, predicted, train_seconds=setup, latencies_ms=latencies)


def tfidf_scores(train: Sequence[Example], heldout: Sequence[Example]) -> Scores:
    """Score char 1–3-gram TF-IDF + logistic regression, its C chosen by cross-validation on ``train``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    texts, labels = texts_and_labels(train)
    start = time.perf_counter()
    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LogisticRegression(max_iter=3000),
    )
    search = GridSearchCV(pipeline, {"logisticregression__C": [3.0, 10.0, 30.0]}, cv=3)
    search.fit(texts, labels)
    train_seconds = time.perf_counter() - start
    latencies, predicted = [], []
    for example in heldout:
        begin = time.perf_counter()
        predicted.append(str(search.predict([example.text])[0]))
        latencies.append((time.perf_counter() - begin) * 1000)
    chosen = search.best_params_["logisticregression__C"]
    return score(
        "char 1–3-gram TF-IDF + LR",
        heldout,
        predicted,
        train_seconds=train_seconds,
        latencies_ms=latencies,
        notes=f"C={chosen:g} by 3-fold cross-validation on the training data",
    )
