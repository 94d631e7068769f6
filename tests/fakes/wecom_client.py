"""A simulated WeCom server: builds the signed, encrypted callbacks WeCom sends to a self-built app's URL.

The crypto is wechatpy's enterprise implementation (``wechatpy.enterprise.crypto``: ``WeChatCrypto`` and
``PrpCrypto``, random 16 bytes + length + message + CorpID, AES-256-CBC, PKCS#7 to 32 bytes) and its
``WeChatSigner`` — a maintained library, not the code under test — so the channel is checked against an
independent implementation of WeCom's scheme.

* URL verification: ``GET ?msg_signature&timestamp&nonce&echostr`` with ``echostr`` encrypted and
  ``msg_signature = sha1(sorted(token, timestamp, nonce, echostr))``.
* Messages: ``POST ?msg_signature&timestamp&nonce`` with
  ``<xml><ToUserName>CorpID</ToUserName><AgentID>…</AgentID><Encrypt>…</Encrypt></xml>``.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Dict, Optional

import xmltodict
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

from bot import clock
from tests.fakes.wecom_api import TEST_AGENT_ID, TEST_CORP_ID, TEST_ENCODING_AES_KEY, TEST_TOKEN

_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def now() -> int:
    """Epoch seconds on the bot's clock: WeCom's servers and ours agree on the time."""
    return int(clock.utc_now().timestamp())


def signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


@dataclass(frozen=True)
class SignedRequest:
    """A callback ready to send: query parameters and body."""

    params: Dict[str, str]
    body: bytes


class WeComClient:
    """Builds WeCom callbacks for one self-built app.

    Args:
        token: The app's callback Token.
        encoding_aes_key: Its EncodingAESKey.
        corp_id: The CorpID (``receiveid``, ``ToUserName``).
        agent_id: The app's AgentId.
    """

    def __init__(
        self,
        token: str = TEST_TOKEN,
        encoding_aes_key: str = TEST_ENCODING_AES_KEY,
        corp_id: str = TEST_CORP_ID,
        agent_id: int = TEST_AGENT_ID,
    ) -> None:
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
        self.prp = PrpCrypto(base64.b64decode(encoding_aes_key + "="))

    @staticmethod
    def new_msg_id() -> str:
        return str(next(_msg_ids))

    # --- messages ------------------------------------------------------------------------------------

    def text(
        self, user_id: str, content: str, *, msg_id: Optional[str] = None, to: Optional[str] = None
    ) -> str:
        return self._xml(
            user_id,
            "text",
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or self.new_msg_id()}</MsgId>",
            to=to,
        )

    def image(self, user_id: str) -> str:
        return self._xml(
            user_id,
            "image",
            "<PicUrl><![CDATA[http://example.com/a.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>"
            f"<MsgId>{self.new_msg_id()}</MsgId>",
        )

    def event(self, user_id: str, event: str = "enter_agent") -> str:
        return self._xml(
            user_id, "event", f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey>"
        )

    def _xml(self, user_id: str, msg_type: str, rest: str, *, to: Optional[str] = None) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{to or self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user_id}]]></FromUserName>"
            f"<CreateTime>{now()}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{rest}"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    # --- signing and encryption ----------------------------------------------------------------------

    def sign(
        self, xml: str, *, timestamp: Optional[int] = None, nonce: Optional[str] = None
    ) -> SignedRequest:
        """The POST WeCom would send for the plaintext message ``xml``."""
        stamp = str(now() if timestamp is None else timestamp)
        nonce = nonce or str(secrets.randbelow(10**10))
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, stamp))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID>"
            f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
        )
        params = {"msg_signature": envelope["MsgSignature"], "timestamp": stamp, "nonce": nonce}
        return SignedRequest(params, body.encode("utf-8"))

    def verification(self, echo: str, *, timestamp: Optional[int] = None) -> Dict[str, str]:
        """The query of the GET WeCom sends when the administrator saves the callback URL."""
        stamp = str(now() if timestamp is None else timestamp)
        nonce = str(secrets.randbelow(10**10))
        echostr = self.prp.encrypt(echo, self.corp_id).decode("ascii")
        return {
            "msg_signature": signature(self.token, stamp, nonce, echostr),
            "timestamp": stamp,
            "nonce": nonce,
            "echostr": echostr,
        }
