"""Every Rasa internal that bot/rasa relies on, pinned against the installed Rasa (3.6.21).

An upgrade that renames, re-signs or rewires one of them fails here, by name, before any behaviour test.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, List

import pytest
import rasa
import sqlalchemy as sa
from rasa.core.actions.action import RemoteAction
from rasa.core.channels import channel
from rasa.core.lock_store import LockStore
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, Sanic

from bot.rasa import events as rasa_events
from bot.rasa.trackers import sanic_app_of_handler


def test_the_rasa_this_door_was_built_for() -> None:
    assert rasa.__version__ == "3.6.21"


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("_run_action", ["self", "action", "tracker", "output_channel", "nlg", "prediction"]),  # runtime.py
        ("_handle_message_with_tracker", ["self", "message", "tracker"]),  # trackers.log_while_held
        ("fetch_tracker_and_update_session", ["self", "sender_id", "output_channel", "metadata"]),
        ("get_tracker", ["self", "conversation_id"]),
        ("save_tracker", ["self", "tracker"]),
        ("execute_side_effects", ["self", "events", "tracker", "output_channel"]),  # runtime.py's polite reply
    ],
)
def test_the_processor_methods_we_call_or_wrap(name: str, parameters: List[str]) -> None:
    method = getattr(MessageProcessor, name)
    assert inspect.iscoroutinefunction(method)
    assert list(inspect.signature(method).parameters) == parameters


def test_remote_action_run_is_a_coroutine_we_can_put_a_deadline_on() -> None:
    assert inspect.iscoroutinefunction(RemoteAction.run)


def test_the_lock_store_lock_takes_the_conversation_id() -> None:
    assert list(inspect.signature(LockStore.lock).parameters)[:2] == ["self", "conversation_id"]


def test_a_tracker_says_whether_it_is_paused() -> None:
    tracker = DialogueStateTracker("someone", slots=[])
    assert tracker.is_paused() is False


def test_the_sql_tracker_store_writes_the_table_we_read() -> None:
    table = SQLTrackerStore.SQLEvent.__table__
    assert SQLTrackerStore.SQLEvent.__tablename__ == rasa_events.EVENTS_TABLE
    ours = {column.name for column in rasa_events.events.columns}
    theirs = {column.name: column for column in table.columns}
    assert ours <= set(theirs)
    assert isinstance(theirs["timestamp"].type, sa.Float) and isinstance(theirs["data"].type, sa.Text)


def test_a_channels_handler_closes_over_the_sanic_app() -> None:
    """``channel.register`` wraps the agent call in a closure over the app: the hold gate finds the agent so."""
    handlers: List[Callable[..., Any]] = []

    class Recording(channel.InputChannel):
        @classmethod
        def name(cls) -> str:
            return "recording"

        def blueprint(self, on_new_message: Callable[..., Any]) -> Blueprint:
            handlers.append(on_new_message)
            return Blueprint("recording_webhook", url_prefix="/recording")

    app = Sanic("rasa_door_test")
    channel.register([Recording()], app, route="/webhooks/")
    assert len(handlers) == 1
    assert sanic_app_of_handler(handlers[0]) is app


def test_the_bearer_token_decoder_the_web_chat_uses() -> None:
    assert list(inspect.signature(channel.decode_bearer_token).parameters) == [
        "bearer_token", "jwt_key", "jwt_algorithm",
    ]  # fmt: skip


def test_the_rasa_process_starts_the_outbox_delivery_whatever_its_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bot.rasa.delivery.install`` adds its listeners through ``configure_app``'s ``server_listeners``."""
    import rasa.core.run

    from bot.rasa import delivery

    assert "server_listeners" in inspect.signature(rasa.core.run.configure_app).parameters
    assert "server_listeners=server_listeners" in inspect.getsource(rasa.core.run.serve_application)
    monkeypatch.setattr(rasa.core.run, "configure_app", rasa.core.run.configure_app)  # undone after the test
    monkeypatch.setattr(delivery, "_installed", False)
    registered: List[Any] = []
    real_register = Sanic.register_listener

    def recording(app: Sanic, listener: Any, event: str) -> Any:
        registered.append((listener, event))
        return real_register(app, listener, event)

    monkeypatch.setattr(Sanic, "register_listener", recording)
    delivery.install()
    delivery.install()  # idempotent: one wrapper
    rasa.core.run.configure_app(None, enable_api=False)  # no channel at all
    assert [entry for entry in registered if entry in delivery.LISTENERS] == delivery.LISTENERS  # once each


def test_the_process_senders_are_wechat_and_what_channels_register(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.rasa import delivery

    monkeypatch.setattr(delivery, "_senders", {})
    assert [sender.channel for sender in delivery.senders()] == ["wechat"]

    class Sockets:
        channel = "socketio"

    delivery.register_sender(Sockets())  # type: ignore[arg-type]
    assert [sender.channel for sender in delivery.senders()] == ["socketio", "wechat"]
