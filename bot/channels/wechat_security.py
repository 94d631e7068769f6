"""WeChat's callback security: signatures, timestamps, safe-mode encryption, and XML in and out.

WeChat signs every callback with the account's Token: ``signature = sha1(sorted(token, timestamp, nonce))``
in the query string. In safe mode (``encrypt_type=aes``) the body carries ``<Encrypt>`` — AES-256-CBC with
the EncodingAESKey, the app id appended — and ``msg_signature`` also signs the ciphertext. The AES work is
wechatpy's ``WeChatCrypto``, the reference implementation of WeChat's scheme.
"""

from __future__ import annotations

import binascii
import hmac
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner

MAX_CLOCK_SKEW_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024


class WeChatRequestError(Exception):
    """A callback that must be refused; ``status`` is the HTTP status to answer with.

    Args:
        status: 400 (malformed), 403 (not from WeChat or replayed) or 503 (channel not configured).
        reason: Said in the response body and the log; never contains a secret.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted parts concatenated."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def check_signature(
    token: str, signature: Optional[str], timestamp: Optional[str], nonce: Optional[str]
) -> None:
    """Refuse (403) a callback whose ``signature`` is not WeChat's for this Token.

    Raises:
        WeChatRequestError: On a missing or wrong signature.
    """
    if not signature or not timestamp or not nonce:
        raise WeChatRequestError(403, "missing signature, timestamp or nonce")
    if not hmac.compare_digest(sign(token, timestamp, nonce), signature.lower()):
        raise WeChatRequestError(403, "bad signature")


def check_timestamp(
    timestamp: Optional[str], now: Optional[float] = None, max_skew: float = MAX_CLOCK_SKEW_SECONDS
) -> int:
    """Refuse (403) a callback signed too long ago or in the future: replays of captured requests.

    Returns:
        The timestamp as an integer.

    Raises:
        WeChatRequestError: When the timestamp is missing, malformed or more than ``max_skew`` seconds away.
    """
    try:
        value = int(timestamp or "")
    except ValueError:
        raise WeChatRequestError(403, "bad timestamp") from None
    current = time.time() if now is None else now
    if abs(current - value) > max_skew:
        raise WeChatRequestError(403, "timestamp too far from now (replayed or clock skew)")
    return value


def parse_xml(body: bytes | str) -> Dict[str, Any]:
    """The ``<xml>`` element of a WeChat message as a dict.

    Document type declarations are refused outright, so no entity can be defined, expanded or fetched.

    Raises:
        WeChatRequestError: 400 for a body that is too large, not XML, or not a WeChat ``<xml>`` message.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise WeChatRequestError(400, "body too large")
    try:
        # WeChat sends UTF-8 only; other encodings (UTF-16) would hide a DOCTYPE from the check below.
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WeChatRequestError(400, "body is not UTF-8") from None
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise WeChatRequestError(400, "document type declarations are not accepted")
    try:
        document = xmltodict.parse(raw, disable_entities=True)
    except Exception:  # expat errors, bad encodings
        raise WeChatRequestError(400, "body is not XML") from None
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise WeChatRequestError(400, "body is not a WeChat <xml> message")
    return dict(root)


def _cdata(value: str) -> str:
    """``value`` as CDATA; a ``]]>`` inside is split across two sections."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(*, to_user: str, from_user: str, content: str, create_time: Optional[int] = None) -> str:
    """A passive text reply: the XML the webhook answers with."""
    created = int(time.time()) if create_time is None else create_time
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content>"
        "</xml>"
    )


@dataclass(frozen=True)
class SafeModeCipher:
    """Safe-mode (AES) decryption of callbacks and encryption of replies.

    Args:
        token: The Token configured in 公众平台.
        encoding_aes_key: The 43-character EncodingAESKey.
        app_id: The account's AppID (the plaintext ends with it; a different one is refused).
    """

    token: str
    encoding_aes_key: str
    app_id: str

    def __post_init__(self) -> None:
        """Fail early on a key WeChat could not have issued."""
        if len(self.encoding_aes_key) != 43:
            raise ValueError("WECHAT_ENCODING_AES_KEY must be the 43 characters shown in 公众平台")
        try:
            self._crypto()
        except (binascii.Error, AssertionError, ValueError):
            raise ValueError("WECHAT_ENCODING_AES_KEY is not a valid EncodingAESKey") from None

    def _crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.encoding_aes_key, self.app_id)

    def decrypt(
        self, envelope: Mapping[str, Any], msg_signature: Optional[str], timestamp: str, nonce: str
    ) -> str:
        """The plaintext XML of an encrypted callback whose ``msg_signature`` checks out.

        Raises:
            WeChatRequestError: 403 for a bad signature or another account's message, 400 for garbage.
        """
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise WeChatRequestError(400, "encrypted callback without <Encrypt>")
        if not msg_signature:
            raise WeChatRequestError(403, "missing msg_signature")
        try:
            return str(
                self._crypto().decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
            )
        except InvalidSignatureException:
            raise WeChatRequestError(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise WeChatRequestError(403, "message for another app id") from None
        except Exception:  # bad base64, bad padding, truncated plaintext
            raise WeChatRequestError(400, "cannot decrypt <Encrypt>") from None

    def encrypt(self, reply_xml: str, nonce: str, timestamp: Optional[str] = None) -> str:
        """The encrypted envelope (``Encrypt``, ``MsgSignature``, ``TimeStamp``, ``Nonce``) for a reply."""
        return str(self._crypto().encrypt_message(reply_xml, nonce, timestamp))
