"""Rasa components that normalise the text before tokenising and restore the original afterwards."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_END, ENTITY_ATTRIBUTE_START, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.text.normalize import NormalizedText, normalize

ORIGINAL_TEXT = "original_text"
"""Message key holding the text as the owner wrote it."""
ALIGNMENT = "normalization_alignment"
"""Message key holding, per normalised character, its ``[start, end)`` in the original text."""


def alignment_of(message: Message) -> Optional[NormalizedText]:
    """The normalisation recorded on a message by :class:`ChineseTextNormalizer`, if any."""
    original = message.get(ORIGINAL_TEXT)
    alignment = message.get(ALIGNMENT)
    if original is None or alignment is None:
        return None
    starts, ends = alignment
    return NormalizedText(
        original=original, text=message.get(TEXT), origin_starts=tuple(starts), origin_ends=tuple(ends)
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class ChineseTextNormalizer(GraphComponent):
    """Traditional → Simplified, full-width → half-width, Chinese numerals → digits, before tokenising.

    Annotated entity offsets in training examples are moved onto the normalised text, so that
    "管理費兩千塊" and "管理费2000块" reach the tokenizer alike.
    """

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseTextNormalizer:
        """Creates the component (it has no state)."""
        return cls()

    @staticmethod
    def required_packages() -> List[str]:
        """Packages the component imports."""
        return ["opencc", "cn2an"]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises every training example, moving annotated entity offsets along."""
        for example in training_data.training_examples:
            self._normalize(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Normalises incoming messages."""
        for message in messages:
            self._normalize(message)
        return messages

    @staticmethod
    def _normalize(message: Message) -> None:
        text = message.get(TEXT)
        if not text or message.get(ORIGINAL_TEXT) is not None:
            return
        normalized = normalize(text)
        message.set(ORIGINAL_TEXT, text)
        message.set(ALIGNMENT, [list(normalized.origin_starts), list(normalized.origin_ends)])
        message.set(TEXT, normalized.text)
        for entity in message.get(ENTITIES) or []:
            start, end = normalized.to_normalized_span(
                entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END]
            )
            entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END] = start, end


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class OriginalTextRestorer(GraphComponent):
    """Puts the owner's own text back and maps tokens and entities onto it. Runs last."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> OriginalTextRestorer:
        """Creates the component (it has no state)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Restores training examples too, so that stored data keeps the annotator's offsets."""
        for example in training_data.training_examples:
            self._restore(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Restores the original text of each message."""
        for message in messages:
            self._restore(message)
        return messages

    @staticmethod
    def _restore(message: Message) -> None:
        normalized = alignment_of(message)
        if normalized is None:
            return
        for entity in message.get(ENTITIES) or []:
            start, end = normalized.to_original_span(
                entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END]
            )
            entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END] = start, end
        for token in message.get(TOKENS_NAMES[TEXT]) or []:
            token.start, token.end = normalized.to_original_span(token.start, token.end)
            token.text = normalized.original[token.start : token.end]
        message.set(TEXT, normalized.original)
        message.data.pop(ORIGINAL_TEXT, None)
        message.data.pop(ALIGNMENT, None)
