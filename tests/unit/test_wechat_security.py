"""Signatures, timestamps, XML safety and safe-mode crypto, against messages built the way WeChat builds them."""

import time

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from bot.channels.wechat_security import (
    SafeModeCipher,
    WeChatRequestError,
    check_signature,
    check_timestamp,
    parse_xml,
    sign,
    text_reply_xml,
)
from tests.fakes.wechat_api import TEST_APP_ID, TEST_ENCODING_AES_KEY, TEST_TOKEN
from tests.fakes.wechat_client import WeChatClient, sha1_signature

client = WeChatClient(TEST_TOKEN, TEST_APP_ID, TEST_ENCODING_AES_KEY)


def test_signature_is_sha1_of_the_sorted_parts() -> None:
    # The example from WeChat's documentation of the algorithm: sort, concatenate, SHA-1.
    import hashlib

    expected = hashlib.sha1("".join(sorted(["token", "1409659813", "1372623149"])).encode()).hexdigest()
    assert sign("token", "1409659813", "1372623149") == expected


def test_wechat_signature_is_accepted() -> None:
    query = client.verification("echo")
    check_signature(TEST_TOKEN, query["signature"], query["timestamp"], query["nonce"])


@pytest.mark.parametrize(
    "signature,timestamp,nonce",
    [
        ("0" * 40, "1700000000", "1"),  # forged
        (None, "1700000000", "1"),
        (sha1_signature("other-token", "1700000000", "1"), "1700000000", "1"),  # another account's token
        (sha1_signature(TEST_TOKEN, "1700000000", "1"), "1700000001", "1"),  # timestamp changed after signing
    ],
)
def test_bad_signatures_are_refused_with_403(signature, timestamp, nonce) -> None:
    with pytest.raises(WeChatRequestError) as error:
        check_signature(TEST_TOKEN, signature, timestamp, nonce)
    assert error.value.status == 403


def test_timestamps_more_than_five_minutes_away_are_refused() -> None:
    now = time.time()
    assert check_timestamp(str(int(now) - 299), now) == int(now) - 299
    assert check_timestamp(str(int(now) + 299), now) == int(now) + 299
    for stale in (now - 301, now + 301, now - 86400):
        with pytest.raises(WeChatRequestError) as error:
            check_timestamp(str(int(stale)), now)
        assert error.value.status == 403
    for garbage in (None, "", "abc", "1.5"):
        with pytest.raises(WeChatRequestError):
            check_timestamp(garbage, now)


def test_xml_with_entities_or_doctype_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<xml><Content>&b;</Content></xml>"
    )
    external = '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Content>&x;</Content></xml>'
    for body in (bomb, external, b"<xml><a>" + b"x" * 70000 + b"</a></xml>", "not xml", "<other/>"):
        with pytest.raises(WeChatRequestError) as error:
            parse_xml(body)
        assert error.value.status == 400


def test_text_reply_escapes_cdata_terminators() -> None:
    xml = text_reply_xml(to_user="o1", from_user="gh", content="a]]>b<c>&", create_time=1)
    assert xmltodict.parse(xml)["xml"] == {
        "ToUserName": "o1",
        "FromUserName": "gh",
        "CreateTime": "1",
        "MsgType": "text",
        "Content": "a]]>b<c>&",
    }


def test_safe_mode_round_trip_with_wechats_own_encryption() -> None:
    cipher = SafeModeCipher(TEST_TOKEN, TEST_ENCODING_AES_KEY, TEST_APP_ID)
    xml = client.text("o1", "我欠多少物业费", msg_id="42")
    request = client.sign(xml, encrypted=True)
    envelope = parse_xml(request.body)
    assert "Content" not in envelope
    params = request.params
    assert cipher.decrypt(envelope, params["msg_signature"], params["timestamp"], params["nonce"]) == xml

    reply = cipher.encrypt(text_reply_xml(to_user="o1", from_user="gh", content="您好"), "nonce1")
    opened = client.read(200, reply, encrypted=True)
    assert opened.content == "您好"
    # ... and wechatpy, playing WeChat, opens it too.
    fields = xmltodict.parse(reply)["xml"]
    plain = WeChatCrypto(TEST_TOKEN, TEST_ENCODING_AES_KEY, TEST_APP_ID).decrypt_message(
        reply, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
    )
    assert "您好" in plain


def test_the_simulated_wechat_signs_and_encrypts_as_wechatpy_expects() -> None:
    # wechatpy, on the receiving side, opens what the simulated WeChat sends in safe and compatibility mode.
    crypto = WeChatCrypto(TEST_TOKEN, TEST_ENCODING_AES_KEY, TEST_APP_ID)
    xml = client.text("o1", "你好", msg_id="1")
    for compatible in (False, True):
        request = client.sign(xml, encrypted=True, compatible=compatible)
        params = request.params
        assert params["encrypt_type"] == "aes" and params["openid"] == "o1"
        check_signature(TEST_TOKEN, params["signature"], params["timestamp"], params["nonce"])
        opened = crypto.decrypt_message(
            request.body.decode("utf-8"), params["msg_signature"], params["timestamp"], params["nonce"]
        )
        assert opened == xml
        envelope = parse_xml(request.body)
        assert envelope["ToUserName"] == client.account
        assert (envelope.get("Content"), envelope.get("MsgId")) == (("你好", "1") if compatible else (None, None))


def test_safe_mode_refuses_forged_or_foreign_ciphertexts() -> None:
    cipher = SafeModeCipher(TEST_TOKEN, TEST_ENCODING_AES_KEY, TEST_APP_ID)
    request = client.sign(client.text("o1", "hi"), encrypted=True)
    envelope, params = parse_xml(request.body), request.params
    with pytest.raises(WeChatRequestError) as error:
        cipher.decrypt(envelope, "0" * 40, params["timestamp"], params["nonce"])
    assert error.value.status == 403
    with pytest.raises(WeChatRequestError) as error:
        cipher.decrypt(envelope, None, params["timestamp"], params["nonce"])
    assert error.value.status == 403

    other_app = WeChatClient(TEST_TOKEN, "wx_other_app", TEST_ENCODING_AES_KEY)
    foreign = other_app.sign(other_app.text("o1", "hi"), encrypted=True)
    with pytest.raises(WeChatRequestError) as error:
        cipher.decrypt(
            parse_xml(foreign.body),
            foreign.params["msg_signature"],
            foreign.params["timestamp"],
            foreign.params["nonce"],
        )
    assert error.value.status == 403

    garbage = "not-base64!!"
    signature = sha1_signature(TEST_TOKEN, "1", "2", garbage)
    with pytest.raises(WeChatRequestError) as error:
        cipher.decrypt({"Encrypt": garbage}, signature, "1", "2")
    assert error.value.status == 400


@pytest.mark.parametrize("key", ["short", "!" * 43])
def test_invalid_encoding_aes_keys_are_refused_at_start(key: str) -> None:
    with pytest.raises(ValueError, match="WECHAT_ENCODING_AES_KEY"):
        SafeModeCipher(TEST_TOKEN, key, TEST_APP_ID)
