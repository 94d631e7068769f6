"""The NLU inbox: owners' messages the model was unsure of, a person's decision on each, and their export.

A message lands in the inbox when the NLU fell back on it or its top intent's confidence was under the
inbox threshold (read from Rasa's ``events`` table, which Rasa's SQL tracker store writes in the same
database). A supervisor decides: the right intent (a correction) or "leave it" (dismissed). Only decided
corrections are exported, as a Rasa training-data file for review and retraining; nothing reaches the
training data without a person's decision. Exported texts have their digits replaced (rooms, phone tails and
amounts keep their shape, not their values), because training data is shared more widely than the database.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models
from bot.rasa import events as rasa_events
from bot.text.anonymise import anonymise

FALLBACK_INTENT = "nlu_fallback"
DEFAULT_THRESHOLD = 0.5
HELD_NOTE_KEY = "held_note"  # bot.channels.inbound.HELD_NOTE_KEY (no channel imports in services)



class InboxError(ValueError):
    """A decision that cannot be taken (unknown message or intent)."""


@dataclass(frozen=True)
class InboxItem:
    """One message the model was unsure of."""

    event_id: int
    sender_id: str
    text: str
    predicted_intent: str
    confidence: float
    fell_back: bool
    received_at: dt.datetime


def _parse(row: rasa_events.StoredEvent) -> Optional[InboxItem]:
    data = row.data
    text = (data.get("text") or "").strip()
    if not text or text.startswith("/"):
        return None  # button payloads are not owner wording
    metadata = data.get("metadata")
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    if isinstance(metadata, dict) and HELD_NOTE_KEY in metadata and not intent.get("name"):
        # A channel's refusal kept for staff (bot.channels.takeover), never parsed: nothing to learn. Only
        # the server writes the key (bot.channels.inbound drops it from clients); a message the NLU did parse
        # is an owner's words whatever its metadata says, so it is never hidden.
        return None
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    top = ranking[0] if ranking else intent
    return InboxItem(
        event_id=int(row.id),
        sender_id=str(row.sender_id),
        text=text,
        predicted_intent=str(top.get("name") or ""),
        confidence=float(top.get("confidence") or 0.0),
        fell_back=intent.get("name") == FALLBACK_INTENT,
        received_at=dt.datetime.fromtimestamp(float(row.timestamp or 0), clock.zone()),
    )


def inbox(
    session: Session, *, threshold: float = DEFAULT_THRESHOLD, limit: int = 100, sender_id: Optional[str] = None
) -> List[InboxItem]:
    """Undecided owner messages that fell back or scored under ``threshold``, newest first."""
    decided = sa.select(models.NluCorrection.event_id)
    rows = rasa_events.user_messages_newest_first(session, excluding=decided, sender_id=sender_id)
    items: List[InboxItem] = []
    for row in rows:
        item = _parse(row)
        if item is not None and (item.fell_back or item.confidence < threshold):
            items.append(item)
            if len(items) >= limit:
                break
    return items


def _item(session: Session, event_id: int) -> InboxItem:
    row = rasa_events.event_by_id(session, event_id=event_id, type_name="user")
    item = None if row is None else _parse(row)
    if item is None:
        raise InboxError(f"no owner message {event_id}")
    return item


def decide(
    session: Session,
    *,
    event_id: int,
    staff: str,
    intent: Optional[str],
    known_intents: Sequence[str],
) -> models.NluCorrection:
    """Record a person's decision: ``intent`` is the right intent, or None to dismiss the message.

    Deciding again replaces the earlier decision, unless it was already exported.
    """
    if intent is not None and intent not in known_intents:
        raise InboxError(f"unknown intent {intent!r}")
    item = _item(session, event_id)
    correction = session.execute(
        sa.select(models.NluCorrection).where(models.NluCorrection.event_id == event_id)
    ).scalar_one_or_none()
    if correction is not None and correction.exported_at is not None:
        raise InboxError(f"message {event_id} was already exported")
    if correction is None:
        correction = models.NluCorrection(event_id=event_id, sender_id=item.sender_id, text=item.text)
        session.add(correction)
    correction.predicted_intent = item.predicted_intent
    correction.confidence = item.confidence
    correction.decision = models.NluDecision.DISMISSED if intent is None else models.NluDecision.CORRECTED
    correction.intent = intent
    correction.decided_by = staff
    correction.decided_at = clock.now()
    session.flush()
    return correction


def owner_names(session: Session) -> List[str]:
    """Every owner name the estate has held, current and former: removed from exported text wherever it appears."""
    return [str(name) for name in session.execute(sa.select(models.Owner.name).distinct()).scalars() if name]


def _existing_examples(directory: Path) -> set:
    pattern = re.compile(r"\[([^\]]+)\]\(\w+\)")
    found = set()
    for path in directory.glob("*.yml"):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []) or []:
            for line in str(block.get("examples") or "").splitlines():
                if line.strip().startswith("- "):
                    found.add(pattern.sub(r"\1", line.strip()[2:].strip()))
    return found


def export(session: Session, *, path: Path, training_dir: Optional[Path] = None) -> int:
    """Write every corrected, not yet exported message to ``path`` (Rasa NLU YAML); return how many.

    Texts already in the training data (``training_dir``) are marked exported without being written again.
    """
    corrections = list(
        session.execute(
            sa.select(models.NluCorrection)
            .where(models.NluCorrection.decision == models.NluDecision.CORRECTED, models.NluCorrection.exported_at.is_(None))
            .order_by(models.NluCorrection.intent, models.NluCorrection.event_id)
        ).scalars()
    )
    existing = _existing_examples(training_dir) if training_dir is not None else set()
    by_intent: Dict[str, List[str]] = {}
    names = owner_names(session)
    for correction in corrections:
        text = anonymise(correction.text, known_names=names)
        if text not in existing and text not in by_intent.get(str(correction.intent), []):
            by_intent.setdefault(str(correction.intent), []).append(text)
    written = sum(len(texts) for texts in by_intent.values())
    if written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_nlu_yaml(by_intent.items()), encoding="utf-8")
    now = clock.now()
    for correction in corrections:
        correction.exported_at = now
    session.flush()
    return written


def _nlu_yaml(blocks: Iterable[Any]) -> str:
    lines = [
        "# Corrections decided by staff in the NLU inbox (`bot nlu export`). Review, then retrain.",
        'version: "3.1"',
        "nlu:",
    ]
    for intent, texts in blocks:
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {' '.join(text.split())}" for text in texts]
    return "\n".join(lines) + "\n"
