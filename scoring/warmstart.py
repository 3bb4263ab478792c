"""Warm start: a key's baseline (its normal) seeded from history instead of learned live.

A key with no history is scored on absolute numbers until its normal has been learned
(`NormalConfig.alpha`: about an hour for a loud key), so a big brand added to the watchlist
would open with an hour of false alarms. Its history - hourly counts from ClickHouse, or
the first hours of a replay - gives the normal at once. Pure functions: the reading of
ClickHouse lives in the app layer (yuqing/baselines.py), which hands rows in.

Baseline files (what `yuqing baselines export` writes and `--baselines` reads):
``{"version": 1, "keys": [{"brand": ..., "category": ..., "baseline": {Baseline fields}}]}``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from scoring.risk import Baseline, RiskConfig

BASELINE_FILE_VERSION = 1
MAX_BASELINE_FILE_BYTES = 64 * 1024 * 1024
MAX_HISTORY_HOURS = 24 * 90  # a longer history adds nothing the EWMAs would remember


class BaselineFileError(ValueError):
    pass


@dataclass(frozen=True)
class HistoryRow:
    """One period (usually an hour) of one key's posts, as a rollup gives it."""

    start_ms: int
    minutes: float
    posts: int
    negative_posts: int = 0
    core_posts: float = 0.0  # tier-weighted core spreaders (media 2, big-V 1.5, official 0.5)
    engagement: int = 0
    legal_hits: int = 0
    max_reach: int = 0
    platform_posts: tuple[int, ...] = field(default_factory=tuple)  # posts per platform in the period


def _fold(value: float, target: float, alpha: float, windows: int) -> float:
    """`windows` EWMA updates towards the same target, in closed form."""
    keep = (1.0 - alpha) ** windows
    return value * keep + target * (1.0 - keep)


def _platforms_per_window(platform_posts: tuple[int, ...], period_min: float, window_min: float) -> float:
    """Expected platforms seen in one window if each platform's posts were spread evenly
    (Poisson): a platform with 60 posts an hour is in nearly every 10-minute window, one
    with 2 in a third of them."""
    return sum(1.0 - math.exp(-n * window_min / period_min) for n in platform_posts if n > 0)


def baseline_from_history(rows: Iterable[HistoryRow], cfg: RiskConfig | None = None) -> Baseline:
    """A key's Baseline after living through `rows` (oldest first or not; missing periods
    between rows are silence). The short-memory part (volatility) and the normal learn as
    if every window of each period had seen the period's average; the last window's end is
    left unset, so the first live window does not fold the time since the history in."""
    cfg = cfg or RiskConfig()
    ordered = sorted(rows, key=lambda r: r.start_ms)
    if not ordered:
        return Baseline()
    slide_min = cfg.window.slide_s / 60.0
    window_min = cfg.window.size_s / 60.0
    start, end = ordered[0].start_ms, ordered[-1].start_ms + int(ordered[-1].minutes * 60_000)
    if end - start > MAX_HISTORY_HOURS * 3_600_000:
        ordered = [r for r in ordered if r.start_ms >= end - MAX_HISTORY_HOURS * 3_600_000]
    b = Baseline(mean=cfg.volatility.prior_rate, first_seen_ms=ordered[0].start_ms)
    norm = {"norm_posts": 0.0, "norm_negative": 0.0, "norm_core": 0.0, "norm_legal": 0.0,
            "norm_engagement": 0.0, "norm_platforms": 0.0, "norm_reach_log": 0.0}
    mean, var, big, platforms_mean = b.mean, 0.0, 0.0, 1.0
    windows = 0
    cursor = ordered[0].start_ms
    a, na = cfg.volatility.ewma_alpha, cfg.normal.alpha
    # sustained growth's two averages start at the first period's rate: history is not a story
    first = next((r for r in ordered if r.minutes > 0), ordered[0])
    fast = slow = first.posts / first.minutes if first.minutes > 0 else 0.0
    fa, sa = 1.0 / cfg.volatility.sustained_fast_windows, 1.0 / cfg.volatility.sustained_slow_windows
    for row in ordered:
        if row.minutes <= 0:
            continue
        silent = max(0, int((row.start_ms - cursor) / 60_000 / slide_min))
        if silent:  # periods with no row: nothing was posted
            norm = {k: _fold(v, 0.0, na, silent) for k, v in norm.items()}
            var = _fold(var, mean * mean, a, silent) if silent < 10_000 else 0.0
            mean, big, platforms_mean = (_fold(mean, 0.0, a, silent), _fold(big, 0.0, a, silent),
                                         _fold(platforms_mean, 0.0, a, silent))
            fast, slow = _fold(fast, 0.0, fa, silent), _fold(slow, 0.0, sa, silent)
            windows += silent
        n = max(1, int(row.minutes / slide_min))
        rate = row.posts / row.minutes
        seen = {"norm_posts": rate, "norm_negative": row.negative_posts / row.minutes,
                "norm_core": row.core_posts / row.minutes, "norm_legal": row.legal_hits / row.minutes,
                "norm_engagement": row.engagement / row.minutes,
                "norm_platforms": _platforms_per_window(row.platform_posts, row.minutes, window_min),
                "norm_reach_log": math.log1p(row.max_reach)}
        norm = {k: _fold(v, seen[k], na, n) for k, v in norm.items()}
        # a period's windows vary around its average by Poisson noise at least
        var = _fold(var, (rate - mean) ** 2 + rate / window_min, a, n)
        mean = _fold(mean, rate, a, n)
        platforms_mean = _fold(platforms_mean, seen["norm_platforms"], a, n)
        fast, slow = _fold(fast, rate, fa, n), _fold(slow, rate, sa, n)
        windows += n
        cursor = row.start_ms + int(row.minutes * 60_000)
    return replace(b, mean=mean, var=var, big_mean=big, platforms_mean=platforms_mean, windows=windows,
                   norm_windows=windows, last_posts=0, last_window_end_ms=0, **norm,
                   trend_fast=fast, trend_slow=slow, trend_windows=windows)


# ---------------------------------------------------------------- baseline files


def dump_baselines(baselines: dict[tuple[str, str], Baseline]) -> str:
    # a seed applies from the first window it meets: no silence since its last window folded in
    keys = [{"brand": brand, "category": category,
             "baseline": replace(b, last_window_end_ms=0, last_posts=0).to_dict()}
            for (brand, category), b in sorted(baselines.items())]
    return json.dumps({"version": BASELINE_FILE_VERSION, "keys": keys}, ensure_ascii=False, indent=1)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BaselineFileError(f"{where}: expected a finite number, got {value!r}")
    return value


def parse_baselines(data: Any, where: str = "baseline file") -> dict[tuple[str, str], Baseline]:
    """Validated: a bad entry fails with one line naming it (a seed is trusted state)."""
    if not isinstance(data, dict) or data.get("version") != BASELINE_FILE_VERSION or not isinstance(data.get("keys"), list):
        raise BaselineFileError(f"{where}: expected {{\"version\": {BASELINE_FILE_VERSION}, \"keys\": [...]}}")
    names = {f for f in Baseline.__dataclass_fields__}
    ints = {"last_posts", "last_window_end_ms", "windows", "first_seen_ms", "norm_windows"}
    out: dict[tuple[str, str], Baseline] = {}
    for i, entry in enumerate(data["keys"]):
        at = f"{where}: keys[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("brand"), str) or not isinstance(entry.get("category"), str):
            raise BaselineFileError(f"{at}: needs a brand and a category (strings)")
        values = entry.get("baseline")
        if not isinstance(values, dict):
            raise BaselineFileError(f"{at}: baseline must be a mapping")
        unknown = set(values) - names
        if unknown:
            raise BaselineFileError(f"{at}: unknown baseline fields {sorted(unknown)}")
        clean: dict[str, Any] = {}
        for name, value in values.items():
            number = _number(value, f"{at}.{name}")
            if name != "mean" and number < 0:
                raise BaselineFileError(f"{at}.{name}: must not be negative")
            clean[name] = int(number) if name in ints else float(number)
        out[(entry["brand"], entry["category"])] = Baseline(**clean)
    return out


def load_baselines(path: str | Path) -> dict[tuple[str, str], Baseline]:
    path = Path(path)
    if not path.is_file():
        raise BaselineFileError(f"baseline file {path} does not exist")
    if path.stat().st_size > MAX_BASELINE_FILE_BYTES:
        raise BaselineFileError(f"baseline file {path} is larger than {MAX_BASELINE_FILE_BYTES // 2**20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BaselineFileError(f"baseline file {path} is not valid JSON: {str(exc).splitlines()[0]}") from None
    return parse_baselines(data, f"baseline file {path}")
