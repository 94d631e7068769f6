"""Texts for owners that the coercion guard refused, and the audit rows supervisors read them from.

Every path that sends or stores text for owners asks the guard (:func:`bot.compliance.findings`) through
:func:`refusal_of`: a staff reply in a takeover, an instalment decision's notice, a playbook edit, a reminder.
A refused text is never sent, queued or stored as wording; the person is shown the category (its label from
the guard's own data, ``data/compliance/categories.yml``) and the guard's one sentence of reason, and an audit
row records what was refused for the supervisors' QA view (质检):

* ``staff_reply_refused`` (:func:`record_staff_reply_refused`) — a staff reply to an owner; target the
  conversation's handle, details ``category``, ``reason``, ``text`` (the refused staff text, for QA; never
  the owner's words) and ``handle``.
* ``outgoing_refused`` (:func:`record_outgoing_refused`) — any other text for owners; details ``category``,
  ``reason`` and ``source`` (``instalment_decision``, ``playbook_edit``, ``reminder``, ``wecom_coach``, ``console_coach``).

At the moment of sending, every way out to owners passes :func:`checked_outgoing` (or :func:`checked_message`
for a message with buttons): a text the guard refuses there is replaced by ``channels.blocked_reply``.

Nothing here imports a web framework; the caller owns the session (the row commits with it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, TypeVar

from sqlalchemy.orm import Session

from bot import compliance, wording
from bot.db import audit
from bot.db.staff_models import AuditEntry

STAFF_REPLY_REFUSED = "staff_reply_refused"
OUTGOING_REFUSED = "outgoing_refused"

# The ``source`` of an ``outgoing_refused`` row: which path refused the text.
INSTALMENT_DECISION = "instalment_decision"
PLAYBOOK_EDIT = "playbook_edit"
REMINDER = "reminder"
WECOM_COACH = "wecom_coach"
CONSOLE_COACH = "console_coach"

Answer = TypeVar("Answer")

# Who an audit row names when no person acted (the reminder worker, the WeCom coach's answer).
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Refusal:
    """Why the guard refused a text: its first finding.

    Attributes:
        category: One of :data:`bot.compliance.CATEGORIES`.
        reason: The guard's one Chinese sentence for staff, with the law where one applies.
        law: The law it rests on (empty when none applies).
        phrase: The words found, normalised (Simplified, half-width, no spaces).
    """

    category: str
    reason: str
    law: str
    phrase: str

    @property
    def label(self) -> str:
        """The category's short Chinese name for staff screens (the guard's data, its one home)."""
        return compliance.categories()[self.category].label

    def details(self) -> Dict[str, Any]:
        """The category and reason, as an audit row's details and the API's refusal carry them."""
        return {"category": self.category, "reason": self.reason}


def refusal_of(text: str) -> Optional[Refusal]:
    """The guard's first finding in ``text`` as a :class:`Refusal`, or None when it may be sent.

    Args:
        text: A text for owners, as typed (the guard normalises it).
    """
    found = compliance.findings(text)
    if not found:
        return None
    first = found[0]
    return Refusal(first.category, first.reason, first.law, first.phrase)


def record_staff_reply_refused(
    session: Session, *, staff: str, handle: str, refusal: Refusal, text: str
) -> AuditEntry:
    """Audit a staff reply the guard refused (nothing was sent or queued).

    Args:
        session: The caller's unit of work.
        staff: Who typed it.
        handle: The conversation's handle (never the raw sender id).
        refusal: Why it was refused.
        text: The refused staff text, for the supervisors' QA view.
    """
    return audit.record(
        session,
        actor=staff,
        action=STAFF_REPLY_REFUSED,
        target=handle,
        detail={**refusal.details(), "text": text, "handle": handle},
    )


def record_outgoing_refused(
    session: Session, *, actor: str, refusal: Refusal, source: str, target: Optional[str] = None
) -> AuditEntry:
    """Audit another text for owners the guard refused (not sent, not stored as wording).

    Args:
        session: The caller's unit of work.
        actor: Who wrote or sent it (:data:`SYSTEM_ACTOR` for the reminder worker and the coach).
        refusal: Why it was refused.
        source: Which path: :data:`INSTALMENT_DECISION`, :data:`PLAYBOOK_EDIT`, :data:`REMINDER`,
            :data:`WECOM_COACH`.
        target: What it was about (an instalment number, ``playbook:<intent>``, ``reminder:<id>``).
    """
    return audit.record(
        session,
        actor=actor,
        action=OUTGOING_REFUSED,
        target=target,
        detail={**refusal.details(), "source": source},
    )


def guarded_coach_answer(answer: Answer) -> Tuple[Answer, List[Refusal]]:
    """A coach answer (:class:`bot.coach.coach.CoachAnswer`) without the owner-facing lines the guard refuses.

    The coach talks to collectors, so its don'ts may name forbidden tactics; but what it suggests saying to
    the owner — each card's ``script`` lines and ``ask``, and an unclear note's ``ask`` — must pass like any
    text for owners. A refused line is dropped (a refused question left empty).

    Returns:
        The answer with the refused lines dropped, and why each was refused (empty: the answer as it was).
    """
    refusals: List[Refusal] = []

    def passes(line: str) -> bool:
        refusal = refusal_of(line)
        if refusal is not None:
            refusals.append(refusal)
        return refusal is None

    cards = []
    for card in getattr(answer, "cards", ()):
        script = tuple(line for line in card.script if passes(line))
        ask = card.ask if not card.ask or passes(card.ask) else ""
        cards.append(dataclasses.replace(card, script=script, ask=ask))
    ask = getattr(answer, "ask", "")
    kept_ask = ask if not ask or passes(ask) else ""
    if not refusals:
        return answer, []
    return dataclasses.replace(answer, cards=tuple(cards), ask=kept_ask), refusals  # type: ignore[type-var]


def checked_outgoing(text: str, *, source: str) -> str:
    """``text`` if it may reach an owner, otherwise the safe replacement sentence.

    Args:
        text: A text about to be sent through a channel.
        source: Where it comes from, for the log (e.g. ``"rest"``, ``"wechat"``).

    Returns:
        ``text`` or ``channels.blocked_reply`` from ``data/wording.yml``.
    """
    if compliance.check_outgoing(text, source=source):
        return text
    return wording.text("channels.blocked_reply")


def checked_message(message: Mapping[str, Any], *, source: str) -> Dict[str, Any]:
    """A bot message (Rasa's dict) with its ``text`` and button titles checked by :func:`checked_outgoing`.

    Buttons are ``buttons`` in collected output and ``quick_replies`` on socket.io.
    """
    checked = dict(message)
    if isinstance(checked.get("text"), str):
        checked["text"] = checked_outgoing(checked["text"], source=source)
    for key in ("buttons", "quick_replies"):
        buttons = checked.get(key)
        if isinstance(buttons, list):
            checked[key] = [
                {**button, "title": checked_outgoing(str(button.get("title", "")), source=source)}
                if isinstance(button, Mapping) and button.get("title") is not None
                else button
                for button in buttons
            ]
    return checked
