"""Delivering a reminder where the owner is.

* WeChat: a customer-service message while the 48-hour window is open (from the owner's last inbound
  message); outside it the configured template message (``WECHAT_REMINDER_TEMPLATE_ID``, fields mapped by
  ``WECHAT_REMINDER_TEMPLATE_FIELDS``); without a template, a collector's call task.
* Web chat: a row in the durable outbox (:mod:`bot.conversations.outbox`), shown live when the owner's
  browser is connected and otherwise on the next visit.
* Anything else, and anything WeChat refuses: a call task on the collectors' list.

The notice never carries an amount (``reminders.*`` in ``data/wording.yml``): a phone screen or a shared
account may be read by someone else; the amount is told in the chat after identity. Every text (and every
template field) passes the coercion guard (:func:`bot.services.refused_texts.refusal_of`) before anything
goes out: a refused reminder is held (``failed``, reason ``blocked_by_compliance``), nothing is sent or
queued, a collector's call task replaces it, and an ``outgoing_refused`` audit row names the category and the
guard's reason (:func:`held_for_guard`).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Protocol

from sqlalchemy.orm import Session

from bot import wording
from bot.conversations import handoff, outbox
from bot.db.models import OutboxKind, PaymentPromise, Unit
from bot.db.reminder_models import CallTask, Reminder, ReminderPurpose, ReminderState
from bot.reminders import calls
from bot.services import refused_texts
from bot.services.promises import format_date

WECHAT = "wechat"
WEBCHAT = "socketio"
WINDOW_CLOSED = 45015  # WeChat: the user has not written in the last 48 hours
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


class WeChatSender(Protocol):
    """The WeChat calls a reminder needs (synchronous: the worker is)."""

    def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message."""

    def send_template(self, openid: str, template_id: str, data: Dict[str, str]) -> int:
        """A template message; WeChat's msgid."""


class WeChatAPISender:
    """:class:`WeChatSender` over :class:`bot.wechat.api.WeChatAPI` (one event loop per call)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def send_text(self, openid: str, text: str) -> None:
        """Send through the customer-service API."""
        asyncio.run(self.api.send_text(openid, text))

    def send_template(self, openid: str, template_id: str, data: Dict[str, str]) -> int:
        """Send through the template API."""
        return int(asyncio.run(self.api.send_template(openid, template_id, data)))


def wechat_sender_from_settings() -> Optional[WeChatSender]:
    """The configured WeChat API (AppID and AppSecret), or None."""
    from bot.wechat.api import client_from_settings

    api = client_from_settings()
    return WeChatAPISender(api) if api is not None else None


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


def route(session: Session, reminder: Reminder, *, wechat: Optional[WeChatSender], template: Template) -> Route:
    """Which way the reminder goes now (before any network call)."""
    if reminder.channel == WEBCHAT and reminder.sender_id:
        return Route.WEBCHAT_OUTBOX
    if reminder.channel == WECHAT and reminder.sender_id and wechat is not None:
        if handoff.wechat_window_open(session, openid=str(reminder.sender_id)):
            return Route.WECHAT_CUSTOM
        if template.template_id:
            return Route.WECHAT_TEMPLATE
    return Route.CALL_TASK


def call_reason(reminder: Reminder, *, wechat: Optional[WeChatSender], template: Template) -> str:
    """Why a reminder routed to the call list could not go out in writing."""
    if reminder.channel == WECHAT:
        if wechat is None:
            return "wechat_not_configured"
        return "wechat_window_closed_no_template"
    return "no_push_channel"


def deliver(
    session: Session,
    reminder: Reminder,
    *,
    wechat: Optional[WeChatSender],
    template: Template,
    chosen: Optional[Route] = None,
    text: Optional[str] = None,
    values: Optional[Dict[str, str]] = None,
) -> Outcome:
    """Send ``reminder`` (already judged sendable by the policy) and say what to store.

    Web chat rows and call tasks are written in the caller's transaction; WeChat calls go over the network
    (a refusal becomes a call task with WeChat's error code as the reason). ``text`` and ``values``
    (:func:`compose`, :func:`template_values`), read beforehand, let the caller make the WeChat call without
    the session reading anything first (on SQLite a read would take the write lock for the call's length).
    """
    text = compose(session, reminder) if text is None else text
    held = held_for_guard(session, reminder, [text])
    if held is not None:
        return held
    way = chosen or route(session, reminder, wechat=wechat, template=template)
    if way is Route.WEBCHAT_OUTBOX:
        entry = outbox.enqueue(
            session, sender_id=str(reminder.sender_id), channel=WEBCHAT, kind=OutboxKind.TEXT, text=text
        )
        return Outcome(ReminderState.SENT, Route.WEBCHAT_OUTBOX.value, outbox_id=entry.id)
    if way is Route.WECHAT_CUSTOM and wechat is not None:
        from bot.wechat.api import WeChatAPIError

        try:
            wechat.send_text(str(reminder.sender_id), text)
            return Outcome(ReminderState.SENT, Route.WECHAT_CUSTOM.value)
        except WeChatAPIError as error:
            if error.errcode != WINDOW_CLOSED or not template.template_id:
                return _call(session, reminder, f"wechat_error_{error.errcode}")
            way = Route.WECHAT_TEMPLATE  # the window closed between our check and the send
    if way is Route.WECHAT_TEMPLATE and wechat is not None and template.template_id:
        from bot.wechat.api import WeChatAPIError

        values = template_values(session, reminder, text) if values is None else values
        data = template_data(template, values)
        held = held_for_guard(session, reminder, data.values())
        if held is not None:
            return held
        try:
            wechat.send_template(str(reminder.sender_id), template.template_id, data)
            return Outcome(ReminderState.SENT, Route.WECHAT_TEMPLATE.value)
        except WeChatAPIError as error:
            return _call(session, reminder, f"wechat_template_error_{error.errcode}")
    return _call(session, reminder, call_reason(reminder, wechat=wechat, template=template))


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


def is_network(way: Route) -> bool:
    """Whether a route calls WeChat (the worker keeps no SQLite write lock across such a call)."""
    return way in (Route.WECHAT_CUSTOM, Route.WECHAT_TEMPLATE)


