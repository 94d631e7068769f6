"""The intent contract, the playbook's coverage, and the law: nothing the bot can send may threaten an owner.

The coercion guard (bot.compliance) is tested here by category, negation and reassurance, lawful steps, the
four writing styles and the reasons it gives; its figures on the labelled guard set are in test_guard_set.py.
"""

import ast
import re
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import yaml

from bot.compliance import (
    ACCESS,
    CATEGORIES,
    CREDIT,
    DISCLOSURE,
    DISCOUNT,
    FORBIDDEN_PHRASES,
    HARASSMENT,
    SERVICES,
    SHAMING,
    TACTICS,
    THIRD_PARTY,
    UTILITIES,
    ComplianceError,
    Finding,
    categories,
    check_outgoing,
    check_wording_sources,
    findings,
    normalize,
    reading,
    sendable_texts,
    tactics,
    violations,
)
from bot.compliance import model as guard_model
from bot.contract import CONTRACT_INTENTS, OBJECTION_INTENTS, PLAYBOOK_INTENTS
from bot.playbook import default_playbook

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
SHARED_BRIEF = ROOT.parent / "shared" / "domain.md"


def test_every_contract_intent_is_in_the_domain() -> None:
    assert set(CONTRACT_INTENTS) <= set(DOMAIN["intents"])


@pytest.mark.skipif(not SHARED_BRIEF.exists(), reason="the shared domain brief is not beside the repo")
def test_contract_matches_the_domain_brief() -> None:
    table = SHARED_BRIEF.read_text(encoding="utf-8").split("## The intent contract")[1].split("Entities:")[0]
    named = set(re.findall(r"^\| ([a-z_]+) \|", table, flags=re.MULTILINE)) - {"intent"}
    named |= {"greet", "goodbye", "thank", "affirm", "deny", "out_of_scope"}
    assert named == set(CONTRACT_INTENTS)


@pytest.mark.parametrize("intent", PLAYBOOK_INTENTS)
def test_every_objection_and_fee_question_has_a_playbook_entry(intent: str) -> None:
    assert intent in default_playbook()


def test_every_contract_intent_has_a_playbook_entry_or_a_rule() -> None:
    rules = yaml.safe_load((ROOT / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]
    ruled = set()
    for rule in rules:
        for step in rule["steps"]:
            if "intent" in step:
                ruled.add(step["intent"])
            for alternative in step.get("or", []):
                ruled.add(alternative["intent"])
    for intent in CONTRACT_INTENTS:
        assert intent in ruled, f"{intent} has no rule"
        if intent in OBJECTION_INTENTS:
            assert intent in default_playbook()


def test_playbook_entries_cite_articles_and_list_donts() -> None:
    for entry in default_playbook():
        assert entry.coach.legal_basis, entry.intent
        assert all(re.search(r"第.+条", basis.article) for basis in entry.coach.legal_basis), entry.intent
        assert len(entry.coach.donts) >= 2, entry.intent
        assert len(entry.answers) >= 3, entry.intent
        assert entry.follow_up.endswith(("？", "?")), entry.intent


def playbook_texts() -> Iterator[Tuple[str, str]]:
    for entry in default_playbook():
        for text in entry.owner_facing_texts():
            yield f"playbook:{entry.intent}", text


def test_every_home_of_wording_is_discovered() -> None:
    sources = {item.source.split(":")[0] for item in sendable_texts()}
    playbook_files = {f"data/playbook/{p.name}" for p in (ROOT / "data" / "playbook").glob("*.yml")}
    assert {"domain.yml", "data/wording.yml"} | playbook_files == sources
    assert len(list(sendable_texts())) == check_wording_sources()


def test_no_sendable_text_threatens_or_shames() -> None:
    found = [(item.source, violations(item.text)) for item in sendable_texts() if violations(item.text)]
    assert found == []


def test_no_owner_facing_sentence_hides_in_code() -> None:
    """Code keeps no Chinese sentences of its own: they live in domain.yml, the playbook or data/wording.yml."""
    sentence = re.compile(r"[\u4e00-\u9fff].*[，。？！]")
    found = []
    for source in sorted([*(ROOT / "actions").glob("*.py"), *(ROOT / "bot").rglob("*.py")]):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if sentence.search(node.value):
                    found.append(f"{source.relative_to(ROOT)}:{node.lineno}: {node.value[:40]}")
    assert found == []


def test_start_up_refuses_forbidden_wording_naming_file_text_and_category(tmp_path: Path) -> None:
    import shutil

    for name in ("domain.yml", "data"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    wording_file = tmp_path / "data" / "wording.yml"
    wording_file.write_text(
        wording_file.read_text(encoding="utf-8") + "\nextra:\n  threat: 再不交就停水了\n", encoding="utf-8"
    )
    with pytest.raises(ComplianceError, match=r"data/wording.yml:extra.threat: “停水” \(utilities\) in “再不交就停水了”"):
        check_wording_sources(tmp_path)


def test_outgoing_text_is_blocked_and_logged_by_category_and_source_never_by_its_words(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert check_outgoing("您好，3栋501本月物业费358元，请按时交费。", source="staff:1")
    with caplog.at_level("ERROR", logger="bot.compliance"):
        assert not check_outgoing("王先生，3栋501再不交就断电，还要找你单位。", source="staff:7")
    assert caplog.messages == ["blocked an outgoing message from staff:7: utilities, third_party"]


# Written for these tests (not taken from the guard set): each a threat, a stated act or a promise.
COERCIVE = [
    # utilities (民法典 第九百四十四条): stated, conditional, cards, hot water
    ("您再不交物业费，我们下周就停您家的水。", UTILITIES),
    ("欠费业主的电卡暂停充值，缴清后恢复。", UTILITIES),
    ("再拖的话，冬天的暖气阀门我们就给你关了。", UTILITIES),
    ("欠費唔交，聽日就冇熱水用㗎喇。", UTILITIES),
    # access and movement
    ("不交钱的话，你家的门禁卡下周就停用了。", ACCESS),
    ("欠费车辆一律不给进地库，交清再说。", ACCESS),
    ("你唔交管理費，訪客我哋唔畀上樓。", ACCESS),
    # services withheld as leverage
    ("先把物业费交了，我们再安排师傅给您修。", SERVICES),
    ("欠费没结清，房屋交接资料暂不出具。", SERVICES),
    ("唔交錢就唔幫你收垃圾。", SERVICES),
    # credit records and court lists stated as our act or as imminent
    ("再不交，我们就把您的欠费上报征信。", CREDIT),
    ("我們已將您列入失信名單。", CREDIT),
    # contacting third parties (个人信息保护法)
    ("你再不交，我就打电话到你单位找你领导。", THIRD_PARTY),
    ("我们会联系您的父母，请他们督促您交费。", THIRD_PARTY),
    ("我哋會話畀你鄰居知你欠費。", THIRD_PARTY),
    # publishing and shaming
    ("下个月欠费户的房号会贴在电梯里。", SHAMING),
    ("再拖，我就把你名字发到业主群。", SHAMING),
    ("你就是个老赖。", SHAMING),
    # harassment
    ("你不接电话，我就每天给你打二十遍。", HARASSMENT),
    ("今晚十一点我们再上门找您。", HARASSMENT),
    ("我們會派人在您家門口守着，直到您繳費為止。", HARASSMENT),
    # discounts and waivers promised without a company decision
    ("今天交的话，我做主给您打八折。", DISCOUNT),
    ("现在交齐，滞纳金我给您全免了。", DISCOUNT),
    ("你今日交，我幫你免咗啲違約金。", DISCOUNT),
]


@pytest.mark.parametrize(("text", "category"), COERCIVE)
def test_each_category_is_caught_named_and_given_its_reason(text: str, category: str) -> None:
    found = findings(text)
    assert {hit.category for hit in found} == {category}, (text, found)
    about = categories()[category]
    for hit in found:
        assert (hit.reason, hit.law) == (about.reason, about.law)
        assert hit.phrase == normalize(text)[hit.start : hit.end] and hit.phrase
    assert tactics(text) == [(category, hit.phrase) for hit in found]
    assert violations(text) == [hit.phrase for hit in found]
    assert not check_outgoing(text, source="staff:1")


# Reassurances, negations and lawful steps, near each category: all may be sent.
LAWFUL = [
    "请您放心，我们不会因为欠费停您家的水电。",
    "欠物业费不影响您用水用电，也不影响门禁和车辆进出。",
    "本周四9:00至12:00因二次供水设备检修计划停水，请提前储水。",
    "明天下午电力公司检修线路，2号楼暂停供电两小时。",
    "您家的报修我们照常安排，和缴费是两回事。",
    "我们会先向您发出书面催缴通知。",
    "仍未缴纳的，公司将委托律师发送律师函，协商不成将依法起诉或申请仲裁。",
    "按合同第十二条约定，逾期缴纳按日计收违约金。",
    "业委会将督促长期欠费的业主按时缴纳。",
    "您对服务不满意，可以拨打12345反映，这是您的权利。",
    "判决生效后仍不履行的，是否纳入失信被执行人名单由法院决定。",
    "物业公司没有上报征信的权限，您不用担心。",
    "本月物业费收支情况已在公告栏公示，欢迎查阅。",
    "我们不会在业主群或公告栏公布任何业主的姓名和房号。",
    "我们只联系您本人，不会告诉您的单位、家人或邻居。",
    "您看明天上午十点方便吗？我再给您打电话。",
    "提醒只在工作日白天发送，不会天天打扰您。",
    "物业费不能打折，减免需要公司审批，我先帮您申请。",
    "唔使擔心，我哋唔會停你水電，亦唔會搵你公司。",
    "我們不會把您的欠費告訴任何第三方。",
    "不 会 因 为 欠 费 锁 您 的 车 位",
    "收支公\u200b示已张贴，不含任何业主个人信息。",
]


@pytest.mark.parametrize("text", LAWFUL)
def test_reassurances_negations_and_lawful_steps_pass(text: str) -> None:
    assert findings(text) == [], text
    assert check_outgoing(text, source="staff:1")


@pytest.mark.parametrize(
    "text",
    [
        "再不交就停水。",  # Simplified
        "再不繳就停水。",  # Traditional
        "再唔交就停水。",  # Cantonese
        "再不交就停\uff5e水。".replace("\uff5e", "\u200b"),  # zero-width space
        "再 不 交 就 停 水 。",  # spaced
        "再不交就停\u2060水\uff0e",  # word joiner, full-width stop
        "ＺＺ再不交就停水",  # full-width letters
    ],
)
def test_every_writing_style_reads_the_same(text: str) -> None:
    assert [hit.category for hit in findings(text)] == [UTILITIES], text


def test_a_negation_governs_only_its_own_clause_and_a_condition_is_not_a_negation() -> None:
    assert findings("我们不会停水。") == []
    assert [hit.category for hit in findings("你不交，我们就停水。")] == [UTILITIES]  # 不交 sets a condition
    assert [hit.category for hit in findings("没问题，不交就停你家的电。")] == [UTILITIES]
    assert [hit.category for hit in findings("我们不能不给您打折。")] == [DISCOUNT]  # a double negative promises
    assert findings("我们不打折，但可以帮您申请分期。") == []
    assert [hit.category for hit in findings("只要今天交，九折，不用走审批。")] == [DISCOUNT]  # 不用…审批 is no approval


def test_the_debt_tie_may_come_from_another_sentence_but_planned_works_are_notices() -> None:
    assert [hit.category for hit in findings("您已欠费三个月。下周起暂停供水。")] == [UTILITIES]
    assert findings("下周起暂停供水，请提前储水。") == []
    assert findings("您已欠费三个月。下周二水泵检修，暂停供水半天。") == []


def test_reasons_name_the_law_and_are_one_sentence_for_staff() -> None:
    about = categories()
    assert tuple(about) == CATEGORIES == TACTICS
    assert about[UTILITIES].law == "民法典 第九百四十四条"
    for category in (ACCESS, SERVICES, CREDIT):
        assert "民法典" in about[category].law, category
    for category in (THIRD_PARTY, SHAMING):
        assert "个人信息保护法" in about[category].law, category
    assert "第一千零三十二条" in about[THIRD_PARTY].law and "第一千零二十四条" in about[SHAMING].law
    assert "治安管理处罚法" in about[HARASSMENT].law
    assert about[DISCOUNT].law == "" and "公司" in about[DISCOUNT].reason  # a company decision, not a law
    for item in about.values():
        assert item.reason.endswith("。") and item.reason.count("。") == 1, item.name
        assert item.label


def test_findings_are_frozen_name_their_tactic_and_read_in_order_once() -> None:
    text = "再不交就停電，还要找你单位，除非打八折"
    found = findings(text)
    assert [(hit.category, hit.phrase) for hit in found] == [
        (UTILITIES, "停电"),
        (THIRD_PARTY, "找你单位"),
        (DISCOUNT, "打八折"),
    ]
    assert [hit.tactic for hit in found] == [hit.category for hit in found]
    with pytest.raises(AttributeError):
        found[0].category = SHAMING  # type: ignore[misc]
    assert isinstance(found[0], Finding)
    assert violations("欠费就断水断电，断水。") == ["断水", "断电"]
    assert DISCLOSURE == THIRD_PARTY


def test_normaliser_and_reading_fold_spellings_position_for_position() -> None:
    assert normalize("停\u200b 電\u00adＡ１") == "停电a1"
    assert normalize("請　按時\u200d交費") == "请按时交费"
    cantonese = normalize("你唔交，我哋就閂你屋企嘅門禁")
    assert reading(cantonese) == "你不交,我们就关你家里的门禁"
    assert len(reading(cantonese)) == len(cantonese)


def test_the_classifier_reads_what_no_rule_names_and_respects_reassurance() -> None:
    text = "我哋今晚會喺你門口坐到你返嚟。"
    found = findings(text)
    assert [(hit.category, hit.start, hit.end) for hit in found] == [(HARASSMENT, 0, len(normalize(text)) - 1)]
    probabilities = guard_model.probabilities(reading(normalize(text)))
    assert set(probabilities) == {guard_model.LAWFUL, *CATEGORIES}
    assert abs(sum(probabilities.values()) - 1.0) < 1e-9
    assert guard_model.judge(reading(normalize("放心，我们不会在门口等您。"))) is None


def test_every_fixed_phrase_is_caught_as_our_act_in_any_spelling() -> None:
    for phrase in FORBIDDEN_PHRASES:
        assert findings(f"欠费不交的话，我们会{phrase}。"), phrase
        assert findings("欠费不交的话，我们会" + "\u200b".join(phrase) + "。"), phrase


def test_coach_donts_may_name_forbidden_tactics_but_owner_texts_never() -> None:
    owner_facing = {text for _, text in playbook_texts()}
    for entry in default_playbook():
        for dont in entry.coach.donts:
            if violations(dont):
                assert dont not in owner_facing


def test_the_classifier_overrides_reassuring_words_only_when_it_is_sure() -> None:
    # 不再 reads as a reassurance (我们不再打电话了), yet here the garbage is the leverage: the model is sure.
    threat = "拖欠期间，您家门口的垃圾保洁员不再上门清运了。"
    sentence = reading(normalize(threat)).rstrip("。")
    assert 1.0 - guard_model.probabilities(sentence)[guard_model.LAWFUL] >= guard_model.SURE
    assert [hit.category for hit in findings(threat)] == ["services"]
    # A refused discount is a reassurance: the classifier stays quiet on it.
    assert findings("我们不能再给您优惠了，标准是合同定的。") == []
    assert guard_model.judge("我们不能再给您优惠了", excused=False) is None


def test_a_sentence_that_denies_we_could_do_it_is_not_a_threat() -> None:
    assert findings("有人说欠物业费会上征信，这个说法不对，物业公司报送不了。") == []
    assert findings("常见问题：物业公司并非征信的报送机构，欠费情况不会提供给任何银行。") == []
    assert findings("信用卡、微信、支付宝都可以交物业费。") == []
    # The same words as a threat still count.
    assert [hit.category for hit in findings("你不交钱我们就上报征信。")] == ["credit"]
    assert [hit.category for hit in findings("再拖下去，下个月就给你报到银行征信系统。")] == ["credit"]
