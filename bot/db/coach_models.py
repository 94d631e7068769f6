"""The collector coach's practice sessions (话术演练) and their scored turns.

A session is one collector rehearsing with one simulated owner (an objection, a temperament and the seed
that makes the owner's wording reproducible); each answer is a turn with the rubric's per-criterion result.
The owner's current resistance is kept on the session, so a page can rebuild the owner on every request.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

from bot.db.models import Base
from bot.db.staff_models import USERNAME_LENGTH


class PracticeSession(Base):
    """One practice session of one collector (``collector`` is a staff username).

    ``outcome`` is empty while the session runs, then ``agreed``, ``walked_away``, ``timed_out`` or
    ``stopped``; ``score`` (0–100) and ``summary`` (per-criterion hits, tactics, feedback) are set when it ends.
    """

    __tablename__ = "practice_sessions"
    __table_args__ = (Index("ix_practice_sessions_collector_started", "collector", "started_at"),)

    id = Column(Integer, primary_key=True)
    collector = Column(String(USERNAME_LENGTH), nullable=False)
    objection = Column(String(64), nullable=False)
    temperament = Column(String(32), nullable=False)
    seed = Column(Integer, nullable=False)
    opening = Column(Text, nullable=False)
    resistance = Column(Integer, nullable=False)
    started_at = Column(DateTime(timezone=True), nullable=False)
    ended_at = Column(DateTime(timezone=True), nullable=True)
    outcome = Column(String(16), nullable=True)
    agreed_on = Column(Date, nullable=True)
    score = Column(Integer, nullable=True)
    summary = Column(JSON, nullable=True)

    turns = relationship("PracticeTurn", back_populates="session", order_by="PracticeTurn.number")


class PracticeTurn(Base):
    """One collector answer in a session, the owner's reply, and what the rubric made of the answer."""

    __tablename__ = "practice_turns"
    __table_args__ = (UniqueConstraint("session_id", "number", name="uq_practice_turns_session_number"),)

    id = Column(Integer, primary_key=True)
    session_id = Column(Integer, ForeignKey("practice_sessions.id", ondelete="CASCADE"), nullable=False)
    number = Column(Integer, nullable=False)
    collector_text = Column(Text, nullable=False)
    owner_reply = Column(Text, nullable=False)
    reaction = Column(String(16), nullable=False)
    criteria = Column(JSON, nullable=False)
    score = Column(Integer, nullable=False)
    feedback = Column(JSON, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)

    session = relationship("PracticeSession", back_populates="turns")
