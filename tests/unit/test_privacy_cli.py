"""``bot privacy export`` and ``bot privacy erase`` on SQLite and PostgreSQL: by owner or by unit, audited as
``cli:<os user>``; every refusal exits 2 with the reason and writes nothing."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
from sqlalchemy import select

from bot import clock
from bot.cli import main
from bot.db.models import Owner
from bot.db.session import session_scope
from tests.unit.test_privacy_subject import (  # noqa: F401  (fixtures)
    LATER,
    NAME,
    PHONE,
    domain,
    estate,
    every_row,
    occurrences,
    personal,
    tracker_store,
)


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OS user running the command (the audit's ``cli:<os user>``)."""
    monkeypatch.setattr("getpass.getuser", lambda: "ops")


def run_cli(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), clock.frozen(LATER):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def audit_rows(url: str, action: str) -> list:
    return [(row["actor"], row["target"], row["detail"]) for row in every_row(url)["audit_log"] if row["action"] == action]


def test_export_by_unit_writes_both_files_and_is_audited(estate: Dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    code, out, err = run_cli("privacy", "export", "--unit", "3-2-501", "--out", str(tmp_path), "--url", url)
    stem = tmp_path / f"owner-{wang}-20261128-100000"
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{stem}.json", f"{stem}.txt",
        f"owner {wang} exported: these files hold personal information; hand them over, then delete them",
    ]  # fmt: skip
    data = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
    assert (data["owner"]["name"], data["owner"]["phone"], len(data["conversations"])) == (NAME, PHONE, 3)
    assert f"姓名：{NAME}" in Path(f"{stem}.txt").read_text(encoding="utf-8")
    [(actor, target, detail)] = audit_rows(url, "privacy_exported")
    assert (actor, target, detail["via"], detail["conversations"], detail["repair_orders"]) == ("cli:ops", f"owner:{wang}", "cli", 3, 2)


def test_erase_needs_yes_then_erases_by_owner_and_refuses_a_second_time(estate: Dict[str, Any]) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    before = every_row(url)
    code, out, err = run_cli("privacy", "erase", "--owner", str(wang), "--url", url)
    assert (code, out) == (2, "")
    assert err == "error: erasing cannot be undone; run it again with --yes (export first if the owner asked for a copy)\n"
    assert every_row(url) == before

    code, out, err = run_cli("privacy", "erase", "--owner", str(wang), "--yes", "--url", url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"owner {wang} erased:" and "  conversations: 3" in lines and "  owners: 1" in lines
    assert occurrences(url, personal()) == []
    [(actor, target, detail)] = audit_rows(url, "privacy_erased")
    assert (actor, target, detail["conversations"], detail["owners"]) == ("cli:ops", f"owner:{wang}", 3, 1)
    assert [f"  {key}: {value}" for key, value in detail.items()] == lines[1:]

    after = every_row(url)
    assert run_cli("privacy", "erase", "--owner", str(wang), "--yes", "--url", url) == (
        2, "", "error: this owner's personal information was erased already\n"
    )  # fmt: skip
    assert every_row(url) == after


def test_a_unit_with_two_current_owners_is_refused_with_its_owners_listed(estate: Dict[str, Any]) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with session_scope(url) as session:
        spouse = Owner(unit_id=estate["unit"], name="刘芳", phone="13600002222")
        session.add(spouse)
        session.flush()
        spouse_id = int(spouse.id)
    before = every_row(url)
    code, out, err = run_cli("privacy", "erase", "--unit", " 3-2-501 ", "--yes", "--url", url)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: unit 3-2-501 has 2 current owners; name one with --owner:",
        f"  --owner {wang}  138****6688  current",
        f"  --owner {spouse_id}  136****2222  current",
    ]
    assert every_row(url) == before
    with session_scope(url) as session:
        assert session.execute(select(Owner.name).where(Owner.id == wang)).scalar_one() == NAME


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("export", "--unit", "9-9-999"), "error: no unit has this code (write it as stored, e.g. 3-2-501)\n"),
        (("erase", "--owner", "424242", "--yes"), "error: no owner has this id\n"),
    ],
)
def test_unknown_units_and_owners_are_refused(estate: Dict[str, Any], argv: Tuple[str, ...], message: str) -> None:  # noqa: F811
    url = estate["url"]
    before = every_row(url)
    assert run_cli("privacy", *argv, "--url", url) == (2, "", message)
    assert every_row(url) == before


def test_an_export_that_cannot_be_written_leaves_no_audit_row(estate: Dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    code, out, err = run_cli("privacy", "export", "--owner", str(wang), "--out", str(blocked), "--url", url)
    assert (code, out) == (2, "") and err.startswith("error: cannot write the export: ")
    assert audit_rows(url, "privacy_exported") == []


def test_owner_and_unit_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["privacy", "export", "--owner", "1", "--unit", "3-2-501"])
    assert usage.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
