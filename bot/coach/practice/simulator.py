"""The owner practice mode plays (话术演练): an objection, a temperament, and a mood that answers to the collector.

The owner's lines are data (``data/coach/practice/owners.yml``): per objection its openings and the lines
that press the point again, per temperament tone variants (a prefix and a suffix per mood), per reaction
state its lines. A line is a prefix, a core and a suffix, each chosen with a :class:`random.Random` seeded
by the session's seed and the turn number, so a session is reproducible from its seed alone (tests, and a
web page that rebuilds the owner on every request) while two sessions, or two turns, rarely say the same
thing; a core the owner already said is not chosen again while others are left.

The owner's resistance (0 calm … the temperament's ``walk_at``, where they walk away) starts at the
temperament's level. Each answer is first
scored by :mod:`bot.coach.practice.rubric`; what it met lowers the resistance (acknowledging the feeling,
the basis, concrete help, a date; scaled by what this kind of owner responds to), being ignored, off the
point, repeated, threatened, shamed or told another owner's debt raises it. The owner agrees on a day once
the resistance is low enough *and* the collector asked for one, walks away at the top, and ends the talk
after the last turn.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import functools
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from bot.coach.practice.rubric import ACKNOWLEDGE, BASIS, CRITERIA, OFFER, AnswerScore, compact
from bot.playbook import Playbook, default_playbook
from bot.text import dates

LINES_FILE = Path(__file__).resolve().parents[3] / "data" / "coach" / "practice" / "owners.yml"
CALM_BELOW = 50  # a resistance under this speaks in the temperament's calm tone, else its tense one


class Reaction(str, enum.Enum):
    """How the owner took the last answer (also the key of its lines in owners.yml, except the opening)."""

    OPENING = "opening"
    SOFTENED = "softened"
    LISTENING = "listening"
    WAITING = "waiting"
    PRESSING = "pressing"
    THREATENED = "threatened"
    SHAMED = "shamed"
    DISCLOSED = "disclosed"
    BARGAINED = "bargained"
    IGNORED = "ignored"
    REPEATED = "repeated"
    AGREED = "agreed"
    WALKED_AWAY = "walked_away"
    TIMED_OUT = "timed_out"


class Outcome(str, enum.Enum):
    """How a practice session ended (``practice_sessions.outcome``)."""

    AGREED = "agreed"  # the owner named a day
    WALKED_AWAY = "walked_away"  # pushed too far
    TIMED_OUT = "timed_out"  # the last turn passed without a day
    STOPPED = "stopped"  # the collector finished the session early


_ENDINGS = {Reaction.AGREED: Outcome.AGREED, Reaction.WALKED_AWAY: Outcome.WALKED_AWAY, Reaction.TIMED_OUT: Outcome.TIMED_OUT}
# Which reaction a forbidden tactic (a guard category, bot.compliance.CATEGORIES) draws; the first found in
# this order wins: a threat of a consequence (utilities, access, services, credit, harassment), shaming,
# telling a third party, a discount.
_TACTIC_REACTIONS = (
    ("utilities", Reaction.THREATENED),
    ("access", Reaction.THREATENED),
    ("services", Reaction.THREATENED),
    ("credit", Reaction.THREATENED),
    ("harassment", Reaction.THREATENED),
    ("shaming", Reaction.SHAMED),
    ("third_party", Reaction.DISCLOSED),
    ("discount", Reaction.BARGAINED),
)


_UNACKNOWLEDGED = "unacknowledged"  # an answer that helped or explained without acknowledging the feeling


class LinesError(ValueError):
    """The owner lines file is missing a temperament field, an objection's lines or a reaction."""


@dataclass(frozen=True)
class Temperament:
    """A kind of owner: where they start, what moves them, how they sound."""

    name: str
    label: str
    description: str
    start: int
    soften: float
    harden: float
    agree_at: int
    walk_at: int
    tone: Mapping[str, Tuple[str, ...]]
    suffix: Mapping[str, Tuple[str, ...]]
    likes: Mapping[str, float]


@dataclass(frozen=True)
class OwnerLines:
    """Everything the simulated owner can say, and how answers move them."""

    temperaments: Mapping[str, Temperament]
    openings: Mapping[str, Tuple[str, ...]]
    press: Mapping[str, Tuple[str, ...]]
    reactions: Mapping[str, Tuple[str, ...]]
    agree_dates: Tuple[str, ...]
    effects: Mapping[str, Any]
    max_turns: int

    @classmethod
    def load(cls, path: Path = LINES_FILE) -> OwnerLines:
        """Read and check the owner lines file.

        Raises:
            LinesError: If a field, an objection's lines or a reaction's lines are missing.
        """
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            likes = data.get("likes") or {}
            temperaments = {
                str(name): Temperament(
                    name=str(name),
                    label=str(item["label"]),
                    description=str(item["description"]),
                    start=int(item["start"]),
                    soften=float(item["soften"]),
                    harden=float(item["harden"]),
                    agree_at=int(item["agree_at"]),
                    walk_at=int(item["walk_at"]),
                    tone={mood: tuple(item["tone"][mood]) for mood in ("calm", "tense")},
                    suffix={mood: tuple(item["suffix"][mood]) for mood in ("calm", "tense")},
                    likes={str(k): float(v) for k, v in (likes.get(name) or {}).items()},
                )
                for name, item in data["temperaments"].items()
            }
            objections = data["objections"]
            reactions = {str(name): tuple(str(line) for line in lines) for name, lines in data["reactions"].items()}
            lines = cls(
                temperaments=temperaments,
                openings={str(k): tuple(v["openings"]) for k, v in objections.items()},
                press={str(k): tuple(v["press"]) for k, v in objections.items()},
                reactions=reactions,
                agree_dates=tuple(str(d) for d in data["agree_dates"]),
                effects=dict(data["effects"]),
                max_turns=int(data["max_turns"]),
            )
        except (KeyError, TypeError) as error:
            raise LinesError(f"{path.name}: missing or malformed {error}") from error
        missing = [r.value for r in Reaction if r not in (Reaction.OPENING, Reaction.PRESSING) and not reactions.get(r.value)]
        if missing:
            raise LinesError(f"{path.name}: no lines for reactions {missing}")
        return lines


@functools.lru_cache(maxsize=1)
def default_lines() -> OwnerLines:
    """The project's owner lines, loaded once per process."""
    return OwnerLines.load()


def objection_intents(playbook: Optional[Playbook] = None, lines: Optional[OwnerLines] = None) -> List[str]:
    """The objections the owner can raise: the playbook's objection entries that have lines, sorted."""
    playbook = playbook or default_playbook()
    lines = lines or default_lines()
    return sorted(entry.intent for entry in playbook if entry.kind == "objection" and entry.intent in lines.openings)


def choose(
    seed: int,
    *,
    objection: Optional[str] = None,
    temperament: Optional[str] = None,
    playbook: Optional[Playbook] = None,
    lines: Optional[OwnerLines] = None,
) -> Tuple[str, str]:
    """The objection and temperament of a session: the ones given, else drawn with ``seed``.

    Raises:
        ValueError: If a given objection or temperament is unknown.
    """
    lines = lines or default_lines()
    intents = objection_intents(playbook, lines)
    draw = random.Random(f"{seed}:choose")
    objection = objection or draw.choice(intents)
    temperament = temperament or draw.choice(sorted(lines.temperaments))
    if objection not in intents:
        raise ValueError(f"unknown objection {objection!r}")
    if temperament not in lines.temperaments:
        raise ValueError(f"unknown temperament {temperament!r}")
    return objection, temperament


@dataclass(frozen=True)
class OwnerState:
    """Where the owner stands after ``turn`` answers.

    Attributes:
        resistance: 0 (ready to agree) … the temperament's ``walk_at`` (walks away).
        turn: Answers heard so far.
        said: Everything the owner has said, in order (the opening first).
        heard: Every answer the collector gave, in order.
    """

    resistance: int
    turn: int = 0
    said: Tuple[str, ...] = ()
    heard: Tuple[str, ...] = ()


@dataclass(frozen=True)
class OwnerTurn:
    """The owner's answer to one collector answer.

    Attributes:
        reply: What the owner says.
        reaction: How they took it.
        state: Where they stand now.
        change: How much the resistance moved (negative: softer).
        outcome: How the session ended, when this answer ended it.
        agreed_text: The day the owner agreed to, as said (下周五), when they agreed.
        agreed_on: That day as a date, when it resolves to one.
    """

    reply: str
    reaction: Reaction
    state: OwnerState
    change: int
    outcome: Optional[Outcome] = None
    agreed_text: Optional[str] = None
    agreed_on: Optional[dt.date] = None


class OwnerSimulator:
    """One simulated owner: an objection, a temperament and a seed.

    Args:
        objection: A playbook objection intent with lines.
        temperament: A temperament name from the lines file.
        seed: Seeds every choice; the same seed and answers give the same owner.
        lines: The owner lines (default: the project's).

    Raises:
        ValueError: If the objection or temperament has no lines.
    """

    def __init__(self, *, objection: str, temperament: str, seed: int, lines: Optional[OwnerLines] = None) -> None:
        self.lines = lines or default_lines()
        if objection not in self.lines.openings:
            raise ValueError(f"no owner lines for objection {objection!r}")
        if temperament not in self.lines.temperaments:
            raise ValueError(f"unknown temperament {temperament!r}")
        self.objection = objection
        self.temperament = self.lines.temperaments[temperament]
        self.seed = seed

    def _random(self, turn: int) -> random.Random:
        return random.Random(f"{self.seed}:{self.objection}:{self.temperament.name}:{turn}")

    def _pick(self, draw: random.Random, candidates: Sequence[str], said: Sequence[str]) -> str:
        fresh = [line for line in candidates if not any(line and line in earlier for earlier in said)]
        return draw.choice(fresh or list(candidates))

    def _compose(self, draw: random.Random, core: str, resistance: int, *, calm: bool = False, prefix: bool = True) -> str:
        mood = "calm" if calm or resistance < CALM_BELOW else "tense"
        prefix_text = draw.choice(self.temperament.tone[mood]) if prefix else ""
        suffix = draw.choice(self.temperament.suffix[mood])
        return f"{prefix_text}{core}{suffix}"

    def opening(self) -> Tuple[str, OwnerState]:
        """The owner's first line and starting state."""
        draw = self._random(0)
        core = self._pick(draw, self.lines.openings[self.objection], ())
        line = self._compose(draw, core, self.temperament.start)
        return line, OwnerState(resistance=self.temperament.start, said=(line,))

    def _change(self, answer: str, score: AnswerScore, state: OwnerState) -> Tuple[int, List[str]]:
        """How far the answer moves the resistance, and what the owner noticed (ignored, repeated …)."""
        effects = self.lines.effects
        temperament = self.temperament
        softer = 0.0
        for name in CRITERIA:
            if score.criteria.get(name):
                softer += -float(effects[name]) * temperament.likes.get(name, 1.0)
        harder = 0.0
        noticed: List[str] = []
        said = compact(answer)
        if not any(score.criteria.get(name) for name in (ACKNOWLEDGE, BASIS, OFFER)):
            noticed.append(Reaction.IGNORED.value)
            harder += float(effects["ignored"])
            if not any(word in said for word in effects["on_topic"]):
                harder += float(effects["off_topic"])
        elif not score.criteria.get(ACKNOWLEDGE):
            # Explained and helped, but the feeling went unheard: it still rankles a little.
            noticed.append(_UNACKNOWLEDGED)
            harder += float(effects["unacknowledged"])
        threshold = float(effects["repeat_similarity"])
        if any(difflib.SequenceMatcher(None, said, compact(earlier)).ratio() >= threshold for earlier in state.heard):
            noticed.append(Reaction.REPEATED.value)
            harder += float(effects["repeated"])
            softer /= 2  # the same words again do not move anyone as much
        for tactic in score.forbidden:
            harder += float(effects["forbidden"].get(tactic, effects["forbidden"]["other"]))
        change = round(harder * temperament.harden - softer * temperament.soften)
        return change, noticed

    def react(self, state: OwnerState, *, answer: str, score: AnswerScore, today: dt.date) -> OwnerTurn:
        """The owner's answer to the collector's ``answer`` (already scored as ``score``).

        Args:
            state: Where the owner stood before the answer.
            answer: What the collector said.
            score: The rubric's score of ``answer``.
            today: The day a date the owner names resolves against.

        Returns:
            The reply, the reaction, the new state and, when the talk is over, the outcome.
        """
        turn = state.turn + 1
        draw = self._random(turn)
        change, noticed = self._change(answer, score, state)
        resistance = max(0, state.resistance + change)
        temperament = self.temperament
        reaction = self._reaction(score, noticed, change, resistance, turn)
        agreed_text: Optional[str] = None
        agreed_on: Optional[dt.date] = None
        framed = True
        reactions = self.lines.reactions
        if reaction is Reaction.AGREED:
            agreed_text = score.date_text or draw.choice(self.lines.agree_dates)
            found = [item for item in dates.find_times(compact(agreed_text), today) if item.date]
            agreed_on = score.date if score.date_text else (found[0].date if found else None)
            core = self._pick(draw, reactions[reaction.value], state.said).format(date=agreed_text)
        elif reaction is Reaction.PRESSING:
            core = self._pick(draw, self.lines.press[self.objection], state.said)
        elif reaction is Reaction.LISTENING and draw.random() < 0.5:
            core = self._pick(draw, reactions[reaction.value], state.said) + self._pick(
                draw, self.lines.press[self.objection], state.said
            )
            framed = False  # already two sentences: no tone prefix in front of "I heard you"
        else:
            core = self._pick(draw, reactions[reaction.value], state.said)
        if reaction in (Reaction.AGREED, Reaction.WALKED_AWAY):
            reply = core  # an ending speaks for itself, without the temperament's framing
        else:
            # Giving ground is said in the calm tone even by an owner still far from agreeing.
            reply = self._compose(
                draw, core, resistance, calm=reaction in (Reaction.SOFTENED, Reaction.WAITING), prefix=framed
            )
        new_state = replace(
            state,
            resistance=min(resistance, temperament.walk_at),
            turn=turn,
            said=state.said + (reply,),
            heard=state.heard + (answer,),
        )
        return OwnerTurn(
            reply=reply,
            reaction=reaction,
            state=new_state,
            change=change,
            outcome=_ENDINGS.get(reaction),
            agreed_text=agreed_text,
            agreed_on=agreed_on,
        )

    def _reaction(self, score: AnswerScore, noticed: Sequence[str], change: int, resistance: int, turn: int) -> Reaction:
        temperament = self.temperament
        if resistance >= temperament.walk_at:
            return Reaction.WALKED_AWAY
        if resistance <= temperament.agree_at and score.criteria.get("date") and not score.forbidden:
            return Reaction.AGREED
        if turn >= self.lines.max_turns:
            return Reaction.TIMED_OUT
        for tactic, reaction in _TACTIC_REACTIONS:
            if tactic in score.forbidden:
                return reaction
        if Reaction.REPEATED.value in noticed:
            return Reaction.REPEATED
        if Reaction.IGNORED.value in noticed:
            return Reaction.IGNORED
        if resistance <= temperament.agree_at:
            return Reaction.WAITING
        if change <= -15:
            return Reaction.SOFTENED
        if change < 0:
            return Reaction.LISTENING
        if _UNACKNOWLEDGED in noticed:
            return Reaction.IGNORED  # nothing gained and the feeling unheard: "you're not listening"
        return Reaction.PRESSING


def temperament_labels(lines: Optional[OwnerLines] = None) -> Dict[str, str]:
    """Temperament name → Chinese label, in file order."""
    lines = lines or default_lines()
    return {name: temperament.label for name, temperament in lines.temperaments.items()}
