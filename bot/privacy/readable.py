"""The readable (Chinese, plain text) form of a personal information export (:func:`bot.privacy.subject.collect`).

One numbered section per kind of data, in the order an owner would look for it: who they are, their accounts,
their records, their conversations, the messages sent or planned to them, and the audit rows about them. Every
section is present, "无" when empty, so the reader sees what was looked for as well as what was found. Times are
shown in the estate's timezone (a time stored without one is shown as stored).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Mapping, Sequence, Tuple

from bot import clock, wording

_NUMERALS = "一二三四五六七八九十"
STATUS = {
    "open": "未结",
    "in_progress": "处理中",
    "done": "已完成",
    "cancelled": "已取消",
    "kept": "已履行",
    "broken": "未履行",
    "pending": "待处理",
    "approved": "已批准",
    "rejected": "已拒绝",
    "resolved": "已解决",
    "scheduled": "待发送",
    "moved": "已改期",
    "sending": "发送中",
    "sent": "已发送",
    "delivering": "发送中",
    "delivered": "已送达",
    "failed": "未能发送",
    "skipped": "未发送",
    "call_task": "改为电话联系",
}
CHANNELS = {"socketio": "网页聊天", "wechat": "微信公众号", "rest": "接口"}
SPEAKERS = {"owner": "业主", "bot": "机器人", "staff": "客服"}
Fields = Sequence[Tuple[str, str]]
# (key in the export, title, the fields shown with their labels)
SECTIONS: Tuple[Tuple[str, str, Fields], ...] = (
    ("bills", "账单（业主期间内）", (("period", "账期"), ("amount_due", "应缴"), ("amount_paid", "已缴"))),
    ("payments", "缴费记录（业主期间内）", (("paid_at", "缴费时间"), ("amount", "金额"), ("channel", "渠道"), ("reference", "流水号"), ("voided_at", "作废时间"))),
    ("payment_promises", "缴费承诺", (("number", "编号"), ("amount", "金额"), ("due_date", "承诺日期"), ("status", "状态"), ("paid_amount", "已付"), ("created_at", "记录时间"))),
    ("repair_orders", "报修", (("number", "编号"), ("item", "项目"), ("location", "位置"), ("description", "描述"), ("preferred_time", "上门时间"), ("status", "状态"), ("created_at", "记录时间"))),
    ("complaints", "投诉", (("number", "编号"), ("description", "内容"), ("status", "状态"), ("created_at", "记录时间"))),
    ("bill_check_requests", "账单核对", (("number", "编号"), ("description", "内容"), ("status", "状态"), ("created_at", "记录时间"))),
    ("instalment_requests", "分期申请", (("number", "编号"), ("proposed_plan", "方案"), ("status", "状态"), ("decision_note", "审批意见"), ("decided_at", "审批时间"), ("created_at", "记录时间"))),
    ("escalations", "转人工记录", (("number", "编号"), ("reason", "原因"), ("detail", "说明"), ("state", "状态"), ("assignee", "负责人"), ("created_at", "记录时间"))),
    ("escalation_events", "转人工处理经过", (("at", "时间"), ("action", "操作"), ("actor", "员工"), ("to_state", "之后状态"))),
    ("record_notes", "员工备注", (("record_type", "记录类型"), ("record_id", "记录"), ("author", "员工"), ("text", "内容"), ("created_at", "时间"))),
    ("conversation_links", "已核验的会话", (("channel", "渠道"), ("sender_id", "会话"), ("verified_at", "核验时间"), ("closed_at", "解除时间"))),
    ("reminders", "提醒", (("purpose", "类型"), ("channel", "渠道"), ("due_at", "计划时间"), ("state", "状态"), ("sent_at", "发送时间"))),
    ("reminder_opt_outs", "不再提醒", (("how", "方式"), ("text", "原话"), ("opted_out_at", "时间"))),
    ("call_tasks", "电话联系任务", (("reason", "原因"), ("state", "状态"), ("assignee", "负责人"), ("note", "记录"), ("created_at", "创建时间"))),
    ("outbox_messages", "客服发给您的消息", (("created_at", "时间"), ("kind", "类型"), ("staff", "员工"), ("text", "内容"), ("state", "状态"))),
    ("wechat_inbound_messages", "微信消息接收记录", (("received_at", "时间"), ("openid", "openid"), ("msg_type", "类型"), ("reply", "回复"))),
    ("wechat_pending_choices", "微信待选项", (("openid", "openid"), ("choices", "选项"), ("updated_at", "时间"))),
    ("wechat_subscription_events", "微信关注记录", (("openid", "openid"), ("event", "事件"), ("event_time", "时间"))),
    ("identity_attempts", "身份核验记录", (("attempted_at", "时间"), ("unit_code", "房号"), ("channel", "渠道"), ("succeeded", "结果"))),
    ("nlu_corrections", "识别更正", (("text", "原话"), ("predicted_intent", "系统识别"), ("intent", "更正为"), ("decided_at", "时间"))),
    ("audit_log", "与您有关的操作记录", (("at", "时间"), ("actor", "操作人"), ("action", "操作"), ("target", "对象"))),
)  # fmt: skip


def render(data: Mapping[str, Any]) -> str:
    """The export ``data`` as readable Chinese text (ends with a newline)."""
    owner = data["owner"]
    lines: List[str] = [
        "个人信息导出",
        "=" * 12,
        f"导出时间：{_time(data.get('exported_at'))}",
        wording.text("privacy_export.intro"),
        "",
    ]
    lines += _heading(1, "业主信息")
    unit = data.get("unit", {})
    entrance = f"{unit.get('entrance')}单元" if unit.get("entrance") else ""
    period_end = f"至 {owner.get('owned_until')}" if owner.get("owned_until") else "至今"
    lines += [
        f"  姓名：{owner.get('name')}",
        f"  手机号：{owner.get('phone') or '（无）'}",
        f"  房号：{owner.get('unit')}（{unit.get('building')}栋{entrance}{unit.get('room')}）",
        wording.text("privacy_export.owner_period", start=owner.get("owned_from") or "（未记录起始日）", end=period_end),
        f"  状态：{'现业主' if owner.get('current') else '前业主'}{'（个人信息已删除）' if owner.get('erased') else ''}",
        f"  建档时间：{_time(owner.get('created_at'))}",
        "",
    ]
    number = 2
    for key, title, fields in SECTIONS:
        lines += _heading(number, title)
        lines += _rows(data.get(key, []), fields)
        number += 1
        if key == "conversation_links":
            lines += _heading(number, "会话记录")
            lines += _conversations(data.get("conversations", []))
            number += 1
    return "\n".join(lines) + "\n"


def _heading(number: int, title: str) -> List[str]:
    return [f"{_numeral(number)}、{title}", "-" * 8]


def _numeral(number: int) -> str:
    """1 → 一, 12 → 十二, 23 → 二十三 (enough for the sections)."""
    tens, ones = divmod(number, 10)
    if tens == 0:
        return _NUMERALS[ones - 1]
    prefix = "" if tens == 1 else _NUMERALS[tens - 1]
    return prefix + "十" + (_NUMERALS[ones - 1] if ones else "")


def _rows(rows: Sequence[Mapping[str, Any]], fields: Fields) -> List[str]:
    if not rows:
        return ["  无", ""]
    lines = []
    for row in rows:
        parts = [f"{label}：{_value(name, row.get(name))}" for name, label in fields if row.get(name) not in (None, "")]
        lines.append("  - " + "；".join(parts))
    lines.append("")
    return lines


def _conversations(conversations: Sequence[Mapping[str, Any]]) -> List[str]:
    if not conversations:
        return ["  无", ""]
    lines: List[str] = []
    for number, conversation in enumerate(conversations, 1):
        channel = CHANNELS.get(str(conversation.get("channel")), conversation.get("channel") or "未知渠道")
        lines.append(f"  会话 {number}（{channel}，{conversation.get('conversation')}）")
        messages = [entry for entry in conversation.get("messages", []) if entry.get("kind") == "message"]
        if not messages:
            lines.append("    （没有保存的消息）")
        for entry in messages:
            speaker = SPEAKERS.get(str(entry.get("speaker")), "")
            if entry.get("staff"):
                speaker = f"{speaker}（{entry['staff']}）"
            text = entry.get("text") or "（非文字消息）"
            lines.append(f"    {_time(entry.get('at'))} {speaker}：{text}")
        lines.append("")
    return lines


def _value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "成功" if value else "未成功"
    if name in ("status", "state", "to_state"):
        return STATUS.get(str(value), str(value))
    if name == "channel":
        return CHANNELS.get(str(value), str(value))
    if name.endswith("_at") or name in ("at", "event_time"):
        return _time(value)
    return str(value)


def _time(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM`` in the estate's timezone (as stored when it has no zone)."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(clock.zone())
    return f"{moment:%Y-%m-%d %H:%M}"


__all__ = ["SECTIONS", "render"]
