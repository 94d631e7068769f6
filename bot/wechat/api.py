"""The few WeChat Official Account APIs the channel calls: access token and customer-service messages.

The access token (``GET /cgi-bin/token``) lives two hours; fetching a new one invalidates the old one after
a short grace period, so it is cached — in memory and in a shared cache (the database) that every server
process reads — and refreshed shortly before it expires or when WeChat says it is invalid (40001, 42001,
40014). Customer-service messages (``POST /cgi-bin/message/custom/send``) reach a user who wrote within
the last 48 hours and need the account's 客服消息 permission.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from typing import Any, Dict, Optional, Protocol, Sequence

import aiohttp

from bot.wechat.store import CachedToken

logger = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid, malformed, expired access token
REFRESH_MARGIN_SECONDS = 300
_HINTS = {
    40164: "this server's IP address is not on the account's IP whitelist (公众平台 → 基本配置 → IP白名单)",
    40013: "WECHAT_APP_ID is wrong",
    40125: "WECHAT_APP_SECRET is wrong",
    45015: "the user has not written in the last 48 hours",
    48001: "the account lacks the customer-service message permission (客服消息)",
    43004: "the user does not follow the account",
}


class WeChatAPIError(Exception):
    """WeChat answered with an error code (or not at all).

    Args:
        errcode: WeChat's ``errcode`` (``-2`` for transport errors and unusable answers).
        errmsg: WeChat's ``errmsg`` or a description of the failure.
    """

    def __init__(self, errcode: int, errmsg: str) -> None:
        hint = _HINTS.get(errcode)
        super().__init__(f"WeChat API error {errcode}: {errmsg}" + (f" — {hint}" if hint else ""))
        self.errcode = errcode
        self.errmsg = errmsg


class TokenCache(Protocol):
    """A shared store for the access token (synchronous: called in an executor thread)."""

    def get(self, app_id: str) -> Optional[CachedToken]:
        """The stored token, expired or not."""

    def put(self, app_id: str, token: CachedToken) -> None:
        """Store a new token."""

    def invalidate(self, app_id: str, token: str) -> None:
        """Forget ``token`` if it is the stored one."""


class WeChatAPI:
    """Client of the WeChat API under a configurable base URL (a fake one in tests).

    Args:
        base_url: ``https://api.weixin.qq.com`` in production.
        app_id: The account's AppID.
        app_secret: The account's AppSecret.
        shared_cache: Where server processes share the token; ``None`` keeps it in this process only.
        timeout: Seconds per HTTP request.
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        shared_cache: Optional[TokenCache] = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._app_secret = app_secret
        self._shared = shared_cache
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: Optional[CachedToken] = None
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    @staticmethod
    def _fresh(token: Optional[CachedToken]) -> bool:
        return token is not None and token.expires_at - REFRESH_MARGIN_SECONDS > time.time()

    async def access_token(self, session: aiohttp.ClientSession, *, invalid: Optional[str] = None) -> str:
        """A valid access token: cached, shared, or fetched.

        Args:
            session: The HTTP session to fetch with.
            invalid: A token WeChat just refused; it is dropped from every cache first.

        Raises:
            WeChatAPIError: When WeChat refuses to issue a token (wrong secret, IP not whitelisted …).
        """
        async with self._lock():
            if invalid is not None:
                if self._token is not None and self._token.token == invalid:
                    self._token = None
                if self._shared is not None:
                    await self._in_thread(self._shared.invalidate, self.app_id, invalid)
            if self._fresh(self._token):
                assert self._token is not None
                return self._token.token
            if self._shared is not None:
                shared = await self._in_thread(self._shared.get, self.app_id)
                if self._fresh(shared) and shared.token != invalid:
                    self._token = shared
                    return str(shared.token)
            data = await self._get_json(
                session,
                "/cgi-bin/token",
                {"grant_type": "client_credential", "appid": self.app_id, "secret": self._app_secret},
            )
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeChatAPIError(
                    int(data.get("errcode") or -2), str(data.get("errmsg") or "no access_token")
                )
            self._token = CachedToken(
                token=token, expires_at=time.time() + int(data.get("expires_in") or 7200)
            )
            if self._shared is not None:
                await self._in_thread(self._shared.put, self.app_id, self._token)
            logger.info("wechat: fetched a new access token for %s", self.app_id)
            return token

    async def send_text(
        self, openid: str, content: str, session: Optional[aiohttp.ClientSession] = None
    ) -> None:
        """Send one customer-service text message to ``openid``.

        Raises:
            WeChatAPIError: When WeChat refuses the message (after one retry with a fresh token).
        """
        if session is None:
            async with aiohttp.ClientSession(timeout=self._timeout) as own:
                return await self.send_text(openid, content, own)
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        token = await self.access_token(session)
        data = await self._post_json(session, "/cgi-bin/message/custom/send", token, body)
        if int(data.get("errcode") or 0) in TOKEN_ERRORS:
            token = await self.access_token(session, invalid=token)
            data = await self._post_json(session, "/cgi-bin/message/custom/send", token, body)
        errcode = int(data.get("errcode") or 0)
        if errcode != 0:
            raise WeChatAPIError(errcode, str(data.get("errmsg") or ""))

    async def send_template(
        self, openid: str, template_id: str, data: Dict[str, str], session: Optional[aiohttp.ClientSession] = None
    ) -> int:
        """Send a template message (``POST /cgi-bin/message/template/send``; verified service accounts only).

        Args:
            openid: The follower.
            template_id: The template chosen in 公众平台 → 模板消息.
            data: The template's fields (``first``, ``keyword1`` …) and their values.
            session: The HTTP session to send with (default: a new one for this message).

        Returns:
            WeChat's ``msgid``.

        Raises:
            WeChatAPIError: When WeChat refuses the message (after one retry with a fresh token).
        """
        if session is None:
            async with aiohttp.ClientSession(timeout=self._timeout) as own:
                return await self.send_template(openid, template_id, data, own)
        body = {"touser": openid, "template_id": template_id, "data": {k: {"value": v} for k, v in data.items()}}
        token = await self.access_token(session)
        answer = await self._post_json(session, "/cgi-bin/message/template/send", token, body)
        if int(answer.get("errcode") or 0) in TOKEN_ERRORS:
            token = await self.access_token(session, invalid=token)
            answer = await self._post_json(session, "/cgi-bin/message/template/send", token, body)
        errcode = int(answer.get("errcode") or 0)
        if errcode != 0:
            raise WeChatAPIError(errcode, str(answer.get("errmsg") or ""))
        return int(answer.get("msgid") or 0)

    async def send_texts(self, openid: str, contents: Sequence[str]) -> None:
        """Send several texts in order over one connection; stops at the first failure."""
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            for content in contents:
                await self.send_text(openid, content, session)

    async def _get_json(
        self, session: aiohttp.ClientSession, path: str, params: Dict[str, str]
    ) -> Dict[str, Any]:
        try:
            async with session.get(self.base_url + path, params=params) as response:
                return _json_object(await response.read(), response.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise WeChatAPIError(
                -2, f"GET {path} failed: {type(error).__name__}"
            ) from None  # URL has the secret

    async def _post_json(
        self, session: aiohttp.ClientSession, path: str, token: str, body: Dict[str, Any]
    ) -> Dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")  # WeChat shows \\uXXXX literally
        try:
            async with session.post(
                self.base_url + path,
                params={"access_token": token},
                data=payload,
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as response:
                return _json_object(await response.read(), response.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise WeChatAPIError(-2, f"POST {path} failed: {type(error).__name__}") from None


def _json_object(raw: bytes, status: int) -> Dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeChatAPIError(-2, f"HTTP {status}, not JSON") from None
    if not isinstance(data, dict):
        raise WeChatAPIError(-2, f"HTTP {status}, not a JSON object")
    return data


def client_from_settings(settings: Any = None) -> Optional[WeChatAPI]:
    """The WeChat API client for the configured AppID and AppSecret, its token cached in the database.

    The one way every process builds it (the Rasa process's deliverer, the reminder worker).

    Args:
        settings: ``bot.settings.Settings``; default the process's.

    Returns:
        The client, or None when ``WECHAT_APP_ID`` or ``WECHAT_APP_SECRET`` is unset.
    """
    from bot.wechat.store import DatabaseTokenCache, WeChatStore

    if settings is None:
        from bot.settings import get_settings

        settings = get_settings()
    secret = settings.wechat_app_secret.get_secret_value() if settings.wechat_app_secret else ""
    app_id = (settings.wechat_app_id or "").strip()
    if not app_id or not secret.strip():
        return None
    return WeChatAPI(settings.wechat_api_base_url, app_id, secret.strip(), DatabaseTokenCache(WeChatStore()))
