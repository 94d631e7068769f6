"""Staff edits of the playbook (SQLite and PostgreSQL): versions with who and when, refusals that store
nothing (forbidden phrase, schema, stale, not editable), revert, history, the merged playbook seen by another
process without a restart, and the export back to YAML."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot import playbook as playbook_module
from bot.cli import main as cli_main
from bot.db.playbook_models import PlaybookEdit
from bot.db.staff_models import AuditEntry
from bot.playbook import PLAYBOOK_DIR, Playbook, default_playbook, default_sources
from bot.services import playbook_edits
from bot.services.playbook_edits import (
    ControlCharacter,
    ForbiddenWording,
    NotEditable,
    SchemaInvalid,
    StaleEdit,
    Unchanged,
    UnknownIntent,
    UnknownVersion,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
LATER = NOW + dt.timedelta(hours=2)
HEATING = "objection_heating"
NEW_ANSWERS = [
    "暖气不热确实难受，我们今天就安排师傅上门测温，找出原因马上处理。物业费也请您按时交上。",
    "您说的情况我们记下了，工程人员会上门排查暖气，每一步进展都告诉您。物业费这边还请您安排一下。",
]
NEW_FOLLOW_UP = "暖气的事我们跟到底，您看物业费哪天方便交上？"


@pytest.fixture(autouse=True)
def fresh_cache():
    playbook_edits.clear_cache()
    yield
    playbook_edits.clear_cache()


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def rows(session: Session) -> list[PlaybookEdit]:
    return list(session.execute(select(PlaybookEdit).order_by(PlaybookEdit.id)).scalars())


def audit_rows(session: Session) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


def save_new_answers(session: Session, *, actor: str = "li", based_on: int = 0) -> PlaybookEdit:
    row = playbook_edits.save(
        session,
        intent=HEATING,
        fields={"answers": NEW_ANSWERS, "follow_up": NEW_FOLLOW_UP},
        actor=actor,
        based_on=based_on,
        note="更口语一些",
    )
    session.commit()
    return row


def test_a_save_is_a_version_with_who_and_when_and_an_audit_row(session: Session) -> None:
    with clock.frozen(NOW):
        save_new_answers(session)

    [stored] = rows(session)
    assert (stored.intent, stored.version, stored.edited_by, stored.note, stored.reverted_from) == (
        HEATING, 1, "li", "更口语一些", None,
    )  # fmt: skip
    assert aware(stored.edited_at) == NOW
    # Only the edited fields are stored: the YAML's other fields stay the YAML's.
    assert stored.data == {"answers": NEW_ANSWERS, "follow_up": NEW_FOLLOW_UP}
    [entry] = audit_rows(session)
    assert (entry.actor, entry.action, entry.target) == ("li", "playbook_edited", f"playbook:{HEATING}")
    assert entry.detail == {
        "version": 1,
        "fields": ["answers", "follow_up"],
        "note": "更口语一些",
        "reverted_from": None,
    }
    assert aware(entry.at) == NOW


def test_the_current_playbook_has_the_edit_and_the_yaml_elsewhere(session: Session) -> None:
    assert playbook_edits.current_playbook(session) is default_playbook()  # nothing edited: the one copy
    save_new_answers(session)

    playbook = playbook_edits.current_playbook(session)

    heating = playbook.get(HEATING)
    assert heating is not None
    assert list(heating.answers) == NEW_ANSWERS and heating.follow_up == NEW_FOLLOW_UP
    assert heating.offer == default_playbook().get(HEATING).offer  # type: ignore[union-attr]
    assert playbook.get("objection_pay_later") is default_playbook().get("objection_pay_later")
    assert playbook.intents == default_playbook().intents
    assert playbook_edits.current_playbook(session) is playbook  # cached while nothing is saved


def test_coach_fields_are_editable(session: Session) -> None:
    script = ["天这么冷暖气不热，真是受罪了。", "我今天就给您报修，师傅上门测温。", "物业费您看哪天方便交？"]
    playbook_edits.save(
        session,
        intent=HEATING,
        fields={
            "coach.script": script,
            "coach.strategy": ["先共情", "当天报修"],
            "coach.next_step": "当天开报修单。",
            "coach.donts": ["不得以停暖相威胁"],  # the don'ts name the forbidden tactics to forbid them
            "offer.text": "我帮您登记一张暖气报修单，好吗？",
        },
        actor="li",
        based_on=0,
    )
    session.commit()

    entry = playbook_edits.current_playbook(session).get(HEATING)
    assert entry is not None
    assert list(entry.coach.script) == script and list(entry.coach.strategy) == ["先共情", "当天报修"]
    assert entry.coach.next_step == "当天开报修单。" and list(entry.coach.donts) == ["不得以停暖相威胁"]
    assert entry.offer.text == "我帮您登记一张暖气报修单，好吗？" and entry.offer.kind == "repair_order"


@pytest.mark.parametrize(
    ("fields", "field", "phrase"),
    [
        ({"answers": ["再不交就给您停水。", NEW_ANSWERS[1]]}, "answers", "停水"),
        ({"follow_up": "这个月交的话可以打折。"}, "follow_up", "打折"),
        ({"offer.text": "不交就把您的名字 曝光 在公告栏。"}, "offer.text", "名字曝光"),
        ({"coach.script": ["您不交我们只能拉闸了。", "您看哪天交？"]}, "coach.script", "拉闸"),
        ({"coach.strategy": ["告诉业主会通知单位"]}, "coach.strategy", "通知单位"),
    ],
)
def test_a_forbidden_phrase_is_refused_with_its_field_and_nothing_is_stored(
    session: Session, fields: dict, field: str, phrase: str
) -> None:
    with pytest.raises(ForbiddenWording) as refused:
        playbook_edits.save(session, intent=HEATING, fields=fields, actor="li", based_on=0)
    session.commit()

    assert (refused.value.code, refused.value.field, refused.value.phrase) == ("forbidden", field, phrase)
    assert phrase in str(refused.value) and field in str(refused.value)
    assert refused.value.refusal.reason in str(refused.value)
    # Nothing stored; the refusal itself is audited for the supervisors' QA view.
    assert rows(session) == []
    assert [(row.actor, row.action, row.target, row.detail) for row in audit_rows(session)] == [
        ("li", "outgoing_refused", f"playbook:{HEATING}", {
            "category": refused.value.refusal.category, "reason": refused.value.refusal.reason, "source": "playbook_edit",
        }),
    ]  # fmt: skip
    assert playbook_edits.current_playbook(session).get(HEATING) == default_playbook().get(HEATING)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"answers": [NEW_ANSWERS[0]]}, "answers", "at least two answer variants"),
        ({"answers": ["", "  "]}, "answers", "missing 'answers'"),
        ({"follow_up": "   "}, "follow_up", "missing 'follow_up'"),
        ({"coach.script": ["只有一句。"]}, "coach.script", "2 to 3 spoken lines"),
        ({"coach.ask": ""}, "coach.ask", "missing 'ask'"),
    ],
)
def test_a_schema_error_is_refused_and_nothing_is_stored(
    session: Session, fields: dict, field: str, words: str
) -> None:
    with pytest.raises(SchemaInvalid) as refused:
        playbook_edits.save(session, intent=HEATING, fields=fields, actor="li", based_on=0)

    assert refused.value.field == field and words in str(refused.value)
    assert rows(session) == [] and audit_rows(session) == []


@pytest.mark.parametrize(
    "fields", [{"intent": "objection_other"}, {"kind": "question"}, {"offer.kind": "bill_check"}]
)
def test_the_intent_and_kinds_are_not_editable(session: Session, fields: dict) -> None:
    with pytest.raises(NotEditable):
        playbook_edits.save(session, intent=HEATING, fields=fields, actor="li", based_on=0)
    assert rows(session) == []


def test_wrong_shapes_unknown_intents_and_no_change_are_refused(session: Session) -> None:
    with pytest.raises(NotEditable):
        playbook_edits.save(session, intent=HEATING, fields={"answers": "一行"}, actor="li", based_on=0)
    with pytest.raises(NotEditable):
        playbook_edits.save(session, intent=HEATING, fields={"follow_up": ["一行"]}, actor="li", based_on=0)
    with pytest.raises(UnknownIntent):
        playbook_edits.save(
            session, intent="objection_unknown", fields={"follow_up": "好"}, actor="li", based_on=0
        )
    same = default_playbook().get(HEATING)
    assert same is not None
    with pytest.raises(Unchanged):
        playbook_edits.save(
            session, intent=HEATING, fields={"follow_up": same.follow_up}, actor="li", based_on=0
        )
    assert rows(session) == []


def test_a_stale_edit_is_refused(session: Session) -> None:
    save_new_answers(session, actor="li", based_on=0)

    with pytest.raises(StaleEdit) as refused:
        playbook_edits.save(
            session, intent=HEATING, fields={"follow_up": "哪天交？"}, actor="zhang", based_on=0
        )

    assert refused.value.latest == 1
    assert [(row.version, row.edited_by) for row in rows(session)] == [(1, "li")]
    playbook_edits.save(
        session, intent=HEATING, fields={"follow_up": "您看哪天方便交上？"}, actor="zhang", based_on=1
    )
    session.commit()
    assert [(row.version, row.edited_by, row.data["follow_up"]) for row in rows(session)] == [
        (1, "li", NEW_FOLLOW_UP),
        (2, "zhang", "您看哪天方便交上？"),
    ]


def test_history_and_revert_as_a_new_version(session: Session) -> None:
    original = default_playbook().get(HEATING)
    assert original is not None
    with clock.frozen(NOW):
        save_new_answers(session, actor="li", based_on=0)
    with clock.frozen(LATER):
        playbook_edits.save(
            session, intent=HEATING, fields={"follow_up": "哪天交？"}, actor="zhang", based_on=1
        )
        session.commit()

    with clock.frozen(LATER):
        reverted = playbook_edits.revert(session, intent=HEATING, version=1, actor="wang", based_on=2)
        session.commit()

    assert (reverted.version, reverted.reverted_from, reverted.edited_by) == (3, 1, "wang")
    assert reverted.data["follow_up"] == NEW_FOLLOW_UP and reverted.data["answers"] == NEW_ANSWERS
    history = playbook_edits.history(session, intent=HEATING)
    assert [(row.version, row.edited_by, aware(row.edited_at)) for row in history] == [
        (3, "wang", LATER),
        (2, "zhang", LATER),
        (1, "li", NOW),
    ]
    assert playbook_edits.current_playbook(session).get(HEATING).follow_up == NEW_FOLLOW_UP  # type: ignore[union-attr]

    playbook_edits.revert(session, intent=HEATING, version=0, actor="wang")  # the YAML's wording
    session.commit()
    entry = playbook_edits.current_playbook(session).get(HEATING)
    assert entry == original
    assert [
        (row.action, row.detail["version"], row.detail["reverted_from"]) for row in audit_rows(session)
    ] == [
        ("playbook_edited", 1, None),
        ("playbook_edited", 2, None),
        ("playbook_reverted", 3, 1),
        ("playbook_reverted", 4, 0),
    ]
    with pytest.raises(UnknownVersion):
        playbook_edits.revert(session, intent=HEATING, version=9, actor="wang")
    with pytest.raises(StaleEdit):
        playbook_edits.revert(session, intent=HEATING, version=1, actor="wang", based_on=2)


def test_another_process_saving_is_seen_without_a_restart(session: Session, database_url: str) -> None:
    before = playbook_edits.current_playbook(session)
    assert before.get(HEATING) == default_playbook().get(HEATING)
    session.commit()
    # The staff app is another process: it saves through the service on the same database.
    script = textwrap.dedent(
        f"""
        from bot.db.session import session_scope
        from bot.services import playbook_edits
        with session_scope({database_url!r}) as session:
            playbook_edits.save(session, intent={HEATING!r}, fields={{"follow_up": {NEW_FOLLOW_UP!r}}},
                                actor="li", based_on=0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=PROJECT_ROOT, timeout=120)

    after = playbook_edits.current_playbook(session)

    assert after is not before
    assert after.get(HEATING).follow_up == NEW_FOLLOW_UP  # type: ignore[union-attr]


def test_a_stored_version_that_no_longer_passes_is_ignored(session: Session) -> None:
    data = yaml.safe_load((PLAYBOOK_DIR / f"{HEATING}.yml").read_text(encoding="utf-8"))
    data["follow_up"] = "不交就停水。"  # as if the phrase was forbidden only after the save
    session.add(PlaybookEdit(intent=HEATING, version=1, data=data, edited_by="li", edited_at=clock.utc_now()))
    data2 = dict(data, follow_up="好的", answers=["只有一个回答"])
    session.add(
        PlaybookEdit(
            intent="objection_pay_later", version=1, data=data2, edited_by="li", edited_at=clock.utc_now()
        )
    )
    session.commit()

    playbook = playbook_edits.current_playbook(session)

    assert playbook.get(HEATING) == default_playbook().get(HEATING)
    assert playbook.get("objection_pay_later") == default_playbook().get("objection_pay_later")


def test_the_yaml_files_dump_byte_for_byte() -> None:
    for path in sorted(PLAYBOOK_DIR.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        assert playbook_edits.dump_entry(yaml.safe_load(text)) == text, path.name


def test_export_writes_only_the_edited_entries_and_round_trips(session: Session, tmp_path: Path) -> None:
    target = tmp_path / "playbook"
    shutil.copytree(PLAYBOOK_DIR, target)
    originals = {path.name: path.read_bytes() for path in target.glob("*.yml")}
    save_new_answers(session)
    playbook_edits.save(
        session,
        intent="objection_pay_later",
        fields={"coach.ask": "您说的“晚点”是哪一天？"},
        actor="li",
        based_on=0,
    )
    session.commit()

    written = playbook_edits.export(session, out_dir=target, actor="li")
    session.commit()

    assert [path.name for path in written] == ["objection_heating.yml", "objection_pay_later.yml"]
    text = (target / "objection_heating.yml").read_text(encoding="utf-8")
    assert NEW_ANSWERS[0] in text and "\\u" not in text  # Chinese unescaped
    assert list(yaml.safe_load(text)) == list(yaml.safe_load(originals["objection_heating.yml"]))  # key order
    for name, content in originals.items():
        if name not in {"objection_heating.yml", "objection_pay_later.yml"}:
            assert (target / name).read_bytes() == content, name
    exported = Playbook.load(target)
    current = playbook_edits.current_playbook(session)
    assert [exported.get(intent) for intent in exported.intents] == [current.get(i) for i in current.intents]
    assert exported.get("objection_pay_later").coach.ask == "您说的“晚点”是哪一天？"  # type: ignore[union-attr]
    # Round trip: the exported files dump back to themselves.
    for path in written:
        assert playbook_edits.dump_entry(yaml.safe_load(path.read_text(encoding="utf-8"))) == path.read_text(
            encoding="utf-8"
        )
    assert audit_rows(session)[-1].action == "playbook_exported"


def test_bot_playbook_export_command(database_url: str, session: Session, tmp_path: Path, capsys) -> None:
    save_new_answers(session)

    assert cli_main(["playbook", "export", "--out", str(tmp_path), "--url", database_url]) == 0

    assert [path.name for path in tmp_path.glob("*.yml")] == ["objection_heating.yml"]
    entry = Playbook.load(tmp_path).get(HEATING)
    assert entry is not None and list(entry.answers) == NEW_ANSWERS
    assert "1 edited entries written" in capsys.readouterr().out


def test_two_saves_at_once_one_wins_and_the_other_is_stale(session: Session, database_url: str) -> None:
    from sqlalchemy.orm import Session as OrmSession

    from bot.db.session import get_engine

    first = OrmSession(get_engine(database_url), future=True, expire_on_commit=False)
    playbook_edits.save(first, intent=HEATING, fields={"follow_up": "第一位的追问？"}, actor="li", based_on=0)
    outcome: dict = {}

    def second_editor() -> None:
        # Started while the first save's transaction is open: it waits for it, then must not overwrite it.
        with OrmSession(get_engine(database_url), future=True) as second:
            try:
                playbook_edits.save(
                    second, intent=HEATING, fields={"follow_up": "第二位的追问？"}, actor="zhang", based_on=0
                )
                second.commit()
                outcome["saved"] = True
            except StaleEdit as error:
                outcome["stale"] = error.latest

    thread = threading.Thread(target=second_editor)
    thread.start()
    thread.join(0.5)
    first.commit()
    first.close()
    thread.join(10)

    assert outcome == {"stale": 1}
    assert [(row.version, row.edited_by, row.data["follow_up"]) for row in rows(session)] == [
        (1, "li", "第一位的追问？")
    ]


def test_export_refuses_an_edit_that_no_longer_passes_the_schema(
    database_url: str, session: Session, tmp_path: Path, capsys
) -> None:
    save_new_answers(session)  # a good edit, written first in intent order were files written one by one
    data = yaml.safe_load((PLAYBOOK_DIR / "objection_pay_later.yml").read_text(encoding="utf-8"))
    data["answers"] = ["只剩一个回答。"]  # as if the schema had grown since the save
    session.add(
        PlaybookEdit(
            intent="objection_pay_later", version=1, data=data, edited_by="li", edited_at=clock.utc_now()
        )
    )
    session.commit()

    assert cli_main(["playbook", "export", "--out", str(tmp_path), "--url", database_url]) == 1

    assert list(tmp_path.glob("*.yml")) == []
    assert "at least two answer variants" in capsys.readouterr().err


def yaml_changed(monkeypatch: pytest.MonkeyPatch, intent: str, path: str, value: object) -> None:
    """As if a developer changed ``path`` of ``intent``'s YAML file after the edits were saved."""
    sources = {name: copy.deepcopy(dict(data)) for name, data in default_sources().items()}
    *parents, last = path.split(".")
    target = sources[intent]
    for key in parents:
        target = target[key]
    target[last] = value
    monkeypatch.setattr(playbook_edits, "default_sources", lambda: sources)
    playbook_edits.clear_cache()


def test_a_developers_later_yaml_change_to_another_field_reaches_the_bot(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_new_answers(session)
    new_offer = "我今天就给您开一张暖气报修单，师傅明天上门。"

    yaml_changed(monkeypatch, HEATING, "offer.text", new_offer)

    entry = playbook_edits.current_playbook(session).get(HEATING)
    assert entry is not None
    assert entry.offer.text == new_offer  # the YAML's change to a field no one edited
    assert list(entry.answers) == NEW_ANSWERS and entry.follow_up == NEW_FOLLOW_UP  # the edits still apply
    assert playbook_edits.current_data(session, intent=HEATING)["offer"]["text"] == new_offer


def test_later_saves_keep_earlier_edits_and_a_field_set_back_to_the_yaml_is_not_stored(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_new_answers(session)
    script = ["暖气不热确实难受，我今天就给您报修。", "您看这个月哪天方便交物业费？"]
    yaml_follow_up = default_playbook().get(HEATING).follow_up  # type: ignore[union-attr]

    second = playbook_edits.save(
        session, intent=HEATING, fields={"coach.script": script}, actor="zhang", based_on=1
    )
    third = playbook_edits.save(
        session, intent=HEATING, fields={"follow_up": yaml_follow_up}, actor="zhang", based_on=2
    )
    session.commit()

    assert second.data == {"answers": NEW_ANSWERS, "follow_up": NEW_FOLLOW_UP, "coach": {"script": script}}
    assert third.data == {"answers": NEW_ANSWERS, "coach": {"script": script}}
    [*_, audit_third] = audit_rows(session)
    assert audit_third.detail["fields"] == ["follow_up"]
    # The follow-up is the YAML's again, so the YAML's later change to it reaches the bot.
    yaml_changed(monkeypatch, HEATING, "follow_up", "您看哪天方便把物业费交上？")
    entry = playbook_edits.current_playbook(session).get(HEATING)
    assert entry is not None and entry.follow_up == "您看哪天方便把物业费交上？"
    assert list(entry.coach.script) == script and list(entry.answers) == NEW_ANSWERS
    history = playbook_edits.history_with_changes(session, intent=HEATING)
    assert [[change.field for change in view.changes] for view in history] == [
        ["follow_up"],
        ["coach.script"],
        ["answers", "follow_up"],
    ]


def test_a_revert_stores_the_older_versions_edited_fields_only(session: Session) -> None:
    save_new_answers(session)
    playbook_edits.save(
        session, intent=HEATING, fields={"coach.ask": "您家哪个房间不热？"}, actor="li", based_on=1
    )

    to_one = playbook_edits.revert(session, intent=HEATING, version=1, actor="wang", based_on=2)
    to_yaml = playbook_edits.revert(session, intent=HEATING, version=0, actor="wang", based_on=3)
    session.commit()

    assert to_one.data == {"answers": NEW_ANSWERS, "follow_up": NEW_FOLLOW_UP}
    assert to_yaml.data == {}
    assert playbook_edits.current_playbook(session).get(HEATING) == default_playbook().get(HEATING)


@pytest.mark.parametrize(
    ("fields", "note", "field"),
    [
        ({"follow_up": "您看哪天\x00方便交？"}, "", "follow_up"),
        ({"answers": [NEW_ANSWERS[0], "暖气\x07不热"]}, "", "answers"),
        ({"coach.donts": ["不得\x1b威胁"]}, "", "coach.donts"),
        ({"offer.text": "报修\x85单"}, "", "offer.text"),
        ({"follow_up": NEW_FOLLOW_UP}, "口语\x00化", "note"),
    ],
)
def test_a_control_character_is_refused_and_nothing_is_stored(
    session: Session, fields: dict, note: str, field: str
) -> None:
    with pytest.raises(ControlCharacter) as refused:
        playbook_edits.save(session, intent=HEATING, fields=fields, actor="li", based_on=0, note=note)
    session.commit()

    assert (refused.value.code, refused.value.field) == ("control_character", field)
    assert rows(session) == [] and audit_rows(session) == []


def test_a_version_too_large_for_the_database_is_unknown_not_an_error(session: Session) -> None:
    save_new_answers(session)

    with pytest.raises(UnknownVersion):
        playbook_edits.revert(session, intent=HEATING, version=2**31, actor="wang")
    with pytest.raises(UnknownVersion):
        playbook_edits.version_data(session, intent=HEATING, version=10**20)
    with pytest.raises(UnknownVersion):
        playbook_edits.save(
            session, intent=HEATING, fields={"coach.ask": "哪个房间？"}, actor="li", based_on=2**63
        )
    session.commit()
    assert [row.version for row in rows(session)] == [1]


def test_export_refuses_wording_the_compliance_rules_now_forbid(session: Session, tmp_path: Path) -> None:
    save_new_answers(session)  # a good edit, written first in intent order were files written one by one
    session.add(
        PlaybookEdit(
            intent="objection_pay_later",
            version=1,
            data={"follow_up": "这个月给您打八折，哪天交？"},  # as if saved before the rules caught it
            edited_by="li",
            edited_at=clock.utc_now(),
        )
    )
    session.commit()

    with pytest.raises(ForbiddenWording) as refused:
        playbook_edits.export(session, out_dir=tmp_path, actor="li")

    assert (refused.value.field, refused.value.phrase) == ("follow_up", "打八折")
    assert list(tmp_path.glob("*.yml")) == []
    assert [row.action for row in audit_rows(session)] == ["playbook_edited"]


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029", "\ufeff", "\x7f", "\x9f"])
def test_the_dumper_escapes_code_points_yaml_would_misread(char: str) -> None:
    data = {
        "intent": HEATING,
        "follow_up": f"哪天{char}交？",
        "coach": {"script": [f"第一句{char}", "第二句"]},
    }

    text = playbook_edits.dump_entry(data)

    assert char not in text
    assert yaml.safe_load(text) == data


def test_the_playbook_yaml_is_parsed_once_per_process(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    real = playbook_module.read_sources

    def counted(directory: Path = PLAYBOOK_DIR) -> dict:
        reads.append(directory)
        return real(directory)

    monkeypatch.setattr(playbook_module, "read_sources", counted)
    default_sources.cache_clear()
    default_playbook.cache_clear()
    try:
        save_new_answers(session)
        playbook_edits.current_playbook(session)
        playbook_edits.history_with_changes(session, intent=HEATING)
        default_playbook()

        assert reads == [PLAYBOOK_DIR]
        assert playbook_edits.yaml_data(HEATING) == default_sources()[HEATING]
        assert playbook_edits.yaml_data(HEATING) is not default_sources()[HEATING]  # callers get a copy
    finally:
        default_sources.cache_clear()
        default_playbook.cache_clear()
