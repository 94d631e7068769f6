"""Login throttling per client address as well as per username, on SQLite and PostgreSQL: the address
counted only as a keyed hash (IPv6 by its /64) and shown only as its network, one address unable to keep
every account locked, and what each kind of login costs in argon2 work (counted on the hasher itself)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import select

from bot import clock
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry, LoginOutcome, StaffLoginAttempt, StaffUser
from bot.services import client_addresses, staff_auth, staff_lifecycle, staff_users
from bot.services.staff_auth import LoginPolicy, LoginStatus
from bot.settings import Settings

# What each kind of login costs is counted against the product's own argon2 parameters.
pytestmark = pytest.mark.argon2_defaults

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
PASSWORD = "Shoufei-2026!"
SECRET = "test-staff-secret"
POLICY = LoginPolicy(max_failures=5, max_client_failures=20, client_secret=SECRET)
ATTACKER = "198.51.100.23"
OFFICE = "203.0.113.8"


def at(minutes: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


@pytest.fixture
def staff(database_url: str) -> str:
    with session_scope(database_url) as session:
        for username, role in (("wang", "collector"), ("zhao", "supervisor"), ("li", "manager")):
            staff_users.create_user(
                session, username=username, password=PASSWORD, role=role, actor="cli:test"
            )
        session.execute(AuditEntry.__table__.delete())
    return database_url


def log_in(
    url: str, username: str, password: str, moment: dt.datetime, client: str
) -> staff_auth.LoginResult:
    with clock.frozen(moment), session_scope(url) as session:
        return staff_auth.log_in(session, username=username, password=password, client=client, policy=POLICY)


class CountingHasher:
    """Wraps the argon2 hasher and counts what it computes (verify: against which hash)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.verified: List[str] = []
        self.hashed = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return bool(self.real.verify(password_hash, password))

    def hash(self, password: str) -> str:
        self.hashed += 1
        return str(self.real.hash(password))

    def check_needs_rehash(self, password_hash: str) -> bool:
        return bool(self.real.check_needs_rehash(password_hash))

    def reset(self) -> None:
        self.verified.clear()
        self.hashed = 0


@pytest.fixture
def argon2(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    counting = CountingHasher(staff_users._hasher)
    monkeypatch.setattr(staff_users, "_hasher", counting)
    yield counting


# --- per client ---------------------------------------------------------------------------------------------


def test_one_address_cannot_keep_every_account_locked(staff: str) -> None:
    # Four wrong passwords for each of five names: 20 failures from one address, no name locked yet.
    statuses = [
        log_in(staff, name, "Wrong-pass-1", at(0), ATTACKER).status
        for name in ["wang", "zhao", "li", "chen", "sun"] * 4
    ]
    assert statuses == [LoginStatus.FAILED] * 19 + [LoginStatus.LOCKED]
    # The address is locked out: the fifth try on "wang" never reaches the name's count.
    assert log_in(staff, "wang", "Wrong-pass-1", at(3), ATTACKER).status is LoginStatus.LOCKED
    with clock.frozen(at(3)), session_scope(staff) as session:
        assert staff_auth.locked_until(session, username="wang", policy=POLICY) is None
    # Everybody else logs in, from their own addresses.
    for name in ("wang", "zhao", "li"):
        assert log_in(staff, name, PASSWORD, at(4), OFFICE).status is LoginStatus.SUCCEEDED
    # The right password from the locked address is refused until the lock-out ends (15 min after the 20th).
    assert log_in(staff, "li", PASSWORD, at(14.5), ATTACKER).status is LoginStatus.LOCKED
    assert log_in(staff, "li", PASSWORD, at(15), ATTACKER).status is LoginStatus.SUCCEEDED
    with session_scope(staff) as session:
        reasons = [
            row.detail["reason"]
            for row in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
            if row.action == "login_failed"
        ]
    assert reasons[-2:] == ["client_locked", "client_locked"]


def test_a_success_does_not_reset_the_address_count_and_a_manager_unlock_frees_only_the_name(
    staff: str,
) -> None:
    for n in range(19):
        assert log_in(staff, f"ghost{n}", "Wrong-pass-1", at(0), ATTACKER).status is LoginStatus.FAILED
    assert log_in(staff, "li", PASSWORD, at(1), ATTACKER).status is LoginStatus.SUCCEEDED  # resets nothing
    assert log_in(staff, "ghost19", "Wrong-pass-1", at(2), ATTACKER).status is LoginStatus.LOCKED
    with clock.frozen(at(3)), session_scope(staff) as session:
        staff_lifecycle.unlock(session, username="li", actor="zhao", policy=POLICY)
    result = log_in(staff, "li", PASSWORD, at(4), ATTACKER)
    assert result.status is LoginStatus.LOCKED and result.locked_until == at(2) + dt.timedelta(minutes=15)


def test_failures_counted_per_address_and_ipv6_per_64(staff: str) -> None:
    for n in range(19):
        assert (
            log_in(staff, f"ghost{n}", "Wrong-pass-1", at(0), f"2001:db8:aa:bb::{n + 1:x}").status
            is LoginStatus.FAILED
        )
    # The 20th failure from anywhere in 2001:db8:aa:bb::/64 locks the whole /64.
    assert (
        log_in(staff, "nobody", "Wrong-pass-1", at(1), "2001:db8:aa:bb:ffff::1").status is LoginStatus.LOCKED
    )
    assert log_in(staff, "wang", PASSWORD, at(2), "2001:db8:aa:bb::99").status is LoginStatus.LOCKED
    # The next /64 is another client; so is each IPv4 address, even in the same /24.
    assert log_in(staff, "wang", PASSWORD, at(2), "2001:db8:aa:bc::1").status is LoginStatus.SUCCEEDED
    for n in range(19):
        log_in(staff, f"x{n}", "Wrong-pass-1", at(20), "192.0.2.1")
    assert (
        log_in(staff, "zhao", PASSWORD, at(20), "192.0.2.2").status is LoginStatus.SUCCEEDED
    )  # same /24, other address
    assert (
        log_in(staff, "zhao", PASSWORD, at(20), "192.0.2.1").status is LoginStatus.SUCCEEDED
    )  # 19 failures: not yet


def test_the_name_is_still_locked_after_five_failures_from_five_addresses(staff: str) -> None:
    statuses = [log_in(staff, "wang", "Wrong-pass-1", at(n), f"10.0.{n}.1").status for n in range(5)]
    assert statuses == [LoginStatus.FAILED] * 4 + [LoginStatus.LOCKED]
    assert log_in(staff, "wang", PASSWORD, at(6), "10.9.9.9").status is LoginStatus.LOCKED


# --- what is stored -----------------------------------------------------------------------------------------


def test_addresses_are_stored_only_as_a_keyed_hash_and_a_network(staff: str) -> None:
    log_in(staff, "wang", "Wrong-pass-1", at(0), "203.0.113.45")
    log_in(staff, "wang", PASSWORD, at(1), "2001:db8:1:2:3:4:5:6")
    opened = log_in(staff, "li", PASSWORD, at(2), "::ffff:198.51.100.9")
    with clock.frozen(at(3)), session_scope(staff) as session:
        assert opened.session is not None
        staff_auth.log_out(session, token=opened.session.token, client="::ffff:198.51.100.9")
    expected_key = hmac.new(
        SECRET.encode(), b"wuye-staff:login-client:v1:203.0.113.45", hashlib.sha256
    ).hexdigest()
    with session_scope(staff) as session:
        attempts = [
            (row.username, row.outcome, row.client, row.client_key)
            for row in session.execute(select(StaffLoginAttempt).order_by(StaffLoginAttempt.id)).scalars()
        ]
        audit_details = [
            row.detail for row in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        ]
    assert attempts == [
        ("wang", LoginOutcome.FAILED, "203.0.113.0/24", expected_key),
        (
            "wang",
            LoginOutcome.SUCCEEDED,
            "2001:db8:1::/48",
            client_addresses.client_key("2001:db8:1:2::1", secret=SECRET),
        ),
        (
            "li",
            LoginOutcome.SUCCEEDED,
            "198.51.100.0/24",
            client_addresses.client_key("198.51.100.9", secret=SECRET),
        ),
    ]
    assert audit_details == [
        {"reason": "wrong_password", "client": "203.0.113.0/24"},
        {"role": "collector", "client": "2001:db8:1::/48"},
        {"role": "manager", "client": "198.51.100.0/24"},
        {"client": "198.51.100.0/24"},
    ]
    stored = json.dumps([attempts, audit_details], default=str)
    for whole in ("203.0.113.45", "2001:db8:1:2", "198.51.100.9"):
        assert whole not in stored


def test_the_key_depends_on_the_secret_and_the_policy_reads_its_settings() -> None:
    one = client_addresses.client_key("203.0.113.45", secret="one")
    assert (
        one is not None and len(one) == 64 and one != client_addresses.client_key("203.0.113.45", secret="two")
    )
    assert one != client_addresses.client_key("203.0.113.46", secret="one")
    assert client_addresses.client_key(None, secret="one") is None and client_addresses.client_network(None) is None
    assert client_addresses.client_network("testclient") == "testclient"
    settings = Settings(_env_file=None, staff_secret_key="a-secret", staff_login_max_failures_per_client=7)
    policy = LoginPolicy.from_settings(settings)
    assert (policy.max_client_failures, policy.client_secret) == (7, "a-secret")
    assert "a-secret" not in repr(policy)
    assert Settings(_env_file=None).staff_login_max_failures_per_client == 20


# --- argon2 work --------------------------------------------------------------------------------------------


def test_an_unknown_or_inactive_name_costs_one_dummy_check_and_a_locked_one_none(
    staff: str, argon2: CountingHasher
) -> None:
    with session_scope(staff) as session:
        wang = session.execute(select(StaffUser).where(StaffUser.username == "wang")).scalar_one()
        wang_hash = str(wang.password_hash)
        session.execute(StaffUser.__table__.update().where(StaffUser.username == "zhao").values(active=False))

    counts: Dict[str, Any] = {}
    for label, name, password, client in (
        ("unknown", "ghost", "Wrong-pass-1", OFFICE),
        ("inactive", "zhao", PASSWORD, OFFICE),
        ("wrong", "wang", "Wrong-pass-1", OFFICE),
        ("right", "wang", PASSWORD, OFFICE),
    ):
        argon2.reset()
        log_in(staff, name, password, at(0), client)
        counts[label] = (list(argon2.verified), argon2.hashed)
    assert counts == {
        "unknown": ([staff_users.DUMMY_HASH], 0),
        "inactive": ([staff_users.DUMMY_HASH], 0),
        "wrong": ([wang_hash], 0),
        "right": ([wang_hash], 0),
    }
    # A locked name, and a locked address, are refused before any argon2 work.
    for _ in range(5):
        log_in(staff, "ghost", "Wrong-pass-1", at(1), OFFICE)
    argon2.reset()
    assert log_in(staff, "ghost", "Wrong-pass-1", at(2), OFFICE).status is LoginStatus.LOCKED
    assert (
        log_in(staff, "wang", "Wrong-pass-1", at(2), OFFICE).status is LoginStatus.FAILED
    )  # the address: 8 failures
    assert argon2.verified == [wang_hash]
    statuses = [log_in(staff, f"other{n}", "Wrong-pass-1", at(3), OFFICE).status for n in range(12)]
    assert statuses == [LoginStatus.FAILED] * 11 + [LoginStatus.LOCKED]
    argon2.reset()
    assert log_in(staff, "wang", PASSWORD, at(4), OFFICE).status is LoginStatus.LOCKED
    assert (argon2.verified, argon2.hashed) == ([], 0)


def test_the_dummy_hash_has_todays_parameters_and_matches_nothing() -> None:
    assert staff_users.DUMMY_HASH.startswith("$argon2id$")
    assert not staff_users.needs_rehash(staff_users.DUMMY_HASH)
    assert staff_users._dummy_hash() == staff_users.DUMMY_HASH
    assert staff_users.dummy_check(PASSWORD) is None
