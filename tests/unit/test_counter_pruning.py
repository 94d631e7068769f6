"""Counters and attempts are pruned by age for the retention job, on SQLite and PostgreSQL: rate-limit hits
(bot.services.rate_limits.prune), identity attempts (bot.services.identity.prune_attempts) and staff login
attempts (bot.services.staff_auth.prune_login_attempts, which keeps successful logins)."""

from __future__ import annotations

import datetime as dt
from typing import List, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import IdentityAttempt, RateLimitHit
from bot.db.staff_models import LoginOutcome, StaffLoginAttempt
from bot.services import identity, rate_limits, staff_auth

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)


def estate_time(moment: dt.datetime) -> dt.datetime:
    """A hit's time as stored: SQLite keeps the fields of the estate's local time, PostgreSQL the instant."""
    return moment.replace(tzinfo=SHANGHAI) if moment.tzinfo is None else moment.astimezone(SHANGHAI)


def test_rate_limit_hits_older_than_the_cut_are_pruned(session: Session) -> None:
    # Written as the counters write them: the clock's now, in the estate's timezone.
    with clock.frozen(NOW - dt.timedelta(days=3)):
        assert rate_limits.allow(session, key="phone-reveal:wang", limit=5, window=dt.timedelta(hours=1))
    with clock.frozen(NOW - dt.timedelta(hours=2)):
        assert rate_limits.allow(session, key="webchat-session:ip:1.2.3.4", limit=5, window=dt.timedelta(hours=1))
    with clock.frozen(NOW):
        assert rate_limits.allow(session, key="unverified-record:ip:1.2.3.4", limit=5, window=dt.timedelta(days=1))
    session.commit()
    # 1.5 hours ago, named in UTC: compared as the same instant whatever the zone it is given in.
    cut = (NOW - dt.timedelta(hours=1, minutes=30)).astimezone(dt.timezone.utc)
    assert rate_limits.prune(session, before=cut) == 2
    session.commit()
    kept = session.execute(select(RateLimitHit.key, RateLimitHit.at)).all()
    assert [(key, estate_time(at)) for key, at in kept] == [("unverified-record:ip:1.2.3.4", NOW)]
    assert rate_limits.prune(session, before=cut) == 0


def test_identity_attempts_older_than_the_cut_are_pruned(session: Session) -> None:
    for days, client in ((40, "ip:old"), (1, "ip:recent")):
        with clock.frozen(NOW - dt.timedelta(days=days)):
            identity.verify(session, room="9栋9单元999", phone_tail="0000", client=client, channel="socketio", sender_id=f"s-{client}")
    session.commit()
    assert identity.prune_attempts(session, before=NOW - dt.timedelta(days=30)) == 1
    session.commit()
    kept = session.execute(select(IdentityAttempt.client_key, IdentityAttempt.succeeded, IdentityAttempt.unit_code)).all()
    assert [tuple(row) for row in kept] == [("ip:recent", False, "9-9-999")]


def test_login_failures_are_pruned_successes_kept(session: Session) -> None:
    def attempt(username: str, outcome: LoginOutcome, days: float) -> None:
        at = (NOW - dt.timedelta(days=days)).astimezone(dt.timezone.utc)
        staff_auth.record_attempt(session, username=username, outcome=outcome, at=at, client="203.0.113.9", client_key="k")

    attempt("wang", LoginOutcome.SUCCEEDED, 60)
    attempt("wang", LoginOutcome.FAILED, 59)
    attempt("ghost", LoginOutcome.FAILED, 45)
    attempt("ghost", LoginOutcome.LOCKED, 45)
    attempt("wang", LoginOutcome.UNLOCKED, 40)
    attempt("zhao", LoginOutcome.FAILED, 2)
    session.commit()
    assert staff_auth.prune_login_attempts(session, before=NOW - dt.timedelta(days=30)) == 4
    session.commit()
    kept: List[Tuple[str, LoginOutcome, str]] = [
        (row.username, row.outcome, row.client)
        for row in session.execute(select(StaffLoginAttempt).order_by(StaffLoginAttempt.id)).scalars()
    ]
    assert kept == [("wang", LoginOutcome.SUCCEEDED, "203.0.113.0/24"), ("zhao", LoginOutcome.FAILED, "203.0.113.0/24")]
    last = staff_auth.last_login(session, username="wang", before=NOW)
    assert last is not None and last.outcome is LoginOutcome.SUCCEEDED  # the home page still shows it
