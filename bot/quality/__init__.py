"""Conversation QA (质检) for supervisors and managers: what went wrong, or nearly did, on chosen days.

:func:`scan` reads what is already stored — the audit log, the outbox, Rasa's events, the records, the
reminders and WeChat's delivery rows — and lists :class:`Finding` s of five kinds (:data:`KINDS`):

* ``staff_refused`` — a staff reply or another text for owners the coercion guard refused (audit rows
  ``staff_reply_refused`` and ``outgoing_refused``);
* ``staff_flagged`` — a staff reply that was queued or sent although the guard (:func:`bot.compliance.findings`)
  finds a forbidden tactic in it now;
* ``owner_threat`` — an owner threatening to go to 12345, the media, court or an authority (the NLU's
  ``threaten_escalation`` or the wording itself);
* ``unanswered`` — a repair order or complaint not answered by the close of the first working day it reached
  staff (``config/service.yml``'s staff hours);
* ``promise_unconfirmed`` — a payment promise whose confirmation never reached the owner.

Nothing is stored: the page computes the findings for the days asked (see :mod:`bot.quality.scan`).
"""

from bot.quality.scan import (
    CATEGORIES_BY_KIND,
    KINDS,
    MAX_DAYS,
    OWNER_THREAT,
    PROMISE_UNCONFIRMED,
    STAFF_FLAGGED,
    STAFF_REFUSED,
    UNANSWERED,
    Finding,
    counts_per_day,
    response_deadline,
    scan,
    threat_categories,
)

__all__ = [
    "CATEGORIES_BY_KIND",
    "Finding",
    "KINDS",
    "MAX_DAYS",
    "OWNER_THREAT",
    "PROMISE_UNCONFIRMED",
    "STAFF_FLAGGED",
    "STAFF_REFUSED",
    "UNANSWERED",
    "counts_per_day",
    "response_deadline",
    "scan",
    "threat_categories",
]
