"""Practice mode's rubric: good, weak and forbidden answers for every objection, feedback from the rubric data,
the coercion guard's findings reused (one guard, every category named with its law), a forbidden answer below
zero whatever else it does well, a clean answer that meets anything above zero."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from bot import compliance
from bot.coach.practice import rubric as rubric_module
from bot.coach.practice.rubric import (
    CRITERIA,
    Rubric,
    default_rubric,
    forbidden_tactics,
    score_answer,
    summarise,
)
from bot.coach.practice.simulator import objection_intents
from bot.compliance import FORBIDDEN_PHRASES
from bot.playbook import default_playbook

TODAY = dt.date(2026, 11, 24)  # a Tuesday: 下周五 is 2026-12-04
RUBRIC = yaml.safe_load(rubric_module.RUBRIC_FILE.read_text(encoding="utf-8"))

# The concrete help a collector can offer, per playbook offer kind, said as a collector would.
HELP = {
    "repair_order": "我今天就给您报修，安排师傅上门看",
    "complaint_record": "您说的问题我马上登记，派人去现场核实",
    "itemised_breakdown": "我把物业费的开支明细给您列一下",
    "instalment_request": "我帮您申请分期，先交一部分",
    "developer_letter": "我们会向开发商发函，代表业主把问题反映上去",
    "police_certificate": "我们帮您调监控，配合派出所出具证明",
    "joint_petition": "我们和居委会、业委会一起向有关部门反映",
    "payment_date": "我帮您把日子记下，到时候提醒您",
}


def good_answer(intent: str) -> str:
    entry = default_playbook().get(intent)
    assert entry is not None
    return (
        f"理解您的心情，遇到这种事谁都着急。按照物业服务合同和《民法典》第九百四十四条，物业费还是要按时交的。"
        f"{HELP[entry.offer.kind]}。您看下周五能把物业费交上吗？"
    )


def entry(intent: str = "objection_heating"):  # type: ignore[no-untyped-def]
    found = default_playbook().get(intent)
    assert found is not None
    return found


@pytest.mark.parametrize("intent", objection_intents())
def test_a_good_answer_meets_every_criterion_for_every_objection(intent: str) -> None:
    score = score_answer(good_answer(intent), entry=entry(intent), today=TODAY)
    assert dict(score.criteria) == {name: True for name in CRITERIA}
    assert score.forbidden == ()
    assert score.score == 100 == default_rubric().max_score
    assert score.date == dt.date(2026, 12, 4) and score.date_text == "下周五"
    assert list(score.feedback) == [
        RUBRIC["criteria"]["acknowledge"]["hit"],
        RUBRIC["criteria"]["basis"]["hit"],
        RUBRIC["criteria"]["offer"]["hit"],
        RUBRIC["criteria"]["date"]["hit_date"].format(date="下周五"),
    ]


def test_a_weak_answer_scores_nothing_and_is_told_what_was_missing() -> None:
    heating = entry()
    score = score_answer("物业费您还是得交啊。", entry=heating, today=TODAY)
    assert dict(score.criteria) == {"acknowledge": False, "basis": False, "offer": False, "date": False}
    assert score.score == 0
    assert score.feedback == (
        RUBRIC["criteria"]["acknowledge"]["miss"],
        "没有讲依据：可以说明合同约定和法律规定，例如《民法典》第九百四十四条。",
        f"没有提出具体的帮助：可以这样说，“{heating.offer.text}”",
        "您没有提出具体的交费日期：可以问一句“您看哪天方便交？”",
    )
    # Keywords strung together are not an answer either: they score nothing, and the collector is told why.
    stuffed = score_answer("我理解 合同 明细 哪天交", entry=entry("objection_fee_too_high"), today=TODAY)
    assert dict(stuffed.criteria) == {"acknowledge": False, "basis": False, "offer": False, "date": False}
    assert stuffed.score == 0 and stuffed.forbidden == ()
    assert stuffed.feedback[0] == RUBRIC["structure"]["keyword_list"]
    assert RUBRIC["criteria"]["acknowledge"]["miss"] in stuffed.feedback


@pytest.mark.parametrize(
    "text",
    [
        "我理解 合同 明细 哪天交",
        "我理解合同明细哪天交",
        "理解 民法典 报修 师傅 哪天交",
        "我理解您，合同规定，报修师傅，哪天交",
        "理解您的心情合同民法典944条报修师傅上门看哪天交",
    ],
)
def test_keywords_strung_together_score_low_and_are_told_why(text: str) -> None:
    score = score_answer(text, entry=entry(), today=TODAY)
    assert score.score <= RUBRIC["structure"]["short_cap"] == 25, text
    assert score.forbidden == ()
    said = RUBRIC["structure"]
    assert said["keyword_list"] in score.feedback or said["short"] in score.feedback, text
    assert score.feedback[0] in (said["keyword_list"], said["short"])
    assert score.date is None


def test_a_terse_answer_in_sentences_still_counts_and_a_very_short_one_is_capped() -> None:
    terse = score_answer("理解您，合同规定要交，我给您报修，哪天交？", entry=entry(), today=TODAY)
    assert dict(terse.criteria) == {name: True for name in CRITERIA} and terse.score == 100
    short = score_answer("理解，报修，哪天交", entry=entry(), today=TODAY)
    # 理解 and 报修 alone are words, not sentences: only 哪天交 counts, and the answer is too short anyway.
    assert dict(short.criteria) == {"acknowledge": False, "basis": False, "offer": False, "date": True}
    assert short.score == 25 and short.feedback[0] == RUBRIC["structure"]["short"]
    tiny = score_answer("我理解。哪天交？", entry=entry(), today=TODAY)
    assert tiny.score <= RUBRIC["structure"]["short_cap"] and RUBRIC["structure"]["short"] in tiny.feedback


def test_a_partial_answer_earns_each_criterion_it_meets() -> None:
    heating = entry()
    acknowledged = score_answer("理解您的心情，屋里冷谁都难受。", entry=heating, today=TODAY)
    assert acknowledged.score == 25 and acknowledged.criteria["acknowledge"] and acknowledged.hits == 1
    for text in ("知道您忙，不耽误您时间。", "半夜施工确实让人睡不好，我们也很头疼。", "孩子冻感冒了，我们很过意不去。"):
        assert score_answer(text, entry=heating, today=TODAY).criteria["acknowledge"], text
    helped = score_answer("我马上安排师傅上门测室温，您看哪天方便交？", entry=heating, today=TODAY)
    # 测室温 is the heating entry's basis keyword too: the right basis comes from the objection.
    assert dict(helped.criteria) == {"acknowledge": False, "basis": True, "offer": True, "date": True}
    assert helped.score == 75
    other = score_answer("我马上安排师傅上门测室温，您看哪天方便交？", entry=entry("objection_fee_too_high"), today=TODAY)
    assert dict(other.criteria) == {"acknowledge": False, "basis": False, "offer": False, "date": True}


def test_the_basis_comes_from_the_playbook_articles_in_any_script() -> None:
    heating = entry()
    for text in ("依据《民法典》第944条，费用要交", "依據民法典第九百四十四條，費用要交", "这是业主应尽的义务"):
        assert score_answer(text, entry=heating, today=TODAY).criteria["basis"], text
    traditional = "理解您的心情，按《民法典》第九百四十四條，我安排師傅上門維修，您看下週五能交嗎？"
    assert score_answer(traditional, entry=heating, today=TODAY).score == 100


@pytest.mark.parametrize(
    ("text", "hit", "note"),
    [
        ("您看哪天方便交？", True, RUBRIC["criteria"]["date"]["hit"]),
        ("您这周六之前交上可以吗？", True, "您提出了具体的日期（这周六），很好。"),
        ("那您过几天交也行。", False, "“过几天”不是具体日期：请和业主约到具体哪一天。"),
        ("我今天就派人去看看。", False, RUBRIC["criteria"]["date"]["miss"]),  # a day, but not a day to pay
        ("您看什么时候家里有人？我好安排师傅。", False, RUBRIC["criteria"]["date"]["miss"]),  # a visit, not paying
        ("您说个具体日子交上，我到时候提醒您。", True, RUBRIC["criteria"]["date"]["hit"]),
    ],
)
def test_a_date_counts_when_it_is_a_day_to_pay_or_a_question(text: str, hit: bool, note: str) -> None:
    score = score_answer(text, entry=entry(), today=TODAY)
    assert score.criteria["date"] is hit
    assert note in score.feedback


def named(tactic: str) -> str:
    """The sentence a collector reads for ``tactic``: its guard label, the guard's reason and its law."""
    return default_rubric().tactics[tactic].feedback


@pytest.mark.parametrize(
    ("tactic", "phrase"),
    [
        ("utilities", "再拖下去就给您家停水停电。"),
        ("utilities", "不交的话暖气就给您关了。"),
        ("shaming", "您这样跟老赖有什么区别？"),
        ("shaming", "再不交就把您的名字贴出来曝光。"),
        ("third_party", "隔壁502也欠着三千呢。"),
        ("third_party", "再不交我们就打电话到您单位。"),
        ("discount", "这次给您打个八折。"),
        ("discount", "这次就给您减免一部分。"),
        # A negation in an earlier clause, or a double negative, does not make a promise a refusal.
        ("discount", "没有问题，打折。"),
        ("discount", "不能不给您打折。"),
        ("discount", "这个月给您少收一百块。"),
        ("discount", "这个月的就不收了。"),
        ("discount", "给您打九折。"),
        ("utilities", "不交的话你家总阀就关了。"),
        ("utilities", "不交就让你家没水用。"),
        ("utilities", "再拖就把你家的电给停了。"),
        ("shaming", "我们会把名字贴到公告栏。"),
        ("third_party", "不交我们就去你公司找你领导。"),
    ],
)
def test_a_forbidden_tactic_scores_below_zero_and_names_itself_whatever_else_the_answer_does(
    tactic: str, phrase: str
) -> None:
    text = good_answer("objection_heating") + phrase
    score = score_answer(text, entry=entry(), today=TODAY)
    assert dict(score.criteria) == {name: True for name in CRITERIA}  # everything else is met …
    assert score.forbidden == (tactic,)
    deduction = RUBRIC["forbidden"]["tactics"][tactic]["deduction"]
    assert score.score == RUBRIC["forbidden"]["cap"] - deduction < 0  # … and it still scores below zero
    weakest_clean = score_answer("物业费您还是得交啊。", entry=entry(), today=TODAY)
    assert weakest_clean.score == 0 and score.score < weakest_clean.score
    # The first sentence names the tactic by the guard's label, with the guard's reason and law.
    about = compliance.categories()[tactic]
    assert score.feedback[0] == named(tactic)
    assert f"【{about.label}】" in score.feedback[0] and about.reason in score.feedback[0]
    assert (about.law in score.feedback[0]) if about.law else True


@pytest.mark.parametrize("tactic", compliance.CATEGORIES)
def test_every_guard_category_is_a_tactic_named_with_its_label_reason_and_law(tactic: str) -> None:
    rubric = default_rubric()
    about = compliance.categories()[tactic]
    item = rubric.tactics[tactic]
    assert (item.label, item.reason, item.law) == (about.label, about.reason, about.law)
    template = RUBRIC["forbidden"]["feedback" if about.law else "feedback_no_law"]
    advice = RUBRIC["forbidden"]["tactics"][tactic]["advice"]
    assert item.feedback == template.format(label=about.label, reason=about.reason, law=about.law, advice=advice)
    assert item.deduction > rubric.cap
    assert list(rubric.tactics) == list(compliance.CATEGORIES)


@pytest.mark.parametrize(
    ("law", "text"),
    [
        ("民法典 第九百四十四条", "再拖下去就给您家停水停电。"),
        ("个人信息保护法", "再不交我们就打电话到您单位。"),
        ("个人信息保护法", "我们会把名字贴到公告栏。"),
    ],
)
def test_the_law_is_named_for_utilities_third_parties_and_shaming(law: str, text: str) -> None:
    score = score_answer(text, entry=entry(), today=TODAY)
    assert score.forbidden and law in score.feedback[0], score.feedback


def test_a_clean_answer_that_meets_anything_scores_above_zero_even_when_capped(tmp_path: Path) -> None:
    data = yaml.safe_load(rubric_module.RUBRIC_FILE.read_text(encoding="utf-8"))
    data["criteria"]["acknowledge"]["points"] = 3  # below the floor
    path = tmp_path / "rubric.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    custom = Rubric.load(path)
    score = score_answer("理解您的心情，屋里冷谁都难受。", entry=entry(), today=TODAY, rubric=custom)
    assert score.hits == 1 and score.score == RUBRIC["meets_floor"] == 10
    nothing = score_answer("物业费您还是得交啊。", entry=entry(), today=TODAY, rubric=custom)
    assert nothing.hits == 0 and nothing.score == 0


def test_the_rubric_refuses_a_missing_category_a_cap_at_a_deduction_and_no_floor(tmp_path: Path) -> None:
    path = tmp_path / "rubric.yml"
    for change, message in (
        (lambda d: d["forbidden"]["tactics"].pop("harassment"), "exactly the guard's categories"),
        (lambda d: d["forbidden"]["tactics"].update(other={"deduction": 40, "advice": "x"}), "exactly the guard"),
        (lambda d: d["forbidden"].update(cap=40), "below every tactic's deduction"),
        (lambda d: d.update(meets_floor=0), "meets_floor must be above zero"),
    ):
        data = yaml.safe_load(rubric_module.RUBRIC_FILE.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        with pytest.raises(rubric_module.RubricError, match=message):
            Rubric.load(path)


def test_whatever_the_guard_refuses_is_penalised_under_the_same_category() -> None:
    """The rubric reuses the guard's findings: a rule added there is penalised here without an edit."""
    for phrase in FORBIDDEN_PHRASES:
        text = good_answer("objection_heating") + f"我们会{phrase}。"
        found = {finding.category for finding in compliance.findings(text)}
        if not found:
            continue  # a phrase the guard reads as lawful in this sentence
        score = score_answer(text, entry=entry(), today=TODAY)
        assert set(score.forbidden) >= found, phrase
        assert score.score < 0, phrase


def test_invisible_characters_traditional_and_full_width_do_not_hide_a_tactic() -> None:
    assert forbidden_tactics("不交就给你停\u200b水。") == ("utilities",)
    assert forbidden_tactics("不交就給你家停電。") == ("utilities",)
    assert forbidden_tactics("給您打８折。") == ("discount",)
    assert forbidden_tactics("我们会把名\u200d字贴到公\ufeff告栏。") == ("shaming",)


def test_refusing_a_discount_is_not_promising_one() -> None:
    for text in (
        "收费标准不能打折，也没法减免，但我可以把开支明细列给您。",
        "我们不会给您优惠的，这是合同定的。",
        "物业费确实不便宜，我把开支明细列给您。",
        "我们不打折，但可以帮您申请分期。",
        "我们不能不收物业费，这是合同定的。",  # we must charge: no discount
        "我去找我们主管问问能不能分期。",  # the collector's own supervisor, not the owner's employer
        "理解您，我们公司会派人上门维修。",
    ):
        assert forbidden_tactics(text) == (), text
    assert forbidden_tactics("这样吧，给您减免一部分。") == ("discount",)
    # The negation reaches only its own clause, and only directly before the promise.
    assert forbidden_tactics("没有问题，打折。") == ("discount",)
    assert forbidden_tactics("不会不给您打折的。") == ("discount",)
    assert forbidden_tactics("没有不打折的道理。") == ("discount",)
    # The rubric's own wordings (优惠, which compliance does not list) follow the same rule.
    assert forbidden_tactics("我们不能再给您优惠了。") == ()
    assert forbidden_tactics("没有问题，优惠一点。") == ("discount",)
    assert forbidden_tactics("不能不给您优惠。") == ("discount",)


def test_the_rubric_is_data(tmp_path: Path) -> None:
    """Points, the cap and every feedback sentence come from the YAML file."""
    data = yaml.safe_load(rubric_module.RUBRIC_FILE.read_text(encoding="utf-8"))
    data["forbidden"]["cap"] = 5
    data["forbidden"]["tactics"]["utilities"]["advice"] = "换个说法。"
    data["criteria"]["date"]["miss"] = "请约一个日子。"
    data["criteria"]["acknowledge"]["keywords"].append("收到")
    path = tmp_path / "rubric.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    custom = Rubric.load(path)
    threat = score_answer(good_answer("objection_heating") + "不交就停水。", entry=entry(), today=TODAY, rubric=custom)
    assert threat.score == 5 - data["forbidden"]["tactics"]["utilities"]["deduction"]
    assert threat.feedback[0].endswith("换个说法。")
    received = score_answer("收到您的话了。", entry=entry(), today=TODAY, rubric=custom)
    assert received.criteria["acknowledge"] and "请约一个日子。" in received.feedback


def test_a_session_summary_counts_hits_caps_forbidden_and_names_what_mattered() -> None:
    heating = entry()
    good = score_answer(good_answer("objection_heating"), entry=heating, today=TODAY)
    weak = score_answer("理解您的心情。", entry=heating, today=TODAY)
    summary = summarise([good, weak, good], outcome="agreed", agreed_text="下周五")
    assert summary.score == 75  # (100 + 25 + 100) / 3
    # Half up: 62.5 is 63 (round() would give 62).
    assert summarise([good, weak], outcome="stopped").score == 63
    assert summarise([good, weak, weak, weak], outcome="stopped").score == 44  # 43.75
    assert summary.criteria["acknowledge"] == {"hits": 3, "turns": 3}
    assert summary.criteria["date"] == {"hits": 2, "turns": 3}
    assert summary.feedback == ("业主同意下周五交费，这次演练达成了目标。",)
    threat = score_answer(good_answer("objection_heating") + "不交就停水。", entry=heating, today=TODAY)
    capped = summarise([good, good, good, threat], outcome="stopped")
    assert capped.score == RUBRIC["session"]["forbidden_cap"] and capped.forbidden == {"utilities": 1}
    assert capped.feedback[0] == RUBRIC["session"]["outcomes"]["stopped"]
    assert capped.feedback[1] == named("utilities")
    # A forbidden answer's negative score pulls the mean down, never the session below zero.
    assert threat.score < 0 and summarise([threat, threat], outcome="stopped").score == 0
    missed = summarise([weak, weak], outcome="walked_away")
    assert missed.score == 25
    assert RUBRIC["criteria"]["date"]["summary_miss"] in missed.feedback
    assert RUBRIC["criteria"]["acknowledge"]["summary_miss"] not in missed.feedback
    assert summarise([], outcome="stopped").feedback == (RUBRIC["session"]["no_answers"],)
