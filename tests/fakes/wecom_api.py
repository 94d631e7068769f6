"""A fake WeCom server API: a real HTTP server on a free local port that issues access tokens and takes
application messages, speaking WeCom's JSON and recording everything it receives.

    GET  /cgi-bin/gettoken?corpid=…&corpsecret=…          → {"errcode":0,"errmsg":"ok","access_token":…,"expires_in":…}
    POST /cgi-bin/message/send?access_token=…             → {"errcode":0,"errmsg":"ok","invaliduser":"","msgid":…}

Tokens expire after ``expires_in`` seconds (42001), or at once on demand (:meth:`FakeWeComAPI.expire_tokens`);
unknown tokens get 40014; sends can be made to fail with any errcode; content over 2048 bytes is refused the
way a test would want to notice (WeCom itself would cut it).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

# The settings tests run with.
TEST_CORP_ID = "ww0123456789abcdef"
TEST_AGENT_ID = 1000002
TEST_SECRET = "wecom-test-secret-0123456789"
TEST_TOKEN = "wecom-test-token"
TEST_ENCODING_AES_KEY = "Wu4yeCoachKey0123456789abcdefghijklmnopqrST"  # 43 characters
MAX_CONTENT_BYTES = 2048


@dataclass
class SentMessage:
    """One message/send as the fake received it."""

    body: Dict[str, Any]
    access_token: str

    @property
    def touser(self) -> str:
        return str(self.body.get("touser"))

    @property
    def content(self) -> str:
        return str((self.body.get("text") or {}).get("content") or "")


@dataclass
class FakeWeComAPI:
    """The fake API server; ``start()`` it, point ``WECOM_API_BASE_URL`` at ``base_url``, ``stop()`` it."""

    corp_id: str = TEST_CORP_ID
    secret: str = TEST_SECRET
    agent_id: int = TEST_AGENT_ID
    expires_in: int = 7200
    token_requests: int = 0
    sent: List[SentMessage] = field(default_factory=list)
    rejected: List[Dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: Dict[str, float] = {}  # token -> expires at (monotonic)
        self._counter = itertools.count(1)
        self._fail_sends: List[int] = []
        self._changed = threading.Condition()
        self._server: Optional[ThreadingHTTPServer] = None

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeWeComAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path != "/cgi-bin/gettoken":
                    return self._json({"errcode": 404, "errmsg": "not found"}, 404)
                return self._json(fake._gettoken(_first(parse_qs(url.query))))

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path != "/cgi-bin/message/send":
                    return self._json({"errcode": 404, "errmsg": "not found"}, 404)
                return self._json(fake._send(_first(parse_qs(url.query)), raw))

            def _json(self, data: Dict[str, Any], status: int = 200) -> None:
                body = json.dumps(data, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-wecom-api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- controls and inspection -----------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far stops working now (the next send with one gets 42001)."""
        with self._changed:
            self._tokens = {token: 0.0 for token in self._tokens}

    def fail_next_sends(self, *errcodes: int) -> None:
        """The next sends answer these error codes, in order."""
        with self._changed:
            self._fail_sends.extend(errcodes)

    def messages_for(self, user_id: str) -> List[SentMessage]:
        with self._changed:
            return [message for message in self.sent if message.touser == user_id]

    def wait_for_messages(self, user_id: str, count: int, timeout: float = 60.0) -> List[SentMessage]:
        """Block until ``user_id`` has received at least ``count`` messages; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [message for message in self.sent if message.touser == user_id]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    # --- the API -------------------------------------------------------------------------------------------

    def _gettoken(self, query: Dict[str, str]) -> Dict[str, Any]:
        with self._changed:
            self.token_requests += 1
            if query.get("corpid") != self.corp_id:
                return {"errcode": 40013, "errmsg": "invalid corpid"}
            if query.get("corpsecret") != self.secret:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            token = f"WECOM_TOKEN_{next(self._counter)}"
            self._tokens[token] = time.monotonic() + self.expires_in
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}

    def _send(self, query: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        token = query.get("access_token", "")
        with self._changed:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return {"errcode": 40058, "errmsg": "invalid json"}
            if not isinstance(body, dict):
                return {"errcode": 40058, "errmsg": "invalid json"}
            expires = self._tokens.get(token)
            if expires is None:
                self.rejected.append({"errcode": 40014, **body})
                return {"errcode": 40014, "errmsg": "invalid access_token"}
            if expires <= time.monotonic():
                self.rejected.append({"errcode": 42001, **body})
                return {"errcode": 42001, "errmsg": "access_token expired"}
            if self._fail_sends:
                errcode = self._fail_sends.pop(0)
                self.rejected.append({"errcode": errcode, **body})
                return {"errcode": errcode, "errmsg": "injected failure"}
            if body.get("agentid") != self.agent_id:
                self.rejected.append({"errcode": 301002, **body})
                return {"errcode": 301002, "errmsg": "access_token and agentid mismatch"}
            content = (body.get("text") or {}).get("content")
            if body.get("msgtype") != "text" or not isinstance(content, str) or not content:
                self.rejected.append({"errcode": 41016, **body})
                return {"errcode": 41016, "errmsg": "missing text content"}
            if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
                self.rejected.append({"errcode": 45002, **body})
                return {"errcode": 45002, "errmsg": "content size out of limit"}
            self.sent.append(SentMessage(body=body, access_token=token))
            self._changed.notify_all()
            return {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"msg{len(self.sent)}"}


def _first(query: Dict[str, List[str]]) -> Dict[str, str]:
    return {name: values[0] for name, values in query.items() if values}


def wecom_test_env(base_url: str) -> Dict[str, str]:
    """Environment for a staff console whose WeCom channel talks to the fake at ``base_url``."""
    return {
        "WECOM_CORP_ID": TEST_CORP_ID,
        "WECOM_AGENT_ID": str(TEST_AGENT_ID),
        "WECOM_SECRET": TEST_SECRET,
        "WECOM_TOKEN": TEST_TOKEN,
        "WECOM_ENCODING_AES_KEY": TEST_ENCODING_AES_KEY,
        "WECOM_API_BASE_URL": base_url,
    }
