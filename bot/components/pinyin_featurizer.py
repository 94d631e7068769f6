"""Sparse features from how a message sounds: character n-grams of its toneless pinyin.

Owners type by sound: 教费 for 交费, 开发伤 for 开发商, 马伤 for 马上, or pinyin outright ("fangzi mei ren
zhu"). Written differently, these sound the same, so n-grams over the pinyin string put them next to the
training examples they mean. Latin letters and digits pass through as typed; everything else is dropped.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Dict, List, Optional

import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

_VOCABULARY_FILE = "vocabulary.json"
_NOT_LATIN = re.compile(r"[^a-z0-9]+")


def sound_of(text: str) -> str:
    """The toneless pinyin of ``text`` run together, with latin letters and digits kept: 交费ok → jiaofeiok."""
    from pypinyin import Style, lazy_pinyin

    return _NOT_LATIN.sub("", "".join(lazy_pinyin(text, style=Style.NORMAL)).lower())


def _vectorizer(config: Dict[str, Any], vocabulary: Optional[Dict[str, int]] = None) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        analyzer="char",
        ngram_range=(config["min_ngram"], config["max_ngram"]),
        lowercase=False,
        vocabulary=vocabulary,
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class PinyinFeaturizer(SparseFeaturizer, GraphComponent):
    """Counts of pinyin character n-grams, as one sparse sentence feature per message."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """The n-gram lengths, in letters."""
        return {**SparseFeaturizer.get_default_config(), "min_ngram": 2, "max_ngram": 4}

    @staticmethod
    def required_packages() -> List[str]:
        """The packages: pypinyin turns characters into syllables; scikit-learn counts the n-grams."""
        return ["pypinyin", "sklearn"]

    def __init__(
        self,
        config: Dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[Dict[str, int]] = None,
    ) -> None:
        """Creates the featurizer, trained when ``vocabulary`` is given."""
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._vectorizer = None if vocabulary is None else _vectorizer(config, vocabulary)

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PinyinFeaturizer:
        """Creates an untrained featurizer."""
        return cls(config, execution_context.node_name, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Learns the n-gram vocabulary from the training examples and stores it."""
        sounds = [sound_of(example.get(TEXT)) for example in training_data.training_examples if example.get(TEXT)]
        sounds = [sound for sound in sounds if sound]
        if not sounds:
            logger.warning("PinyinFeaturizer saw no text to learn from; it will add no features.")
            return self._resource
        vectorizer = _vectorizer(self._config)
        vectorizer.fit(sounds)
        vocabulary = {str(gram): int(index) for gram, index in vectorizer.vocabulary_.items()}
        self._vectorizer = _vectorizer(self._config, vocabulary)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / _VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> PinyinFeaturizer:
        """Loads the stored vocabulary; an untrained featurizer if there is none."""
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = json.loads((directory / _VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            vocabulary = None
        return cls(config, execution_context.node_name, model_storage, resource, vocabulary)

    def _featurize(self, messages: List[Message]) -> None:
        if self._vectorizer is None:
            return
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            counts = scipy.sparse.coo_matrix(self._vectorizer.transform([sound_of(text)]))
            message.add_features(Features(counts, FEATURE_TYPE_SENTENCE, TEXT, self._identifier))

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
        """Checks the n-gram range."""
        if not 1 <= config["min_ngram"] <= config["max_ngram"]:
            raise ValueError("PinyinFeaturizer needs 1 <= min_ngram <= max_ngram")
