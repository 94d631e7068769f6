"""A coach answer as JSON, as compact plain text for chat apps, and for a terminal (coloured or not).

:func:`as_json` is the one JSON shape (the CLI's ``--json`` lines, ``POST /api/coach``, the WeCom channel):
top-level ``types`` ranks every objection found (or, for an unclear note, the guesses); ``script``,
``legal_basis``, ``next_step``, ``next_step_kind`` and ``donts`` are the first card's (empty when there is
no card), and ``cards`` holds every card in full.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from bot.coach.coach import Card, CoachAnswer, Guess
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
    }


def as_json(answer: CoachAnswer) -> Dict[str, Any]:
    """The answer as a JSON-ready dict (see the module's docstring for the shape)."""
    first = answer.cards[0] if answer.cards else None
    return {
        "text": answer.text,
        "status": answer.status.value,
        "message": answer.message,
        "types": [_guess(g) for g in answer.types],
        "script": list(first.script) if first else [],
        "legal_basis": [_basis(b) for b in first.legal_basis] if first else [],
        "next_step": first.next_step if first else "",
        "next_step_kind": first.next_step_kind if first else None,
        "donts": list(first.donts) if first else [],
        "cards": [card_json(card) for card in answer.cards],
        "ask": answer.ask or None,
        "guesses": [_guess(g) for g in answer.guesses],
        "recognised": [_guess(g) for g in answer.recognised],
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
    label = data.label
    lines: List[str] = []
    if not answer.cards:
        lines.append(style("warn", answer.message))
        if answer.ask:
            lines.append(f"{style('label', label('ask'))}：{style('script', answer.ask)}")
        if answer.guesses:
            guessed = "、".join(f"{g.title}({_percent(g.confidence)})" for g in answer.guesses)
            lines.append(f"{style('label', label('guesses'))}：{guessed}")
        if answer.recognised:
            named = "、".join(f"{g.title}({_percent(g.confidence)})" for g in answer.recognised)
            lines.append(f"{style('label', label('recognised'))}：{named}")
        return lines
    for index, card in enumerate(answer.cards):
        brief = level >= 2 and index > 0
        if lines:
            lines.append("")
        heading = f"{index + 1}. {card.title}  {label('confidence')} {_percent(card.confidence)}"
        lines.append(style("title", heading))
        if level == 0:
            lines.append(style("muted", f"{label('clause')}：{card.clause}"))
        lines.append(style("label", label("script")) + "：")
        for line in card.script[:1] if brief else card.script:
            lines.append("  " + style("script", line))
        if level < 3 or index == 0:
            lines.append(style("label", label("legal_basis")) + "：")
            for basis in card.legal_basis:
                point = "" if level >= 1 else f" {basis.point}"
                lines.append("  " + style("basis", basis.citation) + point)
            kind = f"【{card.next_step_label}】"
            lines.append(f"{style('label', label('next_step'))}：{kind}{'' if brief else card.next_step}")
            lines.append(style("label", label("donts")) + "：")
            for dont in card.donts[:2] if level >= 1 else card.donts:
                lines.append("  " + style("dont", "✗ " + dont))
    if answer.recognised and level < 3:
        named = "、".join(g.title for g in answer.recognised)
        lines.append("")
        lines.append(style("muted", f"{label('recognised')}：{named}"))
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
    ellipsis = "…"
    budget = max_bytes - len(ellipsis.encode("utf-8")) - 1
    return text.encode("utf-8")[:budget].decode("utf-8", errors="ignore") + ellipsis
