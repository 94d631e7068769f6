"""The custom Rasa components, run without a trained model."""

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.entities import RuleEntityExtractorComponent
from bot.components.normalizer import ALIGNMENT, ORIGINAL_TEXT, ChineseTextNormalizer, OriginalTextRestorer

CONTEXT = ExecutionContext(GraphSchema({}), "test")


@pytest.fixture
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def make(cls, storage, name, config=None):
    return cls.create({**cls.get_default_config(), **(config or {})}, storage, Resource(name), CONTEXT)


def annotated(text: str, entity: str, value: str) -> Message:
    start = text.index(value)
    return Message(
        data={
            TEXT: text,
            "intent": "promise_to_pay",
            ENTITIES: [{"entity": entity, "start": start, "end": start + len(value), "value": value}],
        }
    )


def test_normalizer_moves_annotated_offsets_onto_the_normalised_text(storage) -> None:
    message = annotated("我下周交兩千塊好嗎", "amount", "兩千塊")
    make(ChineseTextNormalizer, storage, "norm").process_training_data(TrainingData([message]))
    assert message.get(TEXT) == "我下周交2000块好吗"
    (entity,) = message.get(ENTITIES)
    assert message.get(TEXT)[entity["start"] : entity["end"]] == "2000块"
    assert message.get(ORIGINAL_TEXT) == "我下周交兩千塊好嗎"


def test_normalizer_is_idempotent_and_skips_messages_without_text(storage) -> None:
    normalizer = make(ChineseTextNormalizer, storage, "norm")
    message = Message(data={TEXT: "管理費兩千"})
    normalizer.process([message])
    normalizer.process([message])
    assert message.get(TEXT) == "管理费2000"
    empty = Message(data={"action_name": "utter_greet"})
    normalizer.process([empty])
    assert empty.get(TEXT) is None


def test_restorer_maps_tokens_and_entities_back_to_the_owner_text(storage) -> None:
    message = Message(data={TEXT: "我下周交兩千塊"})
    make(ChineseTextNormalizer, storage, "norm").process([message])
    tokenizer = JiebaTokenizer.create(JiebaTokenizer.get_default_config(), storage, Resource("tok"), CONTEXT)
    tokenizer.process([message])
    make(RuleEntityExtractorComponent, storage, "ents").process([message])
    make(OriginalTextRestorer, storage, "restore").process([message])

    assert message.get(TEXT) == "我下周交兩千塊"
    assert message.get(ORIGINAL_TEXT) is None and message.get(ALIGNMENT) is None
    tokens = message.get(TOKENS_NAMES[TEXT])
    assert "".join(token.text for token in tokens) == "我下周交兩千塊"
    assert all(message.get(TEXT)[t.start : t.end] == t.text for t in tokens)
    (amount,) = [e for e in message.get(ENTITIES) if e["entity"] == "amount"]
    assert message.get(TEXT)[amount["start"] : amount["end"]] == "兩千塊"
    assert amount["value"] == "2000.00"


def test_entity_extractor_uses_the_message_date(storage) -> None:
    message = Message(data={TEXT: "下周五交", "metadata": {"date": "2026-11-23"}})
    make(RuleEntityExtractorComponent, storage, "ents").process([message])
    (time,) = message.get(ENTITIES)
    assert time["value"] == "2026-12-04"
    assert time["extractor"] == "RuleEntityExtractorComponent"


def test_entity_extractor_keeps_its_lexicons_in_the_model(storage) -> None:
    resource = Resource("ents")
    config = RuleEntityExtractorComponent.get_default_config()
    component = RuleEntityExtractorComponent.create(config, storage, resource, CONTEXT)
    component.train(TrainingData([]))
    missing = {"repair_lexicon": "/nonexistent.yml", "jieba_dictionary": "/nonexistent.txt"}
    loaded = RuleEntityExtractorComponent.load({**config, **missing}, storage, resource, CONTEXT)
    message = Message(data={TEXT: "楼道灯坏了"})
    loaded.process([message])
    assert [(e["entity"], e["value"]) for e in message.get(ENTITIES)] == [("repair_item", "楼道灯")]


def test_sentence_encoder_adds_one_512_wide_sentence_feature(storage: LocalModelStorage) -> None:
    import numpy as np

    from bot.components.sentence_encoder import SentenceEncoderFeaturizer

    encoder = make(SentenceEncoderFeaturizer, storage, "encoder")
    messages = [Message(data={TEXT: "物业费太贵了"}), Message(data={TEXT: "管理费太贵"}), Message(data={TEXT: "你好"})]
    encoder.process(messages)
    sentence_features = [m.get_dense_features(TEXT)[1] for m in messages]
    vectors = [features.features for features in sentence_features]
    assert [v.shape for v in vectors] == [(1, 512)] * 3
    similar = float(np.dot(vectors[0][0], vectors[1][0]))
    unrelated = float(np.dot(vectors[0][0], vectors[2][0]))
    assert similar > unrelated
    empty = Message(data={"intent": "greet"})
    encoder.process_training_data(TrainingData([empty]))
    assert empty.features == []
