"""The two WeCom server APIs the channel calls: ``gettoken`` and ``message/send``.

* ``GET /cgi-bin/gettoken?corpid=…&corpsecret=…`` issues an access token for the app's secret, valid for
  ``expires_in`` seconds (7200). WeCom limits how often it may be fetched, so it is cached in this process
  behind a lock (the staff console is one process; concurrent replies share one fetch) and fetched again
  shortly before it expires or when WeCom calls it invalid or expired (40014, 42001, 40001) — once per send.
* ``POST /cgi-bin/message/send?access_token=…`` with ``{"touser", "msgtype": "text", "agentid",
  "text": {"content"}}`` sends a text to a member; WeCom cuts a content longer than 2048 bytes, so long
  answers are split at line ends into several messages (:func:`split_text`).

Calls are synchronous (``requests``): the callback answers WeCom first and sends the reply from a worker
thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import requests

logger = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid secret/credential, invalid token, expired token
REFRESH_MARGIN_SECONDS = 300
MAX_CONTENT_BYTES = 2048
MAX_PARTS = 4
ELLIPSIS = "……"
_HINTS = {
    40013: "WECOM_CORP_ID is wrong",
    40001: "WECOM_SECRET is wrong (the app's Secret, not another app's)",
    40091: "WECOM_SECRET is wrong",
    60020: "this server's IP address is not among the app's 企业可信IP",
    60011: "the app may not message this member (outside its 可见范围)",
    81013: "the member is unknown to WeCom or outside the app's 可见范围",
    301002: "WECOM_AGENT_ID does not belong to WECOM_SECRET",
}


class WeComAPIError(Exception):
    """WeCom answered with an error code (or not at all).

    Args:
        errcode: WeCom's ``errcode`` (``-2`` for transport errors and unusable answers).
        errmsg: WeCom's ``errmsg`` or a description of the failure.
    """

    def __init__(self, errcode: int, errmsg: str) -> None:
        hint = _HINTS.get(errcode)
        super().__init__(f"WeCom API error {errcode}: {errmsg}" + (f" — {hint}" if hint else ""))
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


def split_text(text: str, *, limit: int = MAX_CONTENT_BYTES, max_parts: int = MAX_PARTS) -> List[str]:
    """``text`` as messages of at most ``limit`` UTF-8 bytes each, cut at line ends where possible.

    A line longer than a message is cut between characters, never inside one. Beyond ``max_parts`` messages
    the last one ends with an ellipsis instead of going on (a chat is not the place for a whole manual).

    Args:
        text: The reply.
        limit: Bytes per message (WeCom's 2048).
        max_parts: Messages at most.

    Returns:
        The messages, in order; none for an empty text.
    """
    parts: List[str] = []
    current = ""
    for line in text.strip().splitlines(keepends=True):
        while line:
            if _size(current + line) <= limit:
                current += line
                line = ""
                continue
            if current:
                parts.append(current)
                current = ""
                continue
            head = _prefix_within(line, limit)
            parts.append(head)
            line = line[len(head) :]
    if current.strip():
        parts.append(current)
    parts = [part.strip() for part in parts if part.strip()]
    if len(parts) > max_parts:
        last = _prefix_within(parts[max_parts - 1], limit - _size(ELLIPSIS)).rstrip()
        parts = parts[: max_parts - 1] + [last + ELLIPSIS]
    return parts


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


class WeComAPI:
    """Client of the WeCom server API under a configurable base URL (a local fake in tests).

    Args:
        base_url: ``https://qyapi.weixin.qq.com`` in production.
        corp_id: The CorpID.
        secret: The self-built app's Secret.
        agent_id: The app's AgentId (messages are sent as this app).
        timeout: Seconds per HTTP request.
        clock: Epoch seconds now (tests move it to expire tokens).
    """

    def __init__(
        self,
        base_url: str,
        *,
        corp_id: str,
        secret: str,
        agent_id: int,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self._token: Optional[_Token] = None
        self._lock = threading.Lock()
        self._http = requests.Session()

    def access_token(self, *, invalid: Optional[str] = None) -> str:
        """A valid access token: the cached one, or a fresh one from ``gettoken``.

        Args:
            invalid: A token WeCom just refused; dropped before anything else (unless another thread has
                already replaced it).

        Raises:
            WeComAPIError: When WeCom refuses to issue a token (wrong corp id or secret, IP not trusted …).
        """
        with self._lock:
            if invalid is not None and self._token is not None and self._token.value == invalid:
                self._token = None
            if self._token is not None and self._token.expires_at - REFRESH_MARGIN_SECONDS > self._clock():
                return self._token.value
            data = self._call(
                "GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}
            )
            token = data.get("access_token")
            if int(data.get("errcode") or 0) != 0 or not isinstance(token, str) or not token:
                raise WeComAPIError(
                    int(data.get("errcode") or -2), str(data.get("errmsg") or "no access_token")
                )
            self._token = _Token(token, self._clock() + int(data.get("expires_in") or 7200))
            logger.info("wecom: fetched a new access token for agent %s", self.agent_id)
            return token

    def send_text(self, user_id: str, content: str) -> Dict[str, Any]:
        """Send one text message to the member ``user_id`` as this app.

        Returns:
            WeCom's answer (``errcode`` 0, ``msgid``).

        Raises:
            WeComAPIError: When WeCom refuses the message (after one retry with a fresh token when it called
                the token invalid or expired), or names the member invalid.
        """
        body = {
            "touser": user_id,
            "msgtype": "text",
            "agentid": self.agent_id,
            "text": {"content": content},
            "safe": 0,
        }
        token = self.access_token()
        data = self._call("POST", "/cgi-bin/message/send", {"access_token": token}, body)
        if int(data.get("errcode") or 0) in TOKEN_ERRORS:
            logger.info("wecom: access token refused (%s), fetching a new one", data.get("errcode"))
            token = self.access_token(invalid=token)
            data = self._call("POST", "/cgi-bin/message/send", {"access_token": token}, body)
        errcode = int(data.get("errcode") or 0)
        if errcode != 0:
            raise WeComAPIError(errcode, str(data.get("errmsg") or ""))
        if data.get("invaliduser"):
            raise WeComAPIError(81013, f"invaliduser {data.get('invaliduser')}")
        return data

    def send_texts(self, user_id: str, contents: Sequence[str]) -> None:
        """Send several texts in order; stops at the first failure (raised)."""
        for content in contents:
            self.send_text(user_id, content)

    def _call(
        self, method: str, path: str, params: Dict[str, str], body: Optional[Dict[str, Any]] = None
    ) -> Dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                params=params,
                data=payload,
                headers={"Content-Type": "application/json; charset=utf-8"} if payload is not None else None,
                timeout=self._timeout,
            )
        except requests.RequestException as error:
            # The URL holds the secret or the token: name the failure, not the request.
            raise WeComAPIError(-2, f"{method} {path} failed: {type(error).__name__}") from None
        try:
            data = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WeComAPIError(-2, f"HTTP {response.status_code}, not JSON") from None
        if not isinstance(data, dict):
            raise WeComAPIError(-2, f"HTTP {response.status_code}, not a JSON object")
        return data
