"""What leaves the database as training data carries no room, phone, e-mail or name, in any way owners write them
(bot/text/anonymise.py, ``bot nlu export``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot import clock
from bot.db import models
from bot.db.session import session_scope
from bot.services import nlu_inbox
from bot.text.anonymise import anonymise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我是王建国，3栋2单元501，尾号6688", "我是某某，1栋1单元111，尾号1111"),
        ("三栋二单元五零一，手机一三八零零一三八零零零", "一栋一单元一一一，手机一一一一一一一一一一一"),
        ("尾号六六八八", "尾号一一一一"),
        ("五〇一室", "一一一室"),
        ("叁栋贰单元伍零壹", "一栋一单元一一一"),
        ("房号５０１，电话１３８００１３８０００", "房号111，电话11111111111"),
        ("免贵姓王，住七号楼", "免贵姓某，住一号楼"),
        ("我姓欧阳", "我姓某"),
        ("王先生说下周五交", "某先生说下周五交"),
        ("张建华女士的房子漏水", "某女士的房子漏水"),
        ("我叫李秀英，想问问账单", "我叫某某，想问问账单"),
        ("本人陈小红", "本人某某"),
        ("业主是赵四", "业主是某某"),
        ("My name is Wang Jianguo, room 501", "My name is 某某, room 111"),
        ("my name is wang jianguo", "my name is 某某"),
        ("I am Zhang Wei from building 3", "I am 某某 from building 1"),
        ("我是wangjianguo", "我是某某"),
        ("邮箱 wang.jg@163.com 发我账单", "邮箱 someone@example.com 发我账单"),
        # what is no name or number stays as it is
        ("I am going to pay next week", "I am going to pay next week"),
        ("我是业主，一直没人修，统一收费不合理", "我是业主，一直没人修，统一收费不合理"),
        ("我是来交费的", "我是来交费的"),
        ("我是房东", "我是房东"),
        ("老百姓都不容易", "老百姓都不容易"),
        ("本人在外地，下周一回来", "本人在外地，下周一回来"),
        ("暖气不热", "暖气不热"),
    ],
)
def test_rooms_phones_emails_and_names_are_taken_out_and_the_shape_kept(text: str, expected: str) -> None:
    assert anonymise(text) == expected


def test_names_the_estate_knows_go_wherever_they_appear() -> None:
    assert anonymise("刘德芳说陈小红下周会来交，找刘德芳", known_names=["刘德芳", "陈小红", "王"]) == (
        "某某说某某下周会来交，找某某"
    )
    assert anonymise("tell Li Xiuying", known_names=["li xiuying"]) == "tell 某某"


def test_bot_nlu_export_writes_no_numeral_or_name_in_any_script(database_url: str, tmp_path: Path) -> None:
    with session_scope(database_url) as session:
        unit = models.Unit(code="9-1-901", building="9", entrance="1", room="901")
        session.add(unit)
        session.flush()
        session.add(models.Owner(unit_id=unit.id, name="欧阳春花", phone="13912345678"))
        for number, (text, intent) in enumerate([
            ("我是欧阳春花，九栋一单元九零一暖气不热", "report_repair"),
            ("My name is Ouyang Chunhua, 尾号五六七八", "provide_phone_tail"),
            ("春花她姓欧阳，电话１３９１２３４５６７８", "provide_phone_tail"),
        ], start=1):  # fmt: skip
            session.add(models.NluCorrection(
                event_id=number, sender_id=f"web-{number}", text=text, predicted_intent="nlu_fallback",
                confidence=0.2, decision=models.NluDecision.CORRECTED, intent=intent, decided_by="li",
                decided_at=clock.now(),
            ))  # fmt: skip
    with session_scope(database_url) as session:
        assert nlu_inbox.export(session, path=tmp_path / "out.yml") == 3
    written = (tmp_path / "out.yml").read_text(encoding="utf-8")
    assert yaml.safe_load(written)["nlu"] == [
        {"intent": "provide_phone_tail", "examples": "- My name is 某某, 尾号一一一一\n- 某某她姓某，电话11111111111\n"},
        {"intent": "report_repair", "examples": "- 我是某某，一栋一单元一一一暖气不热\n"},
    ]
    for secret in ("欧阳春花", "春花", "Ouyang", "九栋", "九零一", "五六七八", "139", "１３９"):
        assert secret not in written
