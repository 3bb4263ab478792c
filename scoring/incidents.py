"""Per-brand incidents: one story opens one incident, pages when it starts and when it
escalates, and closes only after every key of it has been quiet for a while.

The per-key hysteresis (scoring/alerts.py) says when a (brand, category) key rises or falls.
On-call should not get one page per key and per dip: the first key of a brand to rise above
low opens that brand's incident; any other key of the brand that rises while it is open
joins it; the incident closes once every key of it has been low for `quiet_s` seconds of
event time. Pages go out only on news: `opened`, and `escalated` above the highest level the
incident has had. A dip and a rise back, another category joining at or below that level,
or a level change below it is an `updated` record; a fall of the incident's current level is
`lowered`; the end is `closed`.

Pure functions over a serialisable IncidentState, fed with the `alerts` topic records the
key hysteresis makes (AlertEvent.to_dict()); the reference engine and the Flink job (keyed by
brand) call the same two functions: `on_key_alert` for each key record, `on_time` when event
time advances (window closes, the watermark), since closing needs a time signal.

Record contract (docs/alerting.md, "Incidents"): the key record plus `incident_id`, `kind`,
`page`, `incident_level`, `current_level`, `categories` and `key_alert_id`; `alert_id` now
carries the incident id (so acknowledgements, reminders and deduplication keyed by
`alert_id` follow the incident), the key's own episode id moves to `key_alert_id`;
`first_detected_at` and `deadlines` run from the incident's first detection.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping

LEVELS = ("low", "medium", "high")
RANK = {name: i for i, name in enumerate(LEVELS)}
KINDS = ("opened", "escalated", "updated", "lowered", "closed")
# "raised" is the key-level kind of records written before incidents: still a page for consumers
PAGE_KINDS = frozenset({"opened", "raised", "escalated"})
DEFAULT_QUIET_S = 2 * 3600


class IncidentError(ValueError):
    """A key record that cannot be applied (the record is reported, the stream goes on)."""


@dataclass(frozen=True)
class IncidentConfig:
    quiet_s: int = DEFAULT_QUIET_S  # every key low this long (event time) closes the incident

    def __post_init__(self) -> None:
        if not isinstance(self.quiet_s, int) or isinstance(self.quiet_s, bool) or self.quiet_s < 0:
            raise IncidentError(f"incidents.quiet_s must be a whole number of seconds >= 0, got {self.quiet_s!r}")


@dataclass(frozen=True)
class IncidentState:
    """One brand's open incident (or none: `incident_id` is None)."""

    incident_id: str | None = None
    brand: str = ""
    first_detected_ms: int = 0
    max_level: str = "low"  # the highest level the incident has had: a page only above it
    keys: tuple[tuple[str, str], ...] = ()  # (category, current level), in joining order
    quiet_since_ms: int | None = None  # when the last key fell to low (None: a key is above low)
    last_at_ms: int = 0
    pages: int = 0

    @property
    def open(self) -> bool:
        return self.incident_id is not None

    @property
    def current_level(self) -> str:
        return max((level for _, level in self.keys), key=RANK.__getitem__, default="low")

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "brand": self.brand, "first_detected_ms": self.first_detected_ms,
                "max_level": self.max_level, "keys": [list(k) for k in self.keys],
                "quiet_since_ms": self.quiet_since_ms, "last_at_ms": self.last_at_ms, "pages": self.pages}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "IncidentState":
        if not data or not data.get("incident_id"):
            return cls()
        return cls(str(data["incident_id"]), str(data.get("brand") or ""), int(data.get("first_detected_ms") or 0),
                   str(data.get("max_level") or "low"),
                   tuple((str(c), str(lv)) for c, lv in data.get("keys") or ()),
                   None if data.get("quiet_since_ms") is None else int(data["quiet_since_ms"]),
                   int(data.get("last_at_ms") or 0), int(data.get("pages") or 0))


def incident_id(brand: str, first_detected_ms: int) -> str:
    """Stable: the brand and the incident's first detection (whatever joins later)."""
    raw = f"incident|{brand}|{_format_ms(first_detected_ms)}".encode("utf-8")
    return hashlib.sha1(raw).hexdigest()[:16]


def is_page(record: Mapping[str, Any]) -> bool:
    """Whether an `alerts` record is a page: new records by `kind`; records written before
    incidents (no `kind`) by their key-level `event` ("raised" paged, "lowered" resolved)."""
    kind = record.get("kind") or record.get("event")
    return kind in PAGE_KINDS


def _format_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _parse_ms(text: Any, name: str) -> int:
    if not isinstance(text, str):
        raise IncidentError(f"key alert: {name} must be an RFC 3339 string")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise IncidentError(f"key alert: {name} {text[:40]!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise IncidentError(f"key alert: {name} has no UTC offset")
    return int(when.timestamp() * 1000)


def _check(record: Mapping[str, Any]) -> tuple[str, str, str, str, int]:
    if not isinstance(record, Mapping):
        raise IncidentError("key alert: not an object")
    brand, category, level, event = (record.get(k) for k in ("brand", "category", "level", "event"))
    if not isinstance(brand, str) or not brand or not isinstance(category, str) or not category:
        raise IncidentError("key alert: brand and category must be non-empty strings")
    if level not in RANK:
        raise IncidentError(f"key alert: level must be one of {', '.join(LEVELS)}, got {str(level)[:20]!r}")
    if event not in ("raised", "lowered"):
        raise IncidentError(f"key alert: event must be raised or lowered, got {str(event)[:20]!r}")
    return brand, category, level, event, _parse_ms(record.get("at"), "at")


def _record(state: IncidentState, base: Mapping[str, Any], kind: str, at_ms: int) -> dict[str, Any]:
    out = dict(base)
    key_id = base.get("alert_id")
    out.update({
        "alert_id": state.incident_id, "incident_id": state.incident_id, "key_alert_id": key_id,
        "kind": kind, "page": kind in PAGE_KINDS,
        "incident_level": state.max_level, "current_level": state.current_level,
        "categories": [{"category": c, "level": lv} for c, lv in state.keys],
        "first_detected_at": _format_ms(state.first_detected_ms),
        "at": _format_ms(at_ms),
    })
    deadlines = []
    for d in base.get("deadlines") or ():
        try:
            hours = float(d["hours_after_detection"])
        except (KeyError, TypeError, ValueError):
            continue
        deadlines.append({**d, "due_at": _format_ms(state.first_detected_ms + int(hours * 3_600_000))})
    out["deadlines"] = deadlines
    return out


def on_time(state: IncidentState, now_ms: int, cfg: IncidentConfig = IncidentConfig()
            ) -> tuple[IncidentState, list[dict[str, Any]]]:
    """Event time reached `now_ms` (a window closed, the watermark moved): close the incident
    if every key of it has been low for `cfg.quiet_s`. The `closed` record is dated at the end
    of the quiet period, however late the time signal came."""
    if not state.open or state.quiet_since_ms is None:
        return state, []
    closes_at = state.quiet_since_ms + cfg.quiet_s * 1000
    if now_ms < closes_at:
        return state, []
    base = {"event": "closed", "brand": state.brand, "category": state.keys[0][0] if state.keys else "general",
            "level": "low", "previous_level": state.max_level, "alert_id": None}
    record = _record(state, base, "closed", closes_at)
    return IncidentState(), [record]


def close_deadline_ms(state: IncidentState, cfg: IncidentConfig = IncidentConfig()) -> int | None:
    """The event time at which the incident closes if nothing rises before (a timer's time)."""
    if not state.open or state.quiet_since_ms is None:
        return None
    return state.quiet_since_ms + cfg.quiet_s * 1000


def on_key_alert(state: IncidentState, record: Mapping[str, Any], cfg: IncidentConfig = IncidentConfig()
                 ) -> tuple[IncidentState, list[dict[str, Any]]]:
    """Apply one key-level alert record of the state's brand; returns the new state and the
    incident records to publish (a pending close first, when the key record comes after the
    quiet period ended with no time signal in between)."""
    brand, category, level, event, at_ms = _check(record)
    if state.open and state.brand != brand:
        raise IncidentError(f"key alert: brand {brand!r} fed to the incident of {state.brand!r}")
    state, out = on_time(state, at_ms, cfg)
    keys = dict(state.keys)
    if not state.open:
        if event != "raised" or RANK[level] == 0:
            return state, out  # a key falling with no incident open (its incident closed): nothing new
        first = at_ms
        try:
            first = min(at_ms, _parse_ms(record.get("first_detected_at"), "first_detected_at"))
        except IncidentError:
            pass
        state = IncidentState(incident_id(brand, first), brand, first, level, ((category, level),), None, at_ms, 1)
        out.append(_record(state, record, "opened", at_ms))
        return state, out
    before = state.current_level
    keys[category] = level
    ordered = tuple((c, keys[c]) for c in dict.fromkeys([c for c, _ in state.keys] + [category]))
    quiet = None if any(RANK[lv] > 0 for lv in keys.values()) else (state.quiet_since_ms or at_ms)
    escalates = RANK[level] > RANK[state.max_level]
    state = replace(state, keys=ordered, quiet_since_ms=quiet, last_at_ms=max(state.last_at_ms, at_ms),
                    max_level=level if escalates else state.max_level,
                    pages=state.pages + (1 if escalates else 0))
    if escalates:
        kind = "escalated"
    elif RANK[state.current_level] < RANK[before]:
        kind = "lowered"
    else:
        kind = "updated"
    out.append(_record(state, record, kind, at_ms))
    return state, out


@dataclass
class IncidentBook:
    """All brands' incidents for a single-process consumer (the reference engine)."""

    cfg: IncidentConfig = field(default_factory=IncidentConfig)
    states: dict[str, IncidentState] = field(default_factory=dict)

    def key_alert(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        brand = record.get("brand") if isinstance(record, Mapping) else None
        state = self.states.get(brand, IncidentState()) if isinstance(brand, str) else IncidentState()
        new, out = on_key_alert(state, record, self.cfg)
        self._store(brand, new)
        return out

    def advance(self, now_ms: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for brand in [b for b, s in self.states.items() if s.quiet_since_ms is not None]:
            new, records = on_time(self.states[brand], now_ms, self.cfg)
            self._store(brand, new)
            out.extend(records)
        return out

    def _store(self, brand: Any, state: IncidentState) -> None:
        if state.open:
            self.states[brand] = state
        else:
            self.states.pop(brand, None)
