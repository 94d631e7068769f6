"""What every channel does to a message before Rasa sees it, and to a text before an owner sees it.

All three channels (REST, web chat, WeChat) are reachable by anyone, so what a client sends is screened in
one place:

* **Metadata is built by the server.** Date keys (``date``, ``timestamp``, ``sent_at``) move "today" for
  relative dates and the promise window, so they are kept only for a trusted caller (the REST channel with
  its token). ``client`` — the key per-client identity accounting counts failures under — is always set by
  the server from what the client cannot choose (its socket's address, its WeChat openid). The other keys
  only the server writes (:data:`RESERVED_KEYS`: ``held_note``, which keeps a message out of the NLU inbox;
  ``wechat``; the ``staff`` / ``handoff`` / ``outbox_id`` marks of delivered outbox messages) are dropped
  from every client, trusted or not.
* **Text is screened.** Over-long messages are refused before the NLU parses them (one 11,700-character
  message once took ten seconds of the only event loop and grew the server by 3 GB for good). Lone
  surrogates and control characters are removed (they break JSON and database encodings further on). A
  leading ``/`` makes Rasa skip the NLU and take the intent and entities written after it, so a client
  could name another owner's unit or a ``verified_owner_id``: only the plain ``/intent`` payloads the bot
  itself offers pass; anything else loses its leading ``/`` and is read by the NLU as ordinary text.
* **Outgoing text is checked.** Every text that reaches an owner passes
  :func:`bot.compliance.check_outgoing`; a blocked one is replaced by a safe sentence.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Mapping, Optional, Sequence, Tuple, Union

import yaml

from bot import wording
from bot.services import client_addresses

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATE_KEYS: FrozenSet[str] = frozenset({"date", "timestamp", "sent_at"})
CLIENT_KEY = "client"
HELD_NOTE_KEY = "held_note"  # bot.channels.takeover marks a message kept in place of a refusal with it
# Keys only the server writes; a client naming one is ignored, trusted or not (compared by their letters).
# ``webchat_seen_at``: when the web chat received the message (bot.conversations.webchat_sessions.SEEN_KEY).
RESERVED_KEYS: FrozenSet[str] = frozenset(
    {CLIENT_KEY, HELD_NOTE_KEY, "wechat", "staff", "handoff", "outbox_id", "webchat_seen_at"}
)
# Untrusted metadata is kept only in small amounts: it is stored with every event of the tracker.
MAX_METADATA_ENTRIES = 20
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 200
_PLAIN_COMMAND = re.compile(r"^/[A-Za-z_][A-Za-z0-9_]*$")
_PAGE_INIT_PAYLOAD = re.compile(r"initPayload:\s*[\"'](/[A-Za-z_][A-Za-z0-9_]*)[\"']")
_KEEP_CONTROLS = frozenset("\n\t")


def max_message_chars() -> int:
    """The configured limit on an owner's message (``MAX_MESSAGE_CHARS``)."""
    from bot.settings import get_settings

    return int(get_settings().max_message_chars)


def without_lone_surrogates(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD.

    JSON lets a client send a lone surrogate (an escape of U+D800 to U+DFFF); such a string cannot be
    encoded as UTF-8, so it would fail later in the tracker store or the database, far from here.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_text(text: str) -> str:
    """``text`` without lone surrogates and control characters (newlines and tabs stay), stripped."""
    text = without_lone_surrogates(text)
    return "".join(
        char for char in text if char in _KEEP_CONTROLS or unicodedata.category(char) != "Cc"
    ).strip()


@functools.lru_cache(maxsize=1)
def allowed_commands(root: Path = PROJECT_ROOT) -> FrozenSet[str]:
    """The plain ``/intent`` payloads the bot itself sends: its buttons, and the web chat page's greeting.

    Discovered from ``domain.yml`` (button payloads) and the page's ``initPayload``, so a new button works
    on every channel without being listed again.
    """
    found = set()
    domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8")) or {}
    for variants in (domain.get("responses") or {}).values():
        for variant in variants or []:
            for button in (variant or {}).get("buttons") or []:
                payload = str((button or {}).get("payload", "")).strip()
                if _PLAIN_COMMAND.match(payload):
                    found.add(payload)
    page = root / "bot" / "channels" / "webchat_static" / "chat.js"
    if page.exists():
        found.update(_PAGE_INIT_PAYLOAD.findall(page.read_text(encoding="utf-8")))
    return frozenset(found)


@dataclass(frozen=True)
class Screened:
    """The outcome of screening one message.

    Attributes:
        text: What Rasa is given; ``None`` when the message must not reach Rasa.
        refusal: The polite answer to send instead, when there is one (an over-long message).
        problem: Why nothing reaches Rasa (``"not text"``, ``"empty"``, ``"too long"``), for logs and 4xx bodies.
    """

    text: Optional[str] = None
    refusal: Optional[str] = None
    problem: Optional[str] = None

    @property
    def accepted(self) -> bool:
        """Whether the message goes on to Rasa."""
        return self.text is not None


def screen_text(raw: Any, *, limit: Optional[int] = None) -> Screened:
    """Screen an owner's message before Rasa sees it.

    Args:
        raw: What the client sent as the message (anything: JSON allows numbers, objects, lists, null).
        limit: The longest message accepted, in characters; default ``max_message_chars`` from settings.

    Returns:
        The text for Rasa, or why there is none and what to answer instead.
    """
    if not isinstance(raw, str):
        return Screened(problem="not text")
    limit = max_message_chars() if limit is None else limit
    # Measured before cleaning too, so a 10 MB body costs no more than a length check.
    if len(raw) > 4 * limit + 1000:
        return Screened(refusal=wording.text("channels.too_long", limit=limit), problem="too long")
    text = clean_text(raw)
    if not text:
        return Screened(problem="empty")
    if len(text) > limit:
        return Screened(refusal=wording.text("channels.too_long", limit=limit), problem="too long")
    if text.startswith("/") and text not in allowed_commands():
        # Rasa would take the intent and entities written after "/" and skip the NLU; read it as words.
        text = text.lstrip("/").strip()
        if not text:
            return Screened(problem="empty")
    return Screened(text=text)


def _clean_value(value: Any) -> Any:
    """A scalar metadata value made safe to store, or ``None`` to drop it."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if value == value and abs(value) < 1e15 else None  # no NaN or huge numbers
    if isinstance(value, str):
        return clean_text(value)[:MAX_METADATA_VALUE_CHARS]
    return None


def server_metadata(raw: Any, *, client: str, trusted: bool) -> Dict[str, Any]:
    """The metadata handed to Rasa with a message, built by the server.

    Args:
        raw: What the client sent as metadata (anything).
        client: The identity-accounting key the server derived (``ip:<keyed hash of the address>``, ``wechat:<openid>``).
        trusted: Whether the caller is a trusted integration (REST with its token): only then are the date
            keys kept, and nested values passed through.

    Returns:
        A new dict: the client's entries that may be kept, and ``client``. A client-sent ``client`` or other
        reserved key (:data:`RESERVED_KEYS`) is always dropped.
    """
    source: Mapping[Any, Any] = raw if isinstance(raw, Mapping) else {}
    metadata: Dict[str, Any] = {}
    for raw_key, value in source.items():
        if not isinstance(raw_key, str):
            continue
        key = clean_text(raw_key).strip()
        # Judge the key by its letters: " date", "date\x00", "Ｄａｔｅ" or "date\u200b" is still "date".
        canonical = re.sub(r"[^a-z0-9_]", "", unicodedata.normalize("NFKC", key).lower())
        if not key or canonical in RESERVED_KEYS:
            continue
        if trusted:
            metadata[key] = value
            continue
        if canonical in DATE_KEYS or len(metadata) >= MAX_METADATA_ENTRIES or len(key) > MAX_METADATA_KEY_CHARS:
            continue
        cleaned = _clean_value(value)
        if cleaned is not None or value is None:
            metadata[key] = cleaned
    metadata[CLIENT_KEY] = client
    return metadata


# How much of the keyed hash names a client: 128 bits, far beyond any collision among an estate's clients.
CLIENT_KEY_CHARS = 32


def ip_client(address: Optional[str]) -> str:
    """The per-client key of a client known by its network address: ``ip:`` and a keyed hash, never the address.

    The counts kept under it (identity failures, messages, web chat sessions) and Rasa's events, whose metadata
    carries it, need to tell one client from another, nothing more (PIPL: no more than the purpose needs). The
    hash is keyed with ``SECRET_KEY`` and counts an IPv6 client by its /64
    (:func:`bot.services.client_addresses.client_key`).
    """
    from bot.settings import get_settings

    key = client_addresses.client_key(
        address, secret=get_settings().secret_key, purpose=client_addresses.OWNER_CLIENT
    )
    return f"ip:{key[:CLIENT_KEY_CHARS]}" if key else "ip:unknown"


@functools.lru_cache(maxsize=8)
def _networks(proxies: Tuple[str, ...]) -> Tuple[Union[ipaddress.IPv4Network, ipaddress.IPv6Network], ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _within(address: str, networks: Tuple[Any, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def client_address(peer: Optional[str], forwarded_for: Optional[str], *, proxies: Sequence[str] = ()) -> str:
    """The client's address: the TCP peer, unless that peer is one of our own reverse proxies.

    Behind a proxy every visitor arrives from the proxy's address, which would put all of them under one
    session limit and one identity count. ``X-Forwarded-For`` is believed only when the peer is a trusted
    proxy (``TRUSTED_PROXIES``), and then read from the right, skipping our own proxies: the entries left of
    the first untrusted one were written by the client and prove nothing.

    Args:
        peer: The address of the TCP peer.
        forwarded_for: The request's ``X-Forwarded-For`` header, if any.
        proxies: Addresses or networks (CIDR) of the reverse proxies in front of the server.

    Returns:
        The address to count the client under.
    """
    networks = _networks(tuple(proxies))
    if not peer or not forwarded_for or not networks or not _within(peer, networks):
        return peer or "unknown"
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: trust nothing in it
        if not _within(hop, networks):
            return hop
    return hops[0] if hops and hops[0] else peer


def request_client(peer: Optional[str], headers: Any) -> str:
    """The accounting key of the client behind a request, honouring the configured trusted proxies."""
    from bot.settings import get_settings

    # Several header lines are one list (RFC 9110): a proxy may add its own line after the client's.
    lines = headers.getall("x-forwarded-for", []) if hasattr(headers, "getall") else []
    if not lines and headers is not None and headers.get("x-forwarded-for"):
        lines = [headers.get("x-forwarded-for")]
    forwarded = ",".join(lines) or None
    return ip_client(client_address(peer, forwarded, proxies=get_settings().trusted_proxies))


def wechat_client(openid: str) -> str:
    """The identity-accounting key of a WeChat user."""
    return f"wechat:{openid}"
