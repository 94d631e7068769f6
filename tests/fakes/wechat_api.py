"""A fake WeChat API: a real HTTP server on a free port that issues access tokens and takes
customer-service messages, recording everything it receives.

    GET  /cgi-bin/token?grant_type=client_credential&appid=…&secret=…
    POST /cgi-bin/message/custom/send?access_token=…
    POST /cgi-bin/message/template/send?access_token=…   (template messages: touser, template_id, data)

Tokens can be expired on demand (the next send gets errcode 42001) and sends can be made to fail.
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

# The settings the test servers run with (see tests/conftest.py and tests/e2e/test_wechat_channel.py).
TEST_TOKEN = "wuye-test-token"
TEST_APP_ID = "wx0123456789abcdef"
TEST_APP_SECRET = "test-app-secret-0123456789"
TEST_ENCODING_AES_KEY = (
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as 公众平台 issues them
)
TEST_ACCOUNT = "gh_0123456789ab"


@dataclass
class SentMessage:
    """One customer-service message as the fake API received it."""

    touser: str
    msgtype: str
    content: Optional[str]
    access_token: str
    raw: bytes


@dataclass
class SentTemplate:
    """One template message as the fake API received it (``data``: field → value)."""

    touser: str
    template_id: str
    data: Dict[str, str]
    msgid: int
    raw: bytes


@dataclass
class FakeWeChatAPI:
    """The fake API server; ``start()`` it, use ``base_url``, ``stop()`` it."""

    app_id: str = TEST_APP_ID
    app_secret: str = TEST_APP_SECRET
    token_requests: int = 0
    sent: List[SentMessage] = field(default_factory=list)
    rejected: List[Dict[str, Any]] = field(default_factory=list)
    templates: List[SentTemplate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._valid_tokens: set[str] = set()
        self._expired_tokens: set[str] = set()
        self._counter = itertools.count(1)
        self._fail_sends: List[int] = []
        self._changed = threading.Condition()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeWeChatAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path != "/cgi-bin/token":
                    return self._json({"errcode": 404, "errmsg": "not found"}, 404)
                return self._json(fake._issue_token(_first(parse_qs(url.query))))

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/cgi-bin/message/template/send":
                    return self._json(fake._send_template(_first(parse_qs(url.query)), raw))
                if url.path != "/cgi-bin/message/custom/send":
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
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-wechat-api", daemon=True
        )
        self._thread.start()
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

    # --- controls and inspection ---------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (the next send gets 42001)."""
        with self._changed:
            self._expired_tokens |= self._valid_tokens
            self._valid_tokens.clear()

    def fail_next_sends(self, *errcodes: int) -> None:
        """The next sends answer these error codes, in order."""
        with self._changed:
            self._fail_sends.extend(errcodes)

    def texts_for(self, openid: str) -> List[str]:
        with self._changed:
            return [message.content or "" for message in self.sent if message.touser == openid]

    def wait_for_texts(self, openid: str, count: int, timeout: float = 30.0) -> List[str]:
        """Block until ``openid`` has received at least ``count`` messages; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                texts = [m.content or "" for m in self.sent if m.touser == openid]
                remaining = deadline - time.monotonic()
                if len(texts) >= count or remaining <= 0:
                    return texts
                self._changed.wait(remaining)

    # --- the API ---------------------------------------------------------------------------------------

    def _issue_token(self, query: Dict[str, str]) -> Dict[str, Any]:
        with self._changed:
            self.token_requests += 1
            if query.get("grant_type") != "client_credential":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            if query.get("appid") != self.app_id:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if query.get("secret") != self.app_secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            token = f"ACCESS_TOKEN_{next(self._counter)}"
            self._valid_tokens.add(token)
            return {"access_token": token, "expires_in": 7200}

    def _send(self, query: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        token = query.get("access_token", "")
        with self._changed:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return {"errcode": 47001, "errmsg": "data format error"}
            if token in self._expired_tokens:
                self.rejected.append({"errcode": 42001, **body})
                return {"errcode": 42001, "errmsg": "access_token expired"}
            if token not in self._valid_tokens:
                self.rejected.append({"errcode": 40001, **body})
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            if self._fail_sends:
                errcode = self._fail_sends.pop(0)
                self.rejected.append({"errcode": errcode, **body})
                return {"errcode": errcode, "errmsg": "injected failure"}
            text = body.get("text") or {}
            self.sent.append(
                SentMessage(
                    touser=str(body.get("touser")),
                    msgtype=str(body.get("msgtype")),
                    content=text.get("content"),
                    access_token=token,
                    raw=raw,
                )
            )
            self._changed.notify_all()
        return {"errcode": 0, "errmsg": "ok"}

    def _send_template(self, query: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        """WeChat's ``message/template/send``: ``{"errcode": 0, "errmsg": "ok", "msgid": …}`` or an error."""
        token = query.get("access_token", "")
        with self._changed:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return {"errcode": 47001, "errmsg": "data format error"}
            if token not in self._valid_tokens or token in self._expired_tokens:
                self.rejected.append({"errcode": 40001, **body})
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            if not body.get("template_id"):
                self.rejected.append({"errcode": 40037, **body})
                return {"errcode": 40037, "errmsg": "invalid template_id"}
            if not body.get("touser"):
                self.rejected.append({"errcode": 40003, **body})
                return {"errcode": 40003, "errmsg": "invalid openid"}
            if self._fail_sends:
                errcode = self._fail_sends.pop(0)
                self.rejected.append({"errcode": errcode, **body})
                return {"errcode": errcode, "errmsg": "injected failure"}
            data = body.get("data") or {}
            msgid = next(self._counter) + 1000
            self.templates.append(
                SentTemplate(
                    touser=str(body["touser"]),
                    template_id=str(body["template_id"]),
                    data={key: str((value or {}).get("value", "")) for key, value in data.items()},
                    msgid=msgid,
                    raw=raw,
                )
            )
            self._changed.notify_all()
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}


def _first(query: Dict[str, List[str]]) -> Dict[str, str]:
    return {name: values[0] for name, values in query.items() if values}


_shared: Optional[FakeWeChatAPI] = None
_shared_lock = threading.Lock()


def shared_fake_api() -> FakeWeChatAPI:
    """The fake API the live test servers talk to: one per test process, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FakeWeChatAPI().start()
        return _shared


def wechat_test_env() -> Dict[str, str]:
    """Environment for the live Rasa server: the WeChat channel in safe mode, API on the shared fake."""
    return {
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APP_ID": TEST_APP_ID,
        "WECHAT_APP_SECRET": TEST_APP_SECRET,
        "WECHAT_ENCODING_AES_KEY": TEST_ENCODING_AES_KEY,
        "WECHAT_API_BASE_URL": shared_fake_api().base_url,
    }
