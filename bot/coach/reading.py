"""Reading a collector's note: drop the reporting frames, cut it into the pieces the model reads one by one.

A collector writes what an owner said as they remember it: "业主说他家暖气不热，而且房子一直没人住",
「佢話冇錢」, several sentences. The model was trained on owners' own words, so "业主说" is noise to it, and
one parse of a two-reason message finds one reason. The note is normalised (繁→简, 全角→半角) for matching,
then split into sentences, sentences into reasons at connectors (而且, 还有, 仲话 …), and reasons into comma
clauses; the frame is dropped at the start of each piece, and Cantonese words the model does not know are
read as their Mandarin (俾咗钱 → 交了钱). Every piece keeps the collector's own wording beside it (the
normaliser's alignment maps it back), so a card quotes what was typed, not the normalised text. The frame,
connector and Cantonese words are data (``data/coach/coach.yml``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterator, List, Tuple

from bot.coach.data import CoachData, coach_data
from bot.text.normalize import NormalizedText, normalize

_SENTENCE_END = re.compile(r"[。！？!?；;…\n]+|\.{2,}|(?<![0-9])\.(?![0-9])")
_CLAUSE_BREAK = re.compile(r"[,，、]+")
_EDGE_CHARS = " \t\r\n,，、:：~～-—"
MIN_PIECE_CHARS = 2


@dataclass(frozen=True)
class Piece:
    """A part of the note the model reads on its own."""

    text: str  # what the model reads: normalised, without its frame, Cantonese words read as Mandarin
    level: str  # "note" (the whole note), "sentence", "reason" (cut at a connector), "clause" (at a comma)
    original: str = ""  # the same part in the collector's own wording (frame dropped)
    sentence: str = ""  # the sentence it belongs to (the whole note for the note), read like ``text``


def _alternatives(words: Tuple[str, ...]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


def _verbs(words: Tuple[str, ...], data: CoachData) -> str:
    # 说过 before a span of time is 说 + 过两天: the alternation falls back to the shorter verb.
    time_words = _alternatives(data.time_words)
    return "|".join(
        re.escape(word) + (f"(?!{time_words})" if word in data.verbs_not_before_time else "")
        for word in sorted(words, key=len, reverse=True)
    )


@functools.lru_cache(maxsize=4)
def _patterns(data: CoachData) -> Tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    subjects, adverbs = _alternatives(data.subjects), _alternatives(data.adverbs)
    verbs, subject_verbs = _verbs(data.verbs, data), _verbs(data.subject_verbs, data)
    frame = re.compile(
        rf"\s*(?:(?:{subjects})(?:{adverbs})*(?:{verbs}|{subject_verbs})|(?:{adverbs})*(?:{verbs}))\s*[:：,，]?\s*"
    )
    connector = re.compile(rf"(?:{_alternatives(data.connectors)})")
    quotes = re.compile("|".join(re.escape(q) for q in data.quotes))
    rewrites = re.compile(_alternatives(tuple(data.rewrites)))
    return frame, connector, quotes, rewrites


def _trim(text: str, start: int, end: int, quotes: re.Pattern[str]) -> Tuple[int, int]:
    """``start, end`` moved past edge punctuation, spaces and quotation marks on both sides."""
    while start < end:
        if text[start] in _EDGE_CHARS:
            start += 1
            continue
        quote = quotes.match(text, start, end)
        if quote is None or quote.end() == start:
            break
        start = quote.end()
    while end > start:
        if text[end - 1] in _EDGE_CHARS:
            end -= 1
            continue
        if not any(quotes.fullmatch(text, position, end) for position in range(max(start, end - 2), end)):
            break
        end -= 1
    return start, end


def _strip_span(text: str, start: int, end: int, data: CoachData) -> Tuple[int, int]:
    """The span of ``text[start:end]`` without its reporting frames and edge punctuation."""
    frame, _, quotes, _ = _patterns(data)
    start, end = _trim(text, start, end, quotes)
    while True:
        match = frame.match(text, start, end)
        if match is None or match.end() == start:
            return start, end
        after = _trim(text, match.end(), end, quotes)
        if after[1] - after[0] < MIN_PIECE_CHARS:
            return start, end
        start, end = after


def _model_text(text: str, data: CoachData) -> str:
    _, _, quotes, rewrites = _patterns(data)
    return rewrites.sub(lambda match: data.rewrites[match.group()], quotes.sub("", text)).strip()


def strip_frames(text: str, data: CoachData | None = None) -> str:
    """``text`` without the reporting frames at its start ("业主说：他说…" → "…") or its quotation marks."""
    data = data or coach_data()
    _, _, quotes, _ = _patterns(data)
    start, end = _strip_span(text, 0, len(text), data)
    return quotes.sub("", text[start:end])


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> Iterator[Tuple[int, int]]:
    """The spans of ``text[start:end]`` between the matches of ``pattern``."""
    cursor = start
    for match in pattern.finditer(text, start, end):
        yield cursor, match.start()
        cursor = match.end()
    yield cursor, end


def read_note(note: str, data: CoachData | None = None) -> List[Piece]:
    """The pieces of ``note`` to parse, largest first, each without its frame; duplicates dropped.

    The whole note comes first (the model sees every reason in context), then each sentence, each reason
    within a sentence, and each comma clause within a reason; a level that yields one piece equal to the
    one above adds nothing.
    """
    data = data or coach_data()
    _, connector, _, _ = _patterns(data)
    normalised: NormalizedText = normalize(note)
    text = normalised.text
    pieces: List[Piece] = []
    seen: set[str] = set()

    def original(start: int, end: int) -> str:
        if start >= end:
            return ""
        first, last = normalised.to_original_span(start, end)
        return note[first:last].strip()

    def add(start: int, end: int, level: str, sentence: str = "") -> None:
        start, end = _strip_span(text, start, end, data)
        if level == "note":
            sentences = [text[s:e] for s, e in _spans(_SENTENCE_END, text, start, end) if text[s:e].strip()]
            cleaned = _model_text(" ".join(sentences), data)
            end = max((e for s, e in _spans(_SENTENCE_END, text, start, end) if text[s:e].strip()), default=end)
        else:
            cleaned = _model_text(text[start:end], data)
        if len(cleaned) >= MIN_PIECE_CHARS and cleaned not in seen:
            seen.add(cleaned)
            pieces.append(Piece(cleaned, level, original(start, end), sentence or cleaned))

    add(0, len(text), "note")
    for sentence in _spans(_SENTENCE_END, text, 0, len(text)):
        whole = _model_text(text[slice(*_strip_span(text, *sentence, data))], data)
        add(*sentence, "sentence")
        for reason in _spans(connector, text, *sentence):
            add(*reason, "reason", whole)
            for clause in _spans(_CLAUSE_BREAK, text, *reason):
                add(*clause, "clause", whole)
    return pieces
