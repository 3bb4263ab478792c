"""scoring.forecast on synthetic histories whose true curve is known.

Each case draws Poisson per-minute counts from a known rate curve (seeded), forecasts from
the first 120 minutes and compares with the TRUE expected volume of the next 1 h and 6 h.
The median relative error and the coverage of the 80% interval are printed and bounded.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest

from scoring.features import WindowStats
from scoring.forecast import forecast, posts_to_reach
from scoring.risk import Baseline, RiskConfig, influence, level_for, risk_score, severity, volatility
from yuqing import synth

HISTORY = 120
SEEDS = 20


def damped(a: float, b: float, phi: float):
    def rate(t: np.ndarray) -> np.ndarray:
        s = t if phi >= 1 else (1 - phi ** t) / (1 - phi)
        return np.exp(a + b * s)
    return rate


def synth_crisis(t: np.ndarray) -> np.ndarray:
    """The demo crisis of yuqing/synth.py (logistic rise, then a half-life decay): not our model."""
    sc = synth.crisis("快送", "privacy", datetime(2026, 11, 25, tzinfo=timezone.utc), minutes=600, peak_per_min=120)
    return np.array([sc.rate(float(x) + 0.5) for x in t]) + 0.05


CASES = {
    # name: (rate curve, max median error 1 h, max median error 6 h, min 80%-interval coverage)
    # Six hours of a still-growing burst cannot be pinned down from two hours of history
    # (the growth rate's error compounds); the interval has to say so, hence the coverage check.
    "damped growth": (damped(math.log(2), 0.06, 0.985), 0.25, 0.70, 0.65),
    "exponential": (damped(math.log(3), 0.01, 1.0), 0.15, 0.65, 0.65),
    "flat": (damped(math.log(5), 0.0, 1.0), 0.12, 0.20, 0.65),
    "decay after peak": (damped(math.log(80), -0.01, 1.0), 0.12, 0.25, 0.65),
    "synth crisis (logistic, misspecified)": (synth_crisis, 0.20, 0.35, 0.65),
}


@pytest.mark.parametrize("name", list(CASES))
def test_forecast_error_against_the_true_curve(name, capsys):
    curve, bound1, bound6, cover_min = CASES[name]
    t = np.arange(HISTORY + 360)
    mu = curve(t)
    true1, true6 = mu[HISTORY:HISTORY + 60].sum(), mu[HISTORY:HISTORY + 360].sum()
    err1, err6, cover1, cover6 = [], [], 0, 0
    for seed in range(SEEDS):
        counts = np.random.default_rng(1000 + seed).poisson(mu[:HISTORY])
        f = forecast(counts.tolist(), now_ms=1_764_000_000_000, seed=seed)
        err1.append(abs(f.next_1h - true1) / true1)
        err6.append(abs(f.next_6h - true6) / true6)
        cover1 += f.next_1h_low <= true1 <= f.next_1h_high
        cover6 += f.next_6h_low <= true6 <= f.next_6h_high
        assert f.next_1h_low <= f.next_1h_high and f.next_6h_low <= f.next_6h_high
    m1, m6 = float(np.median(err1)), float(np.median(err6))
    with capsys.disabled():
        print(f"\n[forecast] {name}: true next 1h {true1:.0f}, 6h {true6:.0f}; median error 1h {m1:.1%}, "
              f"6h {m6:.1%}; 80% interval coverage 1h {cover1 / SEEDS:.0%}, 6h {cover6 / SEEDS:.0%}")
    assert m1 <= bound1, f"{name}: median 1h error {m1:.1%} > {bound1:.0%}"
    assert m6 <= bound6, f"{name}: median 6h error {m6:.1%} > {bound6:.0%}"
    assert cover1 / SEEDS >= cover_min, f"{name}: 1h interval covered the truth in {cover1}/{SEEDS} runs"
    assert cover6 / SEEDS >= cover_min, f"{name}: 6h interval covered the truth in {cover6}/{SEEDS} runs"


def test_chance_of_reaching_the_next_level_follows_the_threshold_and_the_trend():
    rising = np.random.default_rng(3).poisson(damped(math.log(2), 0.03, 1.0)(np.arange(HISTORY)))
    window_now = int(rising[-10:].sum())
    easy = forecast(rising, 0, next_level="high", next_level_posts=window_now * 0.5)
    assert easy.p_next_level_1h == 1.0  # already above it
    far = forecast(rising, 0, next_level_posts=window_now * 1000)
    assert far.p_next_level_1h == 0.0 and far.p_next_level_6h == 0.0
    mid = forecast(rising, 0, next_level_posts=window_now * 3)
    assert 0.0 < mid.p_next_level_6h and mid.p_next_level_1h <= mid.p_next_level_6h
    falling = np.random.default_rng(3).poisson(damped(math.log(60), -0.02, 1.0)(np.arange(HISTORY)))
    down = forecast(falling, 0, next_level_posts=int(falling[-10:].sum()) * 3)
    assert down.p_next_level_6h < 0.05 and down.growth_per_hour < 0
    assert forecast(rising, 0).p_next_level_1h is None  # no threshold, no probability


def test_degenerate_histories_and_bad_input():
    silent = forecast([0] * 60, 5)
    assert silent.next_1h == 0.0 and silent.next_6h_high == 0.0 and silent.method.startswith("flat")
    one = forecast([4], 5)
    assert one.next_1h == pytest.approx(240.0) and one.next_1h_low < 240 < one.next_1h_high
    d = forecast([1, 2, 3, 5, 8, 13], 1_764_000_000_000).to_dict()
    assert set(d) >= {"next_1h", "next_1h_low", "next_1h_high", "next_6h", "next_6h_low", "next_6h_high",
                      "p_next_level_1h", "growth_per_hour", "method", "now_ms"}
    assert forecast([1, 2, 3, 5, 8, 13], 0).to_dict() == forecast([1, 2, 3, 5, 8, 13], 0).to_dict()  # seeded
    for bad in ([], [1, -1], [1, float("nan")]):
        with pytest.raises(ValueError, match="forecast:"):
            forecast(bad, 0)


def test_posts_to_reach_inverts_the_risk_model():
    cfg = RiskConfig()
    stats = WindowStats("快送", "privacy", 0, 600_000, posts=30, negative_posts=24, neg_intensity_sum=24 * 850,
                        distinct_platforms=3, distinct_authors=28, kol_posts=2, user_posts=28, big_posts=2,
                        engagement_sum=3000, max_followers=200_000, max_reach=200_000)
    base = Baseline(mean=1.0, var=0.5, big_mean=0.2, platforms_mean=1.5, last_posts=20, last_window_end_ms=540_000, windows=30)

    def level(s):
        return level_for(risk_score(influence(s, cfg.influence), severity(s, 0.9, cfg.severity),
                                    volatility(s, base, 60, cfg.volatility), cfg.score), cfg.score)

    assert level(stats) != "high"
    need = posts_to_reach(stats, base, 0.9, "high", cfg)
    assert need is not None and need > stats.posts
    from scoring.forecast import _scaled

    assert level(_scaled(stats, need / stats.posts)) == "high"
    assert level(_scaled(stats, (need - 2) / stats.posts)) != "high"
    assert posts_to_reach(stats, base, 0.9, "low", cfg) == 30.0  # already there
    quiet = WindowStats("快送", "general", 0, 600_000, posts=5, distinct_platforms=1)
    assert posts_to_reach(quiet, base, 0.0, "high", cfg) is None  # no severity: never high


def test_stacked_fits_equal_the_one_by_one_fits():
    """Stacked, each phi must fit as it does alone: it stops at its own convergence."""
    from scoring.forecast import PHI_GRID, _fit_many, _fit_phi

    rng = np.random.default_rng(3)
    for n in (5, 17, 60, 120):
        counts = rng.poisson(4.0 * np.exp(0.04 * np.arange(n))).astype(float)
        counts[: n // 3] = 0  # quiet start: some phis converge much later than others
        weights = 0.5 ** (((n - 1) - np.arange(n)) / 30.0)
        for trend in (False, True):
            phis = tuple(p for p in PHI_GRID if p < 1.0 or not trend)
            for one, many in zip((_fit_phi(counts, weights, p, trend) for p in phis),
                                 _fit_many(counts, weights, phis, trend)):
                assert one.phi == many.phi
                np.testing.assert_allclose(many.theta, one.theta, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(many.cov, one.cov, rtol=1e-12, atol=1e-12)
                assert many.deviance == pytest.approx(one.deviance, rel=1e-12, abs=1e-12)
                assert many.pearson == pytest.approx(one.pearson, rel=1e-12, abs=1e-12)
