"""The custom Rasa components, run without a trained model."""

from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import ENTITIES, FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
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


def test_e5_featurizer_adds_one_384_wide_query_embedding(storage: LocalModelStorage) -> None:
    from bot.components.e5_featurizer import E5SentenceFeaturizer, encoder

    featurizer = make(E5SentenceFeaturizer, storage, "e5")
    texts = ["物业费太贵了", "管理费收得太高", "你好"]
    messages = [Message(data={TEXT: text}) for text in texts]
    featurizer.process(messages)
    vectors = np.vstack([m.get_dense_features(TEXT)[1].features for m in messages])
    assert vectors.shape == (3, 384)
    assert np.allclose(vectors, encoder().query(texts), atol=1e-5)
    assert not np.allclose(vectors[0], encoder().passage(texts[0]), atol=1e-3)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    assert encoder() is encoder()
    empty = Message(data={"intent": "greet"})
    featurizer.process_training_data(TrainingData([empty]))
    assert empty.features == []


def test_pinyin_featurizer_puts_homophones_together_and_survives_a_reload(storage: LocalModelStorage) -> None:
    from bot.components.pinyin_featurizer import PinyinFeaturizer, sound_of

    assert sound_of("交费ok，3栋") == sound_of("教费OK 3冻") == "jiaofeiok3dong"
    featurizer = make(PinyinFeaturizer, storage, "pinyin")
    featurizer.train(TrainingData([Message(data={TEXT: "开发商说好的泳池", "intent": "x"})]))
    loaded = PinyinFeaturizer.load(
        {**PinyinFeaturizer.get_default_config()}, storage, Resource("pinyin"), CONTEXT
    )
    typed, meant, typo = (Message(data={TEXT: t}) for t in ("开发商", "kaifashang", "开发伤"))
    loaded.process([typed, meant, typo])
    rows = [m.get_sparse_features(TEXT)[1].features.toarray() for m in (typed, meant, typo)]
    assert rows[0].sum() > 0
    assert np.array_equal(rows[0], rows[1]) and np.array_equal(rows[0], rows[2])


def _message(intent: str, word: np.ndarray, char: np.ndarray, dense: Optional[np.ndarray]) -> Message:
    message = Message(data={TEXT: "x", "intent": intent})
    message.add_features(Features(scipy.sparse.coo_matrix(word), FEATURE_TYPE_SENTENCE, TEXT, "words"))
    message.add_features(Features(scipy.sparse.coo_matrix(char), FEATURE_TYPE_SENTENCE, TEXT, "chars"))
    if dense is not None:
        message.add_features(Features(dense, FEATURE_TYPE_SENTENCE, TEXT, "e5"))
    return message


def _toy_data(seed: int = 0) -> List[Message]:
    rng = np.random.default_rng(seed)
    messages = []
    for index, intent in enumerate(["greet", "deny", "affirm"] * 20):
        label = index % 3
        word = rng.poisson(0.3, (1, 12)).astype(float)
        word[0, label * 4] += 2
        char = rng.poisson(0.3, (1, 30)).astype(float)
        char[0, label * 10 + 1] += 1
        dense = rng.normal(0, 0.1, (1, 8)).astype(np.float32)
        dense[0, label] += 1
        messages.append(_message(intent, word, char, dense))
    return messages


def test_linear_classifier_matches_scikit_learn_and_reloads_without_pickle(storage: LocalModelStorage) -> None:
    from sklearn.linear_model import LogisticRegression

    from bot.components.linear_intent_classifier import LinearIntentClassifier, fit, sentence_features

    training = _toy_data()
    classifier = make(LinearIntentClassifier, storage, "linear", {"C": 5.0, "dense_weight": 2.0})
    classifier.train(TrainingData(training))
    loaded = LinearIntentClassifier.load(
        {**LinearIntentClassifier.get_default_config(), "C": 5.0}, storage, Resource("linear"), CONTEXT
    )
    tests = _toy_data(seed=1)
    probe = [_message("?", *(f.features.toarray() if f.is_sparse() else f.features for f in m.features)) for m in tests]
    loaded.process(probe)
    predicted = [m.get("intent")["name"] for m in probe]
    assert np.mean([p == t.get("intent") for p, t in zip(predicted, tests, strict=True)]) > 0.9
    ranking = probe[0].get("intent_ranking")
    assert [r["name"] for r in ranking][0] == predicted[0] and len(ranking) == 3
    assert abs(sum(r["confidence"] for r in ranking) - 1) < 1e-5

    rows = [sentence_features(m) for m in training]
    sparse = {o: scipy.sparse.vstack([r[0][o] for r in rows], format="csr") for o in ("chars", "words")}
    dense = np.vstack([r[1] for r in rows])
    labels = [m.get("intent") for m in training]
    model = fit(sparse, dense, labels, C=5.0, dense_weight=2.0, max_iter=3000)
    reference = LogisticRegression(C=5.0, max_iter=3000).fit(model.features(sparse, dense, len(labels)), labels)
    expected = reference.predict_proba(model.features(sparse, dense, len(labels)))
    assert list(reference.classes_) == list(model.labels)
    assert np.allclose(model.probabilities(sparse, dense, len(labels)), expected, atol=1e-4)
    with storage.read_from(Resource("linear")) as directory:
        assert sorted(p.name for p in directory.iterdir()) == ["labels.json", "weights.npz"]
        np.load(directory / "weights.npz", allow_pickle=False).close()


def test_linear_classifier_tolerates_a_missing_featurizer_and_an_untrained_model(storage) -> None:
    from bot.components.linear_intent_classifier import LinearIntentClassifier

    classifier = make(LinearIntentClassifier, storage, "linear")
    classifier.train(TrainingData(_toy_data()))
    only_words = Message(data={TEXT: "x"})
    word = np.zeros((1, 12))
    word[0, 4] = 3
    only_words.add_features(Features(scipy.sparse.coo_matrix(word), FEATURE_TYPE_SENTENCE, TEXT, "words"))
    classifier.process([only_words])
    assert only_words.get("intent")["name"] == "deny"

    untrained = LinearIntentClassifier.load(
        LinearIntentClassifier.get_default_config(), storage, Resource("never-trained"), CONTEXT
    )
    message = _toy_data()[0]
    untrained.process([message])
    assert message.get("intent") == {"name": None, "confidence": 0.0}
    one_intent = make(LinearIntentClassifier, storage, "single")
    one_intent.train(TrainingData([m for m in _toy_data() if m.get("intent") == "greet"]))
    nothing = _toy_data()[0]
    one_intent.process([nothing])
    assert nothing.get("intent")["name"] is None
