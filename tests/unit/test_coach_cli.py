"""``bot coach``: coloured for a terminal, plain in a pipe, one note per stdin line, ``--json`` lines."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from bot.cli import main
from bot.coach.cli import use_color
from bot.playbook import default_playbook
from tests.conftest import ROOT

pytestmark = [pytest.mark.model]

HEATING = "业主说他家暖气不热所以不交"
TWO = "他说物业费太贵了。又说房子一直空着没人住。"
UNSURE = "佢話冇錢交住"


class Terminal(io.StringIO):
    """Standard output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run_main(argv: List[str], monkeypatch: pytest.MonkeyPatch, *, stdout: io.StringIO, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(argv)


def test_colour_only_for_a_terminal_without_no_color() -> None:
    assert use_color(Terminal(), {}) is True
    assert use_color(Terminal(), {"NO_COLOR": "1"}) is False
    assert use_color(io.StringIO(), {}) is False


def test_a_terminal_gets_colours_and_the_whole_card(
    trained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    assert run_main(["coach", "--model", str(trained_model), HEATING], monkeypatch, stdout=out) == 0
    text = out.getvalue()
    entry = default_playbook().get("objection_heating")
    assert entry is not None
    assert "\x1b[1;36m1. 暖气不热" in text and "\x1b[0m" in text
    assert all(line in text for line in entry.coach.script)
    assert "《民法典》第九百四十四条" in text and entry.coach.donts[0] in text and "当天开维修单" in text


def test_no_color_or_a_pipe_gets_plain_text(trained_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = Terminal()
    assert run_main(["coach", "--model", str(trained_model), HEATING], monkeypatch, stdout=terminal) == 0
    monkeypatch.delenv("NO_COLOR")
    piped = io.StringIO()
    assert run_main(["coach", "--model", str(trained_model), HEATING], monkeypatch, stdout=piped) == 0
    assert "\x1b" not in terminal.getvalue() and "\x1b" not in piped.getvalue()
    assert terminal.getvalue() == piped.getvalue() and piped.getvalue().startswith("1. 暖气不热")


def test_without_a_note_each_stdin_line_is_one_note(trained_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    assert run_main(["coach", "--model", str(trained_model)], monkeypatch, stdout=out, stdin=f"{HEATING}\n\n{TWO}\n") == 0
    answers = out.getvalue().split("\n" + "─" * 40 + "\n")
    assert len(answers) == 2  # the blank line is skipped
    assert answers[0].startswith("1. 暖气不热")
    assert "1. " in answers[1] and "2. " in answers[1] and "房子没住" in answers[1] and "收费太高" in answers[1]


def test_json_writes_one_object_per_input_line_a_blank_one_included(
    trained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven lines in (two blank, one only spaces), seven objects out, each answering its own line."""
    lines = [HEATING, "", TWO, "   ", UNSURE, "", "他嫌贵"]
    out = io.StringIO()
    stdin = "\n".join(lines) + "\n"
    assert run_main(["coach", "--json", "--model", str(trained_model)], monkeypatch, stdout=out, stdin=stdin) == 0
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [obj["text"] for obj in objects] == lines
    assert [obj["status"] for obj in objects] == [
        "objections", "empty", "objections", "empty", "unclear", "empty", "objections"
    ]
    empty = objects[1]
    assert empty["types"] == [] and empty["cards"] == [] and empty["script"] == [] and empty["message"]


def test_a_missing_model_is_exit_status_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert run_main(["coach", "--model", str(tmp_path / "none.tar.gz"), HEATING], monkeypatch, stdout=io.StringIO()) == 2
    assert "no trained model" in err.getvalue()


def test_json_lines_from_stdin_in_a_real_pipe(trained_model: Path) -> None:
    """The installed command in a subprocess: three lines in, three JSON objects out, nothing coloured."""
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "coach", "--json", "--model", str(trained_model)],
        input=f"{HEATING}\n{TWO}\n{UNSURE}\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    objects: List[Dict[str, Any]] = [json.loads(line) for line in lines]
    for obj, text in zip(objects, (HEATING, TWO, UNSURE), strict=True):
        assert obj["text"] == text
        assert {"text", "types", "script", "legal_basis", "next_step", "donts", "cards", "status"} <= set(obj)
        assert all(set(t) == {"intent", "confidence", "title"} for t in obj["types"])
    heating = default_playbook().get("objection_heating")
    assert heating is not None
    assert [t["intent"] for t in objects[0]["types"]] == ["objection_heating"]
    assert objects[0]["script"] == list(heating.coach.script) and objects[0]["donts"] == list(heating.coach.donts)
    assert objects[0]["legal_basis"][0]["article"] == "第九百四十四条"
    assert objects[0]["next_step"] == heating.coach.next_step
    assert {t["intent"] for t in objects[1]["types"]} == {"objection_fee_too_high", "objection_not_living_here"}
    assert objects[1]["script"] == objects[1]["cards"][0]["script"] and len(objects[1]["cards"]) == 2
    assert objects[2]["status"] == "unclear" and objects[2]["ask"] and objects[2]["script"] == []


def test_the_playbook_is_the_supervisors_edited_one_from_the_database(
    trained_model: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.db.session import session_scope
    from bot.services import playbook_edits

    edited = ["天这么冷暖气还不热，真是难为您了。", "我今天就安排师傅上门测温，您看物业费哪天方便交？"]
    with session_scope(database_url) as session:
        playbook_edits.save(session, intent="objection_heating", fields={"coach.script": edited}, actor="zhao", based_on=0)
    out = io.StringIO()
    argv = ["coach", "--json", "--model", str(trained_model), "--url", database_url, HEATING]
    assert run_main(argv, monkeypatch, stdout=out) == 0
    assert json.loads(out.getvalue())["script"] == edited


def test_without_a_database_the_yaml_playbook_is_used_and_none_is_created(
    trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "none.db"
    out = io.StringIO()
    argv = ["coach", "--json", "--model", str(trained_model), "--url", f"sqlite:///{missing}", HEATING]
    assert run_main(argv, monkeypatch, stdout=out) == 0
    heating = default_playbook().get("objection_heating")
    assert heating is not None
    assert json.loads(out.getvalue())["script"] == list(heating.coach.script) and not missing.exists()
