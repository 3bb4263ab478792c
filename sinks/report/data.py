"""The numbers of the weekly report (舆情周报), read from ClickHouse.

Periods are Beijing days: `--from 2026-11-16 --to 2026-11-22` covers 16 Nov 00:00 to
23 Nov 00:00 (+08:00); the "before" period for rising categories is the same length just
before it. Times go to the server as epoch seconds (a datetime parameter would lose its
offset). Plain 18.16 SQL: ARRAY JOIN, LIMIT n BY, FINAL; no CTEs or window functions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sinks.response.clock import Clock
from sinks.response.store import ResponseStore, clock_for

BEIJING = timezone(timedelta(hours=8))
LEVEL_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive
    end: datetime  # exclusive

    @classmethod
    def from_dates(cls, first: date, last: date) -> "Period":
        """Beijing days `first`..`last`, both included."""
        if last < first:
            raise ValueError(f"--to {last} is before --from {first}")
        start = datetime(first.year, first.month, first.day, tzinfo=BEIJING)
        end = datetime(last.year, last.month, last.day, tzinfo=BEIJING) + timedelta(days=1)
        return cls(start, end)

    @property
    def days(self) -> int:
        return round((self.end - self.start) / timedelta(days=1))

    @property
    def hourly(self) -> bool:
        return self.days <= 2

    def previous(self) -> "Period":
        return Period(self.start - (self.end - self.start), self.start)


@dataclass(frozen=True)
class TrendPoint:
    bucket: datetime
    posts: int
    negative: int
    sentiment: float  # mean probability positive

    @property
    def negative_share(self) -> float:
        return self.negative / self.posts if self.posts else 0.0


@dataclass(frozen=True)
class AlertSummary:
    alert_id: str
    brand: str
    category: str
    top_level: str
    last_level: str
    last_event: str
    first_detected_at: datetime
    last_at: datetime
    peak_posts: int
    peak_risk: float
    clock: Clock
    categories: tuple[str, ...] = ()  # an incident's categories (one for an alert from before incidents)
    incident: bool = False  # a brand's incident (scoring/incidents.py), not a key-level alert


@dataclass(frozen=True)
class TopPost:
    brand: str
    platform: str
    id: str
    author: str
    author_kind: str
    followers: int
    text: str
    url: str
    engagement: int
    negative: bool
    published_at: datetime


@dataclass(frozen=True)
class Spreader:
    brand: str
    platform: str
    author_id: str
    author: str
    author_kind: str
    followers: int
    posts: int
    negative: int
    engagement: int


@dataclass(frozen=True)
class CategoryChange:
    brand: str
    category: str
    posts: int
    before: int

    @property
    def change(self) -> int:
        return self.posts - self.before

    @property
    def ratio(self) -> float | None:
        return None if self.before == 0 else self.posts / self.before


@dataclass
class ReportData:
    period: Period
    brand: str | None
    generated_at: datetime
    brands: list[str] = field(default_factory=list)
    trends: dict[str, list[TrendPoint]] = field(default_factory=dict)  # brand -> buckets
    platforms: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)  # brand -> (platform, posts, negative)
    alerts: list[AlertSummary] = field(default_factory=list)
    top_posts: list[TopPost] = field(default_factory=list)
    spreaders: list[Spreader] = field(default_factory=list)
    categories: list[CategoryChange] = field(default_factory=list)

    def total_posts(self, brand: str | None = None) -> int:
        return sum(p.posts for b, pts in self.trends.items() if brand in (None, b) for p in pts)

    def total_negative(self, brand: str | None = None) -> int:
        return sum(p.negative for b, pts in self.trends.items() if brand in (None, b) for p in pts)


def _epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def load_report(store: ResponseStore, period: Period, brand: str | None = None, top_n: int = 3,
                now: datetime | None = None) -> ReportData:
    """Everything the report shows, in a handful of queries."""
    c = store._c()
    db = store.db
    p = {"start": _epoch(period.start), "end": _epoch(period.end), "brand": brand or "",
         "prev": _epoch(period.previous().start)}
    in_period = "published_at >= toDateTime(%(start)s) AND published_at < toDateTime(%(end)s)"
    only = " AND b = %(brand)s" if brand else ""
    data = ReportData(period, brand, now or datetime.now(timezone.utc))

    bucket = "toStartOfHour(published_at)" if period.hourly else "toDate(published_at)"
    rows = c.execute(
        f"SELECT b, {bucket} AS k, count(), sum(negative), avg(sentiment) FROM {db}.posts FINAL "
        f"ARRAY JOIN brands AS b WHERE {in_period}{only} GROUP BY b, k ORDER BY b, k", p)
    for b, k, n, neg, s in rows:
        when = _aware(k) if isinstance(k, datetime) else datetime(k.year, k.month, k.day, tzinfo=BEIJING)
        data.trends.setdefault(b, []).append(TrendPoint(when, int(n), int(neg), float(s)))
    data.brands = sorted(data.trends, key=lambda b: -data.total_posts(b))

    rows = c.execute(
        f"SELECT b, platform, count() AS n, sum(negative) FROM {db}.posts FINAL ARRAY JOIN brands AS b "
        f"WHERE {in_period}{only} GROUP BY b, platform ORDER BY b, n DESC, platform", p)
    for b, platform, n, neg in rows:
        data.platforms.setdefault(b, []).append((platform, int(n), int(neg)))

    rows = c.execute(
        f"SELECT b, platform, id, author_name, toString(author_kind), followers, text, url, "
        f"reposts + comments + likes AS eng, negative, published_at FROM {db}.posts FINAL "
        f"ARRAY JOIN brands AS b WHERE {in_period}{only} "
        f"ORDER BY b, platform, eng DESC, id LIMIT {int(top_n)} BY b, platform", p)
    data.top_posts = [TopPost(b, pl, i, a, k, int(f), t, u, int(e), bool(neg), _aware(ts))
                      for b, pl, i, a, k, f, t, u, e, neg, ts in rows]

    rows = c.execute(
        f"SELECT b, platform, author_id, any(author_name), toString(any(author_kind)), max(followers), "
        f"count() AS n, sum(negative), sum(reposts + comments + likes) AS eng FROM {db}.posts FINAL "
        f"ARRAY JOIN brands AS b WHERE {in_period}{only} AND author_id != '' "
        f"GROUP BY b, platform, author_id ORDER BY b, platform, eng DESC, n DESC, author_id "
        f"LIMIT {int(top_n)} BY b, platform", p)
    data.spreaders = [Spreader(b, pl, aid, a or aid, k, int(f), int(n), int(neg), int(e))
                      for b, pl, aid, a, k, f, n, neg, e in rows]

    rows = c.execute(
        f"SELECT b, cat, countIf(published_at >= toDateTime(%(start)s)) AS now, "
        f"countIf(published_at < toDateTime(%(start)s)) AS before FROM {db}.posts FINAL "
        f"ARRAY JOIN match_brands AS b, match_categories AS cat "
        f"WHERE published_at >= toDateTime(%(prev)s) AND published_at < toDateTime(%(end)s){only} "
        f"GROUP BY b, cat", p)
    data.categories = sorted((CategoryChange(b, cat, int(n), int(bf)) for b, cat, n, bf in rows),
                             key=lambda x: (-x.change, x.brand, x.category))

    rows = c.execute(
        f"SELECT alert_id, any(brand), any(category), groupArray(toString(level)), "
        f"argMax(toString(level), at), argMax(toString(event), at), min(first_detected_at), max(at), "
        # an incident's clock runs on its latest page's deadlines (a later update or close carries others)
        f"max(posts), max(risk_score), argMaxIf(deadlines, at, toString(kind) IN ('', 'opened', 'escalated')), "
        f"groupUniqArray(category), max(incident_id != '') FROM {db}.alerts FINAL "
        f"WHERE first_detected_at >= toDateTime(%(start)s) AND first_detected_at < toDateTime(%(end)s)"
        f"{' AND brand = %(brand)s' if brand else ''} GROUP BY alert_id ORDER BY min(first_detected_at), alert_id", p)
    actions = store.actions([r[0] for r in rows])
    for aid, b, cat, levels, last_level, last_event, first, last_at, peak, risk, deadlines, cats, incident in rows:
        top = max(levels, key=LEVEL_RANK.get)
        record = {"alert_id": aid, "first_detected_at": _aware(first).isoformat(), "top_level": top,
                  "deadlines": json.loads(deadlines or "[]")}
        data.alerts.append(AlertSummary(
            aid, b, cat, top, last_level, last_event, _aware(first), _aware(last_at), int(peak), float(risk),
            clock_for(record, [a for a in actions if a.alert_id == aid]), tuple(sorted(cats)), bool(incident)))
    return data


def parse_day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{flag}: expected a date like 2026-11-16, got {value!r}") from None


def as_dict(data: ReportData) -> dict[str, Any]:
    """A JSON-friendly summary (used by tests and --json)."""
    return {
        "from": data.period.start.isoformat(), "to": data.period.end.isoformat(), "brand": data.brand,
        "brands": data.brands,
        "posts": {b: data.total_posts(b) for b in data.brands},
        "negative": {b: data.total_negative(b) for b in data.brands},
        "alerts": [{"alert_id": a.alert_id, "brand": a.brand, "category": a.category, "level": a.top_level,
                    "acked_by": a.clock.acked_by,
                    "ack_seconds": None if a.clock.time_to_ack() is None else a.clock.time_to_ack().total_seconds(),
                    "ack_met": a.clock.ack_met(),
                    "resolve_seconds": None if a.clock.time_to_resolve() is None
                    else a.clock.time_to_resolve().total_seconds(),
                    "resolve_met": a.clock.resolve_met()} for a in data.alerts],
        "incidents": sum(1 for a in data.alerts if a.incident),
        "incident_categories": {a.alert_id: list(a.categories) for a in data.alerts if a.incident},
        "rising": [{"brand": c.brand, "category": c.category, "posts": c.posts, "before": c.before}
                   for c in data.categories if c.change > 0],
    }
