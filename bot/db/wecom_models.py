"""WeCom (企业微信) callbacks already handled (replay protection for the coach channel).

A callback is claimed by inserting its row before anything runs: WeCom retries a message it got no answer to
(same ``MsgId``), and a captured request replayed as is carries the same ``msg_signature``. Either key is
unique, so the insert of a retry or a replay fails in this process or any other, and the message is answered
once. Rows are pruned after a window (:data:`apps.staff.wecom.store.KEEP_CALLBACKS_FOR`): by then the
timestamp check refuses a replay on its own.
"""

from __future__ import annotations

import enum

from sqlalchemy import Column, DateTime, Enum, Integer, String, UniqueConstraint, func

from bot import clock
from bot.db.models import Base


class WeComCallbackStatus(str, enum.Enum):
    """What became of a claimed callback."""

    PROCESSING = "processing"  # claimed; the reply is being made
    SENT = "sent"  # the reply went out through message/send
    REFUSED = "refused"  # the sender is not a staff member (they were told so politely)
    FAILED = "failed"  # the reply could not be made or sent (logged)
    IGNORED = "ignored"  # an event or a message type the coach does not read


class WeComCallback(Base):
    """One message or event WeCom pushed to the callback URL.

    ``dedupe_key`` is ``msg:<MsgId>`` for messages and ``event:<UserID>:<CreateTime>:<Event>`` for events;
    ``msg_signature`` is the request's signature over token, timestamp, nonce and ``Encrypt``.
    """

    __tablename__ = "wecom_callbacks"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_wecom_callbacks_key"),
        UniqueConstraint("msg_signature", name="uq_wecom_callbacks_signature"),
    )

    id = Column(Integer, primary_key=True)
    dedupe_key = Column(String(160), nullable=False)
    msg_signature = Column(String(64), nullable=False)
    nonce = Column(String(64), nullable=False)
    user_id = Column(String(64), nullable=False)
    agent_id = Column(String(32), nullable=True)
    msg_type = Column(String(32), nullable=False)
    status = Column(
        Enum(
            WeComCallbackStatus,
            name="wecom_callback_status",
            native_enum=False,
            length=16,
            validate_strings=True,
        ),
        nullable=False,
        default=WeComCallbackStatus.PROCESSING,
    )
    error = Column(String(200), nullable=True)
    received_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False, index=True)
    handled_at = Column(DateTime(timezone=True), nullable=True)
