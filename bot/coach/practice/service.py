"""Practice sessions in the database: start, answer, finish, a collector's list and everyone's history.

Each function takes the caller's SQLAlchemy session (its unit of work) and keyword-only arguments. The owner
is rebuilt on every call from the session row (objection, temperament, seed, current resistance) and the
stored turns, so a web page can serve one answer per request; the seed makes the rebuilt owner the same one.
Times come from :mod:`bot.clock` (stored in UTC); relative dates in answers resolve against its today.
"""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot import clock
from bot.coach.practice import rubric as rubric_module
from bot.coach.practice.rubric import CRITERIA
from bot.coach.practice.simulator import Outcome, OwnerSimulator, OwnerState, OwnerTurn, choose
from bot.db.coach_models import PracticeSession, PracticeTurn
from bot.playbook import Playbook
from bot.services.playbook_edits import current_playbook

MAX_ANSWER_CHARS = 500
SEED_LIMIT = 2**31 - 1  # seeds fit the column's 32-bit integer
MAX_SESSION_ID = 2**31 - 1  # ids are the column's 32-bit integer: a larger one names no session
# Line breaks and tabs are how people write; every other control character (NUL above all, which
# PostgreSQL cannot store in text) is pasted noise.
_ALLOWED_CONTROLS = frozenset("\n\r\t")


class PracticeError(Exception):
    """A practice request that cannot be done."""


class SessionNotFound(PracticeError):
    """No such session, or it is another collector's."""


class SessionEnded(PracticeError):
    """The session is over: it takes no more answers."""


class BadAnswer(PracticeError):
    """An empty answer, one longer than :data:`MAX_ANSWER_CHARS`, or one with control characters.

    Attributes:
        reason: ``empty``, ``too_long`` or ``control`` (what the collector is told).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character other than a line break or a tab (NUL, escape, …)."""
    return any(unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS for char in text)


def without_control_characters(text: str) -> str:
    """``text`` without the control characters :func:`control_characters` refuses (to show it back safely)."""
    return "".join(char for char in text if unicodedata.category(char) != "Cc" or char in _ALLOWED_CONTROLS)


def _load(session: Session, session_id: int, *, lock: bool = False) -> Optional[PracticeSession]:
    if not 1 <= session_id <= MAX_SESSION_ID:
        # PostgreSQL refuses to compare an integer column with a number it cannot hold: no such session.
        return None
    query = (
        select(PracticeSession)
        .where(PracticeSession.id == session_id)
        .options(selectinload(PracticeSession.turns))
        # A row already in the session is read afresh, turns included (another request may have answered).
        .execution_options(populate_existing=True)
    )
    if lock:
        # Two answers to one session at once (a double submit) take turns; SQLite serialises writers anyway.
        query = query.with_for_update()
    row: Optional[PracticeSession] = session.execute(query).scalars().first()
    return row


def get(session: Session, *, session_id: int, collector: Optional[str] = None) -> PracticeSession:
    """A session with its turns.

    Args:
        session: The caller's unit of work.
        session_id: The session's id.
        collector: Only this collector's session (a collector's own view); ``None`` for anyone's
            (supervisors' view).

    Returns:
        The session.

    Raises:
        SessionNotFound: If there is none, or it belongs to another collector.
    """
    row = _load(session, session_id)
    if row is None or (collector is not None and row.collector != collector):
        raise SessionNotFound(session_id)
    return row


def start(
    session: Session,
    *,
    collector: str,
    objection: Optional[str] = None,
    temperament: Optional[str] = None,
    seed: Optional[int] = None,
    playbook: Optional[Playbook] = None,
) -> PracticeSession:
    """Open a session: the owner (given or drawn objection and temperament) says their opening line.

    Args:
        session: The caller's unit of work.
        collector: The staff username practising.
        objection: A playbook objection intent, or ``None`` to draw one.
        temperament: A temperament name, or ``None`` to draw one.
        seed: Seeds the draw and the owner's wording (default: a random one).
        playbook: The playbook (default: the current one, with the supervisors' edits).

    Returns:
        The new session (flushed: it has its id).

    Raises:
        ValueError: If an objection or temperament is unknown.
    """
    if seed is None:
        seed = secrets.randbelow(SEED_LIMIT)
    playbook = playbook or current_playbook(session)
    objection, temperament = choose(seed, objection=objection, temperament=temperament, playbook=playbook)
    line, state = OwnerSimulator(objection=objection, temperament=temperament, seed=seed).opening()
    row = PracticeSession(
        collector=collector,
        objection=objection,
        temperament=temperament,
        seed=seed,
        opening=line,
        resistance=state.resistance,
        started_at=clock.utc_now(),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Answered:
    """One answer handled: the stored turn, the owner's turn and, when it ended the session, the session."""

    turn: PracticeTurn
    owner: OwnerTurn
    score: rubric_module.AnswerScore
    ended: bool = False


def answer(
    session: Session, *, session_id: int, collector: str, text: str, playbook: Optional[Playbook] = None
) -> Answered:
    """Score the collector's answer, let the owner react, store the turn; end the session if the owner did.

    Args:
        session: The caller's unit of work.
        session_id: The session.
        collector: Who answers (only the session's own collector may).
        text: The answer.
        playbook: The playbook (default: the current one, with the supervisors' edits: an edited offer is
            the one the feedback suggests).

    Returns:
        The stored turn with the owner's reaction and the score.

    Raises:
        SessionNotFound: If there is no such session of this collector.
        SessionEnded: If the session is over.
        BadAnswer: If the answer is empty, too long or holds a control character.
    """
    text = text.strip()
    if not text:
        raise BadAnswer("empty")
    if len(text) > MAX_ANSWER_CHARS:
        raise BadAnswer("too_long")
    if control_characters(text):
        raise BadAnswer("control")
    row = _load(session, session_id, lock=True)
    if row is None or row.collector != collector:
        raise SessionNotFound(session_id)
    if row.ended_at is not None:
        raise SessionEnded(session_id)
    entry = (playbook or current_playbook(session)).get(str(row.objection))
    if entry is None:
        raise SessionNotFound(session_id)
    today = clock.today()
    score = rubric_module.score_answer(text, entry=entry, today=today)
    simulator = OwnerSimulator(objection=str(row.objection), temperament=str(row.temperament), seed=int(row.seed))
    turns = list(row.turns)
    state = OwnerState(
        resistance=int(row.resistance),
        turn=len(turns),
        said=(str(row.opening), *(str(t.owner_reply) for t in turns)),
        heard=tuple(str(t.collector_text) for t in turns),
    )
    owner = simulator.react(state, answer=text, score=score, today=today)
    turn = PracticeTurn(
        number=len(turns) + 1,
        collector_text=text,
        owner_reply=owner.reply,
        reaction=owner.reaction.value,
        criteria=score.as_json(),
        score=score.score,
        feedback=list(score.feedback),
        created_at=clock.utc_now(),
    )
    row.turns.append(turn)
    row.resistance = owner.state.resistance
    session.flush()
    if owner.outcome is not None:
        row.agreed_on = owner.agreed_on
        _close(session, row, owner.outcome, agreed_text=owner.agreed_text)
    return Answered(turn=turn, owner=owner, score=score, ended=owner.outcome is not None)


def finish(session: Session, *, session_id: int, collector: str) -> PracticeSession:
    """End the session now (``stopped``) if it still runs, and return it with its summary.

    Raises:
        SessionNotFound: If there is no such session of this collector.
    """
    row = _load(session, session_id, lock=True)
    if row is None or row.collector != collector:
        raise SessionNotFound(session_id)
    if row.ended_at is None:
        _close(session, row, Outcome.STOPPED)
    return row


def _close(session: Session, row: PracticeSession, outcome: Outcome, *, agreed_text: Optional[str] = None) -> None:
    scores = [
        rubric_module.stored_score(t.criteria or {}, score=int(t.score), feedback=t.feedback or ()) for t in row.turns
    ]
    summary = rubric_module.summarise(scores, outcome=outcome.value, agreed_text=agreed_text)
    row.ended_at = clock.utc_now()
    row.outcome = outcome.value
    row.score = summary.score
    row.summary = {**summary.as_json(), "agreed": agreed_text}
    session.flush()


def sessions_for(session: Session, *, collector: str, limit: int = 50) -> List[PracticeSession]:
    """A collector's sessions, newest first."""
    query = (
        select(PracticeSession)
        .where(PracticeSession.collector == collector)
        .order_by(PracticeSession.started_at.desc(), PracticeSession.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


@dataclass(frozen=True)
class ScorePoint:
    """One finished session on a collector's time line."""

    session_id: int
    ended_at: dt.datetime
    objection: str
    temperament: str
    outcome: str
    score: int
    criteria: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    forbidden: int = 0


@dataclass(frozen=True)
class CollectorHistory:
    """A collector's finished sessions over time.

    Attributes:
        collector: The staff username.
        points: Finished sessions, oldest first.
        running: Sessions started and not finished.
    """

    collector: str
    points: List[ScorePoint] = field(default_factory=list)
    running: int = 0

    @property
    def average(self) -> Optional[float]:
        """The mean score, or ``None`` with no finished session."""
        return round(sum(p.score for p in self.points) / len(self.points), 1) if self.points else None

    @property
    def latest(self) -> Optional[int]:
        """The last finished session's score."""
        return self.points[-1].score if self.points else None

    @property
    def trend(self) -> Optional[float]:
        """The later half's mean minus the earlier half's (positive: improving); ``None`` under two sessions."""
        if len(self.points) < 2:
            return None
        half = len(self.points) // 2
        earlier = [p.score for p in self.points[:half]]
        later = [p.score for p in self.points[half:]]
        return round(sum(later) / len(later) - sum(earlier) / len(earlier), 1)

    @property
    def hit_rates(self) -> Dict[str, Optional[int]]:
        """Per criterion, the percentage of all answers that met it (``None`` with no answers): what to coach."""
        rates: Dict[str, Optional[int]] = {}
        for name in CRITERIA:
            hits = sum(p.criteria.get(name, {}).get("hits", 0) for p in self.points)
            turns = sum(p.criteria.get(name, {}).get("turns", 0) for p in self.points)
            rates[name] = round(100 * hits / turns) if turns else None
        return rates

    @property
    def forbidden(self) -> int:
        """How many answers used a forbidden tactic, over all finished sessions."""
        return sum(p.forbidden for p in self.points)


def history(session: Session, *, since: Optional[dt.datetime] = None) -> List[CollectorHistory]:
    """Every collector's practice over time (supervisors' view), by username.

    Args:
        session: The caller's unit of work.
        since: Only sessions started at or after this moment, when given.

    Returns:
        One entry per collector who practised.
    """
    query = select(PracticeSession).order_by(PracticeSession.started_at, PracticeSession.id)
    if since is not None:
        query = query.where(PracticeSession.started_at >= since)
    points: dict[str, List[ScorePoint]] = {}
    running: dict[str, int] = {}
    for row in session.execute(query).scalars():
        name = str(row.collector)
        points.setdefault(name, [])
        if row.ended_at is None or row.score is None:
            running[name] = running.get(name, 0) + 1
            continue
        points[name].append(
            ScorePoint(
                session_id=int(row.id),
                ended_at=_aware(row.ended_at),
                objection=str(row.objection),
                temperament=str(row.temperament),
                outcome=str(row.outcome),
                score=int(row.score),
                criteria=dict((row.summary or {}).get("criteria") or {}),
                forbidden=sum(int(n) for n in ((row.summary or {}).get("forbidden") or {}).values()),
            )
        )
    for name in points:
        points[name].sort(key=lambda p: (p.ended_at, p.session_id))
    return [CollectorHistory(collector=name, points=points[name], running=running.get(name, 0)) for name in sorted(points)]


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives stored UTC times back naive."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
