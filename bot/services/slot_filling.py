"""What a message says about a repair, an instalment plan or a payment promise, whatever question it answered.

Forms used to fill the slot they had asked for with whatever the owner typed next. These rules read the
meaning instead: a message (or several) may carry the repair's location, item, description and visiting
time in any order, a promise to pay said while the repair time was asked is a payment date and not a visiting
time, and an instalment plan is recognised wherever it is stated. No Rasa imports: the adapters in
``actions/`` pass the text, its entities (Rasa's format, offsets into the text as written) and the day.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bot import wording
from bot.services import promises
from bot.text import amounts, dates
from bot.text.entities import RuleEntityExtractor, entities_as_dicts, find_rooms
from bot.text.normalize import normalize

REPAIR_SLOTS = ("repair_item", "repair_location", "repair_description", "repair_time")

# Intents whose message never answers a form's question (questions, small talk, a person, 算了).
NOT_AN_ANSWER = frozenset(
    {
        "affirm",
        "deny",
        "greet",
        "goodbye",
        "thank",
        "bot_challenge",
        "ask_fee_usage",
        "ask_payment_methods",
        "ask_arrears",
        "request_human",
        "threaten_escalation",
        "pay_now",
    }
)

_CLAUSE_BREAK = re.compile(r"[，,。！!？?；;～~\n]+|\s{2,}")
_CANCEL = re.compile(r"算了|不用了|不要了|不需要了|取消|不修了|不报了|不登记了?|不申请了|不分期了|唔使|唔要")
_PAYMENT = re.compile(
    r"(?:交|缴|繳|付|还|俾|畀)(?:钱|费|款|清|齐|上|掉|物业费|管理费)|物业费|管理费|交(?!给|接|代|流|通|换|往|叉)"
    r"|过数|转账|转给你们|(?:给你们|给物业)转|转过去|打过去"
)
_PROBLEM = re.compile(
    r"不热|不暖|不够热|唔热|冰凉|凉|冷|不亮|唔着|不通|堵|漏|渗|滴水|返水|倒灌|积水|坏|烂|不转|停了|停运|卡住|卡在|卡了|响|噪音|"
    r"裂|掉|脱落|松|关不|打不开|开不|刷不|抬不|没声|没水|没电|没反应|断|爆|不出水|异味|臭|霉|\d+\s*度|不灵|失灵|故障|"
    r"不工作|闪|冒烟|锈|鼓包|空鼓|起皮|变形|歪|塌|不能用|用不了|不好使|有问题|出问题|维修|修一下|修理"
)
_ROOM_PART = (
    r"客厅|主卧|次卧|卧室|房间|厨房|卫生间|洗手间|厕所|浴室|阳台|书房|餐厅|玄关|储物间|"
    r"大堂|大厅|地下车库|车库|地库|地下室|楼道|走廊|楼梯间|楼梯|电梯间|电梯厅|电梯口|天台|楼顶|屋顶|"
    r"小区(?:东|西|南|北)?(?:大)?门|小区|花园|广场|门岗|(?:东|西|南|北)门|大门|停车场|单元门口|门口|楼下|楼上|"
    r"\d{1,3}\s*(?:号楼|栋|幢|座)|\d{1,2}\s*单元|\d{1,2}\s*(?:楼|层)|地下\d层|[a-z\d]{1,3}\s*区"
)
_LOCATION = re.compile(rf"(?:{_ROOM_PART})(?:\s*(?:和|跟|及|、|的)?\s*(?:{_ROOM_PART}))*")
_HOME = re.compile(r"家里|我家|我们家|屋里|屋内|室内|家中|屋企")
_TIME_OF_DAY = r"(?:上午|下午|晚上|中午|早上|早晨|傍晚|白天|全天|一整天|夜里|下班后|下班以后|放学后)"
_HOUR = (
    r"\d{1,2}\s*(?:点|:\d{2})(?:半|\d{1,2}分)?"
    r"(?:\s*(?:到|至|-|~)\s*\d{1,2}\s*(?:点|:\d{2})(?:半)?)?(?:以后|之后|后|以前|之前|前|左右)?"
)
_DAY_PART = re.compile(rf"{_TIME_OF_DAY}(?:\s*{_HOUR})?|{_HOUR}")
_ANY_TIME = re.compile(r"随时|什么时候都(?:行|可以)|哪天都(?:行|可以)|都可以|都行")
_AVAILABLE = re.compile(r"(?:家里|家|屋里)?(?:都)?有人|在家|有空|方便")
_FILLER = re.compile(
    r"^(?:就是|那个|这个|还有|然后|而且|另外|我家的?|我们家的?|家里的?|的|是|在|就在|位置是?|地方是?|大概|嗯+|呃+)+"
    r"|(?:啊|呀|吧|哦|喔|呢|哈)+$"
)
_AFFIRM = re.compile(r"^(?:对|是|没错|嗯|好|可以|行|ok|係|冇错|确定|正确|就这样|没问题)")
_NOT_THIS = re.compile(r"^(?:不是|不在|并不是|而不是|唔係)")
_DENY = re.compile(r"^(?:不对|不是|错了|唔係|唔啱|不行|不要|不|改|换|应该是|写错)")
_CORRECTION_LEAD = re.compile(
    r"^(?:(?:不对|不是|错了|唔係|唔啱|对|是的|是|没错|嗯|好的|好|可以|行|ok)\s*[\uff0c,\u3002!\uff01]?\s*)*"
    r"(?:应该是|改成|改为|改到|换成|换到|就是|就|是在|在|是)?"
)
_PLAN_COUNT = re.compile(r"分\s*(\d{1,2})\s*(个月|期|次|笔|批|年)|(\d{1,2})\s*(个月|期|次)\s*(?:内)?(?:交|还|付|缴|俾)")
_PLAN_MONTHLY = re.compile(r"每\s*(?:个)?\s*月|按月")
_PLAN_QUARTERLY = re.compile(r"按季度?|每\s*(?:个)?\s*季度")
_PLAN_FIRST = re.compile(r"先\s*(?:交|付|还|缴|俾)\s*(一半|一部分|\d)")
_PLAN_WITHIN = re.compile(r"(半年|\d{1,2}\s*个月|年底|年前)\s*(?:之内|以内|内)\s*(?:交|还|付)?\s*(?:清|完)?")
_RECURRING = re.compile(r"每\s*(?:个)?\s*(?:月|期|季度?|周|星期)|按月|按季")
_PLAN_FREE = re.compile(r"分期|分开|分批|先交|先付|先还|剩下|每月|每个月|按月|按季|一半|\d")


@dataclass(frozen=True)
class RepairDetails:
    """The parts of a repair order one message carries (``None``: not said)."""

    item: Optional[str] = None
    location: Optional[str] = None
    description: Optional[str] = None
    time: Optional[str] = None
    home_only: bool = False
    payment_date: Optional[str] = None

    def slots(self) -> Dict[str, str]:
        """The repair form's slots this message fills."""
        values = {
            "repair_item": self.item,
            "repair_location": self.location,
            "repair_description": self.description,
            "repair_time": self.time,
        }
        return {slot: value for slot, value in values.items() if value}


@dataclass(frozen=True)
class _Span:
    entity: str
    start: int
    end: int
    value: Any
    info: Mapping[str, Any] = field(default_factory=dict)


def message_entities(text: str, today: dt.date) -> List[Dict[str, Any]]:
    """The rule entities of ``text`` as the NLU pipeline reports them (offsets into ``text`` as written).

    The actions use the entities of the parsed message; this is for callers without one (tests, tools).
    """
    normalized = normalize(text)
    spans = RuleEntityExtractor().extract(normalized.text, today)
    found = entities_as_dicts(spans, extractor="rules")
    for entity in found:
        entity["start"], entity["end"] = normalized.to_original_span(entity["start"], entity["end"])
    return found


def _normalized(text: str, entities: Optional[Sequence[Mapping[str, Any]]], today: dt.date) -> Tuple[str, List[_Span]]:
    """Normalised text and the entities moved onto it."""
    if entities is None:
        entities = message_entities(text, today)
    normalized = normalize(text)
    spans = []
    for entity in entities:
        try:
            start, end = normalized.to_normalized_span(int(entity["start"]), int(entity["end"]))
        except (KeyError, TypeError, ValueError):
            continue
        spans.append(
            _Span(str(entity.get("entity")), start, end, entity.get("value"), entity.get("additional_info") or {})
        )
    return normalized.text, spans


def _clauses(text: str) -> List[Tuple[int, int]]:
    bounds, cursor = [], 0
    for match in _CLAUSE_BREAK.finditer(text):
        if match.start() > cursor:
            bounds.append((cursor, match.start()))
        cursor = match.end()
    if cursor < len(text):
        bounds.append((cursor, len(text)))
    return bounds


def _clean(text: str) -> str:
    text = re.sub(r"\s+", "", text)
    previous = None
    while previous != text:
        previous, text = text, _FILLER.sub("", text)
    return text


def _cut(text: str, spans: Sequence[Tuple[int, int]]) -> str:
    """``text`` without the given spans (offsets into ``text``)."""
    kept, cursor = [], 0
    for start, end in sorted(spans):
        if start > cursor:
            kept.append(text[cursor:start])
        cursor = max(cursor, end)
    kept.append(text[cursor:])
    return "".join(kept)


def format_day(day: dt.date, today: dt.date) -> str:
    """A visiting day as staff and owner read it: 11月24日（周二）."""
    return promises.format_date(day, today=today)


def _time_of(clause: str, offset: int, times: Sequence[_Span], today: dt.date) -> Tuple[Optional[str], List[Tuple[int, int]]]:
    """The visiting time a clause names, and the spans (clause offsets) that said it."""
    used: List[Tuple[int, int]] = []
    day_text = ""
    for span in times:
        used.append((span.start - offset, span.end - offset))
        try:
            day_text = format_day(dt.date.fromisoformat(str(span.value)), today)
        except ValueError:
            day_text = clause[span.start - offset : span.end - offset]
        if "末" in clause[span.start - offset : span.end - offset]:
            day_text = "周末"
        break
    parts = []
    for match in _DAY_PART.finditer(clause):
        if any(start <= match.start() < end for start, end in used):
            continue
        parts.append(re.sub(r"\s+", "", match.group()))
        used.append(match.span())
    anytime = _ANY_TIME.search(clause)
    if anytime and not day_text and not parts:
        used.append(anytime.span())
        return "随时", used
    if not day_text and not parts:
        return None, []
    available = _AVAILABLE.search(clause)
    if available:
        used.append(available.span())
    return day_text + "".join(parts), used


def read_repair(
    text: str,
    *,
    today: dt.date,
    entities: Optional[Sequence[Mapping[str, Any]]] = None,
    intent: Optional[str] = None,
    requested: Optional[str] = None,
) -> RepairDetails:
    """What ``text`` says about a repair, clause by clause, whichever slot was ``requested``.

    Args:
        text: the message as written.
        today: the message's date, for relative days (明天上午 → 11月24日（周二）上午).
        entities: the message's entities in Rasa's format (offsets into ``text``); found here when ``None``.
        intent: the message's intent; questions and small talk never fill a slot by default.
        requested: the slot the form asked for; an answer that fits no rule fills it as said.

    Returns:
        The details found; a promise to pay is returned as ``payment_date``, never as a visiting time.

    """
    normal, spans = _normalized(text, entities, today)
    if not normal.strip() or _CANCEL.search(normal):
        return RepairDetails()
    items: List[str] = []
    locations: List[str] = []
    descriptions: List[str] = []
    times: List[str] = []
    home_only = False
    payment: Optional[str] = None
    leftovers: List[str] = []
    for start, end in _clauses(normal):
        clause = normal[start:end]
        inside = [s for s in spans if start <= s.start and s.end <= end]
        if _NOT_THIS.search(clause) and not _PROBLEM.search(clause):
            continue  # 不是客厅，是厨房: what it is not
        time_spans = [s for s in inside if s.entity == "time"]
        if _PAYMENT.search(clause):
            if time_spans and payment is None:
                payment = str(time_spans[0].value)
            continue
        used: List[Tuple[int, int]] = []
        when, when_spans = _time_of(clause, start, time_spans, today)
        if when:
            times.append(when)
            used.extend(when_spans)
        for span in inside:
            if span.entity == "repair_item" and str(span.value) not in items:
                items.append(str(span.value))
        problem = _PROBLEM.search(clause)
        rooms = [s for s in inside if s.entity == "room"] or [
            _Span("room", start + r.start, start + r.end, r.value) for r in find_rooms(clause)
        ]
        place = "".join(str(r.value) for r in rooms[:1])
        room_spans = [(r.start - start, r.end - start) for r in rooms[:1]]
        parts = [
            m for m in _LOCATION.finditer(clause) if not any(a <= m.start() < b for a, b in room_spans + used)
        ]
        place += "".join(re.sub(r"\s+|(?<=.)的(?=.)", "", m.group()) for m in parts)
        location_spans = room_spans + [m.span() for m in parts]
        if place:
            locations.append(place)
        elif not when and not problem and _HOME.search(clause):
            home_only = True
            location_spans.append(_HOME.search(clause).span())  # type: ignore[union-attr]
        if problem:
            rest = _clean(_cut(clause, location_spans + used))
            if len(rest) >= 2:
                descriptions.append(rest)
            continue
        rest = _clean(_cut(clause, location_spans + used))
        if rest:
            leftovers.append(rest)
    details = RepairDetails(
        item=items[0] if items else None,
        location=locations[-1] if locations else None,
        description="，".join(descriptions) or None,
        time=times[-1] if times else None,
        home_only=home_only and not locations,
        payment_date=payment,
    )
    if details.item is None and details.description:
        details = replace(details, item=_subject_of(details.description))
    return _answer_as_said(details, leftovers, intent=intent, requested=requested)


def _subject_of(description: str) -> Optional[str]:
    """The thing a description is about: 排风扇不转了 → 排风扇."""
    problem = _PROBLEM.search(description)
    if problem is None:
        return None
    subject = _clean(re.split(r"[也又还都一总]", description[: problem.start()])[0])
    return subject if 1 <= len(subject) <= 8 else None


def _answer_as_said(
    details: RepairDetails, leftovers: List[str], *, intent: Optional[str], requested: Optional[str]
) -> RepairDetails:
    """A plain answer to the question asked that no rule recognised is kept for that slot, as said."""
    if requested not in REPAIR_SLOTS or intent in NOT_AN_ANSWER or not leftovers:
        return details
    if requested in details.slots() or details.payment_date or details.home_only:
        return details
    if details.slots() and requested != "repair_item":
        return details
    said = "，".join(leftovers)
    if len(said) > 60 or re.search(r"[吗嘛么呢]$|怎么|为什么|多少", said):
        return details
    if requested == "repair_item" and details.description is None:
        return replace(details, item=said)
    if requested == "repair_location" and not details.description and not details.time:
        return replace(details, location=said)
    if requested == "repair_description":
        return replace(details, description=said)
    if requested == "repair_time" and not details.description:
        return replace(details, time=said)
    return details


def read_instalment_plan(text: str, *, intent: Optional[str] = None, requested: bool = False) -> Optional[str]:
    """The instalment plan stated in ``text`` (分3个月，每月800元), or ``None``.

    Args:
        text: the message as written.
        intent: the message's intent; a yes, a no or a question is never a plan.
        requested: whether the plan was just asked for; then a free answer about money is kept as said.

    Returns:
        The plan in a canonical form when a rule recognises it, the answer as said when it was asked for
        and looks like a plan, else ``None``.

    """
    normal = normalize(text).text
    if _CANCEL.search(normal) or intent in {"affirm", "deny", "greet", "thank", "goodbye", "bot_challenge"}:
        return None
    parts: List[str] = []
    count = _PLAN_COUNT.search(normal)
    if count:
        number, unit = (count[1], count[2]) if count[1] else (count[3], count[4])
        parts.append(wording.text("forms.plan_count", count=number, unit="期" if unit in "笔批" else unit))
    amounts_found = list(amounts.find_amounts(normal))
    first = _PLAN_FIRST.search(normal)
    if first:
        if first[1] in ("一半", "一部分"):
            parts.append(wording.text("forms.plan_first_part", part=first[1]))
        elif amounts_found:
            parts.append(wording.text("forms.plan_first", amount=_money(amounts_found[0][2])))
    monthly = _PLAN_MONTHLY.search(normal)
    if monthly:
        later = [value for start, _, value in amounts_found if start >= monthly.start()]
        parts.append(
            wording.text("forms.plan_monthly", amount=_money(later[0])) if later else wording.text("forms.plan_by_month")
        )
    elif _PLAN_QUARTERLY.search(normal):
        parts.append(wording.text("forms.plan_by_quarter"))
    within = _PLAN_WITHIN.search(normal)
    if within:
        parts.append(wording.text("forms.plan_within", period=re.sub(r"\s+", "", within[1])))
    if parts:
        return "，".join(dict.fromkeys(parts))
    said = _clean(normal)
    if requested and intent not in NOT_AN_ANSWER and _PLAN_FREE.search(said) and 2 <= len(said) <= 80:
        return said
    return None


_COMPLAINT_LEAD = re.compile(
    r"^(?:你好|您好)?\W*(?:我(?:要|想|得)?(?:实名)?(?:投诉|头诉|投訴)(?:一下)?|投诉|投訴)\W*|\W*(?:我)?(?:要|想)?(?:投诉|投訴)\W*$"
)


def read_complaint(text: str, *, intent: Optional[str] = None, requested: bool = False) -> Optional[str]:
    """The complaint as said, when the message says what happened ("我要投诉" alone says nothing yet).

    Args:
        text: the message as written.
        intent: the message's intent; questions, yes, no and 算了 are never a complaint.
        requested: whether the form just asked what happened.

    Returns:
        The message, stripped, or ``None`` when it holds no complaint yet.

    """
    said = text.strip()
    if not said or _CANCEL.search(normalize(said).text) or intent in NOT_AN_ANSWER:
        return None
    if requested:
        return said
    substance = re.sub(r"\W+", "", _COMPLAINT_LEAD.sub("", said))
    return said if len(substance) >= 4 else None


def payment_date_said(
    text: str,
    *,
    today: dt.date,
    intent: Optional[str] = None,
    entities: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Optional[str]:
    """The payment date a message names, whatever question it answered (那就下周五交吧 → 2026-12-04).

    A date counts when its clause has pay wording (交, 缴, 付钱, 物业费 …; never 交给 or a visiting time) and is
    no instalment schedule (每月15号交), or,
    when the NLU read the whole message as ``promise_to_pay``, the last date said.

    Args:
        text: the message as written.
        today: the message's date, for relative days.
        intent: the message's intent, if any.
        entities: the message's entities in Rasa's format; found here with the project's rules when ``None``.

    Returns:
        The date as the date parser resolved it (ISO for a concrete day, else the expression), or ``None``.
    """
    normal, spans = _normalized(text, entities, today)
    times = [span for span in spans if span.entity == "time"]
    if not times:
        return None
    for start, end in _clauses(normal):
        inside = [span for span in times if start <= span.start and span.end <= end]
        clause = normal[start:end]
        if inside and _PAYMENT.search(clause) and not _RECURRING.search(clause):
            return str(inside[0].value)
    return str(times[-1].value) if intent == "promise_to_pay" else None


def _money(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:.2f}"


def promise_verdict(value: Any, *, today: dt.date) -> Tuple[Optional[dt.date], promises.DateVerdict]:
    """A promise date slot value (an ISO date or the expression as said) judged by the 90-day rule.

    A vague expression whose earliest day is already beyond the window (明年11月, 2027年10月份) is too far,
    not vague: the owner is told the rule and asked for an earlier date.
    """
    raw = str(value or "").strip()
    try:
        day: Optional[dt.date] = dt.date.fromisoformat(raw)
    except ValueError:
        found = dates.resolve_time(normalize(raw).text, today) if raw else None
        day = found.date if found else None
        if day is None and found is not None and found.earliest is not None:
            if found.earliest > promises.latest_date(today):
                return None, promises.DateVerdict.TOO_FAR
    return day, promises.judge_date(day, today=today)


class Outcome(enum.Enum):
    """What the owner's reply to a read-back means."""

    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    REJECTED = "rejected"  # a correction that breaks a rule (a date too far): told why, asked again
    DENIED = "denied"  # "不对" and nothing else
    CANCELLED = "cancelled"
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class Review:
    """The reply to a read-back: the outcome, the slot values it changes, and what to tell the owner."""

    outcome: Outcome
    changes: Dict[str, Any] = field(default_factory=dict)
    message: Optional[str] = None


def _reply_kind(normal: str, intent: Optional[str]) -> Optional[str]:
    if _CANCEL.search(normal):
        return "cancel"
    if _DENY.search(normal) or (intent == "deny" and not _AFFIRM.search(normal)):
        return "deny"
    if _AFFIRM.search(normal) or intent == "affirm":
        return "affirm"
    return None


def _after_lead(text: str) -> str:
    """The part of a reply after 对/不对/改成 …: 不对，是厨房 → 厨房."""
    return _CORRECTION_LEAD.sub("", text, count=1)


def review_promise(
    text: str,
    *,
    today: dt.date,
    current: Mapping[str, Any],
    entities: Optional[Sequence[Mapping[str, Any]]] = None,
    intent: Optional[str] = None,
) -> Review:
    """Judge a reply to "您打算在12月4日（周五）交2,460.00元，对吗？".

    A yes, or a yes that repeats the date or amount (对，就12月4号), confirms. A different date or amount
    replaces the one read back (a date outside the window is refused with the reason). 算了 cancels.
    """
    normal, spans = _normalized(text, entities, today)
    kind = _reply_kind(normal, intent)
    if kind == "cancel":
        return Review(Outcome.CANCELLED)
    changes: Dict[str, Any] = {}
    times = [s for s in spans if s.entity == "time"]
    if times:
        expression = str(times[-1].value)
        day, verdict = promise_verdict(expression, today=today)
        if verdict is not promises.DateVerdict.OK or day is None:
            said = normal[times[-1].start : times[-1].end]
            return Review(Outcome.REJECTED, message=promises.rejection(verdict, today=today, expression=said))
        if day.isoformat() != str(current.get("promise_date")):
            changes["promise_date"] = day.isoformat()
    money = [s for s in spans if s.entity == "amount"]
    if money:
        amount = promises.parse_amount(money[-1].value)
        if amount is not None and amount != promises.parse_amount(current.get("promise_amount")):
            changes["promise_amount"] = str(amount)
    return _verdict(kind, changes, bool(times or money))


def _verdict(kind: Optional[str], changes: Dict[str, Any], repeated: bool) -> Review:
    if changes:
        return Review(Outcome.CORRECTED, changes)
    if kind == "affirm" or (repeated and kind != "deny"):
        return Review(Outcome.CONFIRMED)
    if kind == "deny":
        return Review(Outcome.DENIED)
    return Review(Outcome.UNCLEAR)


def review_repair(
    text: str,
    *,
    today: dt.date,
    current: Mapping[str, Any],
    entities: Optional[Sequence[Mapping[str, Any]]] = None,
    intent: Optional[str] = None,
) -> Review:
    """Judge a reply to the repair order read back: yes, yes repeating a value, a correction, 算了."""
    normal = normalize(text).text
    kind = _reply_kind(normal, intent)
    if kind == "cancel":
        return Review(Outcome.CANCELLED)
    details = read_repair(text, today=today, entities=entities, intent=intent)
    said = details.slots()
    if not said and kind == "deny":
        rest = _clean(_after_lead(normal))
        if rest and not _DENY.fullmatch(rest):
            said = {"repair_description": rest} if _PROBLEM.search(rest) else {}
    location = said.get("repair_location")
    if location and not find_rooms(location):
        old_rooms = find_rooms(str(current.get("repair_location") or ""))
        if old_rooms:
            said["repair_location"] = str(old_rooms[0].value) + location
    changes = {slot: value for slot, value in said.items() if value != current.get(slot)}
    return _verdict(kind, changes, bool(said))


def review_instalment(text: str, *, current: Mapping[str, Any], intent: Optional[str] = None) -> Review:
    """Judge a reply to the instalment plan read back."""
    normal = normalize(text).text
    kind = _reply_kind(normal, intent)
    if kind == "cancel":
        return Review(Outcome.CANCELLED)
    plan = read_instalment_plan(_after_lead(text), intent=None, requested=kind == "deny")
    changes = {"instalment_plan": plan} if plan and plan != current.get("instalment_plan") else {}
    return _verdict(kind, changes, plan is not None)
