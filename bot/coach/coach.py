"""The coach's answer: what the owner means, what to say, on what grounds, what to do next, what never to do.

A :class:`Coach` is the bot's own trained NLU model (one per process, :mod:`bot.coach.model`) and a
:class:`~bot.playbook.Playbook`. :meth:`Coach.answer` reads a collector's note piece by piece
(:mod:`bot.coach.reading`) and merges the parses: every playbook intent the model is sure of in some piece
becomes one card (ranked by confidence, one per intent); other intents the model is sure of (a greeting, a
promise to pay) are named but make no card; when no piece is sure, the answer is *unclear*: the question to
ask the owner and the best guesses.

Some readings are the coach's own (``data/coach/coach.yml``): a piece saying the problem is over
("暖气已经修好了") makes no card; a breakdown told as a reason ("电梯成日坏", read by the model as a repair
report) is the poor-service objection; a promise to pay adds its next step (record the date, follow up on
the day); and an owner with old arrears (a looked-up unit) is the project manager's case, whatever the
objection, so every card's next step says so.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bot import wording
from bot.coach.data import CoachData, coach_data
from bot.coach.model import Parser, ParserFactory, load_parser
from bot.coach.reading import Piece, read_note
from bot.playbook import Entry, LegalBasis, Playbook, default_playbook
from bot.text.normalize import normalize

FALLBACK_INTENT = "nlu_fallback"


class AnswerStatus(str, enum.Enum):
    """What the coach found in a note."""

    OBJECTIONS = "objections"  # one objection card or more (request cards may stand beside them)
    SERVICE_REQUEST = "service_request"  # only repair or complaint requests: next step cards, no objection
    UNCLEAR = "unclear"  # the model is unsure: ask the owner, here are the guesses
    NO_OBJECTION = "no_objection"  # only intents that are no reason not to pay (greeting, promise …)
    EMPTY = "empty"  # nothing was typed


@dataclass(frozen=True)
class Guess:
    """An intent and how sure the model is of it; ``title`` is the playbook's when it has an entry."""

    intent: str
    confidence: float
    title: str


@dataclass(frozen=True)
class NextStep:
    """A next step the coach sets itself (a promise in the note, an owner's old arrears)."""

    kind: str
    label: str
    text: str


OBJECTION_CARD = "objection"
REQUEST_CARD = "service_request"


@dataclass(frozen=True)
class Card:
    """One objection, or one repair or complaint request, in the note, with the playbook's coaching for it.

    ``kind`` is :data:`OBJECTION_CARD` (the playbook entry of ``intent``) or :data:`REQUEST_CARD` (``intent``
    is report_repair or file_complaint: a next step, worded from the playbook entries named in ``source``,
    opened in the console at ``link``).
    """

    intent: str
    confidence: float
    title: str
    summary: str
    clause: str  # the part of the note it was read from, in the collector's own wording
    script: Tuple[str, ...]
    legal_basis: Tuple[LegalBasis, ...]
    next_step: str
    next_step_kind: str
    next_step_label: str
    donts: Tuple[str, ...]
    ask: str
    strategy: Tuple[str, ...]
    kind: str = OBJECTION_CARD
    source: Tuple[str, ...] = ()  # where the wording comes from: playbook entries, or entry.field references
    link: str = ""  # the staff console's page for the next step (request cards)


class WordingError(LookupError):
    """A request card's playbook reference (``entry.field.N``) names nothing in the playbook."""


@dataclass(frozen=True)
class _Reading:
    """One parsed piece: its top intent and how sure the model is."""

    piece: Piece
    intent: str
    confidence: float


@dataclass(frozen=True)
class CoachAnswer:
    """The coach's reading of one note."""

    text: str
    status: AnswerStatus
    message: str  # a line for the collector saying what was found ("" when there are cards)
    cards: Tuple[Card, ...] = ()
    guesses: Tuple[Guess, ...] = ()  # unclear only: the likeliest playbook intents
    ask: str = ""  # unclear only: the question to ask the owner
    recognised: Tuple[Guess, ...] = ()  # intents found that make no card
    next_steps: Tuple[NextStep, ...] = ()  # the coach's own steps besides the cards' (a promise: follow it up)
    pieces: Tuple[Tuple[str, str, float], ...] = field(default=(), compare=False)  # (piece, top intent, confidence)

    @property
    def types(self) -> Tuple[Guess, ...]:
        """The objection types, ranked: the cards, or for an unclear note the guesses."""
        if self.cards:
            return tuple(Guess(card.intent, card.confidence, card.title) for card in self.cards)
        return self.guesses


def _ranking(result: Dict[str, Any]) -> List[Tuple[str, float]]:
    ranking = [
        (str(item.get("name")), float(item.get("confidence") or 0.0))
        for item in result.get("intent_ranking") or []
        if item.get("name") and item.get("name") != FALLBACK_INTENT
    ]
    if not ranking:
        intent = result.get("intent") or {}
        if intent.get("name") and intent.get("name") != FALLBACK_INTENT:
            ranking = [(str(intent["name"]), float(intent.get("confidence") or 0.0))]
    return sorted(ranking, key=lambda pair: -pair[1])


class Coach:
    """The trained NLU model and the playbook, answering collectors' notes."""

    def __init__(self, parser: Parser, playbook: Playbook, *, data: Optional[CoachData] = None) -> None:
        """Coach with ``parser`` (the bot's model) and ``playbook`` (the default one or the staff's edits)."""
        self.parser = parser
        self.playbook = playbook
        self.data = data or coach_data()

    def with_playbook(self, playbook: Playbook) -> Coach:
        """The same model with another playbook (e.g. one with supervisors' edits); no model is loaded."""
        return Coach(self.parser, playbook, data=self.data)

    def answer(self, text: str, *, old_arrears: bool = False) -> CoachAnswer:
        """Read ``text`` (an owner's words as a collector typed them) and say what to do.

        Args:
            text: The note: third person or quoted, one sentence or several, Simplified, Traditional or
                Cantonese.
            old_arrears: The owner (looked up by unit) has old arrears: every card's next step is to hand
                the case to the project manager.

        Returns:
            Cards for each objection found (best first), or an unclear answer with the question to ask and
            the best guesses, or a no-objection answer naming what was found.
        """
        data = self.data
        note = text.strip()
        if not note:
            return CoachAnswer(text=text, status=AnswerStatus.EMPTY, message=data.messages["empty"])
        found: Dict[str, Tuple[float, Piece]] = {}  # playbook intent -> (best confidence, piece)
        requests: Dict[str, Tuple[float, Piece]] = {}  # report_repair / file_complaint -> (confidence, piece)
        others: Dict[str, float] = {}
        guesses: Dict[str, float] = {}
        order: Dict[str, int] = {}
        parsed: List[Tuple[str, str, float]] = []
        resolved = False
        readings: List[_Reading] = []
        pieces = read_note(note, data)
        request_kind = self._request_kind(note)
        several_sentences = any(piece.level == "sentence" for piece in pieces)
        for piece in pieces:
            if self._resolved(piece):
                resolved = True  # "已经修好了": the owner no longer objects to it
                continue
            ranking = _ranking(self.parser.parse(piece.text))
            if not ranking:
                continue
            top, confidence = ranking[0]
            parsed.append((piece.text, top, round(confidence, 4)))
            for intent, score in ranking:
                if intent in self.playbook:
                    guesses[intent] = max(guesses.get(intent, 0.0), score)
            reading = _Reading(piece, top, confidence)
            makes_card = top in self.playbook or top in data.service_requests.intents
            # A short clause lacks context, unless it is a breakdown in a sentence that refuses to pay
            # ("电梯老是坏，所以不给钱"): the refusal is the context.
            tied = self._request_like(reading, request_kind) and self._tied_to_not_paying(piece)
            short = piece.level == "clause" and makes_card and not tied
            if confidence < (data.clause_threshold if short else data.card_threshold):
                continue
            readings.append(reading)
        # Objections read from pieces that are no request: a breakdown beside them is one more reason.
        plain = {r.intent for r in readings if r.intent in self.playbook and not self._request_like(r, request_kind)}

        def keep(table: Dict[str, Tuple[float, Piece]], intent: str, reading: _Reading) -> None:
            if reading.confidence > table.get(intent, (-1.0, reading.piece))[0]:
                table[intent] = (reading.confidence, reading.piece)
            order.setdefault(intent, len(order))

        for reading in readings:
            if self._request_like(reading, request_kind):
                if reading.piece.level == "note" and several_sentences:
                    continue  # each sentence decides for itself whether it asks or refuses
                as_card = self._request_or_objection(reading, request_kind, bool(plain - {reading.intent}))
                if as_card in data.service_requests.intents:
                    keep(requests, as_card, reading)
                elif as_card in self.playbook:
                    keep(found, as_card, reading)
            elif reading.intent in self.playbook:
                keep(found, reading.intent, reading)
            elif reading.confidence >= data.card_threshold:
                others[reading.intent] = max(others.get(reading.intent, 0.0), reading.confidence)
        recognised = tuple(
            Guess(intent, round(score, 4), data.intent_names.get(intent, intent))
            for intent, score in sorted(others.items(), key=lambda pair: -pair[1])
        )
        next_steps = tuple(self._step(name) for name in data.next_steps if name in others)
        if found or requests:
            ranked = sorted(found.items(), key=lambda item: (-item[1][0], order[item[0]]))
            cards = tuple(
                self._card(intent, confidence, piece, old_arrears=old_arrears)
                for intent, (confidence, piece) in ranked
            ) + tuple(
                request_card(intent, confidence, piece, playbook=self.playbook, data=data)
                for intent, (confidence, piece) in sorted(requests.items(), key=lambda item: (-item[1][0], order[item[0]]))
            )
            if not found and old_arrears:
                next_steps = (self._step("old_arrears"), *next_steps)
            return CoachAnswer(
                text=text, status=AnswerStatus.OBJECTIONS if found else AnswerStatus.SERVICE_REQUEST,
                message="" if found else data.messages["service_request"], cards=cards, recognised=recognised,
                next_steps=next_steps, pieces=tuple(parsed),
            )  # fmt: skip
        if old_arrears:
            next_steps = (self._step("old_arrears"), *next_steps)
        if recognised or resolved:
            return CoachAnswer(
                text=text, status=AnswerStatus.NO_OBJECTION, message=data.messages["no_objection"],
                recognised=recognised, next_steps=next_steps, pieces=tuple(parsed),
            )  # fmt: skip
        best = [
            Guess(intent, round(score, 4), self._title(intent))
            for intent, score in sorted(guesses.items(), key=lambda pair: -pair[1])
            if score >= data.guess_floor
        ][: data.max_guesses]
        return CoachAnswer(
            text=text,
            status=AnswerStatus.UNCLEAR,
            message=data.messages["unclear"],
            guesses=tuple(best),
            ask=wording.text("coach.ask_unclear"),
            next_steps=next_steps,
            pieces=tuple(parsed),
        )

    def _request_kind(self, note: str) -> Optional[str]:
        """The request the note's words make (file_complaint, report_repair …), or None when it asks nothing."""
        said = normalize(note).text
        for kind, words in self.data.service_requests.request_words.items():
            if any(word in said for word in words):
                return kind
        return None

    def _request_like(self, reading: _Reading, request_kind: Optional[str]) -> bool:
        """A request intent, or a breakdown objection in a note that asks for a fix or a complaint."""
        rules = self.data.service_requests
        return reading.intent in rules.intents or (reading.intent in rules.objections and request_kind is not None)

    def _tied_to_not_paying(self, piece: Piece) -> bool:
        return any(pattern.search(piece.sentence or piece.text) for pattern in self.data.service_requests.refusal)

    def _request_or_objection(self, reading: _Reading, request_kind: Optional[str], other_objections: bool) -> str:
        """What a request-like piece's card is: the request intent, or the objection when tied to not paying.

        Tied: a refusal in its sentence; or, when the note asks for nothing in words, another objection in
        the note (the breakdown is told as one more reason).
        """
        rules = self.data.service_requests
        objection = reading.intent if reading.intent in self.playbook else rules.as_objection
        if self._tied_to_not_paying(reading.piece):
            return objection
        if request_kind is None and other_objections:
            return objection
        if reading.intent in rules.intents:
            return reading.intent
        return request_kind if request_kind in rules.intents else rules.intents[0]

    def _resolved(self, piece: Piece) -> bool:
        return any(word in piece.text or word in piece.original for word in self.data.resolved)

    def _step(self, name: str) -> NextStep:
        step = self.data.next_steps[name]
        return NextStep(step.kind, self.data.next_step_kinds.get(step.kind, step.kind), step.text)

    def _title(self, intent: str) -> str:
        entry = self.playbook.get(intent)
        return entry.title if entry else intent

    def _card(self, intent: str, confidence: float, piece: Piece, *, old_arrears: bool) -> Card:
        entry: Optional[Entry] = self.playbook.get(intent)
        assert entry is not None  # only playbook intents make cards
        coaching = entry.coach
        step = (
            self._step("old_arrears")
            if old_arrears
            else NextStep(
                coaching.next_step_kind,
                self.data.next_step_kinds.get(coaching.next_step_kind, coaching.next_step_kind),
                coaching.next_step,
            )
        )
        return Card(
            intent=intent,
            confidence=round(confidence, 4),
            title=entry.title,
            summary=entry.summary,
            clause=piece.original or piece.text,
            script=coaching.script,
            legal_basis=coaching.legal_basis,
            next_step=step.text,
            next_step_kind=step.kind,
            next_step_label=step.label,
            donts=coaching.donts,
            ask=coaching.ask,
            strategy=coaching.strategy,
            kind=OBJECTION_CARD,
            source=(intent,),
        )


def playbook_wording(playbook: Playbook, reference: str) -> Tuple[str, ...]:
    """The playbook lines ``reference`` names: ``entry.field`` or ``entry.field.N``.

    Fields: offer, script, strategy, donts, ask, answers, follow_up.

    Raises:
        WordingError: If the entry, the field or the line does not exist.
    """
    parts = reference.split(".")
    entry = playbook.get(parts[0])
    if entry is None or len(parts) not in (2, 3):
        raise WordingError(f"{reference}: no such playbook entry")
    values: Dict[str, Tuple[str, ...]] = {
        "offer": (entry.offer.text,),
        "script": entry.coach.script,
        "strategy": entry.coach.strategy,
        "donts": entry.coach.donts,
        "ask": (entry.coach.ask,) if entry.coach.ask else (),
        "answers": entry.answers,
        "follow_up": (entry.follow_up,),
    }
    lines = values.get(parts[1])
    if lines is None:
        raise WordingError(f"{reference}: no field {parts[1]}")
    if len(parts) == 2:
        return lines
    index = int(parts[2])
    if not 0 <= index < len(lines):
        raise WordingError(f"{reference}: {parts[1]} has {len(lines)} lines")
    return (lines[index],)


def playbook_lines(playbook: Playbook, references: Tuple[str, ...]) -> Tuple[str, ...]:
    """The lines of every reference, in order, each once."""
    lines: List[str] = []
    for reference in references:
        lines.extend(line for line in playbook_wording(playbook, reference) if line not in lines)
    return tuple(lines)


def request_card(
    intent: str, confidence: float, piece: Piece, *, playbook: Playbook, data: Optional[CoachData] = None
) -> Card:
    """A next step card for a repair or complaint request (``intent``), worded from ``playbook``.

    Args:
        intent: report_repair or file_complaint (``service_requests.cards`` in the coach's data).
        confidence: How sure the model was.
        piece: The part of the note it was read from.
        playbook: The playbook the wording is looked up in (the staff's edits apply).
        data: The coach's data (default: the project's).
    """
    data = data or coach_data()
    card = data.service_requests.cards[intent]
    return Card(
        intent=intent,
        confidence=round(confidence, 4),
        title=data.intent_names.get(intent, intent),
        summary=card.summary,
        clause=piece.original or piece.text,
        script=playbook_lines(playbook, card.script),
        legal_basis=(),
        next_step=card.next_step,
        next_step_kind=card.kind,
        next_step_label=data.next_step_kinds.get(card.kind, card.kind),
        donts=playbook_lines(playbook, card.donts),
        ask="",
        strategy=playbook_lines(playbook, card.strategy),
        kind=REQUEST_CARD,
        source=card.script + card.strategy + card.donts,
        link=card.link,
    )


_default: Dict[Path, Coach] = {}
_default_lock = threading.Lock()


def get_coach(
    *, parser_factory: ParserFactory, model_path: Optional[Path] = None, playbook: Optional[Playbook] = None
) -> Coach:
    """The process's coach: the bot's model (loaded once, on first call) with ``playbook``.

    Args:
        parser_factory: Loads the model when this process has not yet (``bot.rasa.agent.RasaParser``).
        model_path: The trained model (default: ``COACH_MODEL_PATH`` or ``models/current.tar.gz``).
        playbook: The playbook to coach from (default: the YAML playbook; pass the staff's current one
            where edits apply). Either way the model is the one loaded for the process.

    Raises:
        bot.coach.model.ModelNotFound: If there is no trained model.
    """
    parser = load_parser(model_path, factory=parser_factory)
    if playbook is not None:
        return Coach(parser, playbook)
    with _default_lock:
        coach = _default.get(parser.model_path)
        if coach is None:
            coach = Coach(parser, default_playbook())
            _default[parser.model_path] = coach
        return coach
