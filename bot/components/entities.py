"""Rasa adapter for the rule-based entity extractor in :mod:`bot.text.entities`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.text import entities as rule_entities

_LEXICON_FILE = "repair_items.yml"
_JIEBA_FILE = "userdict.txt"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class RuleEntityExtractorComponent(GraphComponent, EntityExtractorMixin):
    """Adds time, amount, room, phone_tail and repair_item entities found by rules.

    Dates are resolved relative to the message's own date (``metadata.date`` or ``metadata.timestamp``,
    else the server's today from bot.clock). The lexicons are copied into the model at training time, so a trained
    model does not depend on the source tree.
    """

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Lexicon locations, relative to the working directory."""
        return {
            "repair_lexicon": str(rule_entities.DEFAULT_REPAIR_LEXICON),
            "jieba_dictionary": str(rule_entities.DEFAULT_JIEBA_DICTIONARY),
        }

    @staticmethod
    def required_packages() -> List[str]:
        """Packages the component imports."""
        return ["spacy", "jieba"]

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        lexicon_dir: Optional[Path] = None,
    ) -> None:
        """Creates the component around the lexicons in ``lexicon_dir`` (or the configured paths)."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        if lexicon_dir is not None:
            self._extractor = rule_entities.RuleEntityExtractor(
                lexicon_dir / _LEXICON_FILE, lexicon_dir / _JIEBA_FILE
            )
        else:
            self._extractor = rule_entities.RuleEntityExtractor(
                Path(config["repair_lexicon"]), Path(config["jieba_dictionary"])
            )

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RuleEntityExtractorComponent:
        """Creates an untrained component reading the configured lexicons."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> RuleEntityExtractorComponent:
        """Loads the component with the lexicons stored in the model."""
        with model_storage.read_from(resource) as directory:
            stored = Path(directory)
            return cls(config, model_storage, resource, lexicon_dir=_keep_copy(stored))

    def train(self, training_data: TrainingData) -> Resource:
        """Stores the lexicons with the model."""
        with self._model_storage.write_to(self._resource) as directory:
            shutil.copy(self._config["repair_lexicon"], Path(directory) / _LEXICON_FILE)
            shutil.copy(self._config["jieba_dictionary"], Path(directory) / _JIEBA_FILE)
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds the rule-based entities to each message."""
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            today = rule_entities.reference_date(message.get("metadata"))
            spans = self._extractor.extract(text, today)
            found = rule_entities.entities_as_dicts(spans, extractor=type(self).__name__)
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), *found], add_to_output=True)
        return messages


def _keep_copy(directory: Path) -> Path:
    """Model storage directories are temporary; copy the lexicons somewhere that outlives the ``with``."""
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="rule-entities-"))
    for name in (_LEXICON_FILE, _JIEBA_FILE):
        shutil.copy(directory / name, target / name)
    return target
