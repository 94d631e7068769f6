"""Signed web chat session ids: issued by the server, stamped with their issue time, kept when genuine, replaced
when forged, altered or of the first form (no issue time)."""

import datetime as dt
import hashlib
import hmac
import re

import pytest

from bot import clock
from bot.conversations.session_ids import (
    SessionIdSigner,
    issued_at,
    looks_like_session_id,
    signer_from_settings,
)
from bot.settings import get_settings

SECRET = "test-secret-for-webchat"


@pytest.fixture
def signer() -> SessionIdSigner:
    return SessionIdSigner(SECRET)


def test_issued_ids_are_signed_unguessable_and_fit_the_sender_id_column(signer: SessionIdSigner) -> None:
    ids = {signer.issue() for _ in range(200)}
    assert len(ids) == 200
    for session_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}\.[0-9]{10}\.[0-9a-f]{64}", session_id)
        assert signer.is_valid(session_id)
        assert looks_like_session_id(session_id)
        assert len(session_id) <= 128  # conversation_links.sender_id


def test_an_id_carries_the_moment_the_clock_issued_it(signer: SessionIdSigner) -> None:
    moment = dt.datetime(2026, 11, 25, 10, 0, 7, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with clock.frozen(moment):
        session_id = signer.issue()
    assert session_id.split(".")[1] == str(int(moment.timestamp()))
    assert issued_at(session_id) == moment
    assert issued_at("owner-42") is None and issued_at(None) is None


def test_an_old_id_cannot_be_made_younger(signer: SessionIdSigner) -> None:
    token, issued, signature = signer.issue().split(".")
    assert not signer.is_valid(f"{token}.{int(issued) + 3600}.{signature}")
    assert not signer.is_valid(f"{token}.{issued}0.{signature}")


def test_an_id_of_the_first_form_is_no_longer_accepted() -> None:
    # <token>.<HMAC of v1> as the server issued before ids carried their issue time.
    token = "ab" * 16
    v1 = hmac.new(SECRET.encode(), b"wuye-webchat-session-id:v1:" + token.encode(), hashlib.sha256).hexdigest()
    first_form = f"{token}.{v1}"
    assert looks_like_session_id(first_form)
    assert not SessionIdSigner(SECRET).is_valid(first_form)
    assert SessionIdSigner(SECRET).confirm(first_form) != first_form
    assert issued_at(first_form) is None


def test_a_valid_id_is_kept_so_the_conversation_continues(signer: SessionIdSigner) -> None:
    session_id = signer.issue()
    assert signer.confirm(session_id) == session_id


def test_a_restarted_server_with_the_same_secret_accepts_the_id() -> None:
    session_id = SessionIdSigner(SECRET).issue()
    assert SessionIdSigner(SECRET).confirm(session_id) == session_id


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "9f1c2b7e4d5a46c8b0e3a1d2c4f5e6a7",  # Rasa's own unsigned socket.io session id (a uuid4 hex)
        "owner-42",  # a sender id of another channel
        "0" * 32 + "." + "0" * 64,  # the first form, forged signature
        "0" * 32 + ".1795572000." + "0" * 64,  # well-formed, forged signature
        {"session_id": "x"},
        12345,
    ],
)
def test_missing_unsigned_or_forged_ids_are_replaced(signer: SessionIdSigner, presented: object) -> None:
    confirmed = signer.confirm(presented)
    assert confirmed != presented
    assert signer.is_valid(confirmed)


def test_tampering_with_any_part_of_an_id_invalidates_it(signer: SessionIdSigner) -> None:
    token, issued, signature = signer.issue().split(".")
    flipped = "1" if token[0] != "1" else "2"
    assert signer.is_valid(f"{token}.{issued}.{signature}")
    assert not signer.is_valid(f"{flipped}{token[1:]}.{issued}.{signature}")
    assert not signer.is_valid(f"{token}.{issued}.{signature[:-1]}{'0' if signature[-1] != '0' else '1'}")
    assert not signer.is_valid(f"{token.upper()}.{issued}.{signature}")
    assert not signer.is_valid(f"{token}.{issued}.{signature} ")
    assert not signer.is_valid(f"{token}{issued}.{signature}")
    assert not signer.is_valid(f"{token}.{signature}")


def test_another_owners_token_cannot_be_combined_with_my_signature(signer: SessionIdSigner) -> None:
    mine_token, issued, mine_signature = signer.issue().split(".")
    other_token, _, _ = signer.issue().split(".")
    assert not signer.is_valid(f"{other_token}.{issued}.{mine_signature}")
    confirmed = signer.confirm(f"{other_token}.{issued}.{mine_signature}")
    assert confirmed.split(".")[0] not in (other_token, mine_token)


def test_ids_signed_with_another_secret_are_replaced(signer: SessionIdSigner) -> None:
    foreign = SessionIdSigner("another deployment's secret").issue()
    assert not signer.is_valid(foreign)
    assert signer.confirm(foreign) != foreign


def test_a_secret_is_required() -> None:
    with pytest.raises(ValueError):
        SessionIdSigner("")


def test_the_signer_uses_the_settings_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    get_settings.cache_clear()
    try:
        session_id = signer_from_settings().issue()
        assert SessionIdSigner("from-the-environment").is_valid(session_id)
        assert not SessionIdSigner("change-me").is_valid(session_id)
    finally:
        get_settings.cache_clear()
