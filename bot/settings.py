"""Typed settings from the environment (and an optional ``.env`` file).

Local development works with no configuration at all: SQLite under ``var/``. Outside ``local`` the
settings refuse to start with a default secret.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseSettings, SecretStr, root_validator, validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    environment: Literal["local", "staging", "production"] = "local"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'bot.db'}"
    secret_key: str = DEFAULT_SECRET
    timezone: str = "Asia/Shanghai"
    # A set clock, local only (tests, a demo of a given day): the estate's clock (bot/clock.py) reads CLOCK_START
    # at the real moment CLOCK_ANCHOR (Unix seconds; unset: when the process first reads the clock) and ticks on
    # from there, so every process given the same pair agrees to the second. Refused outside local.
    clock_start: Optional[dt.datetime] = None
    clock_anchor: Optional[float] = None
    # REST channel (bot/channels/rest.py): required outside local, sent as "Authorization: Bearer <token>".
    rest_channel_token: Optional[SecretStr] = None
    # WeChat Official Account channel (bot/channels/wechat.py); without a token it answers 503.
    wechat_token: Optional[SecretStr] = None
    wechat_app_id: Optional[str] = None
    wechat_app_secret: Optional[SecretStr] = None
    wechat_encoding_aes_key: Optional[SecretStr] = None  # unset: plaintext mode only
    wechat_api_base_url: str = "https://api.weixin.qq.com"
    wechat_reply_budget_seconds: float = 4.5
    # WeCom (企业微信) self-built app for collectors (apps/staff/wecom/), served by the staff console at
    # /wecom/callback; unless all five of corp id, agent id, secret, token and key are set it answers 503.
    wecom_corp_id: Optional[str] = None
    wecom_agent_id: Optional[int] = None
    wecom_secret: Optional[SecretStr] = None
    wecom_token: Optional[SecretStr] = None
    wecom_encoding_aes_key: Optional[SecretStr] = None
    wecom_api_base_url: str = "https://qyapi.weixin.qq.com"
    # Action server (bot/action_server.py): loopback unless a deployment says otherwise; Rasa sends the
    # token with every call and the server refuses calls without it. Required outside local.
    action_server_host: str = "127.0.0.1"
    action_server_token: Optional[SecretStr] = None
    # Several Rasa processes: a Redis URL for Rasa's lock store (bot/rasa/endpoints.py), so two processes never
    # work on one conversation at once. LOCK_STORE_URL wins over REDIS_URL; neither: in-memory locks (one process).
    lock_store_url: Optional[str] = None
    redis_url: Optional[str] = None
    # Owner messages longer than this are refused politely before they reach the NLU.
    max_message_chars: int = 1000
    # The collector coach (bot/coach): the trained model it reads notes with; unset: models/current.tar.gz.
    coach_model_path: Optional[str] = None
    # Identity: failures per unit (and per client) within the window lock online verification.
    identity_max_failures_per_unit: int = 5
    identity_max_failures_per_client: int = 10
    identity_failure_window_hours: int = 24
    # Reverse proxies in front of the Rasa server (addresses or CIDR networks, as a JSON list): from these
    # peers, X-Forwarded-For names the client. Empty: the TCP peer is the client.
    trusted_proxies: List[str] = []
    # New web chat session ids a single client address may obtain per hour.
    webchat_sessions_per_hour: int = 30
    # A web chat session id (a bearer credential) stops working this long after the owner's last message, and this
    # long after it was issued whatever happens (bot/conversations/webchat_sessions.py); at least 1 each.
    webchat_session_idle_minutes: int = 60
    webchat_session_max_hours: int = 12

    @validator("webchat_session_idle_minutes", "webchat_session_max_hours")
    def _session_limit_is_positive(cls, value: int) -> int:  # noqa: N805
        if value < 1:
            raise ValueError("a web chat session must be allowed at least 1 minute idle and 1 hour in all")
        return value

    # Floods (issue 16 point 6). Messages one client (an address, a WeChat openid, an authenticated REST sender)
    # may send on any channel per minute and per hour (bot/services/message_limits.py; 0 turns a limit off).
    # Over either, the message never reaches Rasa; the first of a run gets one polite answer, the rest none.
    # Counted in process memory, or in Redis when LOCK_STORE_URL / REDIS_URL is set (shared by every process).
    channel_messages_per_minute: int = 30
    channel_messages_per_hour: int = 300
    # Repairs, complaints and escalations written without verified identity, per client per estate day
    # (bot/services/unverified_records.py); beyond it nothing is stored and staff get one "flood" escalation.
    unverified_records_per_day: int = 5
    # Full phone numbers one staff member may reveal on the call list per hour (apps/staff/reminders.py).
    staff_phone_reveals_per_hour: int = 30
    # Staff console (apps/staff): its own process beside Rasa and the action server, on loopback unless a
    # deployment puts a TLS proxy in front of it. The secret signs its session cookies; required outside local.
    staff_host: str = "127.0.0.1"
    staff_port: int = 5006
    staff_secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    staff_session_hours: int = 12
    # Failed logins per username within the window lock that username for ``staff_lockout_minutes``.
    staff_login_max_failures: int = 5
    staff_login_window_minutes: int = 15
    staff_lockout_minutes: int = 15
    # Failed logins from one client address (IPv6: its /64), whatever the usernames, within the same window lock
    # that address out for ``staff_lockout_minutes`` too; the address is counted only as a keyed hash.
    staff_login_max_failures_per_client: int = 20
    # The shortest staff password accepted (bot user add / reset-password, the users page); 10 at the least.
    staff_password_min_length: int = 10
    # Reminders (bot/reminders, the worker apps/worker): checked at send time, moved rather than dropped.
    reminders_max_per_week: int = 2  # proactive messages per owner per rolling 7 days
    reminders_skip_holidays: bool = False  # move reminders off public holidays (chinesecalendar's data)
    reminders_poll_seconds: float = 5.0
    reminders_manager_arrears_months: int = 6  # arrears this old go to the manager, not a collector
    # A WeChat template message for reminders outside the 48-hour window; unset: a collector's call task.
    wechat_reminder_template_id: Optional[str] = None
    # Template field -> what fills it: text (the notice), unit, date, purpose (a short title), note.
    wechat_reminder_template_fields: Dict[str, str] = {"first": "purpose", "keyword1": "unit", "keyword2": "date", "remark": "text"}
    # Payment promises (bot/owners/payments.py): a promise is kept when the unit's payments reach its amount
    # by its due date plus this many days, broken when they have not once those days have passed.
    promise_grace_days: int = 2
    # Retention (bot/privacy/retention.py, the worker's daily run): days each kind of personal data is kept.
    retention_conversation_days: int = 365  # a conversation silent this long loses its transcript and links
    retention_audit_days: int = 1095  # audit rows (3 years: 民法典 art. 188)
    retention_attempt_days: int = 30  # identity and login attempts, rate-limit counters
    retention_outbox_days: int = 90  # delivered or failed outbox messages, call tasks done
    retention_former_owner_days: int = 1095  # a former owner is erased this long after the flat changed hands

    class Config:
        """Read a local ``.env`` too."""

        env_file = PROJECT_ROOT / ".env"
        env_file_encoding = "utf-8"

    @validator("trusted_proxies", each_item=True)
    def _proxy_is_a_network(cls, value: str) -> str:  # noqa: N805
        ipaddress.ip_network(value, strict=False)  # raises ValueError, which pydantic reports
        return value

    @validator(
        "retention_conversation_days", "retention_audit_days", "retention_attempt_days", "retention_outbox_days",
        "retention_former_owner_days",
    )
    def _retention_is_positive(cls, value: int) -> int:  # noqa: N805
        if value < 1:
            raise ValueError("a retention period is at least one day")
        return value

    @validator("clock_start")
    def _clock_start_has_a_zone(cls, value: Optional[dt.datetime]) -> Optional[dt.datetime]:  # noqa: N805
        if value is not None and value.tzinfo is None:
            raise ValueError("CLOCK_START needs a UTC offset, e.g. 2026-11-23T10:00:00+08:00")
        return value

    @root_validator(skip_on_failure=True)
    def _no_default_secrets_outside_local(cls, values: dict) -> dict:  # noqa: N805
        if values.get("environment") != "local" and values.get("clock_start") is not None:
            raise ValueError("CLOCK_START is for local runs only: a deployment reads the real clock")
        if values.get("environment") != "local":
            # An empty value (``TOKEN=${UNSET}`` in a unit file) would open the door as wide as none at all.
            for name in ("rest_channel_token", "action_server_token"):
                secret = values.get(name)
                if secret is not None and not secret.get_secret_value().strip():
                    raise ValueError(f"{name.upper()} must not be empty outside the local environment")
            if not str(values.get("secret_key") or "").strip():
                raise ValueError("SECRET_KEY must not be empty outside the local environment")
        if values.get("environment") != "local" and values.get("secret_key") == DEFAULT_SECRET:
            raise ValueError("SECRET_KEY must be set outside the local environment")
        if values.get("environment") != "local" and values.get("rest_channel_token") is None:
            raise ValueError("REST_CHANNEL_TOKEN must be set outside the local environment")
        if values.get("environment") != "local" and values.get("action_server_token") is None:
            raise ValueError("ACTION_SERVER_TOKEN must be set outside the local environment")
        if values.get("environment") != "local":
            # The staff console's session cookies are signed with it: a known key would let anyone forge one.
            staff_secret = values.get("staff_secret_key")
            staff_secret_value = staff_secret.get_secret_value() if staff_secret is not None else ""
            if not staff_secret_value.strip():
                raise ValueError("STAFF_SECRET_KEY must not be empty outside the local environment")
            if staff_secret_value == DEFAULT_SECRET:
                raise ValueError("STAFF_SECRET_KEY must be set outside the local environment")
        return values


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


def configured_lock_store_url(settings: Any = None) -> Optional[str]:
    """``LOCK_STORE_URL``, else ``REDIS_URL``, else None (one Rasa process: in-memory locks suffice).

    The Rasa processes' lock store and the channels' message counters share it (``bot.rasa.endpoints``,
    ``bot.services.message_limits``).
    """
    if settings is None:
        settings = get_settings()
    for value in (getattr(settings, "lock_store_url", None), getattr(settings, "redis_url", None)):
        if value and str(value).strip():
            return str(value).strip()
    return None
