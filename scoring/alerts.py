"""Per-key alert hysteresis: one event when a key's level rises, one when it falls back.

Rising is immediate (a crisis must not wait); falling needs the score to stay below the
current level's threshold minus `margin` for `cooldown_windows` consecutive windows, so a
score hovering at a threshold does not flap. Pure functions over a serialisable AlertState.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any

from core.levels import LEVELS, Playbook
from core.times import format_ms
from scoring.risk import AlertConfig, ScoreConfig, level_for

RANK = {name: i for i, name in enumerate(LEVELS)}


@dataclass(frozen=True)
class AlertState:
    level: str = "low"
    below: int = 0  # consecutive windows under the current level's threshold - margin
    first_detected_ms: int | None = None  # start of the current episode (level > low)
    last_window_end_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar (tests/scoring/test_window_scorer.py checks): a shallow copy
        # equals asdict's, whose recursive deep copy was ~20% of the job's per-window Python
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "AlertState":
        if not data:
            return cls()
        names = _ALERTSTATE_FIELDS
        return cls(**{k: v for k, v in data.items() if k in names})


_ALERTSTATE_FIELDS = frozenset(f.name for f in fields(AlertState))


def alert_id(brand: str, category: str, first_detected_ms: int) -> str:
    """Stable per episode, so a rise, a further rise and the fall share one id."""
    raw = f"{brand}|{category}|{format_ms(first_detected_ms)}".encode("utf-8")
    return hashlib.sha1(raw).hexdigest()[:16]


def has_evidence(stats: Any, cfg: AlertConfig = AlertConfig(), hour_posts: int = 0) -> bool:
    """Evidence before medium: whether a window may lift a key that is low. One or two
    ordinary posts are not enough on their own (they are a trickle, not yet a story); they are
    when a post is grave: a media or official author, or a legal/regulator signal, or when
    they are not alone: the key had `evidence_hour_posts` posts over the last hour
    (`hour_posts`, this window's included). `stats` is a WindowStats (posts, media_posts,
    official_posts, legal_hits)."""
    if stats.posts >= cfg.evidence_posts:
        return True
    if cfg.evidence_hour_posts > 0 and hour_posts >= cfg.evidence_hour_posts:
        return True
    return bool(stats.media_posts or stats.official_posts or stats.legal_hits)


def next_level(state: AlertState, score: float, window_end_ms: int, slide_ms: int = 60_000,
               score_cfg: ScoreConfig = ScoreConfig(), cfg: AlertConfig = AlertConfig(),
               evidence: bool = True) -> tuple[AlertState, str | None]:
    """Advance the state by one window; returns (state, "raised"|"lowered"|None).
    Without `evidence` (has_evidence) a low key stays low whatever the score."""
    raw = level_for(score, score_cfg)
    if not evidence and state.level == "low":
        raw = "low"
    current = state.level
    below = state.below
    if state.last_window_end_ms and window_end_ms > state.last_window_end_ms + slide_ms:
        # Windows with no posts are never emitted; they count as windows below threshold.
        below += (window_end_ms - state.last_window_end_ms) // slide_ms - 1
    if RANK[raw] > RANK[current]:
        first = state.first_detected_ms if current != "low" and state.first_detected_ms is not None else window_end_ms
        return AlertState(raw, 0, first, window_end_ms), "raised"
    # The level the score supports once the margin is granted.
    target = level_for(min(score + cfg.margin, 1.0), score_cfg)
    if RANK[target] < RANK[current]:
        below += 1
        if below >= cfg.cooldown_windows:
            first = None if target == "low" else state.first_detected_ms
            # Keep the episode's first detection on the state the event is built from.
            return AlertState(target, 0, first, window_end_ms), "lowered"
        return replace(state, below=below, last_window_end_ms=window_end_ms), None
    return replace(state, below=0, last_window_end_ms=window_end_ms), None


@dataclass(frozen=True)
class AlertEvent:
    event: str  # "raised" | "lowered"
    brand: str
    category: str
    level: str
    previous_level: str
    at_ms: int
    first_detected_ms: int
    window_start_ms: int
    window_end_ms: int
    posts: int
    negative_ratio: float
    influence: float
    severity: float
    volatility: float
    risk_score: float
    examples: tuple[dict[str, Any], ...]
    playbook: Playbook
    forecast: dict[str, Any] | None = None  # scoring.forecast.Forecast.to_dict(), on raised events

    @property
    def alert_id(self) -> str:
        return alert_id(self.brand, self.category, self.first_detected_ms)

    def to_dict(self) -> dict[str, Any]:
        """The `alerts` topic record (docs/internal-formats.md)."""
        return {
            "alert_id": self.alert_id, "event": self.event,
            "brand": self.brand, "category": self.category,
            "level": self.level, "previous_level": self.previous_level,
            "at": format_ms(self.at_ms), "first_detected_at": format_ms(self.first_detected_ms),
            "window_start": format_ms(self.window_start_ms), "window_end": format_ms(self.window_end_ms),
            "posts": self.posts, "negative_ratio": round(self.negative_ratio, 4),
            "influence": round(self.influence, 4), "severity": round(self.severity, 4),
            "volatility": round(self.volatility, 4), "risk_score": round(self.risk_score, 4),
            "examples": [dict(e) for e in self.examples[:3]],
            "playbook": self.playbook.to_dict(),
            "deadlines": self.playbook.deadlines_from(self.first_detected_ms),
            "forecast": self.forecast,
        }
