"""Bot messages as WeChat texts: byte limits, natural split points, buttons as numbered choices."""

import pytest

from bot.wechat.format import (
    MAX_TEXT_BYTES,
    Choice,
    match_choice,
    pack_messages,
    render_bot_messages,
    render_choices,
    split_text,
    utf8_len,
)


def test_short_text_is_one_message() -> None:
    assert split_text("  您好，请问有什么可以帮您？ ") == ["您好，请问有什么可以帮您？"]
    assert split_text("   ") == []


def test_long_text_splits_at_sentence_ends_within_the_byte_limit() -> None:
    sentence = "物业费用于公共区域的保洁、绿化、秩序维护和设备运行。"  # 26 chars, 78 bytes
    text = sentence * 60  # 4680 bytes
    pieces = split_text(text)
    assert len(pieces) == 3
    assert all(utf8_len(piece) <= MAX_TEXT_BYTES for piece in pieces)
    assert all(piece.endswith("。") for piece in pieces)
    assert "".join(pieces) == text


def test_line_ends_are_preferred_over_sentence_ends() -> None:
    paragraph = "第一句。第二句。" * 10  # 240 bytes per paragraph
    text = "\n".join([paragraph] * 3)
    pieces = split_text(text, limit=500)
    assert pieces == ["\n".join([paragraph] * 2), paragraph]


def test_closing_quotes_stay_with_their_sentence() -> None:
    pieces = split_text("他说：“好的。”然后走了。" * 3, limit=30)
    assert all(not piece.startswith("”") for piece in pieces)
    assert pieces[0] == "他说：“好的。”"


def test_text_without_any_boundary_is_cut_between_characters_never_inside_one() -> None:
    text = "啊" * 1000 + "😀" * 300  # 3000 + 1200 bytes, emoji are 4 bytes each
    pieces = split_text(text)
    assert all(utf8_len(piece) <= MAX_TEXT_BYTES for piece in pieces)
    assert "".join(pieces) == text


def test_pack_combines_short_messages_and_keeps_order() -> None:
    assert pack_messages(["核对成功，王建国您好。", "您目前欠物业费2,460.00元。"]) == [
        "核对成功，王建国您好。\n\n您目前欠物业费2,460.00元。"
    ]
    long = "很长的一句话。" * 120  # 2520 bytes
    packed = pack_messages(["开头。", long, "结尾。"])
    assert all(utf8_len(piece) <= MAX_TEXT_BYTES for piece in packed)
    assert packed[0].startswith("开头。\n\n很长的一句话。") and packed[-1].endswith("结尾。")
    assert "".join(packed).replace("\n\n", "") == "开头。" + long + "结尾。"


def test_buttons_become_numbered_choices_across_the_turn() -> None:
    texts, choices = render_bot_messages(
        [
            {
                "text": "需要帮您登记维修吗？",
                "buttons": [{"title": "好的", "payload": "/affirm"}, {"title": "不用了", "payload": "/deny"}],
            },
            {"text": "或者：", "buttons": [{"title": "找人工", "payload": "/ask_human"}]},
            {"image": "https://example.com/bill.png"},
            {"custom": {"kind": "card"}},
        ]
    )
    assert texts == [
        "需要帮您登记维修吗？\n回复数字选择：\n1. 好的\n2. 不用了",
        "或者：\n回复数字选择：\n3. 找人工",
        "https://example.com/bill.png",
    ]
    assert choices == [Choice("好的", "/affirm"), Choice("不用了", "/deny"), Choice("找人工", "/ask_human")]
    assert (
        render_choices([Choice("好的", "/affirm"), Choice("不用了", "/deny")])
        == "回复数字选择：\n1. 好的\n2. 不用了"
    )


def test_button_without_payload_sends_its_title() -> None:
    _, choices = render_bot_messages([{"text": "选一个", "buttons": [{"title": "明天上午"}]}])
    assert choices == [Choice("明天上午", "明天上午")]


@pytest.mark.parametrize("typed", ["1", " 1 ", "１", "1.", "1。", "第1个", "1号"])
def test_typed_numbers_pick_a_choice(typed: str) -> None:
    choices = [Choice("好的", "/affirm"), Choice("不用了", "/deny")]
    assert match_choice(typed, choices) == choices[0]


@pytest.mark.parametrize("typed", ["0", "3", "6688", "好的", "1栋", ""])
def test_other_texts_pick_nothing(typed: str) -> None:
    assert match_choice(typed, [Choice("好的", "/affirm"), Choice("不用了", "/deny")]) is None


def test_no_pending_choices_means_numbers_are_just_text() -> None:
    assert match_choice("1", []) is None


def test_choice_round_trips_through_its_storage_form() -> None:
    choice = Choice("好的", '/affirm{"x": 1}')
    assert Choice.from_dict(choice.to_dict()) == choice
