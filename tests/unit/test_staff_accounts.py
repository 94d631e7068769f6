"""Staff accounts, logins, lock-outs, sessions, the audit log and phone masking, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Tuple

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from bot import clock
from bot.db import audit, migrate, models
from bot.db.session import get_engine, session_scope
from bot.db.staff_models import (
    AuditEntry,
    LoginOutcome,
    StaffLoginAttempt,
    StaffRole,
    StaffSession,
    StaffUser,
)
from bot.services import staff_auth, staff_users
from bot.services.staff_auth import LoginPolicy, LoginStatus
from bot.services.staff_users import AccountError

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
POLICY = LoginPolicy(
    max_failures=5,
    window=dt.timedelta(minutes=15),
    lockout=dt.timedelta(minutes=15),
    session_lifetime=dt.timedelta(hours=12),
)
PASSWORD = "Shoufei-2026!"
STAFF_TABLES = {"staff_users", "staff_sessions", "staff_login_attempts", "audit_log"}


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def add_user(url: str, username: str = "wang", role: str = "collector", name: str = "王小明") -> None:
    with session_scope(url) as session:
        staff_users.create_user(
            session, username=username, password=PASSWORD, role=role, display_name=name, actor="cli:test"
        )


def log_in(url: str, username: str, password: str, at: dt.datetime) -> staff_auth.LoginResult:
    with clock.frozen(at), session_scope(url) as session:
        return staff_auth.log_in(session, username=username, password=password, client="10.0.0.7", policy=POLICY)


def attempts(url: str, username: str) -> List[LoginOutcome]:
    with session_scope(url) as session:
        rows = session.execute(
            select(StaffLoginAttempt.outcome)
            .where(StaffLoginAttempt.username == username)
            .order_by(StaffLoginAttempt.id)
        )
        return list(rows.scalars())


def audit_rows(url: str) -> List[Tuple[Any, ...]]:
    with session_scope(url) as session:
        rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        return [(aware(row.at), row.actor, row.action, row.target, row.detail) for row in rows]


# --- accounts ---------------------------------------------------------------------------------------------


def test_a_user_is_stored_with_an_argon2id_hash_and_audited(database_url: str) -> None:
    with clock.frozen(NOW):
        add_user(database_url, "Wang ", "supervisor", "王主管")
    with session_scope(database_url) as session:
        user = session.execute(select(StaffUser)).scalar_one()
        assert (user.username, user.display_name, user.role, user.active) == ("wang", "王主管", StaffRole.SUPERVISOR, True)
        assert aware(user.created_at) == NOW
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        assert staff_users.password_matches(user.password_hash, PASSWORD)
        assert not staff_users.password_matches(user.password_hash, PASSWORD.lower())
    assert audit_rows(database_url) == [
        (NOW, "cli:test", "user_added", "wang", {"role": "supervisor", "name": "王主管"})
    ]


def test_usernames_are_unique_in_any_case(database_url: str) -> None:
    add_user(database_url, "wang")
    with pytest.raises(AccountError, match="taken"):
        add_user(database_url, "WANG")
    with session_scope(database_url) as session:
        assert session.execute(select(func.count()).select_from(StaffUser)).scalar_one() == 1


@pytest.mark.parametrize(
    "password, problem",
    [
        ("", "empty"),
        ("          ", "empty"),
        ("Ab1!", "shorter than 10"),
        ("abcdefghijk", "letters together"),
        ("1234567890123", "letters together"),
        ("aaaa1111aaaa", "too few different"),
        ("xwang-2026-pw", "contains the username"),
        ("Password123", "most common"),
        ("x" * 1025, "longer than"),
    ],
)
def test_weak_passwords_are_refused(password: str, problem: str) -> None:
    assert problem in (staff_users.password_problem(password, username="wang") or "")


@pytest.mark.parametrize("password", [PASSWORD, "correct horse battery staple", "物业费-收缴2026"])
def test_strong_passwords_pass(password: str) -> None:
    assert staff_users.password_problem(password, username="wang") is None


@pytest.mark.parametrize(
    "username, role, name, problem",
    [
        ("w", "collector", None, "username"),
        ("wang li", "collector", None, "username"),
        ("-wang", "collector", None, "username"),
        ("wang", "boss", None, "unknown role"),
        ("wang", "collector", "x" * 65, "display name"),
    ],
)
def test_bad_accounts_are_refused(database_url: str, username: str, role: str, name: Any, problem: str) -> None:
    with pytest.raises(AccountError, match=problem), session_scope(database_url) as session:
        staff_users.create_user(
            session, username=username, password=PASSWORD, role=role, display_name=name, actor="cli:test"
        )
    with session_scope(database_url) as session:
        assert session.execute(select(func.count()).select_from(StaffUser)).scalar_one() == 0


# --- logins and lock-outs ---------------------------------------------------------------------------------


def test_a_login_opens_a_session_stored_only_as_a_hash(database_url: str) -> None:
    add_user(database_url)
    result = log_in(database_url, "WANG", PASSWORD, NOW)
    assert result.status is LoginStatus.SUCCEEDED and result.session is not None
    token = result.session.token
    with session_scope(database_url) as session:
        stored = session.execute(select(StaffSession)).scalar_one()
        assert stored.token_hash == staff_auth.token_hash(token) != token
        assert aware(stored.created_at) == NOW and aware(stored.expires_at) == NOW + dt.timedelta(hours=12)
        assert stored.csrf_token == result.session.csrf_token and stored.revoked_at is None
    with clock.frozen(NOW + dt.timedelta(hours=11, minutes=59)), session_scope(database_url) as session:
        active = staff_auth.active_session(session, token=token)
        assert active is not None and active.user.username == "wang"
        assert staff_auth.active_session(session, token=token + "x") is None
    with clock.frozen(NOW + dt.timedelta(hours=12)), session_scope(database_url) as session:
        assert staff_auth.active_session(session, token=token) is None  # expired
    assert attempts(database_url, "wang") == [LoginOutcome.SUCCEEDED]


def test_logout_revokes_the_session_and_is_audited(database_url: str) -> None:
    add_user(database_url)
    result = log_in(database_url, "wang", PASSWORD, NOW)
    assert result.session is not None
    later = NOW + dt.timedelta(minutes=5)
    with clock.frozen(later), session_scope(database_url) as session:
        user = staff_auth.log_out(session, token=result.session.token, client="10.0.0.7")
        assert user is not None and user.username == "wang"
    with clock.frozen(later), session_scope(database_url) as session:
        assert staff_auth.active_session(session, token=result.session.token) is None
        assert aware(session.execute(select(StaffSession.revoked_at)).scalar_one()) == later
        assert staff_auth.log_out(session, token=result.session.token) is None  # nothing more to revoke
    assert [row[1:] for row in audit_rows(database_url)][-1] == ("wang", "logout", None, {"client": "10.0.0.0/24"})
    assert audit_rows(database_url)[-1][0] == later


def test_an_inactive_user_cannot_log_in_and_loses_open_sessions(database_url: str) -> None:
    add_user(database_url)
    result = log_in(database_url, "wang", PASSWORD, NOW)
    assert result.session is not None
    with session_scope(database_url) as session:
        user = staff_users.find(session, username="wang")
        assert user is not None
        user.active = False
    assert log_in(database_url, "wang", PASSWORD, NOW).status is LoginStatus.FAILED
    with clock.frozen(NOW), session_scope(database_url) as session:
        assert staff_auth.active_session(session, token=result.session.token) is None
    assert audit_rows(database_url)[-1][4] == {"reason": "inactive", "client": "10.0.0.0/24"}


def test_five_failures_in_15_minutes_lock_the_username_for_15_minutes(database_url: str) -> None:
    add_user(database_url)
    statuses = [
        log_in(database_url, "wang", "wrong-password-1", NOW + dt.timedelta(minutes=3 * n)).status for n in range(5)
    ]
    assert statuses == [LoginStatus.FAILED] * 4 + [LoginStatus.LOCKED]
    fifth = NOW + dt.timedelta(minutes=12)

    # The right password during the lock-out is refused, unchecked and uncounted.
    during = log_in(database_url, "wang", PASSWORD, fifth + dt.timedelta(minutes=14, seconds=59))
    assert during.status is LoginStatus.LOCKED and during.session is None
    assert during.locked_until == fifth + dt.timedelta(minutes=15)
    # The lock-out ends 15 minutes after the fifth failure, however often it was tried meanwhile.
    after = log_in(database_url, "wang", PASSWORD, fifth + dt.timedelta(minutes=15))
    assert after.status is LoginStatus.SUCCEEDED
    assert attempts(database_url, "wang") == [LoginOutcome.FAILED] * 5 + [LoginOutcome.LOCKED, LoginOutcome.SUCCEEDED]
    reasons = [row[4]["reason"] for row in audit_rows(database_url) if row[2] == "login_failed"]
    assert reasons == ["wrong_password"] * 5 + ["locked"]


def test_failures_spread_wider_than_the_window_do_not_lock(database_url: str) -> None:
    add_user(database_url)
    # Five failures over 16 minutes: never five within 15.
    statuses = [log_in(database_url, "wang", "nope-nope-1", NOW + dt.timedelta(minutes=4 * n)).status for n in range(5)]
    assert statuses == [LoginStatus.FAILED] * 5
    assert log_in(database_url, "wang", PASSWORD, NOW + dt.timedelta(minutes=17)).status is LoginStatus.SUCCEEDED


def test_a_successful_login_starts_the_count_afresh(database_url: str) -> None:
    add_user(database_url)
    for n in range(4):
        assert log_in(database_url, "wang", "nope-nope-1", NOW + dt.timedelta(seconds=n)).status is LoginStatus.FAILED
    assert log_in(database_url, "wang", PASSWORD, NOW + dt.timedelta(seconds=5)).status is LoginStatus.SUCCEEDED
    assert log_in(database_url, "wang", "nope-nope-1", NOW + dt.timedelta(seconds=6)).status is LoginStatus.FAILED
    assert log_in(database_url, "wang", PASSWORD, NOW + dt.timedelta(seconds=7)).status is LoginStatus.SUCCEEDED


def test_unknown_usernames_are_counted_and_locked_like_known_ones(database_url: str) -> None:
    add_user(database_url)
    known = [log_in(database_url, "wang", "nope-nope-1", NOW).status for _ in range(6)]
    unknown = [log_in(database_url, "ghost", "nope-nope-1", NOW).status for _ in range(6)]
    assert known == unknown == [LoginStatus.FAILED] * 4 + [LoginStatus.LOCKED] * 2
    assert attempts(database_url, "ghost") == [LoginOutcome.FAILED] * 5 + [LoginOutcome.LOCKED]
    ghost_rows = [row for row in audit_rows(database_url) if row[1] == "ghost"]
    assert [row[4]["reason"] for row in ghost_rows] == ["unknown_user"] * 5 + ["locked"]
    # One username's lock-out does not touch another's.
    add_user(database_url, "li", "manager", "李经理")
    assert log_in(database_url, "li", PASSWORD, NOW).status is LoginStatus.SUCCEEDED


def test_last_login_is_the_one_before_the_current_session(database_url: str) -> None:
    add_user(database_url)
    log_in(database_url, "wang", PASSWORD, NOW)
    second = log_in(database_url, "wang", PASSWORD, NOW + dt.timedelta(days=1))
    assert second.session is not None
    with session_scope(database_url) as session:
        previous = staff_auth.last_login(session, username="wang", before=NOW + dt.timedelta(days=1))
        assert previous is not None and aware(previous.attempted_at) == NOW and previous.client == "10.0.0.0/24"
        assert staff_auth.last_login(session, username="wang", before=NOW) is None


# --- audit, masking, schema -------------------------------------------------------------------------------


def test_audit_record_stores_every_field(database_url: str) -> None:
    with clock.frozen(NOW), session_scope(database_url) as session:
        entry = audit.record(
            session, actor="li", action="owner_viewed", target="owner:7", detail={"fields": ["phone"], "n": 1}
        )
        assert entry.id is not None
        audit.record(session, actor="li", action="logout")
    assert audit_rows(database_url) == [
        (NOW, "li", "owner_viewed", "owner:7", {"fields": ["phone"], "n": 1}),
        (NOW, "li", "logout", None, None),
    ]
    with session_scope(database_url) as session:
        assert [entry.action for entry in audit.recent(session, limit=1)] == ["logout"]
        with pytest.raises(ValueError):
            audit.record(session, actor="", action="login")


@pytest.mark.parametrize(
    "role, shown",
    [
        ("collector", "138****5678"),
        (StaffRole.COLLECTOR, "138****5678"),
        ("supervisor", "13812345678"),
        (StaffRole.MANAGER, "13812345678"),
        ("somebody", "138****5678"),
    ],
)
def test_phone_numbers_are_masked_for_collectors(role: Any, shown: str) -> None:
    assert staff_users.phone_for("13812345678", role=role) == shown


def test_phone_masking_of_short_and_missing_numbers() -> None:
    assert staff_users.phone_for(None, role="collector") == ""
    assert staff_users.phone_for("5678", role="collector") == "5678"
    assert staff_users.phone_for("1234567", role="collector") == "***4567"
    assert models.mask_phone("13812345678") == "138****5678"


def test_migration_0005_matches_the_models_and_downgrades_to_0004(database_url: str) -> None:
    engine = get_engine(database_url)
    assert STAFF_TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, models.Base.metadata) == []
    migrate.downgrade(database_url, "0004")
    assert not STAFF_TABLES & set(inspect(get_engine(database_url)).get_table_names())
    assert "escalation_events" in inspect(get_engine(database_url)).get_table_names()
    migrate.upgrade(database_url)
    assert STAFF_TABLES <= set(inspect(get_engine(database_url)).get_table_names())
