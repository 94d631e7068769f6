"""The REST channel pins its input channel and checks the bearer token."""

import asyncio
import uuid
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from bot.channels.rest import PinnedRestInput, bearer_token_matches
from bot.settings import get_settings
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("header", "token", "expected"),
    [
        (None, None, True),
        (None, "t0ken", False),
        ("Bearer t0ken", "t0ken", True),
        ("bearer t0ken", "t0ken", True),
        ("Bearer wrong", "t0ken", False),
        ("t0ken", "t0ken", False),
    ],
)
def test_bearer_token(header: Optional[str], token: Optional[str], expected: bool) -> None:
    assert bearer_token_matches(header, token) is expected


class RecordingAgent:
    def __init__(self) -> None:
        self.messages: List[UserMessage] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)


def post_all(
    monkeypatch: pytest.MonkeyPatch, posts: List[Tuple[Dict[str, Any], Dict[str, str]]]
) -> Tuple[List[int], List[UserMessage]]:
    """Mount the channel the way Rasa does, POST each body with its headers, return statuses and messages."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    agent = RecordingAgent()
    app = Sanic(f"rest_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    register([PinnedRestInput()], app, route="/webhooks/")
    port = free_port()

    async def scenario() -> List[int]:
        server = await app.create_server(
            host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
        )
        assert server is not None
        await server.startup()
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:
                for body, headers in posts:
                    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
                    async with http.post(url, json=body, headers=headers) as response:
                        statuses.append(response.status)
        finally:
            await server.close()
        return statuses

    return asyncio.run(scenario()), agent.messages


def test_a_client_cannot_claim_another_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    get_settings.cache_clear()
    statuses, messages = post_all(
        monkeypatch, [({"sender": "o-1", "message": "你好", "input_channel": "wechat"}, {})]
    )
    assert statuses == [200]
    assert [(m.sender_id, m.input_channel) for m in messages] == [("o-1", "rest")]


def test_the_token_is_required_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_CHANNEL_TOKEN", "t0ken")
    get_settings.cache_clear()
    body = {"sender": "o-2", "message": "你好"}
    try:
        statuses, messages = post_all(
            monkeypatch, [(body, {}), (body, {"Authorization": "Bearer wrong"}), (body, {"Authorization": "Bearer t0ken"})]
        )
    finally:
        get_settings.cache_clear()
    assert statuses == [401, 401, 200]
    assert [m.sender_id for m in messages] == ["o-2"]
