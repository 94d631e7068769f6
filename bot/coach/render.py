"""A coach answer as JSON, as compact plain text for chat apps, and for a terminal (coloured or not).

:func:`as_json` is the one JSON shape (the CLI's ``--json`` lines, ``POST /api/coach``, the WeCom channel):
top-level ``types`` ranks every objection found (or, for an unclear note, the guesses); ``script``,
``legal_basis``, ``next_step``, ``next_step_kind`` and ``donts`` are the first card's (with no card,
``next_step`` is the coach's own first step, e.g. a promise's follow-up), ``cards`` holds every card in full
and ``next_steps`` the coach's own steps besides the cards'. A card's ``kind`` is ``objection`` or
``service_request`` (a repair or complaint request: a next step, with the console's ``link`` and the playbook
references its wording came from in ``source``). Every mark between a label and its value is data
(``data/coach/coach.yml`` ``punctuation``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from bot.coach.coach import Card, CoachAnswer, Guess, NextStep
from bot.coach.data import CoachData, coach_data
from bot.playbook import LegalBasis

# WeCom's text messages hold at most 2048 bytes; the compact text stays under it.
PLAIN_TEXT_MAX_BYTES = 2048


def _guess(guess: Guess) -> Dict[str, Any]:
    return {"intent": guess.intent, "confidence": guess.confidence, "title": guess.title}


def _basis(basis: LegalBasis) -> Dict[str, str]:
    return {"source": basis.source, "article": basis.article, "citation": basis.citation, "point": basis.point}


def card_json(card: Card) -> Dict[str, Any]:
    """One card as JSON."""
    return {
        "intent": card.intent,
        "confidence": card.confidence,
        "title": card.title,
        "summary": card.summary,
        "clause": card.clause,
        "script": list(card.script),
        "legal_basis": [_basis(b) for b in card.legal_basis],
        "next_step": card.next_step,
        "next_step_kind": card.next_step_kind,
        "next_step_label": card.next_step_label,
        "donts": list(card.donts),
        "ask": card.ask,
        "kind": card.kind,
        "source": list(card.source),
        "link": card.link,
    }


def _step(step: NextStep) -> Dict[str, str]:
    return {"kind": step.kind, "label": step.label, "text": step.text}


def as_json(answer: CoachAnswer) -> Dict[str, Any]:
    """The answer as a JSON-ready dict (see the module's docstring for the shape)."""
    first = answer.cards[0] if answer.cards else None
    own = answer.next_steps[0] if answer.next_steps else None
    return {
        "text": answer.text,
        "status": answer.status.value,
        "message": answer.message,
        "types": [_guess(g) for g in answer.types],
        "script": list(first.script) if first else [],
        "legal_basis": [_basis(b) for b in first.legal_basis] if first else [],
        "next_step": first.next_step if first else (own.text if own else ""),
        "next_step_kind": first.next_step_kind if first else (own.kind if own else None),
        "donts": list(first.donts) if first else [],
        "cards": [card_json(card) for card in answer.cards],
        "ask": answer.ask or None,
        "guesses": [_guess(g) for g in answer.guesses],
        "recognised": [_guess(g) for g in answer.recognised],
        "next_steps": [_step(step) for step in answer.next_steps],
    }


def _percent(confidence: float) -> str:
    return f"{round(confidence * 100)}%"


Style = Callable[[str, str], str]


def _plain_style(_kind: str, text: str) -> str:
    return text


_ANSI = {"title": "1;36", "label": "1", "script": "32", "dont": "31", "basis": "33", "muted": "2", "warn": "1;33"}


def _ansi_style(kind: str, text: str) -> str:
    return f"\x1b[{_ANSI[kind]}m{text}\x1b[0m"


def _lines(answer: CoachAnswer, style: Style, data: CoachData, *, level: int) -> List[str]:
    """The answer as text lines; ``level`` 0 is everything, higher levels leave out the less needed parts."""
    label, mark = data.label, data.mark
    colon, listed = mark("colon"), mark("list")

    def step_line(step_label: str, text: str) -> str:
        kind = f"{mark('step_open')}{step_label}{mark('step_close')}"
        return f"{style('label', label('next_step'))}{colon}{kind}{text}"

    lines: List[str] = []
    if not answer.cards:
        lines.append(style("warn", answer.message))
        if answer.ask:
            lines.append(f"{style('label', label('ask'))}{colon}{style('script', answer.ask)}")
        if answer.guesses:
            guessed = listed.join(f"{g.title}({_percent(g.confidence)})" for g in answer.guesses)
            lines.append(f"{style('label', label('guesses'))}{colon}{guessed}")
        if answer.recognised:
            named = listed.join(f"{g.title}({_percent(g.confidence)})" for g in answer.recognised)
            lines.append(f"{style('label', label('recognised'))}{colon}{named}")
        for step in answer.next_steps:
            lines.append(step_line(step.label, step.text))
        return lines
    if answer.message:  # request cards only: say it is no objection
        lines.append(style("warn", answer.message))
    for index, card in enumerate(answer.cards):
        brief = level >= 2 and index > 0
        if lines:
            lines.append("")
        heading = f"{index + 1}. {card.title}  {label('confidence')} {_percent(card.confidence)}"
        lines.append(style("title", heading))
        if level == 0:
            lines.append(style("muted", f"{label('clause')}{colon}{card.clause}"))
        lines.append(style("label", label("script")) + colon)
        for line in card.script[:1] if brief else card.script:
            lines.append("  " + style("script", line))
        if level < 3 or index == 0:
            if card.legal_basis:
                lines.append(style("label", label("legal_basis")) + colon)
            for basis in card.legal_basis:
                point = "" if level >= 1 else f" {basis.point}"
                lines.append("  " + style("basis", basis.citation) + point)
            lines.append(step_line(card.next_step_label, "" if brief else card.next_step))
            lines.append(style("label", label("donts")) + colon)
            for dont in card.donts[:2] if level >= 1 else card.donts:
                lines.append("  " + style("dont", mark("dont_mark") + dont))
    if answer.next_steps and level < 3:
        lines.append("")
        lines.append(style("label", label("next_steps")) + colon)
        for step in answer.next_steps:
            lines.append("  " + step_line(step.label, step.text))
    if answer.recognised and level < 3:
        named = listed.join(g.title for g in answer.recognised)
        lines.append("")
        lines.append(style("muted", f"{label('recognised')}{colon}{named}"))
    return lines


def terminal_text(answer: CoachAnswer, *, color: bool, data: Optional[CoachData] = None) -> str:
    """The whole answer for a terminal; ANSI colours only when ``color``."""
    style = _ansi_style if color else _plain_style
    return "\n".join(_lines(answer, style, data or coach_data(), level=0))


def plain_text(answer: CoachAnswer, *, max_bytes: int = PLAIN_TEXT_MAX_BYTES, data: Optional[CoachData] = None) -> str:
    """A compact plain-text answer for chat apps (WeCom), under ``max_bytes`` bytes of UTF-8.

    The full answer when it fits; else the legal points, then all but two don'ts, then the later cards'
    details are left out; as a last resort the text is cut at a character boundary with "…".
    """
    data = data or coach_data()
    text = ""
    for level in range(4):
        text = "\n".join(_lines(answer, _plain_style, data, level=level))
        if len(text.encode("utf-8")) < max_bytes:
            return text
    ellipsis = data.mark("ellipsis")
    budget = max_bytes - len(ellipsis.encode("utf-8")) - 1
    return text.encode("utf-8")[:budget].decode("utf-8", errors="ignore") + ellipsis
