"""ingest.times: every time form a Chinese site writes, read against a fixed fetch time."""
from datetime import datetime, timedelta, timezone

import pytest

from ingest.times import TimeError, future_reason, parse_time, parse_zone

SHANGHAI = parse_zone("Asia/Shanghai")
CST = timezone(timedelta(hours=8))
# The fetch time: 2026-12-06 10:30:00 in Shanghai.
FETCHED = datetime(2026, 12, 6, 2, 30, tzinfo=timezone.utc)


def at(*parts, tz=CST):
    return datetime(*parts, tzinfo=tz)


@pytest.mark.parametrize("value,expected", [
    # RFC 822 / 2822 (RSS)
    ("Sun, 06 Dec 2026 02:00:00 GMT", at(2026, 12, 6, 10, 0)),
    ("Sun, 6 Dec 2026 10:00:00 +0800", at(2026, 12, 6, 10, 0)),
    ("06 Dec 2026 10:00 +0800", at(2026, 12, 6, 10, 0)),
    # ISO 8601 / RFC 3339
    ("2026-12-06T10:00:00+08:00", at(2026, 12, 6, 10, 0)),
    ("2026-12-06T02:00:00Z", at(2026, 12, 6, 10, 0)),
    ("2026-12-06T10:00:00.250+0800", at(2026, 12, 6, 10, 0, 0, 250000)),
    ("2026-12-06T10:00:00", at(2026, 12, 6, 10, 0)),            # no zone: the source's
    # plain dates as boards print them (the source's zone)
    ("2026-12-06 10:00", at(2026, 12, 6, 10, 0)),
    ("2026-12-06 10:00:07", at(2026, 12, 6, 10, 0, 7)),
    ("2026/12/06 10:00", at(2026, 12, 6, 10, 0)),
    ("2026.12.6 9:05", at(2026, 12, 6, 9, 5)),
    ("2026年12月06日 10:00", at(2026, 12, 6, 10, 0)),
    ("2026年12月6日10:00:30", at(2026, 12, 6, 10, 0, 30)),
    ("2026年12月6日 下午3:15", at(2026, 12, 6, 15, 15)),
    ("2026年12月06日", at(2026, 12, 6, 0, 0)),
    ("12-06 10:00", at(2026, 12, 6, 10, 0)),                   # no year: the fetch year
    ("12月05日 23:59", at(2026, 12, 5, 23, 59)),
    ("10:05", at(2026, 12, 6, 10, 5)),                          # clock only: today
    # relative forms, against the fetch time
    ("刚刚", FETCHED),
    ("5分钟前", FETCHED - timedelta(minutes=5)),
    ("30秒前", FETCHED - timedelta(seconds=30)),
    ("3小时前", FETCHED - timedelta(hours=3)),
    ("半小时前", FETCHED - timedelta(minutes=30)),
    ("2天前", FETCHED - timedelta(days=2)),
    ("1 周前", FETCHED - timedelta(days=7)),
    ("3 hours ago", FETCHED - timedelta(hours=3)),
    ("昨天 10:00", at(2026, 12, 5, 10, 0)),
    ("昨天 晚上8:30", at(2026, 12, 5, 20, 30)),
    ("前天 23:10", at(2026, 12, 4, 23, 10)),
    ("今天 08:00", at(2026, 12, 6, 8, 0)),
    ("昨天", at(2026, 12, 5, 0, 0)),
    # epochs by magnitude
    (1796524200, at(2026, 12, 6, 10, 30)),
    (1796524200.5, at(2026, 12, 6, 10, 30, 0, 500000)),
    (1796524200000, at(2026, 12, 6, 10, 30)),
    (1796524200000000, at(2026, 12, 6, 10, 30)),
    ("1796524200", at(2026, 12, 6, 10, 30)),
    ("1796524200123", at(2026, 12, 6, 10, 30, 0, 123000)),
    ("1796524200123456", at(2026, 12, 6, 10, 30, 0, 123456)),
])
def test_time_forms(value, expected):
    parsed = parse_time(value, SHANGHAI, FETCHED)
    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_the_zone_is_the_sources_when_none_is_written():
    utc = parse_zone("UTC")
    assert parse_time("2026-12-06 10:00", utc, FETCHED) == at(2026, 12, 6, 10, 0, tz=timezone.utc)
    assert parse_time("2026-12-06 10:00", parse_zone("+09:00"), FETCHED) == at(2026, 12, 6, 1, 0, tz=timezone.utc)
    # a written zone wins over the source's
    assert parse_time("2026-12-06T10:00:00Z", SHANGHAI, FETCHED) == at(2026, 12, 6, 10, 0, tz=timezone.utc)


def test_relative_times_follow_the_fetch_time_not_the_wall_clock():
    later = FETCHED + timedelta(days=30)
    assert parse_time("5分钟前", SHANGHAI, later) == later - timedelta(minutes=5)
    assert parse_time("昨天 10:00", SHANGHAI, later) == at(2027, 1, 4, 10, 0)


def test_a_yearless_date_just_after_new_year_is_last_year():
    new_year = at(2027, 1, 1, 0, 10)
    assert parse_time("12-31 23:50", SHANGHAI, new_year) == at(2026, 12, 31, 23, 50)


@pytest.mark.parametrize("value,reason", [
    (float("nan"), "not a finite number"),
    (float("inf"), "not a finite number"),
    ("NaN", "not a number"),
    (-1, "negative epoch"),
    ("-1796524200", "negative epoch"),
    (10 ** 19, "too large"),
    (0, "before 1990"),
    ("1970-01-01T00:00:00Z", "before 1990"),
    ("9999-12-31T00:00:00Z", "absurdly far ahead"),
    ("13月45日", "not a calendar time"),
    ("2026-02-30 10:00", "not a calendar time"),
    ("垃圾", "unreadable"),
    ("", "empty"),
    (None, "missing"),
    (True, "boolean"),
    ([2026], "list"),
    ("x" * 200, "too long"),
])
def test_bad_times_have_reasons(value, reason):
    with pytest.raises(TimeError, match=reason):
        parse_time(value, SHANGHAI, FETCHED)


def test_future_reason():
    assert future_reason(FETCHED + timedelta(minutes=4), FETCHED) is None
    assert future_reason(FETCHED - timedelta(days=3), FETCHED) is None
    reason = future_reason(FETCHED + timedelta(hours=2), FETCHED)
    assert reason is not None and "7200 s ahead of the fetch time" in reason
