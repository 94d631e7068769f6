"""Tables: units and owners, arrears, and every record the bot creates for staff.

Records made from a conversation carry ``source_message_id`` (unique), so a message processed twice — a
channel retry — finds the record it already made instead of writing a second one.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import declarative_base, declared_attr, relationship

from bot import clock

Base: Any = declarative_base()


def _status(enum_type: type[enum.Enum], name: str) -> Enum:
    return Enum(enum_type, name=name, native_enum=False, length=16, validate_strings=True)


class RecordStatus(str, enum.Enum):
    """Lifecycle of repair orders, complaints and bill checks."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class PromiseStatus(str, enum.Enum):
    """Whether a payment promise was kept."""

    OPEN = "open"
    KEPT = "kept"
    BROKEN = "broken"


class EscalationState(str, enum.Enum):
    """Who holds an escalated conversation (Chatwoot's agent-bot states)."""

    PENDING = "pending"  # the bot holds it: nobody has taken it, or a person handed it back
    OPEN = "open"  # a person holds it: the bot stays silent
    RESOLVED = "resolved"  # settled; kept for the record and the response-time figures


class EscalationAction(str, enum.Enum):
    """What a person did to an escalation (one ``EscalationEvent`` each)."""

    CLAIM = "claim"
    ASSIGN = "assign"
    REPLY = "reply"
    HAND_BACK = "hand_back"
    RESOLVE = "resolve"
    TAKE_OVER = "take_over"  # the person holds the chat (claim and assign only make them responsible)


class InstalmentStatus(str, enum.Enum):
    """Staff decide on instalment requests; the bot never does."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Unit(Base):
    """A flat: building, entrance (单元) and room."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("code", name="uq_units_code"),)

    id = Column(Integer, primary_key=True)
    code = Column(String(64), nullable=False)
    building = Column(String(32), nullable=False)
    entrance = Column(String(16), nullable=True)
    room = Column(String(16), nullable=False)

    owners = relationship("Owner", back_populates="unit")
    bills = relationship("Bill", back_populates="unit")


class OwnerRetirement(str, enum.Enum):
    """Why an owner is a former owner (bot.owners.ownership)."""

    ROSTER = "roster"  # the arrears import listed the unit with another owner
    TRANSFER = "transfer"  # staff recorded a transfer (过户) on the owner page


class Owner(Base):
    """An owner of a unit, for a period. The phone is stored whole and shown masked.

    ``retired_at`` is NULL for a current owner. A former owner (retired by the import's roster or a transfer,
    migration 0014) is kept with its history but is found by no verification, arrears lookup, reminder or call
    list (bot.owners.ownership). One current owner per unit and phone; a former one may share the phone.
    """

    __tablename__ = "owners"
    __table_args__ = (
        Index(
            "uq_owners_unit_phone_current",
            "unit_id",
            "phone",
            unique=True,
            sqlite_where=sql_text("retired_at IS NULL"),
            postgresql_where=sql_text("retired_at IS NULL"),
        ),
    )

    id = Column(Integer, primary_key=True)
    unit_id = Column(Integer, ForeignKey("units.id"), nullable=False)
    name = Column(String(64), nullable=False)
    phone = Column(String(20), nullable=False)
    created_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False)

    # The ownership period (migration 0014): from the day the import or a transfer made them owner (None: before
    # periods were recorded) to the transfer date; when it was recorded, why and by whom (a username, "import").
    owned_from = Column(Date, nullable=True)
    owned_until = Column(Date, nullable=True)
    retired_at = Column(DateTime(timezone=True), nullable=True)
    retired_reason = Column(_status(OwnerRetirement, "owner_retirement"), nullable=True)
    retired_by = Column(String(64), nullable=True)

    unit = relationship("Unit", back_populates="owners")

    @property
    def masked_phone(self) -> str:
        """138****5678."""
        return mask_phone(str(self.phone))

    @property
    def current(self) -> bool:
        """Whether this is a current owner (not retired by the roster or a transfer)."""
        return self.retired_at is None


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits."""
    if len(phone) < 8:
        return "*" * max(0, len(phone) - 4) + phone[-4:]
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


class Bill(Base):
    """What a unit owes for a billing period (YYYY-MM)."""

    __tablename__ = "bills"
    __table_args__ = (UniqueConstraint("unit_id", "period", name="uq_bills_unit_period"),)

    id = Column(Integer, primary_key=True)
    unit_id = Column(Integer, ForeignKey("units.id"), nullable=False)
    period = Column(String(7), nullable=False)
    amount_due = Column(Numeric(12, 2), nullable=False)
    amount_paid = Column(Numeric(12, 2), nullable=False, default=Decimal("0"))
    # When the arrears import stated this figure (migration 0011): payments after it reduce what is owed
    # (bot.owners.arrears). None for bills written before payments were known: every payment counts.
    as_of = Column(DateTime(timezone=True), nullable=True)

    unit = relationship("Unit", back_populates="bills")


class ConversationLink(Base):
    """Which owner a conversation (channel + sender id) belongs to, once verified.

    A link is closed (``closed_at``) when its owner is retired: the conversation is no longer verified, and the
    row stays so staff still see whose conversation it was. Verifying again in it reopens the row.
    """

    __tablename__ = "conversation_links"
    __table_args__ = (UniqueConstraint("channel", "sender_id", name="uq_links_channel_sender"),)

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    sender_id = Column(String(128), nullable=False)
    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=False)
    verified_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False)
    closed_at = Column(DateTime(timezone=True), nullable=True)  # migration 0014
    closed_reason = Column(String(32), nullable=True)

    owner = relationship("Owner")


class IdentityAttempt(Base):
    """One try at proving who an owner is (unit + phone tail), kept so no new session resets the count.

    Failures are counted per unit (someone sweeping phone tails) and per client (one client sweeping
    units); the window and limits are settings.
    """

    __tablename__ = "identity_attempts"
    __table_args__ = (
        Index("ix_identity_attempts_unit", "unit_code", "attempted_at"),
        Index("ix_identity_attempts_client", "client_key", "attempted_at"),
    )

    id = Column(Integer, primary_key=True)
    unit_code = Column(String(64), nullable=True)
    client_key = Column(String(160), nullable=False)
    channel = Column(String(32), nullable=True)
    sender_id = Column(String(128), nullable=True)
    succeeded = Column(Boolean, nullable=False, default=False)
    attempted_at = Column(DateTime(timezone=True), nullable=False)


class RateLimitHit(Base):
    """One use of a rate-limited operation (e.g. a new web chat session id) by a client."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key", "key", "at"),)

    id = Column(Integer, primary_key=True)
    key = Column(String(200), nullable=False)
    at = Column(DateTime(timezone=True), nullable=False)


class _ConversationRecord:
    """Columns shared by every record the bot writes from a conversation.

    A record type declares here, once, its number prefix (BX20261124...) and the ``domain.yml`` response
    that confirms it to the owner; :mod:`bot.services.owner_requests` writes every type the same way.
    """

    number_prefix: str = ""
    confirmation_response: str = ""

    id = Column(Integer, primary_key=True)
    number = Column(String(32), nullable=True, unique=True)
    sender_id = Column(String(128), nullable=True)
    source_message_id = Column(String(128), nullable=True, unique=True)
    created_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False)


def conversation_record_types() -> tuple[type, ...]:
    """Every mapped model that is a conversation record, whatever mixins lie between (:class:`_WorkOrder`)."""
    found: list[type] = []
    pending = list(_ConversationRecord.__subclasses__())
    while pending:
        model = pending.pop(0)
        if "__tablename__" in vars(model):
            found.append(model)
        pending.extend(model.__subclasses__())
    return tuple(found)


class _WorkOrder(_ConversationRecord):
    """Columns shared by the records staff work through (:mod:`bot.casework.follow_up`).

    The owner, what was asked, the status (``open → in_progress → done``, or ``cancelled``), the assignee and the
    last change. A type names its status column's type (``status_type``) and whether the owner must be known.
    """

    status_type: str = ""
    owner_required: bool = False

    @declared_attr
    def owner_id(cls) -> Column:  # noqa: N805 - SQLAlchemy passes the mapped class
        return Column(Integer, ForeignKey("owners.id"), nullable=not cls.owner_required)

    @declared_attr
    def status(cls) -> Column:  # noqa: N805
        return Column(_status(RecordStatus, cls.status_type), nullable=False, default=RecordStatus.OPEN)

    description = Column(Text, nullable=False)
    assignee = Column(String(64), nullable=True)  # a staff username
    updated_at = Column(DateTime(timezone=True), nullable=True)  # the last workflow change


class RepairOrder(_WorkOrder, Base):
    """A work order for the engineering team."""

    __tablename__ = "repair_orders"
    number_prefix = "BX"
    confirmation_response = "utter_repair_recorded"
    status_type = "repair_status"

    item = Column(String(64), nullable=False)
    location = Column(String(128), nullable=False)
    preferred_time = Column(String(64), nullable=False)


class Complaint(_WorkOrder, Base):
    """A complaint about staff or service."""

    __tablename__ = "complaints"
    number_prefix = "TS"
    confirmation_response = "utter_complaint_recorded"
    status_type = "complaint_status"


class BillCheckRequest(_WorkOrder, Base):
    """An owner disputes a bill; staff check it."""

    __tablename__ = "bill_check_requests"
    number_prefix = "HD"
    confirmation_response = "utter_bill_check_recorded"
    status_type = "bill_check_status"
    owner_required = True


class PaymentPromise(_ConversationRecord, Base):
    """An owner's promise to pay an amount by a date."""

    __tablename__ = "payment_promises"
    number_prefix = "CN"
    confirmation_response = "utter_promise_recorded"

    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=False)
    amount = Column(Numeric(12, 2), nullable=False)
    due_date = Column(Date, nullable=False)
    status = Column(_status(PromiseStatus, "promise_status"), nullable=False, default=PromiseStatus.OPEN)
    # Migration 0011 (bot.owners.payments.evaluate_promises): what the unit paid towards it in its window,
    # when an evaluation last changed it, and how often the owner moved its date.
    paid_amount = Column(Numeric(12, 2), nullable=False, default=Decimal("0"), server_default="0")
    evaluated_at = Column(DateTime(timezone=True), nullable=True)
    reschedule_count = Column(Integer, nullable=False, default=0, server_default="0")


class InstalmentRequest(_ConversationRecord, Base):
    """A request to pay in parts, for staff approval."""

    __tablename__ = "instalment_requests"
    number_prefix = "FQ"
    confirmation_response = "utter_instalment_recorded"

    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=False)
    proposed_plan = Column(Text, nullable=False)
    status = Column(
        _status(InstalmentStatus, "instalment_status"), nullable=False, default=InstalmentStatus.PENDING
    )
    decided_by = Column(String(64), nullable=True)  # the supervisor or manager who approved or rejected it
    decided_at = Column(DateTime(timezone=True), nullable=True)
    decision_note = Column(Text, nullable=True)  # the reason given with the decision


def _same_as_created(context: Any) -> Any:
    """Default for ``updated_at``: the row's ``created_at`` when given, so a new row reads as unchanged."""
    given = context.get_current_parameters().get("created_at")
    if given is not None:
        return given
    from bot import clock

    return clock.now()


class Escalation(_ConversationRecord, Base):
    """A conversation staff must take over, and who holds it now.

    ``state`` is the conversation's: ``pending`` while the bot holds it, ``open`` while ``assignee`` (a staff
    username) does, ``resolved`` when settled. ``assignee`` stays after a hand-back or resolution (the last
    person who held it). ``claimed_at`` is when the current ``assignee`` took it, ``first_response_at`` the
    first staff reply (set once), ``resolved_at`` the resolution and ``outcome`` its note. Every change is an
    ``EscalationEvent``. Times are written from :mod:`bot.clock`.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_state_created", "state", "created_at"),
        Index("ix_escalations_sender", "sender_id"),
    )
    number_prefix = "RG"
    confirmation_response = "utter_escalated"

    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=True)
    channel = Column(String(32), nullable=True)
    reason = Column(String(64), nullable=False)
    detail = Column(Text, nullable=True)
    assignee = Column(String(64), nullable=True)
    state = Column(
        _status(EscalationState, "escalation_state"), nullable=False, default=EscalationState.PENDING
    )
    claimed_at = Column(DateTime(timezone=True), nullable=True)
    first_response_at = Column(DateTime(timezone=True), nullable=True)
    resolved_at = Column(DateTime(timezone=True), nullable=True)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=_same_as_created)
    outcome = Column(Text, nullable=True)  # what came of it, written by the person who resolved it

    owner = relationship("Owner")
    events = relationship("EscalationEvent", back_populates="escalation", order_by="EscalationEvent.id")


class EscalationEvent(Base):
    """One thing a person did to an escalation: the history a hand-back or reassignment keeps."""

    __tablename__ = "escalation_events"
    __table_args__ = (Index("ix_escalation_events_escalation", "escalation_id", "at"),)

    id = Column(Integer, primary_key=True)
    escalation_id = Column(Integer, ForeignKey("escalations.id"), nullable=False)
    at = Column(DateTime(timezone=True), nullable=False)
    action = Column(_status(EscalationAction, "escalation_action"), nullable=False)
    actor = Column(String(64), nullable=False)
    assignee = Column(String(64), nullable=True)
    from_state = Column(_status(EscalationState, "escalation_event_from"), nullable=False)
    to_state = Column(_status(EscalationState, "escalation_event_to"), nullable=False)

    escalation = relationship("Escalation", back_populates="events")


class WeChatDelivery(str, enum.Enum):
    """How the answer to one WeChat message went out (see ``WeChatInboundMessage``)."""

    PROCESSING = "processing"  # claimed; the bot (or the reply) is being prepared
    REPLIED = "replied"  # answered in the HTTP response; ``reply`` keeps it for a retry
    DEFERRED = "deferred"  # answered ``success``; the reply goes out by the customer-service API
    DELIVERED = "delivered"  # the customer-service API accepted every message
    FAILED = "failed"  # the bot or the customer-service API failed
    IGNORED = "ignored"  # nothing to answer (e.g. a menu click or an unsubscribe)


class WeChatInboundMessage(Base):
    """A message or event WeChat pushed, inserted first so its retries are recognised.

    ``dedupe_key`` is ``msg:<MsgId>`` for messages and ``event:<openid>:<CreateTime>`` for events. The row is
    written before the bot runs; a retry (in this process or another) hits the unique key and runs nothing.
    """

    __tablename__ = "wechat_inbound_messages"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_wechat_inbound_key"),)

    id = Column(Integer, primary_key=True)
    dedupe_key = Column(String(128), nullable=False)
    openid = Column(String(128), nullable=False)
    msg_type = Column(String(32), nullable=False)
    status = Column(
        _status(WeChatDelivery, "wechat_delivery_status"), nullable=False, default=WeChatDelivery.PROCESSING
    )
    reply = Column(Text, nullable=True)
    received_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False, index=True)
    updated_at = Column(DateTime(timezone=True), nullable=True)


class WeChatPendingChoice(Base):
    """The numbered choices (former buttons) last offered to a WeChat user, as JSON [{title, payload}]."""

    __tablename__ = "wechat_pending_choices"
    __table_args__ = (UniqueConstraint("openid", name="uq_wechat_choices_openid"),)

    id = Column(Integer, primary_key=True)
    openid = Column(String(128), nullable=False)
    choices = Column(Text, nullable=False)
    updated_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False)


class WeChatSubscriptionEvent(Base):
    """A follow (subscribe) or unfollow (unsubscribe) of the Official Account."""

    __tablename__ = "wechat_subscription_events"
    __table_args__ = (
        UniqueConstraint("openid", "event", "event_time", name="uq_wechat_subscription_event"),
    )

    id = Column(Integer, primary_key=True)
    openid = Column(String(128), nullable=False, index=True)
    event = Column(String(16), nullable=False)
    event_time = Column(DateTime(timezone=True), nullable=False)
    created_at = Column(DateTime(timezone=True), default=clock.utc_now, server_default=func.now(), nullable=False)


class WeChatAccessToken(Base):
    """The account's API access token, shared by every server process (a new one invalidates the old)."""

    __tablename__ = "wechat_access_tokens"

    app_id = Column(String(64), primary_key=True)
    access_token = Column(String(512), nullable=False)
    expires_at = Column(DateTime(timezone=True), nullable=False)


class WeChatCallbackSignature(Base):
    """A callback's ``signature`` and nonce, remembered while the callback's timestamp is still accepted.

    ``signature`` (lower-case hex) is WeChat's signature over token, timestamp and nonce. A row is written only
    for a callback that passed every check (in safe mode also ``msg_signature``, over the body), in the
    transaction that claims its message; a second callback with the same pair — a captured request replayed,
    whatever its body and MsgId — hits the unique key, in this process or another, and is refused.
    ``dedupe_key`` is the message the pair carried. ``expires_at`` is when the timestamp check refuses the
    callback on its own (plus a minute); rows past it are purged.
    """

    __tablename__ = "wechat_callback_signatures"
    __table_args__ = (UniqueConstraint("signature", "nonce", name="uq_wechat_callback_signature"),)

    id = Column(Integer, primary_key=True)
    signature = Column(String(64), nullable=False)
    nonce = Column(String(64), nullable=False)
    dedupe_key = Column(String(128), nullable=False)
    seen_at = Column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    expires_at = Column(DateTime(timezone=True), nullable=False, index=True)


class OutboxKind(str, enum.Enum):
    """What an outbox row carries (see ``OutboxMessage``)."""

    TEXT = "text"  # a staff member's reply
    JOINED = "joined"  # the owner is told a person has joined
    LEFT = "left"  # the owner is told the person has left and the bot answers again
    CONTROL = "control"  # for the Rasa server, not the owner: ``pause`` or ``resume`` the conversation


class OutboxState(str, enum.Enum):
    """Where an outbox row stands."""

    PENDING = "pending"  # waiting for a process that can deliver it
    DELIVERING = "delivering"  # claimed by one process (``claimed_by`` since ``claimed_at``)
    DELIVERED = "delivered"
    FAILED = "failed"  # could not be delivered; ``failure`` says why (e.g. WeChat's 48-hour window closed)


class OutboxMessage(Base):
    """A message to an owner (or an instruction to the Rasa server) that must go out exactly once.

    Written by the staff console's process, delivered by whichever Rasa process can (the one holding the
    owner's web chat socket, any one for WeChat and control rows). Times are written from :mod:`bot.clock`.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_state_channel", "state", "channel", "id"),
        Index("ix_outbox_messages_sender", "sender_id", "id"),
    )

    id = Column(Integer, primary_key=True)
    sender_id = Column(String(128), nullable=False)
    channel = Column(String(32), nullable=True)
    kind = Column(_status(OutboxKind, "outbox_kind"), nullable=False)
    text = Column(Text, nullable=False)
    staff = Column(String(64), nullable=True)
    state = Column(_status(OutboxState, "outbox_state"), nullable=False, default=OutboxState.PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    claimed_by = Column(String(64), nullable=True)
    failure = Column(Text, nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    claimed_at = Column(DateTime(timezone=True), nullable=True)
    delivered_at = Column(DateTime(timezone=True), nullable=True)
    # A WeChat row may name a template message for when the 48-hour window is closed (reminders do).
    template_id = Column(String(64), nullable=True)
    template_data = Column(Text, nullable=True)  # JSON: the template's field → value
    delivered_via = Column(String(32), nullable=True)  # how it went out: wechat_custom, wechat_template, socketio …


class NluDecision(str, enum.Enum):
    """What a person decided about a message in the NLU inbox."""

    CORRECTED = "corrected"  # ``intent`` is what the owner meant
    DISMISSED = "dismissed"  # not worth learning from (noise, several intents at once, ...)


class NluCorrection(Base):
    """A person's decision on one owner message the NLU was unsure of (``events.id`` in Rasa's store)."""

    __tablename__ = "nlu_corrections"

    id = Column(Integer, primary_key=True)
    event_id = Column(Integer, nullable=False, unique=True)
    sender_id = Column(String(255), nullable=False)
    text = Column(Text, nullable=False)
    predicted_intent = Column(String(64), nullable=False)
    confidence = Column(Numeric(6, 5), nullable=False)
    decision = Column(_status(NluDecision, "nlu_decision"), nullable=False)
    intent = Column(String(64), nullable=True)
    decided_by = Column(String(64), nullable=False)
    decided_at = Column(DateTime(timezone=True), nullable=False)
    exported_at = Column(DateTime(timezone=True), nullable=True)


class RecordNote(Base):
    """A staff member's note on a repair order, complaint or bill check (``record_type``: ``repairs``, ``complaints`` or ``bill_checks``)."""

    __tablename__ = "record_notes"
    __table_args__ = (Index("ix_record_notes_record", "record_type", "record_id", "id"),)

    id = Column(Integer, primary_key=True)
    record_type = Column(String(32), nullable=False)
    record_id = Column(Integer, nullable=False)
    author = Column(String(64), nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)


def now() -> dt.datetime:
    """Aware UTC now, for timestamps set in Python."""
    return clock.utc_now()


__all__ = [
    "Base",
    "Bill",
    "BillCheckRequest",
    "Complaint",
    "conversation_record_types",
    "ConversationLink",
    "Escalation",
    "EscalationAction",
    "EscalationEvent",
    "EscalationState",
    "InstalmentRequest",
    "InstalmentStatus",
    "NluCorrection",
    "NluDecision",
    "OutboxKind",
    "OutboxMessage",
    "OutboxState",
    "Owner",
    "OwnerRetirement",
    "PaymentPromise",
    "PromiseStatus",
    "RecordNote",
    "RecordStatus",
    "RepairOrder",
    "Unit",
    "WeChatAccessToken",
    "WeChatDelivery",
    "WeChatInboundMessage",
    "WeChatPendingChoice",
    "WeChatSubscriptionEvent",
    "mask_phone",
    "now",
]
