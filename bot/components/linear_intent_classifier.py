"""Intent classification by multinomial logistic regression over the message's sentence features.

With about 1,500 training examples a linear model on rich features beats a transformer trained from
scratch, and trains in seconds (the figures are in README and ``make bench-nlu``). The features are those
the pipeline's featurizers put on the message: the sparse n-gram counts (word and character), weighted here
by sublinear TF-IDF and L2-normalised, side by side with the dense sentence embedding, scaled by
``dense_weight``. scikit-learn fits the weights; the model stores them as plain arrays (no pickle) and
predicts with one matrix product and a softmax.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

_WEIGHTS_FILE = "weights.npz"
_LABELS_FILE = "labels.json"


Blocks = Dict[str, scipy.sparse.spmatrix]
"""Sparse sentence features by the featurizer that made them (one row per message)."""


@dataclass(frozen=True)
class LinearModel:
    """Fitted weights: ``logits = [tfidf(block) for block] ⧺ dense·dense_weight @ weights.T + bias``.

    Each sparse block (one per featurizer: word n-grams, character n-grams, pinyin n-grams) is weighted by
    sublinear TF-IDF and L2-normalised on its own, so that no featurizer drowns the others by its size.
    """

    labels: Tuple[str, ...]
    blocks: Tuple[Tuple[str, int], ...]
    idf: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    dense_width: int
    dense_weight: float

    def features(self, sparse: Blocks, dense: Optional[np.ndarray], rows: int) -> scipy.sparse.csr_matrix:
        """One row per message: every weighted block, then the scaled embedding (zeros where absent)."""
        parts, offset = [], 0
        for origin, width in self.blocks:
            counts = sparse.get(origin)
            if counts is None or counts.shape != (rows, width):
                counts = scipy.sparse.csr_matrix((rows, width), dtype=np.float32)
            parts.append(_tfidf(counts, self.idf[offset : offset + width]))
            offset += width
        if self.dense_width:
            if dense is None or dense.shape != (rows, self.dense_width):
                dense = np.zeros((rows, self.dense_width), dtype=np.float32)
            parts.append(scipy.sparse.csr_matrix(dense * self.dense_weight))
        return scipy.sparse.hstack(parts, format="csr")

    def probabilities(self, sparse: Blocks, dense: Optional[np.ndarray], rows: int = 1) -> np.ndarray:
        """Softmax over the labels, one row per message."""
        logits = np.asarray(self.features(sparse, dense, rows) @ self.weights.T) + self.bias
        logits -= np.max(logits, axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def _idf(counts: scipy.sparse.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency, as scikit-learn's ``TfidfTransformer`` computes it."""
    documents = counts.shape[0]
    frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log((1 + documents) / (1 + frequency)) + 1).astype(np.float32)


def _tfidf(counts: scipy.sparse.spmatrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    """Sublinear term frequency times idf, each row L2-normalised."""
    weighted = scipy.sparse.csr_matrix(counts, dtype=np.float32, copy=True)
    weighted.eliminate_zeros()
    np.log(weighted.data, out=weighted.data)
    weighted.data += 1
    weighted = weighted.multiply(idf.reshape(1, -1)).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
    norms[norms == 0] = 1
    return scipy.sparse.csr_matrix(weighted.multiply(1 / norms.reshape(-1, 1)))


def sentence_features(message: Message) -> Tuple[Blocks, Optional[np.ndarray]]:
    """The message's sparse sentence features by featurizer, and its dense sentence features, if any."""
    sparse: Blocks = {}
    for features in message.features:
        if features.attribute == TEXT and features.type == FEATURE_TYPE_SENTENCE and features.is_sparse():
            sparse[str(features.origin)] = scipy.sparse.csr_matrix(features.features)
    _, dense = message.get_dense_features(TEXT)
    return sparse, None if dense is None else np.asarray(dense.features, dtype=np.float32)


def fit(
    sparse: Blocks,
    dense: Optional[np.ndarray],
    labels: Sequence[str],
    *,
    C: float,
    dense_weight: float,
    max_iter: int,
) -> LinearModel:
    """Fit the weights on training rows (``sparse``: raw n-gram counts by featurizer; ``dense``: embeddings)."""
    from sklearn.linear_model import LogisticRegression

    blocks = tuple((origin, sparse[origin].shape[1]) for origin in sorted(sparse))
    idf = (
        np.concatenate([_idf(scipy.sparse.csr_matrix(sparse[origin])) for origin, _ in blocks])
        if blocks
        else np.zeros(0, dtype=np.float32)
    )
    unfitted = LinearModel(
        labels=(),
        blocks=blocks,
        idf=idf,
        weights=np.zeros((0, 0), dtype=np.float32),
        bias=np.zeros(0, dtype=np.float32),
        dense_width=0 if dense is None else dense.shape[1],
        dense_weight=dense_weight,
    )
    classifier = LogisticRegression(C=C, max_iter=max_iter)
    classifier.fit(unfitted.features(sparse, dense, len(labels)), list(labels))
    weights = classifier.coef_.astype(np.float32)
    bias = classifier.intercept_.astype(np.float32)
    if weights.shape[0] == 1:
        # Two labels: scikit-learn keeps one weight vector; softmax over (-z/2, z/2) is its sigmoid.
        weights = np.vstack([-weights / 2, weights / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2], dtype=np.float32)
    return replace(
        unfitted, labels=tuple(str(label) for label in classifier.classes_), weights=weights, bias=bias
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Predicts the intent and a ranking from sparse n-gram and dense sentence features."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Regularisation, the embedding's weight beside the n-grams, and the ranking's length."""
        return {"C": 30.0, "dense_weight": 2.0, "max_iter": 3000, "ranking_length": 10}

    @staticmethod
    def required_packages() -> List[str]:
        """scikit-learn fits the weights (prediction needs only numpy and scipy)."""
        return ["sklearn"]

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[LinearModel] = None,
    ) -> None:
        """Creates the classifier, trained when ``model`` is given."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        """Creates an untrained classifier."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the weights on every example that has an intent and features, then stores them."""
        rows = [(example.get(INTENT), *sentence_features(example)) for example in training_data.intent_examples]
        rows = [row for row in rows if row[1]]
        if len({label for label, _, _ in rows}) < 2:
            logger.warning("LinearIntentClassifier needs at least two intents with examples; not trained.")
            return self._resource
        origins = sorted({origin for _, sparse, _ in rows for origin in sparse})
        widths = {origin: next(s[origin].shape[1] for _, s, _ in rows if origin in s) for origin in origins}
        sparse = {
            origin: scipy.sparse.vstack(
                [s.get(origin, scipy.sparse.csr_matrix((1, widths[origin]))) for _, s, _ in rows], format="csr"
            )
            for origin in origins
        }
        embeddings = [row[2] for row in rows if row[2] is not None]
        dense = np.vstack(embeddings) if len(embeddings) == len(rows) else None
        self._model = fit(
            sparse,
            dense,
            [row[0] for row in rows],
            C=self._config["C"],
            dense_weight=self._config["dense_weight"],
            max_iter=self._config["max_iter"],
        )
        self._persist(self._model)
        return self._resource

    def _persist(self, model: LinearModel) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            np.savez_compressed(directory / _WEIGHTS_FILE, idf=model.idf, weights=model.weights, bias=model.bias)
            meta = {
                "labels": list(model.labels),
                "blocks": [list(block) for block in model.blocks],
                "dense_width": model.dense_width,
                "dense_weight": model.dense_weight,
            }
            (directory / _LABELS_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        """Loads the stored weights; an untrained classifier if there are none."""
        try:
            with model_storage.read_from(resource) as directory:
                meta = json.loads((directory / _LABELS_FILE).read_text(encoding="utf-8"))
                with np.load(directory / _WEIGHTS_FILE, allow_pickle=False) as arrays:
                    model = LinearModel(
                        labels=tuple(meta["labels"]),
                        blocks=tuple((str(origin), int(width)) for origin, width in meta["blocks"]),
                        idf=arrays["idf"],
                        weights=arrays["weights"],
                        bias=arrays["bias"],
                        dense_width=int(meta["dense_width"]),
                        dense_weight=float(meta["dense_weight"]),
                    )
        except (ValueError, FileNotFoundError):
            logger.warning("LinearIntentClassifier found no stored weights; it will predict nothing.")
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the intent and the ranking on every message with features."""
        for message in messages:
            sparse, dense = sentence_features(message)
            if self._model is None or not (sparse or dense is not None):
                message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            probabilities = self._model.probabilities(sparse, dense)[0]
            order = np.argsort(-probabilities)[: self._config["ranking_length"]]
            ranking = [
                {"name": self._model.labels[i], "confidence": float(probabilities[i])} for i in order
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
