"""The intent contract, the playbook's coverage, and the law: nothing the bot can send may threaten an owner."""

import ast
import re
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import yaml

from bot.compliance import (
    DISCLOSURE,
    DISCOUNT,
    FORBIDDEN_PHRASES,
    SHAMING,
    TACTICS,
    UTILITIES,
    ComplianceError,
    check_outgoing,
    check_wording_sources,
    normalize,
    sendable_texts,
    tactics,
    violations,
)
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


def test_start_up_refuses_forbidden_wording_naming_file_and_text(tmp_path: Path) -> None:
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
    with pytest.raises(ComplianceError, match=r"data/wording.yml:extra.threat: “停水” in “再不交就停水了”"):
        check_wording_sources(tmp_path)


def test_outgoing_text_with_a_forbidden_phrase_is_blocked() -> None:
    assert check_outgoing("您好，请按时交费。", source="staff:1")
    assert not check_outgoing("再不交就断电", source="staff:1")


def test_checker_catches_forbidden_phrases() -> None:
    assert violations("再不交就停 水") == ["停水"]
    assert violations("我们会把欠费业主的名字曝光") == ["名字曝光"]
    assert violations("请按时交费") == []
    assert "停暖" in FORBIDDEN_PHRASES and "通知单位" in FORBIDDEN_PHRASES


def test_coach_donts_may_name_forbidden_tactics_but_owner_texts_never() -> None:
    owner_facing = {text for _, text in playbook_texts()}
    for entry in default_playbook():
        for dont in entry.coach.donts:
            if violations(dont):
                assert dont not in owner_facing


@pytest.mark.parametrize(
    ("text", "tactic"),
    [
        # spelled so the old whitespace-only check missed them
        ("欠费就停電", UTILITIES),  # Traditional
        ("再不交就停\u200b水", UTILITIES),  # zero-width space (Unicode category Cf)
        ("再不交就停\u2060电", UTILITIES),  # word joiner
        ("再不交就停\ufeff气", UTILITIES),  # byte-order mark
        ("再不交就停\u3000水", UTILITIES),  # ideographic space
        ("欠費就斷電", UTILITIES),
        # utility threats worded differently
        ("把您家的水停了", UTILITIES),
        ("水就给您停了", UTILITIES),
        ("再拖就关总阀", UTILITIES),
        ("到时候让你没水用", UTILITIES),
        ("冬天就没电用了", UTILITIES),
        ("停了你家的电", UTILITIES),
        # shaming
        ("把您的名字贴公告栏", SHAMING),
        ("下个月就公布名字", SHAMING),
        ("贴到公告栏上让大家看看", SHAMING),
        ("你就是个老赖", SHAMING),
        # contacting the employer
        ("我们去找你单位", DISCLOSURE),
        ("再不交就找您领导", DISCLOSURE),
        ("您单位那边我们会去联系", DISCLOSURE),
        # discount and waiver promises
        ("这个月给您打八折", DISCOUNT),
        ("给您打８折", DISCOUNT),  # full-width digit
        ("给您打个折", DISCOUNT),
        ("给您便宜点", DISCOUNT),
        ("这个月免了", DISCOUNT),
        ("滞纳金就不收了", DISCOUNT),
        ("这个月不收您物业费", DISCOUNT),
        ("这样吧，给您减免一部分。", DISCOUNT),
        ("我们不能不给您打折", DISCOUNT),  # a double negative promises
    ],
)
def test_evasive_spellings_and_other_wordings_are_caught(text: str, tactic: str) -> None:
    assert tactic in [kind for kind, _ in tactics(text)], text
    assert violations(text), text
    assert not check_outgoing(text, source="staff:1")


def test_tactics_name_the_normalised_phrase_in_reading_order() -> None:
    assert tactics("再不交就停電，还要找你单位，除非打八折") == [
        (UTILITIES, "停电"),
        (DISCLOSURE, "找你单位"),
        (DISCOUNT, "打八折"),
    ]
    assert tactics("把您家的水停了") == [(UTILITIES, "把您家的水停")]  # one hit, not one per overlapping rule
    assert violations("断水断电，断水") == ["断水", "断电"]
    assert set(TACTICS) == {UTILITIES, SHAMING, DISCLOSURE, DISCOUNT}


def test_normaliser_folds_spellings_and_removes_invisible_characters() -> None:
    assert normalize("停\u200b 電\u00adＡ１") == "停电a1"
    assert normalize("請　按時\u200d交費") == "请按时交费"


@pytest.mark.parametrize(
    "text",
    [
        "收费标准不能打折，也没法减免，但我可以把开支明细列给您。",
        "物业费不能给您减免，这是合同定的。",
        "我们会在公告栏定期公开收支情况。",
        "暖气不热，可能是阀门没调好。",
        "电梯停了我们马上修，水电费另行收取。",
        "我们联系施工单位一起整改，主管会尽快联系您。",
        "您单位开证明后联系我们，我们帮您申请分期。",
        "物业和供电公司的供电关系，电关系到每一户。",
        "我们不收您额外的手续费。",
        "我把电子账单关联到您的手机号。",
        "以免了解不清，我把明细发给您。",
        "这样可以避免了纠纷。",
        "请按时交费",
    ],
)
def test_ordinary_wording_and_refused_discounts_pass(text: str) -> None:
    assert violations(text) == [], text


def test_a_negated_threat_is_still_blocked() -> None:
    """The bot never raises cutting utilities with an owner, not even to deny it (as before the widening)."""
    assert violations("我们不会停水") == ["停水"]


def test_every_fixed_phrase_is_caught_in_any_spelling() -> None:
    for phrase in FORBIDDEN_PHRASES:
        assert violations(f"我们会{phrase}") != [], phrase
        assert violations("\u200b".join(phrase)) != [], phrase
