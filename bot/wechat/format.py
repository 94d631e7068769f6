"""Bot messages as WeChat texts: length limits, buttons as numbered choices, and typed choice numbers.

WeChat shows text only (no buttons in a conversation), and a text message carries at most 2048 bytes of
UTF-8. Long texts are split at line ends, then sentence ends, then clause marks, and only as a last resort
inside a clause; several short bot messages are packed into one WeChat message.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Tuple

MAX_TEXT_BYTES = 2048
CHOICES_HEADER = "回复数字选择："
MESSAGE_SEPARATOR = "\n\n"

_LINES = re.compile(r"(?<=\n)")
_ENDS = "。！？!?；;…"
_CLOSERS = "”’」』）)"
# After a sentence end, or after a sentence end and its closing quote; never before more of either.
_SENTENCES = re.compile(rf"(?:(?<=[{_ENDS}])|(?<=[{_ENDS}][{_CLOSERS}]))(?![{_ENDS}{_CLOSERS}])")
_CLAUSES = re.compile(r"(?<=[，,、：:\s])")
_TYPED_CHOICE = re.compile(r"^第?(\d{1,2})(?:个|项|号|条)?$")
_CHOICE_PUNCTUATION = ".。、,，)）:：!！ "


@dataclass(frozen=True)
class Choice:
    """A button offered as a numbered choice: what the owner sees and what the bot receives."""

    title: str
    payload: str

    def to_dict(self) -> dict:
        """JSON-ready form, for storage."""
        return {"title": self.title, "payload": self.payload}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        """Inverse of ``to_dict``."""
        return cls(title=str(data["title"]), payload=str(data["payload"]))


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes, the unit of WeChat's limits."""
    return len(text.encode("utf-8"))


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> List[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes at the most natural boundaries.

    Args:
        text: The text to send.
        limit: The maximum size of one piece in bytes (at least 4, one character of UTF-8).

    Returns:
        The non-empty pieces, stripped, in order; ``[]`` for a blank text.
    """
    if limit < 4:
        raise ValueError("limit must allow at least one character (4 bytes)")
    text = text.strip()
    if not text:
        return []
    if utf8_len(text) <= limit:
        return [text]
    pieces = _pack(text, limit, [_LINES.split, _SENTENCES.split, _CLAUSES.split, _characters])
    return [piece.strip() for piece in pieces if piece.strip()]


def _pack(text: str, limit: int, splitters: Sequence[Callable[[str], List[str]]]) -> List[str]:
    """Greedily join the units of the first splitter; units still too long go down a level."""
    split, finer = splitters[0], splitters[1:]
    chunks: List[str] = []
    current = ""
    for unit in (unit for unit in split(text) if unit):
        if utf8_len(unit) > limit:
            if current:
                chunks.append(current)
                current = ""
            *done, current = _pack(unit, limit, finer)  # the last piece may share with what follows
            chunks.extend(done)
        elif utf8_len(current + unit) <= limit:
            current += unit
        else:
            chunks.append(current)
            current = unit
    if current:
        chunks.append(current)
    return chunks


def _characters(text: str) -> List[str]:
    return list(text)


def pack_messages(texts: Iterable[str], limit: int = MAX_TEXT_BYTES) -> List[str]:
    """Join consecutive bot messages (blank line between) as long as they fit one WeChat message.

    Args:
        texts: The bot's messages, in order.
        limit: The maximum size of one WeChat message in bytes.

    Returns:
        WeChat messages, each at most ``limit`` bytes, in the original order.
    """
    packed: List[str] = []
    for text in texts:
        for piece in split_text(text, limit):
            if packed and utf8_len(packed[-1] + MESSAGE_SEPARATOR + piece) <= limit:
                packed[-1] += MESSAGE_SEPARATOR + piece
            else:
                packed.append(piece)
    return packed


def render_choices(choices: Sequence[Choice], start: int = 1) -> str:
    """The choices as a numbered list under ``回复数字选择：``, one per line."""
    lines = [f"{number}. {choice.title}" for number, choice in enumerate(choices, start)]
    return "\n".join([CHOICES_HEADER, *lines])


def render_bot_messages(messages: Sequence[Mapping[str, Any]]) -> Tuple[List[str], List[Choice]]:
    """Turn Rasa's collected bot messages into texts and the choices they offer.

    Buttons of every message are numbered consecutively across the turn, so a typed number is never
    ambiguous. An image is sent as its link; custom payloads have no WeChat text form and are skipped.

    Args:
        messages: ``CollectingOutputChannel.messages`` (dicts with ``text``, ``buttons``, ``image`` …).

    Returns:
        The texts to send, in order, and the choices now on offer (empty when none).
    """
    texts: List[str] = []
    choices: List[Choice] = []
    for message in messages:
        parts = [str(message.get("text") or "").strip()]
        if message.get("image"):
            parts.append(str(message["image"]))
        if message.get("attachment"):
            parts.append(str(message["attachment"]))
        buttons = [
            Choice(
                title=str(button.get("title") or button.get("payload")),
                payload=str(button.get("payload") or button.get("title")),
            )
            for button in message.get("buttons") or []
            if button.get("title") or button.get("payload")
        ]
        if buttons:
            parts.append(render_choices(buttons, start=len(choices) + 1))
            choices.extend(buttons)
        text = "\n".join(part for part in parts if part)
        if text:
            texts.append(text)
    return texts, choices


def match_choice(typed: str, choices: Sequence[Choice]) -> Optional[Choice]:
    """The choice the owner picked by typing its number (``1``, ``１``, ``1.``, ``第2个``), if any."""
    if not choices:
        return None
    normalized = unicodedata.normalize("NFKC", typed or "").strip().strip(_CHOICE_PUNCTUATION)
    match = _TYPED_CHOICE.match(normalized)
    if match is None:
        return None
    number = int(match.group(1))
    return choices[number - 1] if 1 <= number <= len(choices) else None
