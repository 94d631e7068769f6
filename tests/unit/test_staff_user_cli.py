"""``bot user`` beyond ``add``, on SQLite and PostgreSQL: list, deactivate, reactivate, reset-password, set-role,
revoke-sessions, unlock and set-wecom; what each stores, prints and audits (as ``cli:<os user>``), and refusals
that exit 2 and change nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from typing import Any, List, Tuple

import pytest
from sqlalchemy import select

from bot import cli, clock
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry, StaffRole, StaffUser
from bot.services import staff_auth, staff_users

PASSWORD = "Shoufei-2026!"
NEW_PASSWORD = "Xin-mima-2027#"
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def bot_user(monkeypatch: pytest.MonkeyPatch, url: str, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # not a terminal: a password is the first line
    return cli.main(["user", *args, "--url", url])


@pytest.fixture
def staff(database_url: str) -> str:
    with clock.frozen(NOW), session_scope(database_url) as session:
        for username, role, name in (("wang", "collector", "王小明"), ("li", "manager", "李经理")):
            staff_users.create_user(
                session, username=username, password=PASSWORD, role=role, display_name=name, actor="cli:test"
            )
        session.execute(AuditEntry.__table__.delete())
    return database_url


def account(url: str, username: str) -> StaffUser:
    with session_scope(url) as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one()
        session.expunge(user)
        return user


def audit_rows(url: str) -> List[Tuple[Any, ...]]:
    with session_scope(url) as session:
        return [
            (row.actor, row.action, row.target, row.detail)
            for row in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        ]


def open_session(url: str, username: str) -> str:
    with session_scope(url) as session:
        user = staff_users.find(session, username=username)
        assert user is not None
        return staff_auth.open_session(session, user=user, lifetime=dt.timedelta(hours=12)).token


def is_open(url: str, token: str) -> bool:
    with session_scope(url) as session:
        return staff_auth.active_session(session, token=token) is not None


def test_list_shows_every_account(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    open_session(staff, "wang")
    with session_scope(staff) as session:
        session.execute(
            StaffUser.__table__.update().where(StaffUser.username == "li").values(wecom_user_id="LiJingLi")
        )
    assert bot_user(monkeypatch, staff, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["username", "role", "name", "state", "wecom", "last", "login", "sessions"]
    assert lines[1].split() == ["li", "manager", "李经理", "active", "LiJingLi", "-", "0"]
    assert lines[2].split() == ["wang", "collector", "王小明", "active", "-", "-", "1"]
    assert audit_rows(staff) == []  # listing changes nothing


def test_deactivate_and_reactivate(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = open_session(staff, "wang")
    with clock.frozen(NOW):
        assert bot_user(monkeypatch, staff, "deactivate", "WANG") == 0
    assert capsys.readouterr().out.strip() == "Deactivated WANG; 1 open session ended"
    wang = account(staff, "wang")
    assert wang.active is False and wang.deactivated_at is not None and not is_open(staff, token)
    [(actor, action, target, detail)] = audit_rows(staff)
    assert actor.startswith("cli") and (action, target, detail) == (
        "user_deactivated",
        "wang",
        {"sessions_ended": 1},
    )
    assert bot_user(monkeypatch, staff, "list") == 0
    assert "deactivated 2026-11-24 09:00" in capsys.readouterr().out

    assert bot_user(monkeypatch, staff, "deactivate", "wang") == 2
    assert "already deactivated; nothing was changed" in capsys.readouterr().err
    assert bot_user(monkeypatch, staff, "reactivate", "wang") == 0
    assert capsys.readouterr().out.strip() == "Reactivated wang"
    wang = account(staff, "wang")
    assert (wang.active, wang.deactivated_at) == (True, None)
    assert [row[1] for row in audit_rows(staff)] == ["user_deactivated", "user_reactivated"]


def test_reset_password_reads_stdin_and_ends_sessions(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = open_session(staff, "wang")
    old_hash = account(staff, "wang").password_hash
    assert bot_user(monkeypatch, staff, "reset-password", "wang", stdin="short\n") == 2
    assert "shorter than 10 characters; nothing was changed" in capsys.readouterr().err
    assert (
        account(staff, "wang").password_hash == old_hash and is_open(staff, token) and audit_rows(staff) == []
    )
    with clock.frozen(NOW):
        assert bot_user(monkeypatch, staff, "reset-password", "wang", stdin=NEW_PASSWORD + "\n") == 0
    assert capsys.readouterr().out.strip() == "New password set for wang; 1 open session ended"
    wang = account(staff, "wang")
    assert staff_users.password_matches(wang.password_hash, NEW_PASSWORD) and not is_open(staff, token)
    assert wang.password_changed_at is not None
    [(actor, action, target, detail)] = audit_rows(staff)
    assert (action, target, detail) == ("user_password_reset", "wang", {"sessions_ended": 1})
    assert NEW_PASSWORD not in json.dumps(audit_rows(staff))


def test_set_role_and_its_refusals(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = open_session(staff, "wang")
    assert bot_user(monkeypatch, staff, "set-role", "wang", "supervisor") == 0
    assert capsys.readouterr().out.strip() == "wang is now a supervisor; 1 open session ended"
    assert account(staff, "wang").role is StaffRole.SUPERVISOR and not is_open(staff, token)
    assert audit_rows(staff)[-1][1:] == (
        "user_role_changed", "wang", {"role": "supervisor", "previous_role": "collector", "sessions_ended": 1}
    )  # fmt: skip
    assert bot_user(monkeypatch, staff, "set-role", "li", "collector") == 2
    assert "last active manager" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        bot_user(monkeypatch, staff, "set-role", "wang", "boss")
    assert exited.value.code == 2
    assert bot_user(monkeypatch, staff, "set-role", "ghost", "manager") == 2
    assert "no staff account 'ghost'" in capsys.readouterr().err
    assert account(staff, "li").role is StaffRole.MANAGER and len(audit_rows(staff)) == 1


def test_revoke_sessions(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = [open_session(staff, "wang"), open_session(staff, "wang")]
    other = open_session(staff, "li")
    assert bot_user(monkeypatch, staff, "revoke-sessions", "wang") == 0
    assert capsys.readouterr().out.strip() == "wang: 2 open sessions ended"
    assert not any(is_open(staff, token) for token in tokens) and is_open(staff, other)
    assert audit_rows(staff)[-1][1:] == ("user_sessions_revoked", "wang", {"sessions_ended": 2})


def test_unlock(staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    policy = staff_auth.LoginPolicy.from_settings()
    for _ in range(policy.max_failures):
        with session_scope(staff) as session:
            staff_auth.log_in(
                session, username="wang", password="Wrong-pass-1", client="10.0.0.7", policy=policy
            )
    with session_scope(staff) as session:
        assert staff_auth.locked_until(session, username="wang", policy=policy) is not None
    assert bot_user(monkeypatch, staff, "unlock", "wang") == 0
    assert capsys.readouterr().out.strip() == "wang: lock-out lifted"
    with session_scope(staff) as session:
        assert staff_auth.locked_until(session, username="wang", policy=policy) is None
        result = staff_auth.log_in(
            session, username="wang", password=PASSWORD, client="10.0.0.7", policy=policy
        )
        assert result.status is staff_auth.LoginStatus.SUCCEEDED
    assert ("user_unlocked", "wang", {"was_locked": True}) in [row[1:] for row in audit_rows(staff)]
    assert bot_user(monkeypatch, staff, "unlock", "wang") == 0
    assert "was not locked" in capsys.readouterr().out


def test_set_wecom_and_clear(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bot_user(monkeypatch, staff, "set-wecom", "wang", "WangXiaoMing") == 0
    assert capsys.readouterr().out.strip() == "wang is bound to the WeCom UserID WangXiaoMing"
    assert account(staff, "wang").wecom_user_id == "WangXiaoMing"
    assert bot_user(monkeypatch, staff, "set-wecom", "li", "WANGXIAOMING") == 2
    assert "bound to 'wang'" in capsys.readouterr().err
    assert bot_user(monkeypatch, staff, "set-wecom", "wang", "--clear") == 0
    assert capsys.readouterr().out.strip() == "wang is no longer bound to WeCom"
    assert account(staff, "wang").wecom_user_id is None and account(staff, "li").wecom_user_id is None
    with pytest.raises(SystemExit):
        bot_user(monkeypatch, staff, "set-wecom", "wang")  # neither a UserID nor --clear
    assert [row[3] for row in audit_rows(staff)] == [
        {"wecom_user_id": "WangXiaoMing", "previous_wecom_user_id": None},
        {"wecom_user_id": None, "previous_wecom_user_id": "WangXiaoMing"},
    ]


def test_add_binds_a_wecom_user_id(
    staff: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("add", "zhao", "--role", "supervisor", "--name", "赵主管", "--wecom", "ZhaoZhuGuan")
    assert bot_user(monkeypatch, staff, *args, stdin=PASSWORD + "\n") == 0
    assert "zhao (supervisor, 赵主管)" in capsys.readouterr().out
    assert account(staff, "zhao").wecom_user_id == "ZhaoZhuGuan"
    assert audit_rows(staff)[-1][1:] == (
        "user_added", "zhao", {"role": "supervisor", "name": "赵主管", "wecom_user_id": "ZhaoZhuGuan"}
    )  # fmt: skip
