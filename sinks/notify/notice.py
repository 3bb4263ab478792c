"""What on-call is told: one `Notice` per alert, from either path.

Two paths carry the same crisis: the job's `alerts` topic (fast, rich: examples, playbook,
deadlines) and Prometheus -> Alertmanager (slower, the safety net). Both become Notices
with the same dedup key, brand|category|level plus firing/resolved, so on-call is paged once.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

from .config import LEVELS

INCIDENT_KINDS = ("opened", "escalated", "updated", "lowered", "closed")  # scoring/incidents.py KINDS

SEVERITY_LEVEL = {"critical": "high", "warning": "medium"}


class NoticeError(ValueError):
    pass


@dataclass(frozen=True)
class Example:
    text: str
    platform: str | None = None
    author: str | None = None
    url: str | None = None
    id: str | None = None
    source: str | None = None  # "report": a user report, whose claims are never shown as facts


@dataclass(frozen=True)
class Deadline:
    name: str
    due_at: datetime


@dataclass(frozen=True)
class Playbook:
    title: str
    owner: str | None = None
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notice:
    path: str  # "kafka" or "alertmanager"
    route: str  # critical | ops-critical | warning | ops | default
    status: str  # "firing" or "resolved"
    alertname: str
    brand: str | None = None
    category: str | None = None
    level: str | None = None  # for resolved: the level that ended
    new_level: str | None = None  # for resolved Kafka events: the level it fell to
    risk_score: float | None = None
    influence: float | None = None
    severity: float | None = None
    volatility: float | None = None
    posts: int | None = None
    negative_ratio: float | None = None
    summary: str | None = None
    summary_zh: str | None = None
    description: str | None = None  # the rule's description annotation
    runbook_url: str | None = None
    first_detected_at: datetime | None = None
    at: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    alert_id: str | None = None  # on incident records: the incident id (scoring/incidents.py)
    incident_id: str | None = None
    kind: str | None = None  # opened | escalated | updated | lowered | closed (None: a record before incidents)
    categories: tuple[tuple[str, str], ...] = ()  # the incident's (category, level) pairs
    examples: tuple[Example, ...] = ()
    playbook: Playbook | None = None
    deadlines: tuple[Deadline, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    draft: str | None = None  # the 0-2 h statement draft (sinks.response.first_draft)
    forecast: dict[str, Any] | None = None  # scoring.forecast.Forecast.to_dict()

    @property
    def is_brand_alert(self) -> bool:
        return bool(self.brand and self.category and self.level)

    def dedup_keys(self) -> tuple[str, ...]:
        """Keys that identify this page across both paths (any seen one suppresses it)."""
        if self.is_brand_alert:
            # and one per brand and level: an incident is a brand's story (the Prometheus
            # rules fire per brand too, naming the leading category in an annotation)
            keys = [f"{self.status}|{self.brand}|{self.category}|{self.level}",
                    f"{self.status}|brand|{self.brand}|{self.level}"]
        else:
            digest = hashlib.sha1(repr(sorted(self.labels)).encode()).hexdigest()[:16]
            keys = [f"{self.status}|{self.alertname}|{digest}"]
        if self.alert_id:
            keys.append(f"{self.status}|id|{self.alert_id}|{self.level}")
        return tuple(keys)

    def opposite_keys(self) -> tuple[str, ...]:
        """Keys of the opposite status: a new firing re-arms after a resolve and vice versa."""
        flipped = replace(self, status="resolved" if self.status == "firing" else "firing")
        return flipped.dedup_keys()

    def enriched_from(self, other: "Notice") -> "Notice":
        """Fill fields this notice lacks (examples, playbook, …) from a Kafka event notice."""
        changes = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("path", "route", "status", "alertname", "labels", "alert_id"):
                continue
            if (mine is None or mine == ()) and theirs not in (None, ()):
                changes[f.name] = theirs
        return replace(self, **changes) if changes else self

    # --- serialisation (retry queue file) -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif f.name == "examples":
                value = [vars_of(e) for e in value]
            elif f.name == "deadlines":
                value = [{"name": d.name, "due_at": d.due_at.isoformat()} for d in value]
            elif f.name == "playbook" and value is not None:
                value = {"title": value.title, "owner": value.owner, "steps": list(value.steps)}
            elif f.name in ("labels", "categories"):
                value = [list(kv) for kv in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Notice":
        kwargs = dict(data)
        for name in ("first_detected_at", "at", "window_start", "window_end"):
            kwargs[name] = parse_time(kwargs.get(name))
        kwargs["examples"] = tuple(Example(**e) for e in kwargs.get("examples") or ())
        kwargs["deadlines"] = tuple(Deadline(d["name"], parse_time(d["due_at"])) for d in kwargs.get("deadlines") or ())
        pb = kwargs.get("playbook")
        kwargs["playbook"] = Playbook(pb["title"], pb.get("owner"), tuple(pb.get("steps") or ())) if pb else None
        kwargs["labels"] = tuple((k, v) for k, v in kwargs.get("labels") or ())
        kwargs["categories"] = tuple((c, lv) for c, lv in kwargs.get("categories") or ())
        return cls(**kwargs)


def vars_of(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (with `Z` or offset) -> aware datetime; None/empty/zero-time -> None."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise NoticeError(f"expected an RFC 3339 time, got {type(value).__name__}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Alertmanager sends nanoseconds; Python takes at most microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise NoticeError(f"not an RFC 3339 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if parsed.year <= 1:
        return None
    return parsed


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def notice_from_alert_event(event: Any) -> Notice:
    """A Kafka `alerts` record (docs/internal-formats.md) -> Notice. Raises NoticeError."""
    if not isinstance(event, dict):
        raise NoticeError(f"alert event: expected a JSON object, got {type(event).__name__}")
    missing = [k for k in ("brand", "category", "level", "event") if not event.get(k)]
    if missing:
        raise NoticeError(f"alert event lacks {', '.join(missing)}")
    kind, level = event["event"], event["level"]
    incident_kind = event.get("kind")
    if incident_kind is not None and incident_kind not in INCIDENT_KINDS:
        raise NoticeError(f"alert event: kind must be one of {', '.join(INCIDENT_KINDS)}, got {str(incident_kind)[:20]!r}")
    if kind not in ("raised", "lowered") and not (kind == "closed" and incident_kind == "closed"):
        raise NoticeError(f"alert event: event must be raised or lowered, got {kind!r}")
    if level not in LEVELS:
        raise NoticeError(f"alert event: unknown level {level!r}")
    previous = event.get("previous_level")
    examples = tuple(_example(e) for e in (event.get("examples") or [])[:3] if isinstance(e, dict))
    pb = event.get("playbook")
    playbook = None
    if isinstance(pb, dict) and pb.get("title"):
        playbook = Playbook(str(pb["title"]), pb.get("owner"), tuple(str(s) for s in pb.get("steps") or ()))
    deadlines = []
    for d in event.get("deadlines") or []:
        if isinstance(d, dict) and d.get("name") and d.get("due_at"):
            deadlines.append(Deadline(str(d["name"]), parse_time(d["due_at"])))
    if incident_kind in ("updated", "lowered"):
        # news inside an open incident: recorded, never a page (docs/alerting.md, "Incidents")
        status, notice_level, new_level = "update", level, None
    elif incident_kind == "closed":
        status, notice_level, new_level = "resolved", event.get("incident_level") or previous or level, "low"
    elif kind == "raised":  # opened / escalated, or a record written before incidents
        status, notice_level, new_level = "firing", event.get("incident_level") or level, None
    else:  # lowered: the page is about the level that ended
        status, notice_level, new_level = "resolved", previous or level, level
    if notice_level not in LEVELS:
        raise NoticeError(f"alert event: unknown incident level {notice_level!r}")
    categories = tuple((str(c.get("category"))[:40], str(c.get("level"))[:10]) for c in (event.get("categories") or [])[:20]
                       if isinstance(c, dict) and c.get("category") and c.get("level") in LEVELS)
    route = "critical" if notice_level == "high" else "warning"
    return Notice(
        path="kafka", route=route, status=status, alertname="YuqingRiskEvent",
        brand=str(event["brand"]), category=str(event["category"]), level=notice_level, new_level=new_level,
        risk_score=_float(event.get("risk_score")), influence=_float(event.get("influence")),
        severity=_float(event.get("severity")), volatility=_float(event.get("volatility")),
        posts=int(event["posts"]) if isinstance(event.get("posts"), int) else None,
        negative_ratio=_float(event.get("negative_ratio")),
        first_detected_at=parse_time(event.get("first_detected_at")), at=parse_time(event.get("at")),
        window_start=parse_time(event.get("window_start")), window_end=parse_time(event.get("window_end")),
        alert_id=event.get("alert_id"), examples=examples, playbook=playbook, deadlines=tuple(deadlines),
        incident_id=_str_or_none(event.get("incident_id"), 64), kind=incident_kind, categories=categories,
        draft=_draft(event) if status == "firing" else None,
        forecast=event.get("forecast") if isinstance(event.get("forecast"), dict) else None,
    )


def _draft(event: dict[str, Any]) -> str | None:
    """The first statement draft for the page; a template problem never blocks the page."""
    try:
        from sinks.response import first_draft

        return first_draft(event) or None
    except Exception:  # noqa: BLE001 - paging on-call matters more than the draft
        return None


def _str_or_none(value: Any, max_chars: int = 2048) -> str | None:
    return value[:max_chars] if isinstance(value, str) and value else None


def _example(e: dict[str, Any]) -> Example:
    """Only the fields the job itself wrote; any `claimed` (caller-chosen) field is ignored."""
    return Example(text=str(e.get("text") or "")[:2000], platform=_str_or_none(e.get("platform"), 40),
                   author=_author_name(e.get("author")), url=_str_or_none(e.get("url")),
                   id=_str_or_none(e.get("id"), 200), source=_str_or_none(e.get("source"), 40))


def _author_name(author: Any) -> str | None:
    if isinstance(author, dict):
        return _str_or_none(author.get("name"), 100) or _str_or_none(author.get("id"), 100)
    return _str_or_none(author, 100)


def notices_from_alertmanager(payload: Any, route: str) -> list[Notice]:
    """An Alertmanager webhook body (version 4) -> one Notice per alert."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise NoticeError("alertmanager webhook: expected a JSON object with an alerts list")
    out = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict):
            raise NoticeError("alertmanager webhook: each alert must be an object")
        labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        ann = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()}
        level = labels.get("level") or SEVERITY_LEVEL.get(labels.get("severity", ""))
        out.append(Notice(
            path="alertmanager", route=route,
            status="resolved" if alert.get("status") == "resolved" else "firing",
            alertname=labels.get("alertname", "unknown"),
            # brand rules fire per brand: the leading category is an annotation
            brand=labels.get("brand"), category=labels.get("category") or _str_or_none(ann.get("category"), 40),
            level=level if labels.get("brand") else None,
            risk_score=_float(ann.get("risk_score")), influence=_float(ann.get("influence")),
            severity=_float(ann.get("severity_score")), volatility=_float(ann.get("volatility")),
            summary=ann.get("summary"), summary_zh=ann.get("summary_zh"),
            description=ann.get("description"), runbook_url=ann.get("runbook_url"),
            at=parse_time(alert.get("startsAt")),
            labels=tuple(sorted((k, v) for k, v in labels.items() if k not in ("instance",))),
        ))
    return out
