"""The contact policy, checked when a reminder falls due (not only when it was scheduled).

In order: nothing to a former owner (cancelled, ``owner_retired``: the import's roster or a transfer retired
them, :mod:`bot.owners.ownership`), nothing once the owner has paid (cancelled), nothing to an owner who
opted out (a unit's opt-out by a former owner binds nobody after them) or to a
conversation that is not verified for the owner (skipped; the worker turns an unverified promise reminder
into a call task); a conversation a staff member holds
(:func:`bot.conversations.handoff.is_held`) is not interrupted: the reminder moves ``HELD_RETRY`` on and is
judged again then, as long as the person holds it (reason ``held``); then the timing rules — quiet hours 21:00–08:00
in the estate's zone, public holidays when ``REMINDERS_SKIP_HOLIDAYS`` is set, at most
``REMINDERS_MAX_PER_WEEK`` proactive messages per owner in any 7 days — which move the reminder to the
first moment allowed, never drop it. The holidays are the State Council's schedule of each year
(:mod:`bot.reminders.holidays`: ``chinesecalendar`` or a schedule loaded as data); a day of a year with no
schedule is never guessed to be a working day: the reminder is held (reason ``holiday_schedule_missing``,
judged again every ``SCHEDULE_RETRY``) and the reminders screen tells staff which year to load.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import ConversationLink, Owner, PaymentPromise, PromiseStatus
from bot.db.reminder_models import Reminder, ReminderOptOut, ReminderPurpose, ReminderState
from bot.owners import arrears
from bot.owners.ownership import CURRENT, RETIRED_REASON
from bot.reminders import holidays
from bot.services.identity import TRUSTED_LINK_CHANNELS

logger = logging.getLogger(__name__)
# Whether a day is a public holiday: True, False, or None for a day of a year with no schedule.
HolidayLookup = Callable[[dt.date], Optional[bool]]

QUIET_STARTS = dt.time(21, 0)
QUIET_ENDS = dt.time(8, 0)
WEEK = dt.timedelta(days=7)
# A held conversation is asked again this much later (a takeover usually ends within the hour).
HELD_RETRY = dt.timedelta(hours=1)
# Holidays further than this ahead are not searched (no run of public holidays is this long).
MAX_HOLIDAY_RUN = 15
# A reminder held for a missing holiday schedule is judged again this much later (a loaded year frees it).
SCHEDULE_RETRY = dt.timedelta(hours=1)


class UnknownHolidays(LookupError):
    """No holiday schedule is known for ``year`` (neither ``chinesecalendar`` nor a loaded one)."""

    def __init__(self, year: int) -> None:
        super().__init__(f"no public holiday schedule for {year}")
        self.year = year


class Verdict(str, enum.Enum):
    """What to do with a due reminder."""

    SEND = "send"
    MOVE = "move"
    CANCEL = "cancel"
    SKIP = "skip"


@dataclass(frozen=True)
class Decision:
    """The policy's answer: the verdict, its reason code and, for a move, the new due time."""

    verdict: Verdict
    reason: Optional[str] = None
    due_at: Optional[dt.datetime] = None


@dataclass(frozen=True)
class Policy:
    """The configurable part of the policy."""

    max_per_week: int = 2
    skip_holidays: bool = False

    @classmethod
    def from_settings(cls) -> Policy:
        """The configured policy."""
        from bot.settings import get_settings

        settings = get_settings()
        return cls(max_per_week=settings.reminders_max_per_week, skip_holidays=settings.reminders_skip_holidays)


def is_public_holiday(day: dt.date) -> Optional[bool]:
    """Whether ``day`` is a statutory public holiday by ``chinesecalendar`` alone; None for a year it lacks.

    The policy reads :class:`bot.reminders.holidays.Calendar`, which also knows the schedules loaded as data.
    """
    return holidays.Calendar()(day)


def decide(
    session: Session,
    reminder: Reminder,
    *,
    policy: Optional[Policy] = None,
    holiday: Optional[HolidayLookup] = None,
) -> Decision:
    """Judge a due reminder now (:func:`bot.clock.now`).

    Args:
        session: The caller's session.
        reminder: The claimed reminder.
        policy: The limits (default: from settings).
        holiday: Whether a day is a public holiday (default: the loaded schedules, then ``chinesecalendar``).

    Returns:
        Send it, move it (with the new due time), cancel it or skip it, with a reason code (a move:
        ``held``, ``quiet_hours``, ``holiday``, ``holiday_schedule_missing`` or ``weekly_cap``).
    """
    policy = policy or Policy.from_settings()
    holiday = holiday or holidays.Calendar(session)
    now = clock.now()
    try:
        return _decide(session, reminder, policy=policy, holiday=holiday, now=now)
    except UnknownHolidays as missing:
        # Sending on a day that may be 春节 is not ours to guess: hold it, and the reminders screen says why.
        logger.warning("reminder %s held: %s (load it: bot holidays load)", reminder.id, missing)
        retry = earliest_allowed(now + SCHEDULE_RETRY, policy=Policy(policy.max_per_week, skip_holidays=False))
        return Decision(Verdict.MOVE, holidays.SCHEDULE_MISSING, retry)


def _decide(
    session: Session, reminder: Reminder, *, policy: Policy, holiday: HolidayLookup, now: dt.datetime
) -> Decision:
    owner = session.get(Owner, reminder.owner_id)
    if owner is not None and not owner.current:
        return Decision(Verdict.CANCEL, RETIRED_REASON)
    paid = paid_reason(session, reminder)
    if paid:
        return Decision(Verdict.CANCEL, paid)
    if opted_out(session, owner_id=int(reminder.owner_id), sender_id=reminder.sender_id):
        return Decision(Verdict.SKIP, "opted_out")
    if not verified(session, reminder):
        return Decision(Verdict.SKIP, "unverified")
    if held(session, reminder):
        return Decision(Verdict.MOVE, "held", earliest_allowed(now + HELD_RETRY, policy=policy, holiday=holiday))
    allowed = earliest_allowed(now, policy=policy, holiday=holiday)
    if allowed > now:
        reason = "quiet_hours" if _quiet(now) else "holiday"
        return Decision(Verdict.MOVE, reason, allowed)
    freed = week_frees_at(session, owner_id=int(reminder.owner_id), now=now, limit=policy.max_per_week)
    if freed is not None:
        return Decision(Verdict.MOVE, "weekly_cap", earliest_allowed(freed, policy=policy, holiday=holiday))
    return Decision(Verdict.SEND)


def paid_reason(session: Session, reminder: Reminder) -> Optional[str]:
    """Why the reminder is no longer needed because of a payment or the promise's fate, or None."""
    purpose = ReminderPurpose(reminder.purpose)
    if reminder.promise_id is not None:
        promise = session.get(PaymentPromise, reminder.promise_id)
        if promise is not None:
            status = PromiseStatus(promise.status)
            if status is PromiseStatus.KEPT:
                return "promise_kept"
            if purpose is not ReminderPurpose.BROKEN_FOLLOWUP and status is not PromiseStatus.OPEN:
                return f"promise_{status.value}"
            if purpose is ReminderPurpose.DAY_BEFORE and promise.due_date <= clock.today():
                return "promise_past"  # a "due tomorrow" that could not go out in time is not sent late
            if purpose is ReminderPurpose.DUE_MORNING and promise.due_date < clock.today():
                return "promise_past"
            paid = _paid_since(session, int(reminder.unit_id), promise.created_at)
            if paid is not None and paid >= Decimal(promise.amount):
                return "paid"
    owner = session.get(Owner, reminder.owner_id)
    if owner is None:
        return "owner_gone"
    if arrears.summary(session, owner_id=int(owner.id), today=clock.today()).amount <= 0:
        return "no_arrears"
    return None


def opted_out(session: Session, *, owner_id: int, sender_id: Optional[str]) -> bool:
    """Whether the owner's unit, the owner or the conversation asked not to be reminded.

    A unit's opt-out made by an owner since retired does not bind the owners after them.
    """
    owner = session.get(Owner, owner_id)
    conditions = [ReminderOptOut.owner_id == owner_id]
    if owner is not None:
        former = select(Owner.id).where(~CURRENT)
        conditions.append(
            and_(
                ReminderOptOut.unit_id == owner.unit_id,
                or_(ReminderOptOut.owner_id.is_(None), ReminderOptOut.owner_id.not_in(former.scalar_subquery())),
            )
        )
    if sender_id:
        conditions.append(ReminderOptOut.sender_id == sender_id)
    found = session.execute(select(func.count()).select_from(ReminderOptOut).where(or_(*conditions))).scalar_one()
    return bool(found)


def verified(session: Session, reminder: Reminder) -> bool:
    """Whether the reminder's conversation is bound to its owner by an open link on a trusted channel."""
    if not reminder.sender_id or reminder.channel not in TRUSTED_LINK_CHANNELS:
        return False
    link = session.execute(
        select(ConversationLink.owner_id).where(
            ConversationLink.channel == reminder.channel,
            ConversationLink.sender_id == reminder.sender_id,
            ConversationLink.closed_at.is_(None),
        )
    ).scalar_one_or_none()
    return link is not None and int(link) == int(reminder.owner_id)


def held(session: Session, reminder: Reminder) -> bool:
    """Whether a staff member holds the reminder's conversation (a proactive bot message would talk over them)."""
    from bot.conversations import handoff

    return bool(reminder.sender_id) and handoff.is_held(session, sender_id=str(reminder.sender_id)) is not None


def earliest_allowed(
    moment: dt.datetime, *, policy: Policy, holiday: Optional[HolidayLookup] = None
) -> dt.datetime:
    """The first moment at or after ``moment`` outside quiet hours (and public holidays, if configured).

    Raises:
        UnknownHolidays: If holidays are skipped and a day to judge falls in a year with no schedule
            (``holiday`` answers None; default lookup: ``chinesecalendar`` only).
    """
    local = moment.astimezone(clock.zone())
    if local.time() >= QUIET_STARTS:
        local = _at(local.date() + dt.timedelta(days=1), QUIET_ENDS)
    elif local.time() < QUIET_ENDS:
        local = _at(local.date(), QUIET_ENDS)
    if policy.skip_holidays:
        lookup = holiday or holidays.Calendar()
        for _ in range(MAX_HOLIDAY_RUN):
            on_holiday = lookup(local.date())
            if on_holiday is None:
                raise UnknownHolidays(local.date().year)
            if not on_holiday:
                break
            local = _at(local.date() + dt.timedelta(days=1), QUIET_ENDS)
    return local


def week_frees_at(session: Session, *, owner_id: int, now: dt.datetime, limit: int) -> Optional[dt.datetime]:
    """None if the owner may get one more proactive message now, else when the rolling week allows one."""
    if limit <= 0:
        return now + WEEK
    # A ``sending`` row (WeChat call recorded, outcome not yet stored) counts as sent at its attempt: the
    # worker holding it has used a place (with the per-owner lock in the worker, two cannot both take one).
    moment = func.coalesce(Reminder.sent_at, Reminder.locked_at, Reminder.updated_at)
    sent = sorted(
        clock_aware(value)
        for value in session.execute(
            select(moment).where(
                Reminder.owner_id == owner_id,
                or_(
                    and_(Reminder.state == ReminderState.SENT, Reminder.sent_at > (now - WEEK).astimezone(dt.timezone.utc)),
                    Reminder.state == ReminderState.SENDING,
                ),
            )
        ).scalars()
    )
    if len(sent) < limit:
        return None
    # The (len - limit + 1)-th oldest leaves the window first and frees a place.
    return sent[len(sent) - limit] + WEEK + dt.timedelta(seconds=1)


def clock_aware(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware time in the estate's zone (SQLite returns naive UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(clock.zone())


def _quiet(moment: dt.datetime) -> bool:
    local = moment.astimezone(clock.zone()).time()
    return local >= QUIET_STARTS or local < QUIET_ENDS


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=clock.zone())


def _paid_since(session: Session, unit_id: int, since: Optional[dt.datetime]) -> Optional[Decimal]:
    """What the unit paid since the promise was made (the payments service), None before payments exist."""
    if since is None:
        return None
    from bot.owners import payments

    # Records are written with the estate's wall time (bot.services.owner_requests), which SQLite keeps naive.
    start = since.replace(tzinfo=clock.zone()) if since.tzinfo is None else since
    return payments.paid_since(session, unit=unit_id, since=start)
