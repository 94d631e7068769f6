"""Delivering a reminder where the owner is — through the outbox, like every message to an owner.

The worker never calls a channel itself: a reminder that can go out in writing becomes a row of the durable
outbox (:mod:`bot.conversations.outbox`), sent by the deliverer every Rasa process runs
(:mod:`bot.conversations.delivery`), and the reminder reads the row's outcome back
(:func:`bot.reminders.worker.settle_handed_over`).

* WeChat: a customer-service message while the 48-hour window is open (from the owner's last inbound
  message); outside it the configured template message (``WECHAT_REMINDER_TEMPLATE_ID``, fields mapped by
  ``WECHAT_REMINDER_TEMPLATE_FIELDS``), which the row carries; without a template, a collector's call task.
  The deliverer checks the window again when it sends.
* Web chat: the row is shown live when the owner's browser is connected and otherwise on the next visit.
* Anything else, and anything WeChat refuses: a call task on the collectors' list.

The notice never carries an amount (``reminders.*`` in ``data/wording.yml``): a phone screen or a shared
account may be read by someone else; the amount is told in the chat after identity. Every text (and every
template field) passes the coercion guard (:func:`bot.services.refused_texts.refusal_of`) before anything
goes out: a refused reminder is held (``failed``, reason ``blocked_by_compliance``), nothing is sent or
queued, a collector's call task replaces it, and an ``outgoing_refused`` audit row names the category and the
guard's reason (:func:`held_for_guard`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional

from sqlalchemy.orm import Session

from bot import wording
from bot.conversations import handoff, outbox
from bot.conversations.outbox import TemplateMessage
from bot.db.models import OutboxKind, PaymentPromise, Unit
from bot.db.reminder_models import CallTask, Reminder, ReminderPurpose, ReminderState
from bot.reminders import calls
from bot.services import refused_texts
from bot.services.promises import format_date

WECHAT = "wechat"
WEBCHAT = "socketio"
BLOCKED_BY_GUARD = "blocked_by_compliance"  # the reason a reminder the guard refused is held with


class Route(str, enum.Enum):
    """How a reminder goes out."""

    WECHAT_CUSTOM = "wechat_custom"
    WECHAT_TEMPLATE = "wechat_template"
    WEBCHAT_OUTBOX = "webchat_outbox"
    CALL_TASK = "call_task"


@dataclass(frozen=True)
class Outcome:
    """What happened: the state to store, how it went out (or why not)."""

    state: ReminderState
    via: Optional[str] = None
    reason: Optional[str] = None
    outbox_id: Optional[int] = None
    call_task_id: Optional[int] = None


def wechat_configured() -> bool:
    """Whether WeChat's AppID and AppSecret are set (the deliverers can send on WeChat)."""
    from bot.settings import get_settings

    settings = get_settings()
    return bool(settings.wechat_app_id and settings.wechat_app_secret)


@dataclass(frozen=True)
class Template:
    """The WeChat template for reminders outside the window: its id and field → value-name mapping."""

    template_id: Optional[str] = None
    fields: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls) -> Template:
        """``WECHAT_REMINDER_TEMPLATE_ID`` and ``WECHAT_REMINDER_TEMPLATE_FIELDS``."""
        from bot.settings import get_settings

        settings = get_settings()
        template_id = (settings.wechat_reminder_template_id or "").strip() or None
        return cls(template_id, dict(settings.wechat_reminder_template_fields))


def compose(session: Session, reminder: Reminder) -> str:
    """The notice for ``reminder``: its purpose's wording, the promised date where there is one, no amount."""
    purpose = ReminderPurpose(reminder.purpose)
    ignore = wording.text("reminders.ignore")
    if purpose is ReminderPurpose.MONTHLY_BILL:
        return wording.text("reminders.monthly_bill", ignore=ignore)
    promise = session.get(PaymentPromise, reminder.promise_id) if reminder.promise_id is not None else None
    date = format_date(promise.due_date) if promise is not None else ""
    return wording.text(f"reminders.{purpose.value}", date=date, ignore=ignore)


def template_values(session: Session, reminder: Reminder, text: str) -> Dict[str, str]:
    """The values a template field may name: ``text``, ``purpose`` (a title), ``unit``, ``date``, ``note``."""
    unit = session.get(Unit, reminder.unit_id)
    promise = session.get(PaymentPromise, reminder.promise_id) if reminder.promise_id is not None else None
    return {
        "text": text,
        "purpose": wording.text(f"reminders.title_{ReminderPurpose(reminder.purpose).value}"),
        "unit": "" if unit is None else str(unit.code),
        "date": "" if promise is None else format_date(promise.due_date),
        "note": wording.text("reminders.ignore"),
    }


def route(session: Session, reminder: Reminder, *, wechat: bool, template: Template) -> Route:
    """Which way the reminder goes now.

    Args:
        session: The caller's session.
        reminder: The reminder, pointed at the owner's conversation.
        wechat: Whether WeChat's API is configured.
        template: The reminder template.
    """
    if reminder.channel == WEBCHAT and reminder.sender_id:
        return Route.WEBCHAT_OUTBOX
    if reminder.channel == WECHAT and reminder.sender_id and wechat:
        if handoff.wechat_window_open(session, openid=str(reminder.sender_id)):
            return Route.WECHAT_CUSTOM
        if template.template_id:
            return Route.WECHAT_TEMPLATE
    return Route.CALL_TASK


def call_reason(reminder: Reminder, *, wechat: bool) -> str:
    """Why a reminder routed to the call list could not go out in writing."""
    if reminder.channel == WECHAT:
        if not wechat:
            return "wechat_not_configured"
        return "wechat_window_closed_no_template"
    return "no_push_channel"


def deliver(session: Session, reminder: Reminder, *, wechat: bool, template: Template) -> Outcome:
    """Hand ``reminder`` (already judged sendable by the policy) to the outbox, or to the call list.

    Everything is written in the caller's transaction, nothing is sent here: the outbox row goes out from a
    Rasa process's deliverer. A web chat reminder counts as ``sent`` once queued (the owner reads it live or
    on the next visit); a WeChat one is ``sending`` until the worker reads the row's outcome back
    (:func:`bot.reminders.worker.settle_handed_over`). A WeChat row carries the template message (when one is
    configured) for a window that is closed by the time it is sent. The guard judges the text and every
    template field first.
    """
    text = compose(session, reminder)
    way = route(session, reminder, wechat=wechat, template=template)
    if way is Route.CALL_TASK:
        held = held_for_guard(session, reminder, [text])
        return held if held is not None else _call(session, reminder, call_reason(reminder, wechat=wechat))
    message: Optional[TemplateMessage] = None
    texts = [text]
    if way is not Route.WEBCHAT_OUTBOX and template.template_id:
        data = template_data(template, template_values(session, reminder, text))
        message = TemplateMessage(template.template_id, data)
        texts.extend(data.values())
    held = held_for_guard(session, reminder, texts)
    if held is not None:
        return held
    channel = WEBCHAT if way is Route.WEBCHAT_OUTBOX else WECHAT
    entry = outbox.enqueue(
        session, sender_id=str(reminder.sender_id), channel=channel, kind=OutboxKind.TEXT, text=text, template=message
    )
    if way is Route.WEBCHAT_OUTBOX:
        return Outcome(ReminderState.SENT, Route.WEBCHAT_OUTBOX.value, outbox_id=entry.id)
    return Outcome(ReminderState.SENDING, outbox_id=entry.id)


def template_data(template: Template, values: Mapping[str, str]) -> Dict[str, str]:
    """The template message's fields: each configured field with the value it names."""
    return {name: values.get(source, "") for name, source in template.fields.items()}


def held_for_guard(session: Session, reminder: Reminder, texts: Iterable[str]) -> Optional[Outcome]:
    """Hold ``reminder`` when the coercion guard refuses any of ``texts``; None when all may be sent.

    A held reminder is not sent: it is ``failed`` with reason :data:`BLOCKED_BY_GUARD`, a collector's call
    task replaces it (the owner still needs to hear from us, in lawful words), and an ``outgoing_refused``
    audit row names the guard's category and reason (never the owner's data). Written in the caller's
    transaction.
    """
    for text in texts:
        refusal = refused_texts.refusal_of(text)
        if refusal is not None:
            refused_texts.record_outgoing_refused(
                session,
                actor=refused_texts.SYSTEM_ACTOR,
                refusal=refusal,
                source=refused_texts.REMINDER,
                target=f"reminder:{reminder.id}",
            )
            return _call(session, reminder, BLOCKED_BY_GUARD, ReminderState.FAILED)
    return None


def _call(session: Session, reminder: Reminder, reason: str, state: ReminderState = ReminderState.CALL_TASK) -> Outcome:
    task = calls.create(
        session,
        unit_id=int(reminder.unit_id),
        owner_id=int(reminder.owner_id),
        reason=reason,
        purpose=ReminderPurpose(reminder.purpose).value,
        reminder_id=int(reminder.id),
        promise_id=None if reminder.promise_id is None else int(reminder.promise_id),
    )
    return Outcome(state, Route.CALL_TASK.value, reason, call_task_id=int(task.id))


def undeliverable_call(session: Session, reminder: Reminder, reason: str) -> Outcome:
    """A collector's call task for a reminder that cannot go out in writing (``reason``: why)."""
    return _call(session, reminder, reason)


UNCONFIRMED = "send_unconfirmed"


def unconfirmed_call(session: Session, reminder: Reminder) -> CallTask:
    """A call task for a reminder whose WeChat send was attempted but never confirmed (a person checks)."""
    return calls.create(
        session,
        unit_id=int(reminder.unit_id),
        owner_id=int(reminder.owner_id),
        reason=UNCONFIRMED,
        purpose=ReminderPurpose(reminder.purpose).value,
        reminder_id=int(reminder.id),
        promise_id=None if reminder.promise_id is None else int(reminder.promise_id),
    )




