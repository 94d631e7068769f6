"""What managers do to staff accounts (bot/services/staff_lifecycle.py), on SQLite and PostgreSQL: the stored
fields of each change, the sessions it ends, its audit row (with no password), its refusals (nothing written),
the account list, WeCom UserIDs, the password policy's setting, and migration 0016's cut-down addresses."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator, List, Optional, Tuple

import pytest
from sqlalchemy import inspect, select, text

from bot import clock
from bot.db import migrate
from bot.db.session import get_engine, session_scope
from bot.db.staff_models import (
    AuditEntry,
    LoginOutcome,
    StaffLoginAttempt,
    StaffRole,
    StaffSession,
    StaffUser,
)
from bot.services import staff_auth, staff_lifecycle, staff_users
from bot.services.staff_auth import LoginPolicy, LoginStatus
from bot.services.staff_users import AccountError
from bot.settings import get_settings

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
PASSWORD = "Shoufei-2026!"
NEW_PASSWORD = "Xin-mima-2027#"
POLICY = LoginPolicy(client_secret="test-secret")
STAFF = {"wang": ("collector", "王小明"), "zhao": ("supervisor", "赵主管"), "li": ("manager", "李经理")}


def aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def at(minutes: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


@pytest.fixture
def staff(database_url: str) -> str:
    """A collector, a supervisor and one manager (their user_added rows removed)."""
    with clock.frozen(NOW), session_scope(database_url) as session:
        for username, (role, name) in STAFF.items():
            staff_users.create_user(
                session, username=username, password=PASSWORD, role=role, display_name=name, actor="cli:test"
            )
        session.execute(AuditEntry.__table__.delete())
    return database_url


def log_in(
    url: str, username: str, password: str = PASSWORD, moment: dt.datetime = NOW, client: str = "10.0.0.7"
) -> Any:
    with clock.frozen(moment), session_scope(url) as session:
        return staff_auth.log_in(session, username=username, password=password, client=client, policy=POLICY)


def user(url: str, username: str) -> StaffUser:
    with session_scope(url) as session:
        found = staff_users.find(session, username=username)
        assert found is not None
        session.expunge(found)
        return found


def sessions_of(url: str, username: str) -> List[Tuple[Optional[dt.datetime], dt.datetime]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(StaffSession.revoked_at, StaffSession.expires_at)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffUser.username == username)
            .order_by(StaffSession.id)
        ).all()
        return [(aware(revoked), aware(expires)) for revoked, expires in rows]  # type: ignore[misc]


def audit_rows(url: str) -> List[Tuple[Any, ...]]:
    with session_scope(url) as session:
        rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        return [(aware(row.at), row.actor, row.action, row.target, row.detail) for row in rows]


def change(url: str, moment: dt.datetime, action: Any, **kwargs: Any) -> Any:
    with clock.frozen(moment), session_scope(url) as session:
        return action(session, **kwargs)


def refused(url: str, code: str, action: Any, **kwargs: Any) -> None:
    """``action`` is refused with ``code`` and writes nothing (no audit row, no change)."""
    before = audit_rows(url)
    with pytest.raises(AccountError) as error, clock.frozen(at(30)), session_scope(url) as session:
        action(session, **kwargs)
    assert error.value.code == code
    assert audit_rows(url) == before


# --- deactivate, reactivate ---------------------------------------------------------------------------------


def test_deactivating_ends_the_sessions_and_logins_and_is_audited(staff: str) -> None:
    first = log_in(staff, "wang")
    second = log_in(staff, "wang", moment=at(1))
    ended = change(staff, at(5), staff_lifecycle.deactivate, username="WANG", actor="li")
    assert ended == 2
    wang = user(staff, "wang")
    assert (wang.active, aware(wang.deactivated_at), wang.role) == (False, at(5), StaffRole.COLLECTOR)
    assert sessions_of(staff, "wang") == [
        (at(5), NOW + dt.timedelta(hours=12)),
        (at(5), at(1) + dt.timedelta(hours=12)),
    ]
    with clock.frozen(at(6)), session_scope(staff) as session:
        assert staff_auth.active_session(session, token=first.session.token) is None
        assert staff_auth.active_session(session, token=second.session.token) is None
    assert log_in(staff, "wang", moment=at(7)).status is LoginStatus.FAILED
    rows = audit_rows(staff)
    assert (at(5), "li", "user_deactivated", "wang", {"sessions_ended": 2}) in rows
    assert rows[-1][2:] == ("login_failed", None, {"reason": "inactive", "client": "10.0.0.0/24"})

    change(staff, at(10), staff_lifecycle.reactivate, username="wang", actor="li")
    wang = user(staff, "wang")
    assert (wang.active, wang.deactivated_at) == (True, None)
    assert audit_rows(staff)[-1] == (at(10), "li", "user_reactivated", "wang", {"role": "collector"})
    assert log_in(staff, "wang", moment=at(11)).status is LoginStatus.SUCCEEDED  # with the old password


def test_deactivate_and_reactivate_refusals_write_nothing(staff: str) -> None:
    refused(staff, "not_found", staff_lifecycle.deactivate, username="ghost", actor="li")
    refused(staff, "self", staff_lifecycle.deactivate, username="li", actor="li")
    refused(staff, "last_manager", staff_lifecycle.deactivate, username="li", actor="cli:root")
    refused(staff, "already_active", staff_lifecycle.reactivate, username="wang", actor="li")
    change(staff, at(1), staff_lifecycle.deactivate, username="wang", actor="li")
    refused(staff, "already_inactive", staff_lifecycle.deactivate, username="wang", actor="li")
    assert user(staff, "li").active and not user(staff, "wang").active
    # With a second active manager, one manager may be deactivated (by the other, or from the command line).
    change(staff, at(2), staff_lifecycle.set_role, username="zhao", role="manager", actor="li")
    change(staff, at(3), staff_lifecycle.deactivate, username="li", actor="zhao")
    assert not user(staff, "li").active
    refused(
        staff, "last_manager", staff_lifecycle.set_role, username="zhao", role="collector", actor="cli:root"
    )


# --- passwords ----------------------------------------------------------------------------------------------


def test_a_password_reset_stores_a_new_hash_ends_the_sessions_and_audits_no_password(staff: str) -> None:
    opened = log_in(staff, "wang")
    old_hash = user(staff, "wang").password_hash
    ended = change(
        staff, at(5), staff_lifecycle.reset_password, username="wang", password=NEW_PASSWORD, actor="li"
    )
    assert ended == 1
    wang = user(staff, "wang")
    assert wang.password_hash != old_hash and wang.password_hash.startswith("$argon2id$")
    assert staff_users.password_matches(wang.password_hash, NEW_PASSWORD)
    assert aware(wang.password_changed_at) == at(5) and aware(wang.created_at) == NOW
    assert sessions_of(staff, "wang") == [(at(5), NOW + dt.timedelta(hours=12))]
    with clock.frozen(at(6)), session_scope(staff) as session:
        assert staff_auth.active_session(session, token=opened.session.token) is None
    assert log_in(staff, "wang", PASSWORD, at(7)).status is LoginStatus.FAILED
    assert log_in(staff, "wang", NEW_PASSWORD, at(8)).status is LoginStatus.SUCCEEDED
    assert (at(5), "li", "user_password_reset", "wang", {"sessions_ended": 1}) in audit_rows(staff)
    with session_scope(staff) as session:
        stored = json.dumps(
            [row.detail for row in session.execute(select(AuditEntry)).scalars()], ensure_ascii=False
        )
    assert NEW_PASSWORD not in stored and PASSWORD not in stored


@pytest.mark.parametrize(
    "password, code",
    [
        ("", "empty"),
        ("Ab1!xyz", "too_short"),
        ("abcdefghijkl", "one_kind"),
        ("aaaa1111aaaa", "repetitive"),
        ("wang-2026-new!", "contains_username"),
        ("Password123", "common"),
        ("x1" * 600, "too_long"),
        (PASSWORD, "same_password"),
    ],
)
def test_a_weak_or_unchanged_password_is_refused_and_nothing_changes(
    staff: str, password: str, code: str
) -> None:
    opened = log_in(staff, "wang")
    old_hash = user(staff, "wang").password_hash
    refused(staff, code, staff_lifecycle.reset_password, username="wang", password=password, actor="li")
    assert user(staff, "wang").password_hash == old_hash
    with clock.frozen(at(1)), session_scope(staff) as session:
        assert staff_auth.active_session(session, token=opened.session.token) is not None


def test_the_minimum_length_is_a_setting_that_only_raises_the_floor(
    staff: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD_MIN_LENGTH", "14")
    get_settings.cache_clear()
    try:
        assert staff_users.minimum_password_length() == 14
        refused(
            staff,
            "too_short",
            staff_lifecycle.reset_password,
            username="wang",
            password="Xin-mima-27#",
            actor="li",
        )
        assert (
            staff_users.password_problem("Xin-mima-27#", username="wang")
            == "the password is shorter than 14 characters"
        )
        monkeypatch.setenv("STAFF_PASSWORD_MIN_LENGTH", "6")  # cannot go below 10
        get_settings.cache_clear()
        assert staff_users.minimum_password_length() == 10
        problem = staff_users.check_password("Ab1!xyz", username="wang")
        assert problem is not None and problem.code == "too_short"
    finally:
        get_settings.cache_clear()


# --- roles, sessions ----------------------------------------------------------------------------------------


def test_a_role_change_ends_the_sessions_so_no_browser_keeps_the_old_powers(staff: str) -> None:
    opened = log_in(staff, "zhao")
    ended = change(staff, at(5), staff_lifecycle.set_role, username="zhao", role="collector", actor="li")
    assert ended == 1
    assert user(staff, "zhao").role is StaffRole.COLLECTOR
    with clock.frozen(at(6)), session_scope(staff) as session:
        assert staff_auth.active_session(session, token=opened.session.token) is None
    assert audit_rows(staff)[-1] == (
        at(5),
        "li",
        "user_role_changed",
        "zhao",
        {"role": "collector", "previous_role": "supervisor", "sessions_ended": 1},
    )
    refused(staff, "same_role", staff_lifecycle.set_role, username="zhao", role="collector", actor="li")
    refused(staff, "bad_role", staff_lifecycle.set_role, username="zhao", role="boss", actor="li")
    refused(staff, "self", staff_lifecycle.set_role, username="li", role="collector", actor="li")
    refused(
        staff, "last_manager", staff_lifecycle.set_role, username="li", role="supervisor", actor="cli:root"
    )
    assert user(staff, "li").role is StaffRole.MANAGER


def test_revoking_sessions_ends_only_the_open_ones(staff: str) -> None:
    log_in(staff, "wang")  # expires at NOW + 12 h
    second = log_in(staff, "wang", moment=at(60))
    with clock.frozen(at(61)), session_scope(staff) as session:
        staff_auth.log_out(session, token=second.session.token)
    third = log_in(staff, "wang", moment=at(62))
    log_in(staff, "zhao", moment=at(62))
    later = NOW + dt.timedelta(hours=12, minutes=30)  # the first has expired by now
    assert change(staff, later, staff_lifecycle.revoke_sessions, username="wang", actor="cli:root") == 1
    assert sessions_of(staff, "wang") == [
        (None, NOW + dt.timedelta(hours=12)),
        (at(61), at(60) + dt.timedelta(hours=12)),
        (later, at(62) + dt.timedelta(hours=12)),
    ]
    assert sessions_of(staff, "zhao")[0][0] is None  # another account's session is untouched
    with clock.frozen(later), session_scope(staff) as session:
        assert staff_auth.active_session(session, token=third.session.token) is None
    assert audit_rows(staff)[-1] == (
        later,
        "cli:root",
        "user_sessions_revoked",
        "wang",
        {"sessions_ended": 1},
    )
    assert change(staff, later, staff_lifecycle.revoke_sessions, username="wang", actor="li") == 0
    refused(staff, "not_found", staff_lifecycle.revoke_sessions, username="ghost", actor="li")


# --- unlock -------------------------------------------------------------------------------------------------


def test_a_manager_lifts_a_lock_out_and_the_count_starts_afresh(staff: str) -> None:
    statuses = [log_in(staff, "wang", f"Wrong-pass-{n}", at(n)).status for n in range(5)]
    assert statuses[-1] is LoginStatus.LOCKED
    assert log_in(staff, "wang", PASSWORD, at(5)).status is LoginStatus.LOCKED
    assert change(staff, at(6), staff_lifecycle.unlock, username="wang", actor="li", policy=POLICY) is True
    with session_scope(staff) as session:
        row = session.execute(
            select(StaffLoginAttempt).order_by(StaffLoginAttempt.id.desc()).limit(1)
        ).scalar_one()
        stored = (row.username, row.outcome, row.client, row.client_key, aware(row.attempted_at))
        assert stored == ("wang", LoginOutcome.UNLOCKED, None, None, at(6))
        assert staff_auth.locked_until(session, username="wang", policy=POLICY) is None
    assert audit_rows(staff)[-1] == (at(6), "li", "user_unlocked", "wang", {"was_locked": True})
    # Four more failures do not lock it again: the five before the unlock no longer count.
    assert [log_in(staff, "wang", "Wrong-pass-x", at(7)).status for _ in range(4)] == [LoginStatus.FAILED] * 4
    assert log_in(staff, "wang", PASSWORD, at(8)).status is LoginStatus.SUCCEEDED
    assert change(staff, at(9), staff_lifecycle.unlock, username="wang", actor="li", policy=POLICY) is False
    assert audit_rows(staff)[-1] == (at(9), "li", "user_unlocked", "wang", {"was_locked": False})
    refused(staff, "not_found", staff_lifecycle.unlock, username="ghost", actor="li", policy=POLICY)


# --- WeCom UserIDs ------------------------------------------------------------------------------------------


def test_a_wecom_user_id_is_bound_explicitly_uniquely_and_audited(staff: str) -> None:
    bound = change(
        staff,
        at(1),
        staff_lifecycle.set_wecom_user_id,
        username="wang",
        wecom_user_id=" WangXiaoMing ",
        actor="li",
    )
    assert bound == "WangXiaoMing" and user(staff, "wang").wecom_user_id == "WangXiaoMing"
    assert audit_rows(staff)[-1] == (
        at(1),
        "li",
        "user_wecom_changed",
        "wang",
        {"wecom_user_id": "WangXiaoMing", "previous_wecom_user_id": None},
    )
    with session_scope(staff) as session:
        found = staff_users.find_by_wecom_user_id(session, wecom_user_id="WangXiaoMing")
        assert found is not None and found.username == "wang"
        assert staff_users.find_by_wecom_user_id(session, wecom_user_id="wangxiaoming") is None  # exactly
        assert staff_users.find_by_wecom_user_id(session, wecom_user_id="wang") is None  # never by name
    refused(
        staff,
        "wecom_taken",
        staff_lifecycle.set_wecom_user_id,
        username="zhao",
        wecom_user_id="wangxiaoming",
        actor="li",
    )
    refused(
        staff,
        "same_wecom",
        staff_lifecycle.set_wecom_user_id,
        username="wang",
        wecom_user_id="WangXiaoMing",
        actor="li",
    )
    for bad in ("王小明", "-wang", "a b", "x" * 65):
        refused(
            staff,
            "bad_wecom_user_id",
            staff_lifecycle.set_wecom_user_id,
            username="zhao",
            wecom_user_id=bad,
            actor="li",
        )
    assert user(staff, "zhao").wecom_user_id is None
    assert (
        change(staff, at(2), staff_lifecycle.set_wecom_user_id, username="wang", wecom_user_id="", actor="li")
        is None
    )
    assert user(staff, "wang").wecom_user_id is None
    assert audit_rows(staff)[-1][4] == {"wecom_user_id": None, "previous_wecom_user_id": "WangXiaoMing"}
    # Freed, it can go to someone else.
    change(
        staff,
        at(3),
        staff_lifecycle.set_wecom_user_id,
        username="zhao",
        wecom_user_id="WangXiaoMing",
        actor="li",
    )
    assert user(staff, "zhao").wecom_user_id == "WangXiaoMing"


def test_a_new_account_may_be_bound_at_once_and_the_database_keeps_ids_unique(staff: str) -> None:
    with clock.frozen(at(1)), session_scope(staff) as session:
        created = staff_users.create_user(
            session,
            username="chen",
            password=PASSWORD,
            role="collector",
            display_name="陈",
            wecom_user_id="ChenMing",
            actor="li",
        )
        assert (created.wecom_user_id, aware(created.password_changed_at), aware(created.created_at)) == (
            "ChenMing",
            at(1),
            at(1),
        )
    assert audit_rows(staff)[-1] == (
        at(1),
        "li",
        "user_added",
        "chen",
        {"role": "collector", "name": "陈", "wecom_user_id": "ChenMing"},
    )
    with pytest.raises(AccountError) as error, session_scope(staff) as session:
        staff_users.create_user(
            session,
            username="chen2",
            password=PASSWORD,
            role="collector",
            wecom_user_id="CHENMING",
            actor="li",
        )
    assert error.value.code == "wecom_taken"
    # Under the service's check, the unique constraint itself refuses a second binding.
    with pytest.raises(Exception) as raised, session_scope(staff) as session:
        session.execute(
            StaffUser.__table__.update().where(StaffUser.username == "wang").values(wecom_user_id="ChenMing")
        )
    assert "unique" in str(raised.value).lower()


# --- the list -----------------------------------------------------------------------------------------------


def test_the_account_list_shows_state_lock_wecom_last_login_and_sessions(staff: str) -> None:
    log_in(staff, "zhao", moment=at(1))
    log_in(staff, "zhao", moment=at(2))
    for _ in range(5):
        log_in(staff, "wang", "Wrong-pass-1", at(3))
    change(
        staff,
        at(4),
        staff_lifecycle.set_wecom_user_id,
        username="li",
        wecom_user_id="LiJingLi",
        actor="cli:root",
    )
    change(staff, at(4), staff_lifecycle.set_role, username="zhao", role="manager", actor="li")
    change(staff, at(5), staff_lifecycle.deactivate, username="li", actor="zhao")
    log_in(staff, "zhao", moment=at(6))
    with clock.frozen(at(10)), session_scope(staff) as session:
        accounts = staff_lifecycle.list_accounts(session, policy=POLICY)
    assert [
        (
            a.username,
            a.display_name,
            a.role,
            a.active,
            a.wecom_user_id,
            a.deactivated_at,
            a.last_login_at,
            a.open_sessions,
            a.locked_until,
        )
        for a in accounts
    ] == [
        ("wang", "王小明", StaffRole.COLLECTOR, True, None, None, None, 0, at(3) + dt.timedelta(minutes=15)),
        ("zhao", "赵主管", StaffRole.MANAGER, True, None, None, at(6), 1, None),
        ("li", "李经理", StaffRole.MANAGER, False, "LiJingLi", at(5), None, 0, None),
    ]
    assert all(a.created_at == NOW and a.password_changed_at == NOW for a in accounts)
    with clock.frozen(at(10)), session_scope(staff) as session:
        assert staff_lifecycle.summary(session, username="ZHAO", policy=POLICY) == accounts[1]


# --- migration 0016 -----------------------------------------------------------------------------------------


@pytest.fixture
def at_0015(database_url: str) -> Iterator[str]:
    migrate.downgrade(database_url, "0015")
    yield database_url
    migrate.upgrade(database_url)


def test_migration_0016_adds_the_columns_and_cuts_stored_addresses_down_to_networks(at_0015: str) -> None:
    url = at_0015
    columns = {column["name"] for column in inspect(get_engine(url)).get_columns("staff_users")}
    assert not {"wecom_user_id", "deactivated_at", "password_changed_at"} & columns
    stamp = "2026-11-24 01:00:00"
    with get_engine(url).begin() as connection:
        insert_attempt = text(
            "INSERT INTO staff_login_attempts (username, outcome, client, attempted_at)"
            " VALUES (:u, 'FAILED', :c, :t)"
        )
        for client in ("203.0.113.45", "2001:db8:1:2::5", "::ffff:198.51.100.9", "testclient", None):
            connection.execute(insert_attempt, {"u": "wang", "c": client, "t": stamp})
        insert_audit = text(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (:t, :a, :act, NULL, :d)"
        )
        for action, detail in (
            ("login", {"role": "manager", "client": "203.0.113.45"}),
            ("logout", {"client": "2001:db8:1:2::5"}),
            ("login_failed", {"reason": "unknown_user"}),
            ("owner_viewed", {"client": "203.0.113.45"}),  # not a login row: left as it was
        ):
            connection.execute(insert_audit, {"t": stamp, "a": "li", "act": action, "d": json.dumps(detail)})
    migrate.upgrade(url, "0016")
    columns = {column["name"] for column in inspect(get_engine(url)).get_columns("staff_users")}
    assert {"wecom_user_id", "deactivated_at", "password_changed_at"} <= columns
    with session_scope(url) as session:
        clients = list(
            session.execute(
                select(StaffLoginAttempt.client, StaffLoginAttempt.client_key).order_by(StaffLoginAttempt.id)
            )
        )
        details = list(session.execute(select(AuditEntry.detail).order_by(AuditEntry.id)).scalars())
    assert clients == [
        ("203.0.113.0/24", None),
        ("2001:db8:1::/48", None),
        ("198.51.100.0/24", None),
        ("testclient", None),
        (None, None),
    ]
    assert details == [
        {"role": "manager", "client": "203.0.113.0/24"},
        {"client": "2001:db8:1::/48"},
        {"reason": "unknown_user"},
        {"client": "203.0.113.45"},
    ]
    migrate.downgrade(url, "0015")
    columns = {column["name"] for column in inspect(get_engine(url)).get_columns("staff_login_attempts")}
    assert "client_key" not in columns
