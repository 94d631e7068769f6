"""WeCom's callback encryption, as its 加解密方案 specifies.

* ``msg_signature = sha1(sorted(token, timestamp, nonce, encrypt))`` — the same signature WeChat uses
  (:func:`bot.channels.wechat_security.sign`), here over the ``echostr`` of the URL check or the message's
  ``Encrypt``.
* ``Encrypt`` is base64 of AES-256-CBC, key = base64 of the 43-character EncodingAESKey plus ``=``, IV = the
  key's first 16 bytes, PKCS#7 padding to a multiple of 32 bytes, over
  ``random(16) + msg_len(4, network order) + msg + receiveid`` where ``receiveid`` is the CorpID.

Decryption is strict: a bad padding, a length that runs past the end or another corporation's receiveid is
refused, so nothing half-decrypted reaches the coach. Tests check it against wechatpy's enterprise crypto.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Optional, Tuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wechat_security import WeChatRequestError, sign

BLOCK_SIZE = 32  # WeCom pads to 32 bytes, not AES's 16
RANDOM_BYTES = 16
LENGTH_BYTES = 4


def pkcs7_pad(data: bytes) -> bytes:
    """``data`` padded to a multiple of 32 bytes (a full block of padding when it already is one)."""
    count = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([count]) * count


def pkcs7_unpad(data: bytes) -> bytes:
    """``data`` without its padding.

    Raises:
        ValueError: When the padding is not PKCS#7 to 32 bytes.
    """
    if not data or len(data) % BLOCK_SIZE:
        raise ValueError("not a whole number of blocks")
    count = data[-1]
    if not 1 <= count <= BLOCK_SIZE or data[-count:] != bytes([count]) * count:
        raise ValueError("bad padding")
    return data[:-count]


@dataclass(frozen=True)
class WeComCrypto:
    """Checks, decrypts and encrypts callbacks of one WeCom app.

    Args:
        token: The Token set on the app's 接收消息 page.
        encoding_aes_key: The EncodingAESKey set there (43 characters).
        corp_id: The CorpID: every plaintext ends with it (``receiveid``).
    """

    token: str
    encoding_aes_key: str
    corp_id: str

    def __post_init__(self) -> None:
        """Fail early on a key WeCom could not have issued."""
        if len(self.encoding_aes_key) != 43:
            raise ValueError(
                "WECOM_ENCODING_AES_KEY must be the 43 characters shown on the app's 接收消息 page"
            )
        try:
            key = base64.b64decode(self.encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise ValueError("WECOM_ENCODING_AES_KEY is not a valid EncodingAESKey") from None
        if len(key) != 32:
            raise ValueError("WECOM_ENCODING_AES_KEY is not a valid EncodingAESKey")

    @property
    def _key(self) -> bytes:
        return base64.b64decode(self.encoding_aes_key + "=")

    def _cipher(self) -> Cipher:
        key = self._key
        return Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def check_signature(
        self, msg_signature: Optional[str], timestamp: str, nonce: str, encrypted: str
    ) -> None:
        """Refuse (403) a request whose ``msg_signature`` is not WeCom's over ``encrypted``.

        Raises:
            WeChatRequestError: On a missing or wrong signature.
        """
        if not msg_signature or not timestamp or not nonce:
            raise WeChatRequestError(403, "missing msg_signature, timestamp or nonce")
        if not hmac.compare_digest(sign(self.token, timestamp, nonce, encrypted), msg_signature.lower()):
            raise WeChatRequestError(403, "bad msg_signature")

    def decrypt(self, msg_signature: Optional[str], timestamp: str, nonce: str, encrypted: str) -> str:
        """The plaintext of ``encrypted`` (an ``echostr`` or an ``Encrypt``) once its signature checks out.

        Raises:
            WeChatRequestError: 403 for a bad signature or another corporation's message, 400 for garbage.
        """
        self.check_signature(msg_signature, timestamp, nonce, encrypted)
        try:
            raw = base64.b64decode(encrypted, validate=True)
            if not raw or len(raw) % BLOCK_SIZE:
                raise ValueError("ciphertext is not a whole number of blocks")
            decryptor = self._cipher().decryptor()
            content = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
            if len(content) < RANDOM_BYTES + LENGTH_BYTES:
                raise ValueError("plaintext too short")
            (length,) = struct.unpack("!I", content[RANDOM_BYTES : RANDOM_BYTES + LENGTH_BYTES])
            start = RANDOM_BYTES + LENGTH_BYTES
            if start + length > len(content):
                raise ValueError("msg_len runs past the end")
            message = content[start : start + length].decode("utf-8")
            receive_id = content[start + length :].decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise WeChatRequestError(400, "cannot decrypt the message") from None
        if not hmac.compare_digest(receive_id.encode("utf-8"), self.corp_id.encode("utf-8")):
            raise WeChatRequestError(403, "message for another corporation (receiveid)")
        return message

    def encrypt(
        self, message: str, timestamp: str, nonce: str, random: Optional[bytes] = None
    ) -> Tuple[str, str]:
        """``message`` encrypted for this app, and the ``msg_signature`` over it (a passive reply's fields).

        Args:
            message: The plaintext (XML for a passive reply).
            timestamp: The reply's timestamp.
            nonce: The reply's nonce.
            random: The 16 random bytes to start with (default: fresh ones).

        Returns:
            ``(encrypt, msg_signature)``.
        """
        body = message.encode("utf-8")
        prefix = random if random is not None else os.urandom(RANDOM_BYTES)
        if len(prefix) != RANDOM_BYTES:
            raise ValueError("random must be 16 bytes")
        plain = pkcs7_pad(prefix + struct.pack("!I", len(body)) + body + self.corp_id.encode("utf-8"))
        encryptor = self._cipher().encryptor()
        encrypted = base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")
        return encrypted, sign(self.token, timestamp, nonce, encrypted)
