"""WeCom's callback crypto (apps/staff/wecom/crypto.py) against wechatpy's enterprise implementation, both
ways, its strictness on forged or damaged input, and how long answers are split for message/send."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from apps.staff.wecom.api import MAX_CONTENT_BYTES, split_text
from apps.staff.wecom.crypto import BLOCK_SIZE, WeComCrypto, pkcs7_pad, pkcs7_unpad
from bot.channels.wechat_security import WeChatRequestError
from tests.fakes.wecom_api import TEST_CORP_ID, TEST_ENCODING_AES_KEY, TEST_TOKEN
from tests.fakes.wecom_client import WeComClient, signature

KEY = base64.b64decode(TEST_ENCODING_AES_KEY + "=")
MESSAGE = "<xml><Content><![CDATA[业主说房子没住人，不交物业费]]></Content></xml>"


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TEST_TOKEN, TEST_ENCODING_AES_KEY, TEST_CORP_ID)


def wechatpy_encrypt(text: str, corp_id: str = TEST_CORP_ID) -> str:
    return PrpCrypto(KEY).encrypt(text, corp_id).decode("ascii")


def test_decrypts_what_wechatpy_encrypts(crypto: WeComCrypto) -> None:
    encrypted = wechatpy_encrypt(MESSAGE)
    assert (
        crypto.decrypt(signature(TEST_TOKEN, "1700000000", "42", encrypted), "1700000000", "42", encrypted)
        == MESSAGE
    )


def test_wechatpy_decrypts_what_it_encrypts_and_accepts_its_signature(crypto: WeComCrypto) -> None:
    encrypted, msg_signature = crypto.encrypt(MESSAGE, "1700000000", "42")
    assert msg_signature == signature(TEST_TOKEN, "1700000000", "42", encrypted)
    plain = WeChatCrypto(TEST_TOKEN, TEST_ENCODING_AES_KEY, TEST_CORP_ID).decrypt_message(
        {"Encrypt": encrypted}, msg_signature, "1700000000", "42"
    )
    assert plain == MESSAGE


def test_layout_is_random_length_message_corp_id_padded_to_32(crypto: WeComCrypto) -> None:
    encrypted, _ = crypto.encrypt("abc", "1", "2", random=b"R" * 16)
    raw = base64.b64decode(encrypted)
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).decryptor()
    plain = decryptor.update(raw) + decryptor.finalize()
    body = b"R" * 16 + struct.pack("!I", 3) + b"abc" + TEST_CORP_ID.encode()
    assert len(plain) % BLOCK_SIZE == 0 and len(plain) == 64
    assert plain == body + bytes([64 - len(body)]) * (64 - len(body))


def test_url_verification_echostr_from_the_simulated_client(crypto: WeComCrypto) -> None:
    query = WeComClient().verification("1616140317555161061")
    plain = crypto.decrypt(query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"])
    assert plain == "1616140317555161061"


def test_forged_signature_is_refused_403(crypto: WeComCrypto) -> None:
    encrypted = wechatpy_encrypt(MESSAGE)
    forged = signature("another-token", "1700000000", "42", encrypted)
    with pytest.raises(WeChatRequestError) as refused:
        crypto.decrypt(forged, "1700000000", "42", encrypted)
    assert refused.value.status == 403
    with pytest.raises(WeChatRequestError) as missing:
        crypto.decrypt(None, "1700000000", "42", encrypted)
    assert missing.value.status == 403


def test_signature_over_other_ciphertext_is_refused(crypto: WeComCrypto) -> None:
    genuine = wechatpy_encrypt(MESSAGE)
    other = wechatpy_encrypt("<xml>other</xml>")
    with pytest.raises(WeChatRequestError) as refused:
        crypto.decrypt(signature(TEST_TOKEN, "1", "2", genuine), "1", "2", other)
    assert refused.value.status == 403


def test_another_corporations_message_is_refused(crypto: WeComCrypto) -> None:
    encrypted = wechatpy_encrypt(MESSAGE, corp_id="ww_someone_else")
    with pytest.raises(WeChatRequestError) as refused:
        crypto.decrypt(signature(TEST_TOKEN, "1", "2", encrypted), "1", "2", encrypted)
    assert refused.value.status == 403 and "receiveid" in refused.value.reason
    with pytest.raises(InvalidCorpIdException):  # the reference agrees
        PrpCrypto(KEY).decrypt(encrypted, TEST_CORP_ID)


@pytest.mark.parametrize(
    "damage", ["not base64 !", "", base64.b64encode(b"x" * 16).decode(), base64.b64encode(b"x" * 32).decode()]
)
def test_garbage_is_refused_400(crypto: WeComCrypto, damage: str) -> None:
    with pytest.raises(WeChatRequestError) as refused:
        crypto.decrypt(signature(TEST_TOKEN, "1", "2", damage), "1", "2", damage)
    assert refused.value.status in (400, 403)
    if damage:
        assert refused.value.status == 400


def test_a_length_past_the_end_is_refused(crypto: WeComCrypto) -> None:
    plain = pkcs7_pad(b"R" * 16 + struct.pack("!I", 999) + b"abc" + TEST_CORP_ID.encode())
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).encryptor()
    encrypted = base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
    with pytest.raises(WeChatRequestError) as refused:
        crypto.decrypt(signature(TEST_TOKEN, "1", "2", encrypted), "1", "2", encrypted)
    assert refused.value.status == 400


def test_padding_is_pkcs7_to_32_bytes() -> None:
    assert len(pkcs7_pad(b"a" * 31)) == 32 and pkcs7_pad(b"a" * 31)[-1] == 1
    assert pkcs7_pad(b"a" * 32) == b"a" * 32 + bytes([32]) * 32
    assert pkcs7_unpad(pkcs7_pad(b"hello")) == b"hello"
    for bad in (b"a" * 31 + b"\x00", b"a" * 31 + b"\x21", b"a" * 30 + b"\x01\x02", b"a" * 16):
        with pytest.raises(ValueError):
            pkcs7_unpad(bad)


@pytest.mark.parametrize("key", ["short", "a" * 44, "*" * 43])
def test_a_key_wecom_could_not_issue_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="WECOM_ENCODING_AES_KEY"):
        WeComCrypto(TEST_TOKEN, key, TEST_CORP_ID)


def test_split_text_keeps_messages_within_2048_bytes_and_cuts_at_line_ends() -> None:
    lines = [f"第{number}行：" + "说明" * 60 for number in range(40)]
    parts = split_text("\n".join(lines))
    assert 1 < len(parts) <= 4
    assert all(len(part.encode("utf-8")) <= MAX_CONTENT_BYTES for part in parts)
    assert parts[0].startswith("第0行") and parts[1].startswith("第")  # a part starts at a line
    assert parts[-1].endswith("……")  # more than four messages' worth: the rest is left out, visibly


def test_split_text_of_a_short_answer_is_itself_and_a_long_line_is_cut_between_characters() -> None:
    assert split_text("  一句话就够了  \n") == ["一句话就够了"]
    assert split_text("") == []
    parts = split_text("长" * 1000)  # 3000 bytes, no line end
    assert "".join(parts) == "长" * 1000 and [len(part.encode()) for part in parts] == [2046, 954]
