"""Versioned staff edits of the playbook's wording (the YAML stays the source for a fresh install).

Every save is a new row holding the whole entry as the schema reads it (``bot.playbook.parse_entry``), so the
latest row of an intent *is* that entry, an older row can be shown or restored as it was, and nothing is
ever updated in place: the history is the table.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Integer, String, Text, UniqueConstraint

from bot.db.models import Base
from bot.db.staff_models import USERNAME_LENGTH

INTENT_LENGTH = 64


class PlaybookEdit(Base):
    """One saved version of one playbook entry.

    ``version`` counts from 1 per intent (version 0 is the YAML entry, never stored); ``data`` holds only the
    edited fields, nested as in the YAML and laid over the YAML entry (see ``bot.services.playbook_edits``);
    ``edited_by`` is a staff username; ``reverted_from`` is set when the row was made by restoring an older
    version.
    """

    __tablename__ = "playbook_edits"
    __table_args__ = (UniqueConstraint("intent", "version", name="uq_playbook_edits_intent_version"),)

    id = Column(Integer, primary_key=True)
    intent = Column(String(INTENT_LENGTH), nullable=False)
    version = Column(Integer, nullable=False)
    data = Column(JSON, nullable=False)
    edited_by = Column(String(USERNAME_LENGTH), nullable=False)
    edited_at = Column(DateTime(timezone=True), nullable=False)
    note = Column(Text, nullable=True)
    reverted_from = Column(Integer, nullable=True)
