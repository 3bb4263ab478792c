"""Issue #22 in the pure core: growth sustained over hours (scoring/risk.py sustained_growth,
the Baseline's trend_* averages) and persistence as evidence before medium (alerts.has_evidence
with the key's last hour, engine.hour_posts_before)."""
from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from scoring.alerts import has_evidence
from scoring.engine import KeyState, extend_history, hour_posts_before
from scoring.features import WindowStats
from scoring.risk import (AlertConfig, Baseline, RiskConfigError, VolatilityConfig, parse_risk_config,
                          sustained_growth, trend_with, update_baseline, volatility, volatility_parts)
from scoring.warmstart import HistoryRow, baseline_from_history

MIN = 60_000
CFG = VolatilityConfig()


def window(end_ms: int, posts: int, brand: str = "星云支付", **more) -> WindowStats:
    return WindowStats(brand, "privacy", end_ms - 10 * MIN, end_ms, posts=posts, negative_posts=posts,
                       user_posts=posts, distinct_platforms=1 if posts else 0, **more)


def live(rate_at, minutes: int, seed: int = 1, start: Baseline | None = None) -> tuple[Baseline, list[float]]:
    """A key living through `minutes` one-minute slides of Poisson posts at `rate_at(minute)`
    per minute (10-minute windows; empty windows are not emitted, as in the job). Returns the
    baseline and the sustained-growth value of every emitted window."""
    rng = random.Random(seed)
    slides = [_poisson(rng, rate_at(m + 0.5)) for m in range(minutes)]
    b, seen = start or Baseline(), []
    for m in range(minutes):
        posts = sum(slides[max(0, m - 9):m + 1])
        if not posts:
            continue
        stats = window((m + 1) * MIN, posts)
        fast, slow, _ = trend_with(b, stats)
        seen.append(sustained_growth(fast, slow))
        b = update_baseline(b, stats)
    return b, seen


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# ------------------------------------------------------------------ sustained growth


@pytest.mark.parametrize("rate", [0.2, 1.5, 30.0])
def test_a_steady_key_shows_no_sustained_growth_from_its_first_window_on(rate):
    """The averages are plain means while young, so a key first seen at its usual rate (a
    replay's start, a brand just added) is not a story, quiet or loud."""
    b, seen = live(lambda m: rate, 8 * 60)
    assert b.trend_windows > 0 and b.trend_fast == pytest.approx(rate, rel=0.35)
    assert max(seen) < 0.35 and sum(seen) / len(seen) < 0.05


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_story_doubling_every_90_minutes_scores_near_full_after_hours(seed):
    """A post every 20 minutes, doubling every 90: nothing to see in the first hour, the
    fast average a doubling above the slow one and sure of it after five to seven hours."""
    _, seen = live(lambda m: 0.05 * 2 ** (m / 90), 7 * 60, seed=seed)
    early, late = seen[:len(seen) // 8], seen[-60:]
    assert max(early) < 0.3
    assert sum(late) / len(late) > 0.7


def test_sustained_growth_needs_both_growth_and_certainty():
    assert sustained_growth(0.0, 0.0) == 0.0 == sustained_growth(1.0, 2.0)  # falling or nothing
    assert sustained_growth(31.0, 30.0) < 0.1  # a loud key 3% up: sure, but no growth
    assert sustained_growth(0.1, 0.05) < 0.3  # a doubling of three posts in half an hour: not sure
    assert sustained_growth(1.0, 0.5) > 0.9  # thirty posts in half an hour against fifteen: both
    stricter = replace(CFG, sustained_z_ref=6.0)
    assert sustained_growth(1.0, 0.5, cfg=stricter) < sustained_growth(1.0, 0.5)


def test_volatility_is_the_larger_of_the_minutes_and_the_hours_measure():
    b = Baseline(mean=1.0, var=0.1, last_posts=10, last_window_end_ms=59 * MIN, windows=300,
                 trend_fast=1.0, trend_slow=0.4, trend_windows=300)
    stats = window(60 * MIN, 10)
    parts = volatility_parts(stats, b)
    fast, slow, _ = trend_with(b, stats)
    assert sustained_growth(fast, slow) > 0.8 > max(parts.values())
    assert volatility(stats, b) == pytest.approx(sustained_growth(fast, slow))
    flat = replace(b, trend_slow=1.0)  # same minutes, no story over hours: the old volatility
    assert volatility(stats, flat) < 0.2


def test_empty_windows_fold_in_like_windows_of_zero_posts():
    start = Baseline(trend_fast=2.0, trend_slow=1.0, trend_windows=400, last_window_end_ms=100 * MIN, mean=1.0)
    by_gap = update_baseline(start, window(200 * MIN, 5))
    step = start
    for m in range(101, 200):
        step = update_baseline(step, window(m * MIN, 0))
    step = update_baseline(step, window(200 * MIN, 5))
    assert by_gap.trend_fast == pytest.approx(step.trend_fast, rel=1e-9)
    assert by_gap.trend_slow == pytest.approx(step.trend_slow, rel=1e-9)
    assert by_gap.trend_windows == step.trend_windows == 500


def test_older_state_without_the_averages_starts_them_at_its_next_window():
    old = {"mean": 3.0, "var": 0.5, "last_posts": 30, "last_window_end_ms": 50 * MIN, "windows": 900,
           "norm_posts": 3.0, "norm_windows": 900}
    b = Baseline.from_dict(old)
    assert (b.trend_fast, b.trend_slow, b.trend_windows) == (0.0, 0.0, 0)
    after = update_baseline(b, window(80 * MIN, 30))  # 29 silent windows are not folded into nothing
    assert after.trend_fast == after.trend_slow == pytest.approx(3.0) and after.trend_windows == 1
    assert Baseline.from_dict(after.to_dict()) == after


def test_a_seeded_key_starts_with_its_history_as_both_averages():
    rows = [HistoryRow(i * 3_600_000, 60.0, 120, 100, platform_posts=(60, 60)) for i in range(24)]
    b = baseline_from_history(rows)
    assert b.trend_fast == pytest.approx(2.0) and b.trend_slow == pytest.approx(2.0) and b.trend_windows == 24 * 60
    fast, slow, _ = trend_with(b, window(10 * MIN, 20))
    assert sustained_growth(fast, slow) == 0.0


@pytest.mark.parametrize("name", ["sustained_fast_windows", "sustained_slow_windows", "sustained_doublings_ref",
                                  "sustained_z_ref"])
def test_sustained_settings_are_validated(name):
    with pytest.raises(RiskConfigError, match=f"volatility.{name}"):
        parse_risk_config({"volatility": {name: 0}})
    assert getattr(parse_risk_config({"volatility": {name: 7}}).volatility, name) == 7


# ------------------------------------------------------------------ persistence as evidence


@pytest.mark.parametrize("posts, hour_posts, ok", [
    (1, 0, False), (2, 5, False), (2, 6, True), (1, 9, True), (3, 0, True),
])
def test_one_or_two_posts_are_evidence_when_the_last_hour_held_enough(posts, hour_posts, ok):
    assert has_evidence(window(10 * MIN, posts), AlertConfig(), hour_posts) is ok


def test_persistence_can_be_switched_off_and_grave_posts_need_no_history():
    off = AlertConfig(evidence_hour_posts=0)
    assert not has_evidence(window(10 * MIN, 2), off, 50)
    assert has_evidence(window(10 * MIN, 1, media_posts=1), off, 0)
    assert parse_risk_config({"alerts": {"evidence_hour_posts": 10}}).alerts.evidence_hour_posts == 10


def test_the_hour_before_a_window_is_read_from_the_keys_per_slide_history():
    state = KeyState()
    for m in range(1, 91):  # one post a minute for 90 minutes, then the 90th window
        stats = window(m * MIN, min(m, 10), last_slide_posts=1)
        history, end = extend_history(state, stats, MIN)
        state = replace(state, history=history, history_end_ms=end)
    assert hour_posts_before(state.history, state.history_end_ms, 90 * MIN, 60) == 60
    assert hour_posts_before(state.history, state.history_end_ms, 40 * MIN, 60) == 40  # an older window
    assert hour_posts_before((), None, 90 * MIN, 60) == 0
    gap = window(150 * MIN, 1, last_slide_posts=1)  # an hour of silence, then one post
    history, end = extend_history(state, gap, MIN)
    assert hour_posts_before(history, end, 150 * MIN, 60) == 1
