"""Every way a Chinese site writes a time -> an aware datetime, or a reason it cannot be read.

Pure functions. Relative forms (刚刚, 5分钟前, 昨天 10:00, 12-06 10:00 without a year) are read
against the FETCH time, never against anything the item claims. Times without a zone are in
the source's zone (a per-source setting, Asia/Shanghai by default). Numbers are epoch
seconds, milliseconds or microseconds by magnitude; NaN, infinities, negatives and times
outside [1990, fetch year + 2] are refused: they are not times, and a post dated in the far
future would be refused by the broker and stall its source.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
FUTURE_TOLERANCE = timedelta(minutes=5)


class TimeError(ValueError):
    """A time that cannot be read; the message is the reason shown in the DLQ."""


_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.IGNORECASE)


def parse_zone(value: str) -> tzinfo:
    """'Asia/Shanghai', '+08:00', '+0800', 'UTC+8' or 'UTC' -> a tzinfo; ValueError otherwise."""
    text = str(value).strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    match = _OFFSET.match(text)
    if match:
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"offset out of range: {value!r}")
        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    if re.fullmatch(r"[A-Za-z_]+(?:/[A-Za-z0-9_+-]+){0,2}", text):
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(f"not a time zone (Asia/Shanghai) or UTC offset (+08:00): {value!r}")


# ---------------------------------------------------------------- the forms

_EPOCH_TEXT = re.compile(r"^-?\d{9,17}(?:\.\d+)?$")
_DATE_TIME = re.compile(
    r"^(?:(\d{4})\s*[年/.-]\s*)?(\d{1,2})\s*[月/.-]\s*(\d{1,2})\s*[日号]?"
    r"(?:\s*(?:T|\s)?\s*(上午|下午|晚上|凌晨)?\s*(\d{1,2})\s*[:：时点]\s*(\d{1,2})\s*分?"
    r"(?:\s*[:：]\s*(\d{1,2})\s*秒?)?)?$"
)
_CLOCK = re.compile(r"^(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?$")
_RELATIVE = re.compile(
    r"^(\d+|半|一|两|几)\s*(?:个)?\s*(秒钟?|分钟|分|小时|钟头|天|日|周|星期|个?月|"
    r"seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)\s*(?:之?前|以前|ago)$",
    re.IGNORECASE,
)
_DAY_WORD = re.compile(r"^(今天|今日|昨天|昨日|前天|today|yesterday)\s*(?:(上午|下午|晚上|凌晨)?\s*(\d{1,2})[:：](\d{2})"
                       r"(?:[:：](\d{2}))?)?$", re.IGNORECASE)
_UNIT_SECONDS = {"秒": 1, "秒钟": 1, "分钟": 60, "分": 60, "小时": 3600, "钟头": 3600, "天": 86400, "日": 86400,
                 "周": 7 * 86400, "星期": 7 * 86400, "月": 30 * 86400, "个月": 30 * 86400,
                 "second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600,
                 "day": 86400, "week": 7 * 86400}
_COUNT_WORDS = {"半": 0.5, "一": 1, "两": 2, "几": 3}
_DAYS_BACK = {"今天": 0, "今日": 0, "today": 0, "昨天": 1, "昨日": 1, "yesterday": 1, "前天": 2}
_JUST_NOW = frozenset(("刚刚", "刚才", "just now", "now"))


def _half_day(marker: str | None, hour: int) -> int:
    if marker in ("下午", "晚上") and hour < 12:
        return hour + 12
    if marker == "凌晨" and hour == 12:
        return 0
    return hour


def _from_epoch(number: float) -> datetime:
    if isinstance(number, float) and not math.isfinite(number):
        raise TimeError(f"time is not a finite number: {number!r}")
    if number < 0:
        raise TimeError(f"time is a negative epoch: {number!r}")
    magnitude = abs(number)
    if magnitude < 1e11:
        seconds = number
    elif magnitude < 1e14:
        seconds = number / 1e3
    elif magnitude < 1e17:
        seconds = number / 1e6
    else:
        raise TimeError(f"epoch too large to be a time: {number!r}")
    return datetime.fromtimestamp(seconds, timezone.utc)


def _wall(zone: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0,
          second: int = 0) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise TimeError(f"not a calendar time: {exc}") from None


def _read(value: object, zone: tzinfo, now: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if value is None or isinstance(value, bool):
        raise TimeError("time is missing" if value is None else f"time is a boolean: {value!r}")
    if isinstance(value, (int, float)):
        return _from_epoch(value)
    if not isinstance(value, str):
        raise TimeError(f"time is a {type(value).__name__}, not text or a number")
    text = " ".join(value.replace("\u3000", " ").split())
    if not text:
        raise TimeError("time is empty")
    if len(text) > 64:
        raise TimeError(f"time text too long ({len(text)} chars)")
    lowered = text.lower()
    if lowered in ("nan", "-nan", "inf", "-inf", "infinity", "-infinity", "null", "none", "undefined"):
        raise TimeError(f"time is not a number: {text!r}")
    if _EPOCH_TEXT.match(text):
        return _from_epoch(float(text) if "." in text else int(text))
    local_now = now.astimezone(zone)
    if lowered in _JUST_NOW:
        return local_now
    match = _RELATIVE.match(text)
    if match:
        count = match.group(1)
        amount = _COUNT_WORDS[count] if count in _COUNT_WORDS else int(count)
        unit = match.group(2).lower()
        unit = unit if unit in _UNIT_SECONDS else unit.rstrip("s")
        return local_now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    match = _DAY_WORD.match(text)
    if match:
        day = (local_now - timedelta(days=_DAYS_BACK[match.group(1).lower()])).date()
        if match.group(3) is None:
            return _wall(zone, day.year, day.month, day.day)
        hour = _half_day(match.group(2), int(match.group(3)))
        return _wall(zone, day.year, day.month, day.day, hour, int(match.group(4)), int(match.group(5) or 0))
    match = _CLOCK.match(text)
    if match:  # "10:00" on a board = today
        return _wall(zone, local_now.year, local_now.month, local_now.day, int(match.group(1)),
                     int(match.group(2)), int(match.group(3) or 0))
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" and len(text) > 10 else text
    try:
        parsed = datetime.fromisoformat(iso)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    except ValueError:
        pass
    match = _DATE_TIME.match(text)
    if match:
        year_text, month, day = match.group(1), int(match.group(2)), int(match.group(3))
        hour = _half_day(match.group(4), int(match.group(5) or 0))
        minute, second = int(match.group(6) or 0), int(match.group(7) or 0)
        if year_text:
            return _wall(zone, int(year_text), month, day, hour, minute, second)
        moment = _wall(zone, local_now.year, month, day, hour, minute, second)
        if moment - local_now > timedelta(days=1):  # "12-31 23:00" read on Jan 1 is last year
            moment = _wall(zone, local_now.year - 1, month, day, hour, minute, second)
        return moment
    if any(c.isalpha() for c in text):
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    raise TimeError(f"unreadable time: {text!r}")


def parse_time(value: object, zone: tzinfo, fetched_at: datetime) -> datetime:
    """The moment `value` names, aware, in `zone` when it gave none; TimeError says why not."""
    try:
        moment = _read(value, zone, fetched_at)
    except (OverflowError, OSError) as exc:
        raise TimeError(f"time out of range: {value!r} ({exc})") from None
    if moment < EARLIEST:
        raise TimeError(f"time before {EARLIEST.year}: {moment.isoformat()}")
    if moment.year > fetched_at.year + 2:
        raise TimeError(f"time absurdly far ahead: {moment.isoformat()}")
    return moment


def future_reason(moment: datetime, fetched_at: datetime,
                  tolerance: timedelta = FUTURE_TOLERANCE) -> str | None:
    """Why a post dated `moment` may not be sent (ahead of the fetch time), or None."""
    ahead = moment - fetched_at
    if ahead > tolerance:
        return (f"published_at {moment.isoformat()} is {ahead.total_seconds():.0f} s ahead of the fetch time "
                f"{fetched_at.isoformat(timespec='seconds')} (more than {tolerance.total_seconds():.0f} s)")
    return None
