"""The QA screen (质检) for supervisors and managers: findings, filters, counts per day and a CSV export.

What staff sent or were stopped from sending, owners' threats to escalate, records left unanswered and promises
never confirmed.

A thin adapter over :mod:`bot.quality`, computed for the days asked (nothing is stored). The chart is drawn by
``static/quality.js`` with the vendored ECharts (``static/vendor/echarts.min.js``, no CDN) from the counts the
page carries in a data attribute (the console's CSP allows no inline script). Conversations are named by their
handles (W-3F9K-2A7Q), never their sender ids. Every view and export is audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, get_db
from apps.staff.pages import SUPERVISOR_OR_MANAGER, render
from bot import clock, compliance, quality
from bot.casework import owner_view
from bot.db import audit
from bot.db.staff_models import StaffUser
from bot.services import staff_auth

router = APIRouter()

DEFAULT_DAYS = 7

KIND_LABELS: Dict[str, str] = {
    quality.STAFF_REFUSED: "员工消息被拦截",
    quality.STAFF_FLAGGED: "员工消息违规已发出",
    quality.OWNER_THREAT: "业主扬言投诉升级",
    quality.UNANSWERED: "报修投诉超时未答复",
    quality.PROMISE_UNCONFIRMED: "承诺确认未送达",
}
OTHER_CATEGORY_LABELS: Dict[str, str] = {
    "hotline": "12345 / 热线",
    "media": "媒体曝光",
    "court": "法院 / 律师",
    "authority": "主管部门 / 消协",
    "other": "其他",
    "repair": "报修",
    "complaint": "投诉",
    "wechat_failed": "微信回复失败",
    "not_said": "对话中未确认",
    "reminder_failed": "承诺提醒未送达",
}
EXPORT_HEADER = ("时间", "类型", "类别", "会话", "员工", "编号", "摘要", "会话记录")


@dataclass(frozen=True)
class Filters:
    """What the page or the export was asked for."""

    day_from: dt.date
    day_to: dt.date
    kind: Optional[str]
    category: Optional[str]
    staff: Optional[str]

    def _chosen(self) -> Dict[str, str]:
        """The optional filters that were given."""
        return {name: value for name in ("kind", "category", "staff") if (value := getattr(self, name))}

    def query(self) -> str:
        """The same filters as a query string (for the export link)."""
        return urlencode({"day_from": self.day_from.isoformat(), "day_to": self.day_to.isoformat(), **self._chosen()})

    def audit_detail(self) -> Dict[str, str]:
        """The filters as an audit row's details."""
        return {"start": self.day_from.isoformat(), "end": self.day_to.isoformat(), **self._chosen()}


def category_labels() -> Dict[str, str]:
    """Every category's Chinese name: the guard's own labels, then the scan's other categories."""
    labels = {name: category.label for name, category in compliance.categories().items()}
    labels.update(OTHER_CATEGORY_LABELS)
    return labels


def _filters(
    day_from: Optional[str] = Query(None),
    day_to: Optional[str] = Query(None),
    kind: Optional[str] = Query(None),
    category: Optional[str] = Query(None),
    staff: Optional[str] = Query(None),
) -> Filters:
    """The request's filters, defaults filled in; a bad date, kind or range is a 400."""
    today = clock.today()
    try:
        last = dt.date.fromisoformat(day_to) if day_to else today
        first = dt.date.fromisoformat(day_from) if day_from else last - dt.timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise HTTPException(status_code=400, detail="bad_date") from None
    if last < first or (last - first).days + 1 > quality.MAX_DAYS:
        raise HTTPException(status_code=400, detail="bad_range")
    if kind and kind not in quality.KINDS:
        raise HTTPException(status_code=400, detail="bad_kind")
    return Filters(
        day_from=first, day_to=last, kind=kind or None, category=category or None, staff=staff or None
    )


# The page and the export read the same filters from the query string.
CHOSEN_FILTERS = Depends(_filters)


@router.get("/quality", response_class=HTMLResponse, include_in_schema=False)
def quality_page(
    request: Request,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
    filters: Filters = CHOSEN_FILTERS,  # read after the role check, as before
) -> HTMLResponse:
    """The findings of the chosen days, their counts per day (chart) and the export link."""
    findings = _scan(db, filters)
    counts = quality.counts_per_day(findings, day_from=filters.day_from, day_to=filters.day_to)
    days = [
        filters.day_from + dt.timedelta(days=offset)
        for offset in range((filters.day_to - filters.day_from).days + 1)
    ]
    audit.record(
        db,
        actor=str(user.username),
        action=audit.QUALITY_VIEWED,
        detail={**filters.audit_detail(), "rows": len(findings)},
    )
    labels = category_labels()
    chart = {
        "days": [day.isoformat() for day in days],
        "series": [
            {"kind": name, "name": KIND_LABELS[name], "counts": counts[name]} for name in quality.KINDS
        ],
    }
    staff_choices = [(username, name) for username, name, _role in owner_view.active_staff(db)]
    names = dict(staff_choices)
    return render(
        request, "quality.html", user=user, active=active, section="quality", filters=filters, findings=findings,
        chart=chart, kinds=quality.KINDS, kind_labels=KIND_LABELS, category_choices=_category_choices(labels),
        category_labels=labels, staff_choices=staff_choices, names=names, totals=_totals(counts),
        export_query=filters.query(), max_days=quality.MAX_DAYS,
    )  # fmt: skip


@router.get("/quality.csv", include_in_schema=False)
def quality_csv(
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    db: Session = get_db,
    filters: Filters = CHOSEN_FILTERS,  # read after the role check, as before
) -> Response:
    """The findings as CSV (UTF-8 with a BOM, so Excel reads the Chinese); conversations by handle."""
    findings = _scan(db, filters)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.QUALITY_EXPORTED,
        detail={**filters.audit_detail(), "format": "csv", "rows": len(findings)},
    )
    labels = category_labels()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for finding in findings:
        writer.writerow(
            [
                finding.at.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M"),
                KIND_LABELS[finding.kind],
                labels.get(finding.category or "", finding.category or ""),
                finding.handle or "",
                finding.staff or "",
                finding.reference or "",
                finding.summary,
                finding.link or "",
            ]
        )
    body = "\ufeff" + buffer.getvalue()
    stem = f"{filters.day_from.isoformat()}_{filters.day_to.isoformat()}"
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="quality-{stem}.csv"; '
            f"filename*=UTF-8''{quote(f'质检-{stem}.csv')}"
        },
    )


def _scan(db: Session, filters: Filters) -> List[quality.Finding]:
    return quality.scan(
        db,
        day_from=filters.day_from,
        day_to=filters.day_to,
        kinds=[filters.kind] if filters.kind else None,
        category=filters.category,
        staff=filters.staff,
    )


def _category_choices(labels: Dict[str, str]) -> List[Tuple[str, str]]:
    seen: List[str] = []
    for kind in quality.KINDS:
        for name in quality.CATEGORIES_BY_KIND[kind]:
            if name not in seen:
                seen.append(name)
    return [(name, labels.get(name, name)) for name in seen]


def _totals(counts: Dict[str, List[int]]) -> Dict[str, int]:
    return {kind: sum(values) for kind, values in counts.items()}
