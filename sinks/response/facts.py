"""The facts of one alert, as the strings a statement template may use.

An `alerts` record (docs/internal-formats.md) becomes `AlertFacts`: every placeholder a
template can name (`FIELDS`) always has a printable value, so rendering a draft at 3 a.m.
never fails on a missing number; unknown values read "待核实" (to be verified).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from core.levels import LEVEL_ZH
from sinks.zh import PLATFORM_ZH, format_duration_zh

BEIJING = timezone(timedelta(hours=8))
UNKNOWN = "待核实"

CATEGORY_ZH = {
    "privacy": "隐私与数据安全", "outage": "服务故障", "refund": "退款与用户权益",
    "legal": "法律与监管", "safety": "产品与人身安全", "rumour": "谣言与不实信息",
    "general": "综合舆情",
}

#: Placeholder -> meaning. Templates may use exactly these names, e.g. `{brand}`.
FIELDS: dict[str, str] = {
    "alert_id": "告警编号",
    "brand": "品牌名",
    "category": "风险类别（英文名，如 privacy）",
    "category_zh": "风险类别中文名",
    "level": "风险等级 low/medium/high",
    "level_zh": "风险等级：低/中/高",
    "first_detected": "首次发现时间（北京时间，如 11月25日 10:00）",
    "first_detected_time": "首次发现的钟点（如 10:00）",
    "posts": "触发告警窗口内的相关帖子数",
    "total_posts": "首次发现以来的相关帖子总数（无数据时同 posts）",
    "negative_share": "负面占比（如 72%）",
    "platforms": "涉及平台（中文，顿号分隔）",
    "platform_count": "涉及平台数",
    "top_platform": "帖子最多的平台",
    "example": "第一条典型帖子摘要",
    "examples": "典型帖子摘要（最多 3 条，分号分隔）",
    "statement_due": "首次声明截止时间（北京时间）",
    "facts_due": "事实与方案截止时间（北京时间）",
    "owner": "预案负责人",
    "playbook_title": "预案名称",
    "hours_since_detection": "距首次发现已过去的时间（如 1小时20分）",
}

EXAMPLE_CHARS = 60


@dataclass(frozen=True)
class AlertFacts:
    """Typed facts of one alert; `values()` gives the placeholder strings."""

    alert_id: str
    brand: str
    category: str
    level: str
    first_detected_at: datetime | None
    posts: int | None
    total_posts: int | None = None
    negative_ratio: float | None = None
    platform_posts: tuple[tuple[str, int], ...] = ()  # (platform, posts), most first
    examples: tuple[dict[str, Any], ...] = ()
    deadlines: tuple[tuple[str, datetime, float], ...] = ()  # (name, due_at, hours after detection)
    owner: str | None = None
    playbook_title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def deadline_at(self, hours: float) -> datetime | None:
        """Due time of the deadline at `hours` after detection (nearest one at or after it)."""
        later = [d for d in self.deadlines if d[2] >= hours - 1e-9]
        if later:
            return min(later, key=lambda d: d[2])[1]
        if self.first_detected_at is not None:
            return self.first_detected_at + timedelta(hours=hours)
        return None

    def values(self, now: datetime | None = None) -> dict[str, str]:
        now = now or datetime.now(timezone.utc)
        platforms = [PLATFORM_ZH.get(p, p) for p, _ in self.platform_posts]
        examples = [_example_text(e) for e in self.examples if _example_text(e)]
        detected = self.first_detected_at
        out = {
            "alert_id": self.alert_id or UNKNOWN,
            "brand": self.brand or UNKNOWN,
            "category": self.category or "general",
            "category_zh": CATEGORY_ZH.get(self.category, self.category or CATEGORY_ZH["general"]),
            "level": self.level,
            "level_zh": LEVEL_ZH.get(self.level, self.level),
            "first_detected": beijing_long(detected) if detected else UNKNOWN,
            "first_detected_time": detected.astimezone(BEIJING).strftime("%H:%M") if detected else UNKNOWN,
            "posts": str(self.posts) if self.posts is not None else UNKNOWN,
            "total_posts": str(self.total_posts if self.total_posts is not None else self.posts)
            if (self.total_posts is not None or self.posts is not None) else UNKNOWN,
            "negative_share": f"{self.negative_ratio:.0%}" if self.negative_ratio is not None else UNKNOWN,
            "platforms": "、".join(platforms) if platforms else UNKNOWN,
            "platform_count": str(len(platforms)) if platforms else UNKNOWN,
            "top_platform": platforms[0] if platforms else UNKNOWN,
            "example": examples[0] if examples else UNKNOWN,
            "examples": "；".join(examples) if examples else UNKNOWN,
            "statement_due": _due(self.deadline_at(2.0)),
            "facts_due": _due(self.deadline_at(12.0)),
            "owner": self.owner or UNKNOWN,
            "playbook_title": self.playbook_title or UNKNOWN,
            "hours_since_detection": format_duration_zh((now - detected).total_seconds()) if detected else UNKNOWN,
        }
        assert set(out) == set(FIELDS)  # the table above and this mapping move together
        return out


def beijing_long(ts: datetime) -> str:
    t = ts.astimezone(BEIJING)
    return f"{t.month}月{t.day}日 {t:%H:%M}"


def _due(ts: datetime | None) -> str:
    return beijing_long(ts) if ts else UNKNOWN


def _example_text(example: Any) -> str:
    if not isinstance(example, Mapping):
        return ""
    text = " ".join(str(example.get("text") or "").split())
    if len(text) > EXAMPLE_CHARS:
        text = text[:EXAMPLE_CHARS] + "…"
    return text


class FactsError(ValueError):
    pass


def _time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise FactsError(f"{name}: expected an RFC 3339 time, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FactsError(f"{name}: not an RFC 3339 time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _platform_posts(alert: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """`platforms` may be {platform: posts} or [platform, …]; else counted from examples."""
    raw = alert.get("platforms")
    counts: dict[str, int] = {}
    if isinstance(raw, Mapping):
        counts = {str(k): int(v) for k, v in raw.items() if isinstance(v, (int, float))}
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        for p in raw:
            counts[str(p)] = counts.get(str(p), 0) + 1
    else:
        for e in alert.get("examples") or []:
            if isinstance(e, Mapping) and e.get("platform"):
                counts[str(e["platform"])] = counts.get(str(e["platform"]), 0) + 1
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def facts_from_alert(alert: Mapping[str, Any]) -> AlertFacts:
    """An `alerts` record (or a row read back from ClickHouse in that shape) -> AlertFacts.

    Optional extras a caller may add: `platforms` ({platform: posts} or a list) and
    `total_posts` (posts since first detection).
    """
    if not isinstance(alert, Mapping):
        raise FactsError(f"alert: expected a JSON object, got {type(alert).__name__}")
    level = alert.get("level")
    if level not in LEVEL_ZH:
        raise FactsError(f"alert: level must be low, medium or high, got {level!r}")
    deadlines = []
    for d in alert.get("deadlines") or []:
        if isinstance(d, Mapping) and d.get("name") and d.get("due_at"):
            hours = d.get("hours_after_detection")
            due = _time(d["due_at"], "deadlines.due_at")
            deadlines.append((str(d["name"]), due, float(hours) if isinstance(hours, (int, float)) else -1.0))
    detected = _time(alert.get("first_detected_at") or alert.get("at"), "first_detected_at")
    if detected is not None:  # fill hours the record left out
        deadlines = [(n, due, h if h >= 0 else (due - detected).total_seconds() / 3600) for n, due, h in deadlines]
    playbook = alert.get("playbook") if isinstance(alert.get("playbook"), Mapping) else {}
    posts = alert.get("posts")
    total = alert.get("total_posts")
    ratio = alert.get("negative_ratio")
    return AlertFacts(
        alert_id=str(alert.get("alert_id") or ""),
        brand=str(alert.get("brand") or ""),
        category=str(alert.get("category") or "general"),
        level=level,
        first_detected_at=detected,
        posts=int(posts) if isinstance(posts, (int, float)) and not isinstance(posts, bool) else None,
        total_posts=int(total) if isinstance(total, (int, float)) and not isinstance(total, bool) else None,
        negative_ratio=float(ratio) if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) else None,
        platform_posts=_platform_posts(alert),
        examples=tuple(e for e in (alert.get("examples") or [])[:3] if isinstance(e, Mapping)),
        deadlines=tuple(sorted(deadlines, key=lambda d: d[2])),
        owner=playbook.get("owner") or None,
        playbook_title=playbook.get("title") or None,
    )
