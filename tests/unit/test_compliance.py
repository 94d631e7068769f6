"""The intent contract, the playbook's coverage, and the law: nothing the bot can send may threaten an owner."""

import ast
import re
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import yaml

from bot import offers, promises
from bot.compliance import FORBIDDEN_PHRASES, violations
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


def domain_texts() -> Iterator[Tuple[str, str]]:
    for name, variants in DOMAIN["responses"].items():
        for variant in variants:
            yield f"domain:{name}", variant["text"]


def playbook_texts() -> Iterator[Tuple[str, str]]:
    for entry in default_playbook():
        for text in entry.owner_facing_texts():
            yield f"playbook:{entry.intent}", text


def offer_texts() -> Iterator[Tuple[str, str]]:
    for kind, text in offers.offer_replies().items():
        yield f"offers:{kind}", text


def code_texts() -> Iterator[Tuple[str, str]]:
    """String literals in the code that builds messages (actions and the wording helpers)."""
    sources = [*sorted((ROOT / "actions").glob("*.py")), Path(promises.__file__), Path(offers.__file__)]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{source.name}:{node.lineno}", node.value


def all_sendable_texts() -> list[Tuple[str, str]]:
    return [*domain_texts(), *playbook_texts(), *offer_texts(), *code_texts()]


def test_no_sendable_text_threatens_or_shames() -> None:
    found = [(where, phrase) for where, text in all_sendable_texts() for phrase in violations(text)]
    assert found == []


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
