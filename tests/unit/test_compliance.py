"""The intent contract, the playbook's coverage, and the law: nothing the bot can send may threaten an owner."""

import ast
import re
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import yaml

from bot.compliance import (
    FORBIDDEN_PHRASES,
    ComplianceError,
    check_outgoing,
    check_wording_sources,
    sendable_texts,
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
    assert violations("我们会把欠费业主的名字曝光") == ["曝光"]
    assert violations("请按时交费") == []
    assert "停暖" in FORBIDDEN_PHRASES and "通知单位" in FORBIDDEN_PHRASES


def test_coach_donts_may_name_forbidden_tactics_but_owner_texts_never() -> None:
    owner_facing = {text for _, text in playbook_texts()}
    for entry in default_playbook():
        for dont in entry.coach.donts:
            if violations(dont):
                assert dont not in owner_facing
