"""The held-out loader, the scores and the keyword baseline (no trained model needed)."""

from pathlib import Path

from bot.nlu.baselines import KeywordMatcher
from bot.nlu.heldout import Example, heldout_examples, plain_text, read_nlu_file
from bot.nlu.scoring import comparison_table, score
from bot.nlu_report import render


def test_loader_strips_annotations_and_labels_style_and_part(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "collector.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: promise_to_pay\n  examples: |\n    - 业主说[下周五](time)交[2000块](amount)\n'
        "- synonym: x\n  examples: |\n    - y\n",
        encoding="utf-8",
    )
    (example,) = heldout_examples(directory=tmp_path)
    assert example == Example("业主说下周五交2000块", "promise_to_pay", "collector", "dev")
    assert plain_text("[3栋](room)") == "3栋"
    assert read_nlu_file(tmp_path / "dev" / "collector.yml")[0].style == ""


def test_the_project_held_out_set_has_both_parts_and_four_styles() -> None:
    examples = heldout_examples()
    assert {e.part for e in examples} == {"dev", "final"}
    assert {e.style for e in examples} == {"owner", "collector", "regional", "noisy"}
    assert not any("](" in e.text for e in examples)


def test_scores_count_a_fallback_as_a_miss_and_split_by_style_and_part() -> None:
    examples = [
        Example("a", "greet", "owner", "dev"),
        Example("b", "greet", "noisy", "dev"),
        Example("c", "deny", "noisy", "final"),
        Example("d", "deny", "regional", "final"),
    ]
    result = score(
        "m",
        examples,
        ["greet", "nlu_fallback", "deny", "greet"],
        predicted_ignoring_fallback=["greet", "greet", "deny", "greet"],
        latencies_ms=[1, 2, 3, 4],
    )
    assert result.accuracy == 0.5 and result.accuracy_ignoring_fallback == 0.75
    assert result.per_style == {"owner": 1.0, "noisy": 0.5, "regional": 0.0}
    assert result.per_part == {"dev": 0.5, "final": 0.5}
    assert result.per_intent_f1["deny"] == 2 / 3
    assert [e.intent for e in result.errors] == ["greet → nlu_fallback", "deny → greet"]
    table = comparison_table([result])
    assert table[0].split(" | ")[4:9] == ["dev", "final", "owner", "regional", "noisy"]
    assert "| m | **0.500** | 0.750 |" in table[2]
    assert "deny → greet" in render(result, [])


def test_keyword_matcher_counts_hits_and_falls_back_to_out_of_scope() -> None:
    matcher = KeywordMatcher({"objection_heating": ["暖气", "不热"], "objection_fee_too_high": ["贵"]})
    assert matcher.predict("暖氣不熱，又這麼貴") == "objection_heating"
    assert matcher.predict("今天股市怎么样") == "out_of_scope"
    assert KeywordMatcher.from_playbook().predict("暖气一点都不热") == "objection_heating"
