"""The reminder worker: sends due reminders and runs the daily jobs (``python -m apps.worker``).

Why a polled table and not a scheduler library: Rasa's own ``ReminderScheduled`` lives in an in-memory
APScheduler and is lost when the server stops; APScheduler 3 must not share a job store between two
schedulers; Celery ETA tasks on Redis are delivered twice when they outlive the visibility timeout. A row per
reminder survives every restart, staff can see and cancel it, and PostgreSQL's ``FOR UPDATE SKIP LOCKED``
lets several workers share the table without sending a reminder twice — no new service, no new dependency.

One reminder at a time (PostgreSQL): the row is selected ``FOR UPDATE SKIP LOCKED`` (another worker skips
it), pointed at where the owner can be reached now (:func:`retarget`), judged by the policy under a per-owner
advisory lock (the weekly cap holds with several workers). A web chat reminder is written to the durable
outbox and its state in the claim's transaction: a crash before the commit leaves the row due again and
nothing half-written — exactly once. A row whose processing raises is counted and put back in a separate
transaction (:meth:`ReminderWorker._record_error`) so it never blocks the rows behind it.

The worker calls no channel: every reminder that goes out in writing is an outbox row written in the claim's
transaction (:mod:`bot.reminders.delivery`), sent by the deliverer of a Rasa process, the one way out to
owners. A web chat reminder is ``sent`` once queued; a WeChat one is ``sending`` until
:func:`settle_handed_over` (every poll) reads its row's outcome back: delivered makes it ``sent`` with the way
it went (customer-service or template message), failed makes it a collector's call task with the
deliverer's reason. No worker claims a ``sending`` row, so nothing is sent twice. (A ``sending`` row without
an outbox row, left by an earlier version's worker that died during its own WeChat call, becomes a call task
after :data:`LEASE`: :func:`recover_unconfirmed`.)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot import clock
from bot.conversations import outbox
from bot.conversations.handles import handle_of
from bot.db.models import ConversationLink, OutboxMessage, OutboxState, PaymentPromise, PromiseStatus
from bot.db.reminder_models import PENDING_STATES, Reminder, ReminderState
from bot.db.session import get_engine
from bot.reminders import delivery, ladder, policy, schedule
from bot.reminders.delivery import Template
from bot.reminders.policy import Policy, Verdict

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
DEFAULT_POLL_SECONDS = 5.0
BATCH = 100
# A reminder whose processing raises is tried again after RETRY_BACKOFF * attempts; after MAX_ATTEMPTS it is
# given up (``failed``) and a collector gets a call task: one broken row must never block the others.
MAX_ATTEMPTS = 5
RETRY_BACKOFF = dt.timedelta(minutes=5)
# A daily run with a failed job is run again this much later (not only the next day).
DAILY_RETRY = dt.timedelta(minutes=10)
# The advisory lock namespace (first key) under which a worker decides for one owner (second key).
OWNER_LOCK = 0x52454D31


@dataclass
class Processed:
    """What the worker did with one reminder."""

    reminder_id: int
    state: ReminderState
    reason: Optional[str] = None
    via: Optional[str] = None


@dataclass
class DailyReport:
    """What a daily run did."""

    day: dt.date
    promises_changed: int = 0
    followups: int = 0
    escalations: int = 0
    monthly: int = 0
    retention: Dict[str, int] = field(default_factory=dict)  # what the retention job deleted, by kind
    errors: List[str] = field(default_factory=list)


def default_name() -> str:
    """``worker:<host>:<pid>``."""
    return f"worker:{socket.gethostname()}:{os.getpid()}"[:64]


class ReminderWorker:
    """Sends due reminders; runs the daily jobs once per estate day.

    Args:
        database_url: The database (default ``DATABASE_URL``).
        name: Who claims (kept in ``locked_by``).
        wechat: Whether WeChat's API is configured (default: from settings); the deliverers send.
        template: The reminder template (default: from settings).
        policy: The contact policy (default: from settings).
        holiday: Whether a day is a public holiday, None for an unknown year (default: the schedules loaded as
            data, then ``chinesecalendar``; :mod:`bot.reminders.holidays`).
        now: The clock to run by (tests and staged runs); default :func:`bot.clock.now`.
        poll_seconds: Pause between polls.
    """

    def __init__(
        self,
        *,
        database_url: Optional[str] = None,
        name: Optional[str] = None,
        wechat: Optional[bool] = None,
        template: Optional[Template] = None,
        policy: Optional[Policy] = None,
        holiday: Optional[policy.HolidayLookup] = None,
        now: Optional[Callable[[], dt.datetime]] = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.database_url = database_url
        self.name = (name or default_name())[:64]
        self.wechat = delivery.wechat_configured() if wechat is None else wechat
        self.template = template if template is not None else Template.from_settings()
        self.policy = policy if policy is not None else Policy.from_settings()
        self.holiday = holiday
        self.now = now
        self.poll_seconds = poll_seconds
        self.last_daily: Optional[dt.date] = None
        self.daily_retry_at: Optional[dt.datetime] = None
        self._frozen = False
        self._claimed: Optional[int] = None

    # --- the loop -------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (SIGTERM in ``python -m apps.worker``)."""
        logger.info("reminder worker %s polling every %.1f s", self.name, self.poll_seconds)
        while not stop.is_set():
            try:
                self.tick(stop)
            except Exception:  # a database hiccup must not end the worker; the next poll tries again
                logger.exception("reminder worker: a poll failed")
            stop.wait(self.poll_seconds)

    def tick(self, stop: Optional[threading.Event] = None) -> List[Processed]:
        """One poll: the daily jobs when the estate's day changed, new promises' reminders, due reminders.

        Args:
            stop: Set on SIGTERM: checked between daily jobs and between reminders, so the process ends
                within one send (``bot cli`` kills it a few seconds after asking).
        """
        with self._clock():
            today = clock.today()
            if self.last_daily != today and (self.daily_retry_at is None or clock.now() >= self.daily_retry_at):
                report = self.daily(today, stop=stop)
                if report.errors or _stopped(stop):
                    # Not done for the day: run again after a pause (every job is idempotent).
                    self.daily_retry_at = clock.now() + DAILY_RETRY
                else:
                    self.last_daily = today
                    self.daily_retry_at = None
            if _stopped(stop):
                return []
            self._in_session(lambda session: schedule_missing(session))
            self._in_session(lambda session: settle_handed_over(session))
            self._in_session(lambda session: recover_unconfirmed(session))
            return self.send_due(stop=stop)

    def send_due(self, limit: int = BATCH, *, stop: Optional[threading.Event] = None) -> List[Processed]:
        """Process due reminders one by one until none is left (or ``limit``, or ``stop`` is set).

        A reminder whose processing raises is recorded as a failed attempt in its own transaction and moved
        back (:meth:`_record_error`); the next reminders are still sent.
        """
        done: List[Processed] = []
        with self._clock():
            for _ in range(limit):
                if _stopped(stop):
                    break
                self._claimed = None
                try:
                    result = self.process_one()
                except Exception as error:
                    claimed = self._claimed
                    if claimed is None:  # the claim itself failed (the database): the next poll tries again
                        raise
                    logger.exception("reminder %s: processing failed", claimed)
                    failed = self._record_error(claimed, error)
                    if failed is not None:
                        done.append(failed)
                    continue
                if result is None:
                    break
                done.append(result)
        return done

    def daily(self, today: dt.date, *, stop: Optional[threading.Event] = None) -> DailyReport:
        """The day's jobs: promises judged, broken ones followed up and escalated, monthly notices, retention.

        Promises are judged kept or broken, broken ones followed up, repeat breakers escalated, monthly notices
        scheduled, and personal data older than the retention policy deleted (:mod:`bot.privacy.retention`).

        Each job runs in its own transaction, so one failing does not stop the others; all are idempotent.
        """
        report = DailyReport(today)

        def evaluate(session: Session) -> None:
            from bot.owners import payments

            report.promises_changed = len(payments.evaluate_promises(session, today=today))
            cancel_settled(session)

        def followups(session: Session) -> None:
            report.followups = len(schedule.schedule_broken_followups(session))

        def escalate(session: Session) -> None:
            report.escalations = len(ladder.escalate_repeat_breakers(session))

        def monthly(session: Session) -> None:
            report.monthly = len(schedule.schedule_monthly(session, today=today))

        def retention(session: Session) -> None:
            from bot.privacy import retention as privacy_retention

            report.retention = privacy_retention.apply(session, policy=privacy_retention.RetentionPolicy.from_settings())

        with self._clock():
            for job in (evaluate, followups, escalate, monthly, retention):
                if _stopped(stop):
                    break
                try:
                    self._in_session(job)
                except Exception as error:
                    logger.exception("reminder worker: daily job %s failed", job.__name__)
                    report.errors.append(f"{job.__name__}: {type(error).__name__}")
        logger.info("reminder worker: daily run for %s: %s", today, report)
        return report

    # --- one reminder ---------------------------------------------------------------------------------

    def process_one(self) -> Optional[Processed]:
        """Claim the most overdue reminder, judge it, deliver it, store the outcome. None when none is due."""
        with self._clock(), Session(get_engine(self.database_url), future=True, expire_on_commit=False) as session:
            hold = session.get_bind().dialect.name == "postgresql"
            row = self._claim(session, hold=hold)
            if row is None:
                session.rollback()
                return None
            self._claimed = int(row.id)
            retarget(session, row)
            if hold:
                # Two workers deciding for one owner at once would both see room under the weekly cap: the
                # decision and its outcome (sent, or ``sending`` committed) are serialised per owner.
                session.execute(select(func.pg_advisory_xact_lock(OWNER_LOCK, int(row.owner_id))))
            decision = policy.decide(session, row, policy=self.policy, holiday=self.holiday)
            if decision.verdict is Verdict.SKIP and decision.reason == "unverified" and row.promise_id is not None:
                # A promise's reminder nobody can receive in writing is a collector's call, not silence.
                outcome = delivery.undeliverable_call(session, row, "unverified")
                return self._store(session, row, outcome)
            if decision.verdict is not Verdict.SEND:
                result = _apply(row, decision)
                session.commit()
                return result
            outcome = delivery.deliver(session, row, wechat=self.wechat, template=self.template)
            return self._store(session, row, outcome)

    def _store(self, session: Session, row: Reminder, outcome: delivery.Outcome) -> Processed:
        """Write a delivery outcome on the claimed row and commit."""
        row.state = outcome.state
        row.reason = outcome.reason
        row.delivered_via = outcome.via
        row.outbox_id = outcome.outbox_id
        row.locked_at = None
        row.updated_at = clock.utc_now()
        if outcome.state is ReminderState.SENT:
            row.sent_at = clock.utc_now()
        session.commit()
        return Processed(int(row.id), outcome.state, outcome.reason, outcome.via)

    def _claim(self, session: Session, *, hold: bool) -> Optional[Reminder]:
        now = clock.utc_now()
        due = and_(
            Reminder.state.in_(PENDING_STATES),
            Reminder.due_at <= now,
            or_(Reminder.locked_at.is_(None), Reminder.locked_at < now - LEASE),
        )
        query = select(Reminder).where(due).order_by(Reminder.due_at, Reminder.id).limit(1)
        if hold:
            query = query.with_for_update(skip_locked=True)
        row = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
        if row is None:
            return None
        row.attempts = int(row.attempts or 0) + 1
        row.locked_by = self.name
        session.flush()
        return row

    def _record_error(self, reminder_id: int, error: BaseException) -> Optional[Processed]:
        """Count a failed attempt (its transaction was rolled back) and move the row back, or give it up.

        Only a row still pending is touched: one already ``sending`` (handed to the outbox) is left to
        :func:`settle_handed_over`. After :data:`MAX_ATTEMPTS` the row is ``failed`` with a call task.
        """
        reason = f"error:{type(error).__name__}"[:64]
        with Session(get_engine(self.database_url), future=True, expire_on_commit=False) as session:
            row = session.get(Reminder, reminder_id, populate_existing=True)
            if row is None or ReminderState(row.state) not in PENDING_STATES:
                session.rollback()
                return None
            row.attempts = int(row.attempts or 0) + 1
            row.locked_by = self.name
            row.locked_at = None
            row.reason = reason
            row.updated_at = clock.utc_now()
            if row.attempts >= MAX_ATTEMPTS:
                task = delivery.undeliverable_call(session, row, reason)
                row.state = ReminderState.FAILED
                row.delivered_via = task.via
                session.commit()
                return Processed(reminder_id, ReminderState.FAILED, reason, task.via)
            row.due_at = (clock.utc_now() + RETRY_BACKOFF * row.attempts).astimezone(dt.timezone.utc)
            session.commit()
            return Processed(reminder_id, ReminderState(row.state), reason)

    # --- helpers --------------------------------------------------------------------------------------

    def _in_session(self, job: Callable[[Session], object]) -> None:
        with Session(get_engine(self.database_url), future=True, expire_on_commit=False) as session:
            try:
                job(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def _clock(self) -> Iterator[None]:
        """Run a step at the injected clock's time (frozen once per outermost step), or the real clock."""
        if self.now is None or self._frozen:
            yield
            return
        self._frozen = True
        try:
            with clock.frozen(self.now()):
                yield
        finally:
            self._frozen = False


def _stopped(stop: Optional[threading.Event]) -> bool:
    return stop is not None and stop.is_set()


def retarget(session: Session, row: Reminder) -> None:
    """Point a due reminder at where the owner can be reached now, not where they were when it was written.

    A WeChat conversation of the owner's (an open link) whose 48-hour window is open comes first (the row's own if it is
    one), then the row's conversation if still verified for the owner, then the newest verified one
    (:func:`bot.reminders.schedule.target`); none: the row keeps no target and the policy judges it
    ``unverified``.
    """
    from bot.conversations import handoff

    openids = session.execute(
        select(ConversationLink.sender_id)
        .where(
            ConversationLink.owner_id == row.owner_id,
            ConversationLink.channel == "wechat",
            ConversationLink.closed_at.is_(None),
        )
        .order_by(ConversationLink.verified_at.desc(), ConversationLink.id.desc())
    ).scalars().all()
    open_ids = [str(openid) for openid in openids if handoff.wechat_window_open(session, openid=str(openid))]
    if open_ids:
        sender: Optional[str] = row.sender_id if row.channel == "wechat" and row.sender_id in open_ids else open_ids[0]
        channel: Optional[str] = "wechat"
    else:
        sender, channel = schedule.target(
            session, owner_id=int(row.owner_id), prefer_sender=row.sender_id, prefer_channel=row.channel
        )
    if (row.sender_id, row.channel) != (sender, channel):
        logger.info(
            "reminder %s: now to %s %s (was %s %s)", row.id, channel, handle_of(sender) if sender else None,
            row.channel, handle_of(row.sender_id) if row.sender_id else None,
        )  # fmt: skip
        row.sender_id, row.channel = sender, channel


def _apply(row: Reminder, decision: policy.Decision) -> Processed:
    """Store a verdict other than send: moved (with the new time), cancelled or skipped."""
    if decision.verdict is Verdict.MOVE:
        assert decision.due_at is not None
        row.state = ReminderState.MOVED
        row.due_at = decision.due_at.astimezone(dt.timezone.utc)
    elif decision.verdict is Verdict.CANCEL:
        row.state = ReminderState.CANCELLED
        row.cancelled_by = schedule.SYSTEM
    else:
        row.state = ReminderState.SKIPPED
    row.reason = decision.reason
    row.locked_at = None
    row.updated_at = clock.utc_now()
    return Processed(int(row.id), ReminderState(row.state), decision.reason)


def schedule_missing(session: Session) -> int:
    """Reminders for open promises that have none yet (a promise recorded while scheduling failed). How many."""
    scheduled = select(Reminder.promise_id).where(Reminder.promise_id.is_not(None))
    promises = session.execute(
        select(PaymentPromise).where(
            PaymentPromise.status == PromiseStatus.OPEN,
            PaymentPromise.due_date >= clock.today(),
            PaymentPromise.id.not_in(scheduled.scalar_subquery()),
        )
    ).scalars().all()
    return sum(len(schedule.schedule_for_promise(session, promise=promise)) for promise in promises)


def settle_handed_over(session: Session) -> List[int]:
    """``sending`` reminders whose outbox row is finished: ``sent`` (and how), or a collector's call task.

    Returns:
        The ids of the reminders settled.
    """
    finished = (
        select(OutboxMessage.id)
        .where(OutboxMessage.state.in_((OutboxState.DELIVERED, OutboxState.FAILED)))
        .scalar_subquery()
    )
    query = (
        select(Reminder)
        .where(Reminder.state == ReminderState.SENDING, Reminder.outbox_id.in_(finished))
        .order_by(Reminder.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    done = []
    for row in session.execute(query.execution_options(populate_existing=True)).scalars().all():
        message = outbox.get(session, message_id=int(row.outbox_id))
        if message is None:
            continue
        if message.state is OutboxState.DELIVERED:
            row.state = ReminderState.SENT
            row.delivered_via = message.delivered_via
            row.sent_at = (message.delivered_at or clock.now()).astimezone(dt.timezone.utc)
        else:
            outcome = delivery.undeliverable_call(session, row, (message.failure or "failed")[:64])
            row.state = outcome.state
            row.reason = outcome.reason
            row.delivered_via = None
            logger.warning("reminder %s: its outbox row failed (%s); call task %s", row.id, row.reason, outcome.call_task_id)
        row.updated_at = clock.utc_now()
        done.append(int(row.id))
    session.flush()
    return done


def recover_unconfirmed(session: Session) -> List[int]:
    """``sending`` rows without an outbox row, left by an earlier worker that died during its WeChat call.

    Such a row may or may not have reached the owner; after :data:`LEASE` a collector checks (reason
    ``send_unconfirmed``), rather than the owner getting the notice twice.

    Returns:
        The ids of the reminders handed to the call list.
    """
    query = select(Reminder).where(
        Reminder.state == ReminderState.SENDING,
        Reminder.outbox_id.is_(None),
        or_(Reminder.locked_at.is_(None), Reminder.locked_at < clock.utc_now() - LEASE),
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    done = []
    for row in session.execute(query.execution_options(populate_existing=True)).scalars().all():
        task = delivery.unconfirmed_call(session, row)
        row.state = ReminderState.CALL_TASK
        row.reason = task.reason
        row.locked_at = None
        row.updated_at = clock.utc_now()
        logger.warning("reminder %s: send not confirmed (worker gone); call task %s", row.id, task.id)
        done.append(int(row.id))
    session.flush()
    return done


def cancel_settled(session: Session) -> int:
    """Cancel the pending reminders of promises now kept (so staff see it before they fall due)."""
    kept = select(PaymentPromise.id).where(PaymentPromise.status == PromiseStatus.KEPT)
    result = session.execute(
        update(Reminder)
        .where(Reminder.state.in_(PENDING_STATES), Reminder.promise_id.in_(kept.scalar_subquery()))
        .values(state=ReminderState.CANCELLED, reason="promise_kept", cancelled_by=schedule.SYSTEM, updated_at=clock.utc_now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
