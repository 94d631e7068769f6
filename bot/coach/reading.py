"""Reading a collector's note: drop the reporting frames, cut it into the pieces the model reads one by one.

A collector writes what an owner said as they remember it: "业主说他家暖气不热，而且房子一直没人住",
「佢話冇錢」, several sentences. The model was trained on owners' own words, so "业主说" is noise to it, and
one parse of a two-reason message finds one reason. The note is normalised (繁→简, 全角→半角) for matching,
then split into sentences, sentences into reasons at connectors (而且, 还有 …), and reasons into comma
clauses; the frame is dropped at the start of each piece. The frame and connector words are data
(``data/coach/coach.yml``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import List, Tuple

from bot.coach.data import CoachData, coach_data
from bot.text.normalize import normalize

_SENTENCE_END = re.compile(r"[。！？!?；;…\n]+|\.{2,}|(?<![0-9])\.(?![0-9])")
_CLAUSE_BREAK = re.compile(r"[,，、]+")
_EDGE = re.compile(r"^[\s,，、:：~～\-—]+|[\s,，、:：~～\-—]+$")
MIN_PIECE_CHARS = 2


@dataclass(frozen=True)
class Piece:
    """A part of the note the model reads on its own."""

    text: str
    level: str  # "note" (the whole note), "sentence", "reason" (cut at a connector), "clause" (at a comma)


def _alternatives(words: Tuple[str, ...]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


@functools.lru_cache(maxsize=4)
def _patterns(data: CoachData) -> Tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    subjects, adverbs = _alternatives(data.subjects), _alternatives(data.adverbs)
    verbs, subject_verbs = _alternatives(data.verbs), _alternatives(data.subject_verbs)
    frame = re.compile(
        rf"^\s*(?:(?:{subjects})(?:{adverbs})*(?:{verbs}|{subject_verbs})|(?:{adverbs})*(?:{verbs}))\s*[:：,，]?\s*"
    )
    connector = re.compile(rf"(?:{_alternatives(data.connectors)})")
    quotes = re.compile("|".join(re.escape(q) for q in data.quotes))
    return frame, connector, quotes


def strip_frames(text: str, data: CoachData | None = None) -> str:
    """``text`` without the reporting frames at its start ("业主说：他说…" → "…") or its quotation marks."""
    frame, _, quotes = _patterns(data or coach_data())
    text = quotes.sub("", text)
    while True:
        stripped = frame.sub("", text, count=1)
        if stripped == text or len(stripped) < MIN_PIECE_CHARS:
            return _EDGE.sub("", text)
        text = stripped


def read_note(note: str, data: CoachData | None = None) -> List[Piece]:
    """The pieces of ``note`` to parse, largest first, each without its frame; duplicates dropped.

    The whole note comes first (the model sees every reason in context), then each sentence, each reason
    within a sentence, and each comma clause within a reason; a level that yields one piece equal to the
    one above adds nothing.
    """
    data = data or coach_data()
    _, connector, _ = _patterns(data)
    normalised = normalize(note).text
    pieces: List[Piece] = []
    seen: set[str] = set()

    def add(text: str, level: str) -> None:
        cleaned = strip_frames(text, data)
        if len(cleaned) >= MIN_PIECE_CHARS and cleaned not in seen:
            seen.add(cleaned)
            pieces.append(Piece(cleaned, level))

    add(" ".join(part for part in _SENTENCE_END.split(normalised) if part.strip()), "note")
    for sentence in _SENTENCE_END.split(normalised):
        add(sentence, "sentence")
        for reason in connector.split(sentence):
            add(reason, "reason")
            for clause in _CLAUSE_BREAK.split(reason):
                add(clause, "clause")
    return pieces
