import datetime as dt

import pytest

from bot.text.amounts import find_amounts
from bot.text.entities import RuleEntityExtractor, entities_as_dicts, reference_date
from bot.text.normalize import normalize

TODAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def extractor() -> RuleEntityExtractor:
    return RuleEntityExtractor()


def extract(extractor: RuleEntityExtractor, raw: str) -> list[tuple[str, object]]:
    return [(span.entity, span.value) for span in extractor.extract(normalize(raw).text, TODAY)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("我是3栋2单元501的，手机尾号6688", [("room", "3栋2单元501"), ("phone_tail", "6688")]),
        ("5号楼1203 下周五交两千块", [("room", "5号楼1203"), ("time", "2026-12-04"), ("amount", "2000.00")]),
        ("A座808楼道灯坏了", [("room", "A座808"), ("repair_item", "楼道灯")]),
        ("12-3-402 后四位1234", [("room", "12-3-402"), ("phone_tail", "1234")]),
        ("二期六栋一七零二", [("room", "2期6栋1702")]),
        ("8幢1单元302室", [("room", "8幢1单元302室")]),
        ("13812345678", [("phone_tail", "5678")]),
        ("6688", [("phone_tail", "6688")]),
        ("業主話暖氣唔熱，電梯又壞咗", [("repair_item", "暖气"), ("repair_item", "电梯")]),
        ("暖器坏了", [("repair_item", "暖气")]),
        ("月底前交一千二百元", [("time", "2026-11-30"), ("amount", "1200.00")]),
        ("年后再说", [("time", "年后")]),
    ],
)
def test_extracts(extractor: RuleEntityExtractor, raw: str, expected: list) -> None:
    assert extract(extractor, raw) == expected


def test_offsets_point_at_the_entity_text(extractor: RuleEntityExtractor) -> None:
    text = normalize("我住3栋2单元501,下周五交").text
    for span in extractor.extract(text, TODAY):
        assert text[span.start : span.end] == span.text


def test_ambiguous_time_is_flagged(extractor: RuleEntityExtractor) -> None:
    (entity,) = entities_as_dicts(extractor.extract("年后", TODAY), extractor="x")
    assert entity["additional_info"]["ambiguous"] is True
    (entity,) = entities_as_dicts(extractor.extract("明天", TODAY), extractor="x")
    assert entity == {
        "entity": "time",
        "start": 0,
        "end": 2,
        "value": "2026-11-24",
        "extractor": "x",
        "additional_info": {"ambiguous": False, "grain": "day", "reference_date": "2026-11-23"},
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1200块", 1200),
        ("3000元", 3000),
        ("1.5万", 15000),
        ("2千块钱", 2000),
        ("500蚊", 500),
        ("99.5元", 99.5),
    ],
)
def test_amounts(text: str, value: float) -> None:
    ((_, _, found),) = list(find_amounts(text))
    assert float(found) == value


def test_bare_numbers_are_not_amounts() -> None:
    assert list(find_amounts("1203")) == []


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"date": "2026-12-31"}, dt.date(2026, 12, 31)),
        ({"timestamp": "2026-11-23T23:30:00+00:00"}, dt.date(2026, 11, 24)),
        ({"timestamp": 1795363200 + 3600}, dt.date(2026, 11, 23)),
    ],
)
def test_reference_date_from_metadata(metadata: dict, expected: dt.date) -> None:
    assert reference_date(metadata) == expected


def test_reference_date_defaults_to_today() -> None:
    assert isinstance(reference_date(None), dt.date)
