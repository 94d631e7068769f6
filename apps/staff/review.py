"""The daily review screen (每日复盘, supervisors and managers): charts, the day's list and its exports.

A thin adapter over :mod:`bot.services.review`. The page draws its charts with the vendored ECharts
(``static/vendor/echarts.min.js``) from ``/api/review``; the day's list exports as CSV (UTF-8 with a BOM, so
Excel reads the Chinese) and XLSX. Every view, API call and export is audited. An unverified line names its
conversations by their handles (W-3F9K-2A7Q), never their sender ids.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Dict, List, Optional
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, get_db, require_role
from apps.staff.pages import render
from bot import clock
from bot.conversations.handles import handle_of
from bot.db import audit
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import review, staff_auth
from bot.services.staff_users import phone_for

router = APIRouter()
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)

INTENT_LABELS: Dict[str, str] = {
    "objection_fee_too_high": "嫌物业费贵",
    "objection_poor_service": "服务差",
    "objection_pay_later": "晚点再交",
    "objection_financial_hardship": "经济困难",
    "objection_developer_design": "开发商设计问题",
    "objection_not_living_here": "不在这里住",
    "objection_construction_defect": "房屋质量问题",
    "objection_heating": "暖气问题",
    "objection_property_loss": "财物损失",
    "objection_external_nuisance": "外部扰民",
}
REASON_LABELS: Dict[str, str] = {
    "request_human": "要求人工",
    "threaten_escalation": "扬言投诉升级",
    "fallback": "机器人无法处理",
    "identity_failed": "身份核实失败",
    "identity_locked": "身份核实已锁定",
    "staff_takeover": "员工主动接管",
    "flood": "同一来源当天匿名登记过多",
}
CHANNEL_LABELS: Dict[str, str] = {"socketio": "网页聊天", "wechat": "微信公众号", "rest": "接口"}
STATUS_LABELS: Dict[str, str] = {"open": "待兑现", "kept": "已兑现", "broken": "已违约"}
STATE_LABELS: Dict[str, str] = {"pending": "待机器人处理", "open": "人工处理中", "resolved": "已解决"}
DAY = Query(None, description="the estate day (default today)")
END = Query(None, description="the last day (default today)")
EXPORT_HEADER = ("房号", "业主", "手机号", "渠道", "异议", "缴费承诺", "转人工")


# --- the JSON API ---------------------------------------------------------------------------------------


class DurationsOut(BaseModel):
    """A response time over ``count`` escalations, in minutes (null when there were none)."""

    count: int
    median_minutes: Optional[float] = None
    p90_minutes: Optional[float] = None


class ReviewOut(BaseModel):
    """The review of a range of estate days."""

    start: dt.date
    end: dt.date
    days: List[dt.date] = Field(..., description="each day of the range, oldest first")
    objections: Dict[str, List[int]] = Field(..., description="per objection intent, one count per day of days")
    escalations_by_reason: Dict[str, int]
    promises: Dict[str, int] = Field(..., description="made in the range; of those kept, broken, open")
    repairs_by_item: Dict[str, int]
    first_response: DurationsOut = Field(..., description="escalation to a person's first response")
    resolution: DurationsOut = Field(..., description="escalation to its resolution")
    labels: Dict[str, Dict[str, str]] = Field(..., description="Chinese names of intents and reasons")
    collection_rate: Optional[float] = Field(
        None,
        description="kept shares / promised amount, over the promises decided in the range (kept in it, or not "
        "kept with their window, due date + grace, ended in it)",
    )


@router.get("/api/review", response_model=ReviewOut, tags=["api"])
def review_api(
    days: int = Query(review.DEFAULT_DAYS, ge=1, le=review.MAX_DAYS),
    end: Optional[dt.date] = END,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    db: Session = get_db,
) -> ReviewOut:
    """The review of the ``days`` estate days ending with ``end`` (supervisors and managers)."""
    result = review.overview(db, days=days, end=end)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.REVIEW_VIEWED,
        detail={"via": "api", "start": result.days[0].isoformat(), "end": result.days[-1].isoformat()},
    )
    return ReviewOut(
        start=result.days[0],
        end=result.days[-1],
        days=list(result.days),
        objections=result.objections,
        escalations_by_reason=result.escalations_by_reason,
        promises=result.promises,
        repairs_by_item=result.repairs_by_item,
        first_response=DurationsOut(**vars(result.first_response)),
        resolution=DurationsOut(**vars(result.resolution)),
        labels={"intents": INTENT_LABELS, "reasons": REASON_LABELS},
        collection_rate=review.collection(db, days=days, end=end).rate,
    )


# --- the page and the exports -----------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page(
    request: Request,
    day: Optional[dt.date] = DAY,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The charts (drawn by review.js from /api/review) and the day's list with its exports."""
    day = day or clock.today()
    lines = review.day_list(db, day=day)
    audit.record(
        db, actor=str(user.username), action=audit.REVIEW_VIEWED, detail={"day": day.isoformat(), "rows": len(lines)}
    )
    rows = export_rows(lines, role=user.role)
    return render(
        request, "review.html", user=user, active=active, section="review", day=day, rows=rows,
        header=EXPORT_HEADER, days=review.DEFAULT_DAYS,
        collection=review.collection(db, days=review.DEFAULT_DAYS),
    )  # fmt: skip


@router.get("/review/export.csv", include_in_schema=False)
def export_csv(
    day: Optional[dt.date] = DAY,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    db: Session = get_db,
) -> Response:
    """The day's list as CSV, UTF-8 with a BOM."""
    day, rows = _export(db, user, day, "csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    writer.writerows(rows)
    body = "\ufeff" + buffer.getvalue()
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"每日复盘-{day.isoformat()}.csv", f"review-{day.isoformat()}.csv"),
    )


@router.get("/review/export.xlsx", include_in_schema=False)
def export_xlsx(
    day: Optional[dt.date] = DAY,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    db: Session = get_db,
) -> Response:
    """The day's list as an Excel workbook (one sheet)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    day, rows = _export(db, user, day, "xlsx")
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = day.isoformat()
    sheet.append(list(EXPORT_HEADER))
    for row in rows:
        sheet.append(list(row))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column, width in zip("ABCDEFG", (12, 10, 14, 12, 48, 36, 30), strict=True):
        sheet.column_dimensions[column].width = width
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Response(
        buffer.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=_attachment(f"每日复盘-{day.isoformat()}.xlsx", f"review-{day.isoformat()}.xlsx"),
    )


def export_rows(lines: List[review.OwnerDay], *, role: StaffRole) -> List[List[str]]:
    """The day's list as table rows (:data:`EXPORT_HEADER`), the phone as ``role`` may see it."""
    rows: List[List[str]] = []
    for line in lines:
        rows.append(
            [
                line.unit or "—",
                line.name or f"未核实（{'、'.join(handle_of(sender) for sender in line.senders)}）",
                phone_for(line.phone, role=role),
                "、".join(CHANNEL_LABELS.get(channel, channel) for channel in line.channels),
                "\n".join(
                    f"{objection.at:%H:%M} {INTENT_LABELS.get(objection.intent, objection.intent)}：{objection.text}"
                    for objection in line.objections
                ),
                "\n".join(
                    f"{promise.number} {promise.amount}元 {promise.due_date.isoformat()}前 "
                    f"{STATUS_LABELS.get(promise.status, promise.status)}"
                    for promise in line.promises
                ),
                "\n".join(
                    f"{escalation.number} {REASON_LABELS.get(escalation.reason, escalation.reason)} "
                    f"{STATE_LABELS.get(escalation.state, escalation.state)}"
                    for escalation in line.escalations
                ),
            ]
        )
    return rows


def _export(db: Session, user: StaffUser, day: Optional[dt.date], kind: str) -> tuple[dt.date, List[List[str]]]:
    day = day or clock.today()
    lines = review.day_list(db, day=day)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.REVIEW_EXPORTED,
        detail={"day": day.isoformat(), "format": kind, "rows": len(lines)},
    )
    return day, export_rows(lines, role=user.role)


def _attachment(name: str, fallback: str) -> Dict[str, str]:
    return {"content-disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"}
