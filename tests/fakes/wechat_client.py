"""A simulated WeChat server-side client: builds the signed callbacks WeChat sends to an account's URL.

Plaintext mode: the message XML, ``signature = sha1(sorted(token, timestamp, nonce))`` in the query.
Safe mode (安全模式): ``<xml><ToUserName/><Encrypt/></xml>``, plus ``encrypt_type=aes`` and
``msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt))`` in the query; ``Encrypt`` and its signature
are made by wechatpy's ``WeChatCrypto`` (WeChat's scheme: random 16 bytes, length, XML, app id; AES-256-CBC,
PKCS#7). Compatibility mode (兼容模式): the same query, and the body carries the plaintext fields beside
``Encrypt``. Encrypted replies are checked (``MsgSignature``, app id) and opened by ``WeChatCrypto`` too.
Timestamps and ``CreateTime`` come from the bot's clock (:mod:`bot.clock`), as the server reads it.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass
from typing import Dict, Optional

import requests
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from bot import clock
from tests.fakes.wechat_api import TEST_ACCOUNT

_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def now() -> int:
    """Epoch seconds on the bot's clock: WeChat's servers and ours agree on the time."""
    return int(clock.utc_now().timestamp())


def sha1_signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


@dataclass(frozen=True)
class SignedRequest:
    """A callback ready to send: query parameters and body."""

    params: Dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What the account answered: HTTP status, raw body and, for a passive text reply, its fields."""

    status: int
    body: str
    fields: Optional[Dict[str, str]]

    @property
    def content(self) -> Optional[str]:
        return self.fields.get("Content") if self.fields else None

    @property
    def is_success(self) -> bool:
        return self.status == 200 and self.body.strip() in ("success", "")


class WeChatClient:
    """Builds and reads WeChat callbacks for one Official Account.

    Args:
        token: The account's Token.
        app_id: The account's AppID (ends every encrypted plaintext).
        encoding_aes_key: The EncodingAESKey; ``None`` for plaintext mode only.
        account: The account's original id (``ToUserName``).
    """

    def __init__(
        self, token: str, app_id: str, encoding_aes_key: Optional[str] = None, account: str = TEST_ACCOUNT
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.account = account
        self.crypto = WeChatCrypto(token, encoding_aes_key, app_id) if encoding_aes_key else None

    # --- messages ------------------------------------------------------------------------------------

    @staticmethod
    def new_msg_id() -> str:
        return str(next(_msg_ids))

    def text(
        self, openid: str, content: str, msg_id: Optional[str] = None, create_time: Optional[int] = None
    ) -> str:
        return self._xml(
            openid,
            "text",
            create_time,
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or self.new_msg_id()}</MsgId>",
        )

    def voice(self, openid: str, msg_id: Optional[str] = None) -> str:
        return self._xml(
            openid,
            "voice",
            None,
            "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format>"
            f"<MsgId>{msg_id or self.new_msg_id()}</MsgId>",
        )

    def image(self, openid: str, msg_id: Optional[str] = None) -> str:
        return self._xml(
            openid,
            "image",
            None,
            "<PicUrl><![CDATA[http://example.com/a.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>"
            f"<MsgId>{msg_id or self.new_msg_id()}</MsgId>",
        )

    def event(self, openid: str, event: str, create_time: Optional[int] = None, event_key: str = "") -> str:
        return self._xml(
            openid,
            "event",
            create_time,
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{event_key}]]></EventKey>",
        )

    def _xml(self, openid: str, msg_type: str, create_time: Optional[int], rest: str) -> str:
        created = now() if create_time is None else create_time
        return (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{rest}</xml>"
        )

    # --- signing and encryption ------------------------------------------------------------------------

    def sign(
        self,
        xml: str,
        *,
        encrypted: bool = False,
        compatible: bool = False,
        timestamp: Optional[int] = None,
        nonce: Optional[str] = None,
    ) -> SignedRequest:
        """The callback WeChat would send for ``xml``.

        Args:
            xml: The message.
            encrypted: Safe mode: only ``<Encrypt>`` in the body.
            compatible: Compatibility mode: the plaintext fields and ``<Encrypt>`` (implies ``encrypted``).
            timestamp: Epoch seconds; default now.
            nonce: Default a fresh random one, as WeChat's.
        """
        stamp = str(now() if timestamp is None else timestamp)
        nonce = nonce or str(secrets.randbelow(10**10))
        sender = re.search(r"<FromUserName>(?:<!\[CDATA\[)?([^<\]]*)", xml)
        params = {
            "signature": sha1_signature(self.token, stamp, nonce),
            "timestamp": stamp,
            "nonce": nonce,
            "openid": sender.group(1) if sender else "",
        }
        if not (encrypted or compatible):
            return SignedRequest(params, xml.encode("utf-8"))
        assert self.crypto is not None, "safe mode needs an EncodingAESKey"
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, stamp))["xml"]
        encrypt = envelope["Encrypt"]
        assert envelope["MsgSignature"] == sha1_signature(self.token, stamp, nonce, encrypt)
        params.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        element = f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        if compatible:
            body = xml.replace("</xml>", element + "</xml>")
        else:
            body = f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>{element}</xml>"
        return SignedRequest(params, body.encode("utf-8"))

    def verification(self, echostr: str, timestamp: Optional[int] = None) -> Dict[str, str]:
        """The query of the GET WeChat sends when the operator saves the server URL."""
        stamp, nonce = str(now() if timestamp is None else timestamp), "1234567"
        return {
            "signature": sha1_signature(self.token, stamp, nonce),
            "timestamp": stamp,
            "nonce": nonce,
            "echostr": echostr,
        }

    def read(self, status: int, body: str, *, encrypted: bool) -> Reply:
        """Check and open an answer: ``success``, a plaintext reply, or an encrypted one."""
        if status != 200 or body.strip() in ("success", ""):
            return Reply(status, body, None)
        fields = xmltodict.parse(body)["xml"]
        if encrypted:
            assert self.crypto is not None
            # Raises on a wrong MsgSignature or another app id, as WeChat would refuse the reply.
            plain = self.crypto.decrypt_message(body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
            fields = xmltodict.parse(plain)["xml"]
        else:
            assert "Encrypt" not in fields
        return Reply(status, body, dict(fields))

    # --- over HTTP ---------------------------------------------------------------------------------------

    def post(
        self, url: str, xml: str, *, encrypted: bool = False, timeout: float = 30.0, **sign: object
    ) -> Reply:
        """POST ``xml`` to the account's URL the way WeChat does and read the answer."""
        request = self.sign(xml, encrypted=encrypted, **sign)  # type: ignore[arg-type]
        response = requests.post(
            url,
            params=request.params,
            data=request.body,
            headers={"Content-Type": "text/xml"},
            timeout=timeout,
        )
        return self.read(response.status_code, response.text, encrypted=encrypted)
