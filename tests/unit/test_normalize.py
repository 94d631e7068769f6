import pytest

from bot.text.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("管理費太貴了", "管理费太贵了"),
        ("業主話唔交，暖氣唔熱", "业主话唔交,暖气唔热"),
        ("ＡＢＣ１２３！", "abc123!"),
        ("NuanQi Bu Re", "nuanqi bu re"),
        ("两千块", "2000块"),
        ("一千二百元", "1200元"),
        ("三月十日交", "3月10日交"),
        ("十五号", "15号"),
        ("过两天", "过2天"),
        ("两个月没交", "2个月没交"),
        ("五号楼一二零三", "5号楼1203"),
        ("尾号一二三四", "尾号1234"),
        ("二期六栋一七零二", "2期6栋1702"),
    ],
)
def test_normalizes(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    "word", ["看一下", "一直没人修", "统一", "十分生气", "万一", "一起", "下周五", "星期一"]
)
def test_leaves_words_that_only_look_like_numbers(word: str) -> None:
    assert normalize(word).text == word


def test_traditional_and_simplified_take_the_same_path() -> None:
    assert normalize("管理費太貴").text == normalize("物業費太貴").text.replace("物业", "管理")


def test_maps_spans_back_to_the_original_when_length_changes() -> None:
    raw = "我下周交两千块好吗"
    normalized = normalize(raw)
    assert normalized.text == "我下周交2000块好吗"
    start = normalized.text.index("2000块")
    original = normalized.to_original_span(start, start + len("2000块"))
    assert raw[original[0] : original[1]] == "两千块"
    assert normalized.to_normalized_span(*original) == (start, start + len("2000块"))
    tail = normalized.text.index("好吗")
    assert normalized.to_original_span(tail, tail + 2) == (raw.index("好吗"), raw.index("好吗") + 2)


def test_empty_text() -> None:
    normalized = normalize("")
    assert normalized.text == ""
    assert normalized.to_original_span(0, 0) == (0, 0)
