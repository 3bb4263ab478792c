"""Short-term volume forecast of one (brand, category) key: the next 1 h and 6 h.

Model (damped exponential growth, fitted to the key's recent per-minute counts):

    counts[t] ~ quasi-Poisson(mu[t]),   log mu[t] = a + b * S(t) [+ c * t],   S(t) = sum_{k<t} phi^k

so the log growth rate per minute is b * phi^t (+ c): it fades geometrically (phi < 1, a
burst that saturates) or stays (phi = 1, plain exponential); b < 0 is a decline, and the
optional steady term c lets a rise turn into a decline after the peak. For each phi on a
grid, with and without c, the coefficients are fitted by iteratively reweighted least
squares on the log link (the exact Poisson maximum likelihood; plain least squares on
log(count) breaks on the zero minutes of a quiet key); models are weighed by quasi-AIC, so
c must earn its parameter. Recent minutes weigh more: the half-life (15–120 min) is the
one whose fit best predicts the last 15 observed minutes from the ones before.
Over-dispersion is the Pearson chi^2 per degree of freedom (at least 1).

Uncertainty: parameters are drawn from their approximate posterior (phi by its profile
likelihood, (a, b) from a normal with the fitted covariance), future minutes from a
quasi-Poisson with that dispersion; the interval is the central `interval` share of the
simulated totals, and the chance of reaching the next level is the share of simulated
futures in which some `window_minutes` window reaches `next_level_posts` posts
(`posts_to_reach` computes that count from the risk model). Future rates are capped at
`rate_cap_factor` times the highest observed minute (bursts saturate; an exponential
extrapolated for 6 h would not). Pure numpy; seeded, so the same input gives the same output.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np

HORIZONS_MIN = (60, 360)
# (phi, with trend c): the trend is only identifiable when phi < 1
PHI_GRID = tuple(np.round(np.concatenate([np.linspace(0.90, 0.99, 10), np.linspace(0.9925, 1.0, 4)]), 4))


@dataclass(frozen=True)
class Forecast:
    now_ms: int
    method: str
    history_minutes: int
    rate_per_min: float  # fitted rate at the last observed minute
    growth_per_hour: float  # current log growth per hour (ln 2 / this = doubling time)
    damping: float  # phi per minute
    dispersion: float
    half_life_min: float  # memory of the fit (chosen by holdout unless given)
    interval: float  # e.g. 0.8: the low/high bounds hold 80% of simulated futures
    next_1h: float
    next_1h_low: float
    next_1h_high: float
    next_6h: float
    next_6h_low: float
    next_6h_high: float
    next_level: str | None = None
    next_level_posts: float | None = None  # posts per window that reach next_level
    p_next_level_1h: float | None = None
    p_next_level_6h: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 4 if abs(v) < 10 else 1)
        return out


@dataclass(frozen=True)
class _Fit:
    phi: float
    theta: np.ndarray  # (a, b): a = log rate at the last observed minute
    cov: np.ndarray
    deviance: float
    pearson: float


def _s(t: np.ndarray, phi: float) -> np.ndarray:
    return t.astype(float) if phi >= 1.0 else (1.0 - phi ** t) / (1.0 - phi)


def _fit_phi(counts: np.ndarray, weights: np.ndarray, phi: float, trend: bool = False) -> _Fit | None:
    """One model; None if its design is singular."""
    try:
        return _irls(counts, weights, (phi,), trend)[0]
    except np.linalg.LinAlgError:
        return None


def _future_log_mu(fit: _Fit, theta: np.ndarray, n: int, horizon: int) -> np.ndarray:
    """log mu for the minutes n .. n+horizon-1 (k = 1..horizon after the last observed)."""
    k = np.arange(1, horizon + 1)
    phi = fit.phi
    if phi >= 1.0:
        steps = k.astype(float)
    else:
        steps = phi ** (n - 1) * (1.0 - phi ** k) / (1.0 - phi)
    theta = np.atleast_2d(theta)
    out = theta[:, :1] + theta[:, 1:2] * steps[None, :]
    if theta.shape[1] > 2:
        out = out + theta[:, 2:3] * k[None, :]
    return out


def forecast(per_minute_counts: Sequence[int], now_ms: int, *, history_minutes: int = 120,
             half_life_min: float | None = None, interval: float = 0.8, samples: int = 400,
             window_minutes: int = 10, next_level: str | None = None,
             next_level_posts: float | None = None, rate_cap_factor: float = 50.0,
             seed: int = 0) -> Forecast:
    """Forecast the next 1 h and 6 h of posts from per-minute counts (oldest first, the
    last entry is the minute ending at `now_ms`)."""
    counts_all = np.asarray(list(per_minute_counts), dtype=float)
    if counts_all.size == 0:
        raise ValueError("forecast: need at least one minute of counts")
    if np.any(counts_all < 0) or not np.all(np.isfinite(counts_all)):
        raise ValueError("forecast: counts must be finite and non-negative")
    if not 0 < interval < 1:
        raise ValueError(f"forecast: interval must be in (0, 1), got {interval}")
    counts = counts_all[-history_minutes:]
    n = len(counts)
    rng = np.random.default_rng(seed)
    horizon = max(HORIZONS_MIN)
    cap = math.log(rate_cap_factor * max(float(counts.max()), 2.0))
    if half_life_min is None:
        half_life_min = choose_half_life(counts)
    age = (n - 1) - np.arange(n)
    weights = 0.5 ** (age / half_life_min) if half_life_min > 0 else np.ones(n)

    fits = [] if n < 4 or counts.sum() == 0 else _all_fits(counts, weights)
    if fits:
        simple = min((f for f in fits if len(f.theta) == 2), key=lambda f: f.deviance)
        dispersion = max(1.0, simple.pearson / max(float(weights.sum()) - 2.0, 1.0))
        aic = np.array([_aic(f, dispersion) for f in fits])
        best = fits[int(np.argmin(aic))]
        prob = np.exp(-(aic - aic.min()) / 2.0)
        prob /= prob.sum()
        pick = rng.choice(len(fits), size=samples, p=prob)
        log_mu = np.empty((samples, horizon))
        for i, fit in enumerate(fits):
            rows = np.nonzero(pick == i)[0]
            if rows.size == 0:
                continue
            theta = rng.multivariate_normal(fit.theta, fit.cov * dispersion, size=rows.size, method="cholesky")
            log_mu[rows] = _future_log_mu(fit, theta, n, horizon)
        point_log = _future_log_mu(best, best.theta, n, horizon)[0]
        rate_now = float(math.exp(best.theta[0]))
        growth = 60.0 * float(best.theta[1] * best.phi ** (n - 1) + (best.theta[2] if len(best.theta) > 2 else 0.0))
        method, phi = "damped-exponential quasi-Poisson IRLS", best.phi
    else:  # too little signal to fit a trend: a flat rate from the mean (zero if silent)
        rate = float(np.average(counts, weights=weights))
        dispersion, phi, growth = 1.0, 1.0, 0.0
        rate_now = rate
        lam = rng.gamma(counts.sum() + 0.5, 1.0 / max(weights.sum(), 1.0), size=samples) if counts.sum() else np.zeros(samples)
        log_mu = np.log(np.maximum(lam, 1e-12))[:, None].repeat(horizon, axis=1)
        point_log = np.full(horizon, math.log(rate) if rate > 0 else -np.inf)
        method = "flat rate (too little history for a trend)"
    mu = np.where(np.isfinite(log_mu), np.exp(np.minimum(log_mu, cap)), 0.0)
    point = np.exp(np.minimum(point_log, cap))
    # quasi-Poisson draws: dispersion * Poisson(mu / dispersion) has mean mu, variance dispersion*mu
    future = dispersion * rng.poisson(mu / dispersion)
    lo_q, hi_q = (1 - interval) / 2, 1 - (1 - interval) / 2
    out: dict[str, float] = {}
    for h, name in zip(HORIZONS_MIN, ("next_1h", "next_6h")):
        totals = future[:, :h].sum(axis=1)
        out[name] = float(point[:h].sum())
        out[name + "_low"] = float(np.quantile(totals, lo_q))
        out[name + "_high"] = float(np.quantile(totals, hi_q))
    p1 = p6 = None
    if next_level_posts is not None:
        past = np.broadcast_to(counts_all[-(window_minutes - 1):] if window_minutes > 1 else np.empty(0),
                               (samples, min(window_minutes - 1, counts_all.size)))
        path = np.concatenate([past, future], axis=1)
        csum = np.concatenate([np.zeros((samples, 1)), np.cumsum(path, axis=1)], axis=1)
        w = min(window_minutes, path.shape[1])
        windows = csum[:, w:] - csum[:, :-w]  # windows ending at each future minute
        p1 = float(np.mean(windows[:, :60].max(axis=1) >= next_level_posts))
        p6 = float(np.mean(windows.max(axis=1) >= next_level_posts))
    return Forecast(
        now_ms=int(now_ms), method=method, history_minutes=n, rate_per_min=rate_now,
        growth_per_hour=growth, damping=float(phi), dispersion=float(dispersion), half_life_min=float(half_life_min), interval=interval,
        next_level=next_level, next_level_posts=next_level_posts, p_next_level_1h=p1, p_next_level_6h=p6,
        **out,
    )


HALF_LIVES_MIN = (15.0, 30.0, 60.0, 120.0)
HOLDOUT_MIN = 15


def _all_fits(counts: np.ndarray, weights: np.ndarray) -> list[_Fit]:
    plain = _fit_many(counts, weights, PHI_GRID, trend=False)
    trended = _fit_many(counts, weights, tuple(p for p in PHI_GRID if p < 1.0), trend=True)
    return [f for f in plain + trended if f]


def _fit_many(counts: np.ndarray, weights: np.ndarray, phis: Sequence[float], trend: bool) -> list[_Fit | None]:
    """`_fit_phi` for every phi at once. One forecast fits 135 models; one at a time they
    took ~100 ms, on the window scorer's thread, when an alert is raised."""
    try:
        return _irls(counts, weights, phis, trend)
    except np.linalg.LinAlgError:  # a singular design: fit one by one, dropping only that phi
        return [_fit_phi(counts, weights, phi, trend) for phi in phis]


def _irls(counts: np.ndarray, weights: np.ndarray, phis: Sequence[float], trend: bool) -> list[_Fit]:
    """Quasi-Poisson IRLS on the log link for each phi, on stacked designs, each phi stopping
    at its own convergence; raises LinAlgError if any design is singular."""
    n = len(counts)
    t = np.arange(n)
    # 0 at the last minute: a = current log rate
    xs = np.stack([_s(t, phi) - _s(np.array([n - 1]), phi)[0] for phi in phis])
    # phi < 1 adds a steady trend c: growth b*phi^t + c can turn into a decline after a peak
    cols = [np.ones_like(xs), xs] + ([np.broadcast_to(t - (n - 1.0), xs.shape)] if trend else [])
    design = np.stack(cols, axis=2)  # (phi, minute, column)
    m = len(phis)
    mu = np.repeat(np.maximum(counts, 0.5)[None, :], m, axis=0)
    eta = np.log(mu)
    theta = np.zeros((m, len(cols)))
    active = np.ones(m, dtype=bool)
    for _ in range(50):
        z = eta + (counts - mu) / mu  # working response of the log link
        xtw = design.transpose(0, 2, 1) * (weights * mu)[:, None, :]
        new = np.linalg.solve(xtw @ design, (xtw @ z[:, :, None]))[:, :, 0]
        new_eta = np.clip((design @ new[:, :, None])[:, :, 0], -20.0, 20.0)
        done = np.max(np.abs(new - theta), axis=1) < 1e-8
        theta[active], eta[active] = new[active], new_eta[active]
        mu[active] = np.exp(new_eta[active])
        active &= ~done
        if not active.any():
            break
    xtw = design.transpose(0, 2, 1) * (weights * mu)[:, None, :]
    cov = np.linalg.inv(xtw @ design)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(counts > 0, counts * np.log(counts / mu), 0.0)
    deviance = 2.0 * np.sum(weights * (term - (counts - mu)), axis=1)
    pearson = np.sum(weights * (counts - mu) ** 2 / mu, axis=1)
    return [_Fit(float(phi), theta[i], cov[i], float(deviance[i]), float(pearson[i])) for i, phi in enumerate(phis)]


def _aic(fit: _Fit, dispersion: float) -> float:
    """Quasi-AIC: the trend term must earn its extra parameter."""
    return fit.deviance / dispersion + 2.0 * len(fit.theta)


def _best_fit(counts: np.ndarray, weights: np.ndarray) -> _Fit | None:
    fits = _all_fits(counts, weights)
    return min(fits, key=lambda f: _aic(f, 1.0)) if fits else None


def choose_half_life(counts: np.ndarray) -> float:
    """How much to trust older minutes: the half-life whose fit on all but the last
    HOLDOUT_MIN minutes predicts those minutes best (Poisson deviance). A burst that has
    just turned wants a short memory; a steady trend a long one."""
    n = len(counts)
    if n < 3 * HOLDOUT_MIN or counts[:-HOLDOUT_MIN].sum() == 0:
        return 60.0
    train, test = counts[:-HOLDOUT_MIN], counts[-HOLDOUT_MIN:]
    best, best_dev = 60.0, math.inf
    for hl in HALF_LIVES_MIN:
        age = (len(train) - 1) - np.arange(len(train))
        fit = _best_fit(train, 0.5 ** (age / hl))
        if fit is None:
            continue
        mu = np.exp(np.minimum(_future_log_mu(fit, fit.theta, len(train), HOLDOUT_MIN)[0], 20.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(test > 0, test * np.log(test / mu), 0.0)
        dev = float(2.0 * np.sum(term - (test - mu)))
        if dev < best_dev:
            best, best_dev = hl, dev
    return best


def posts_to_reach(stats, baseline, category_severity: float, target_level: str, cfg=None,
                   max_factor: float = 1000.0) -> float | None:
    """Posts per window at which this key would reach `target_level`, if its window grew
    in proportion (same mix of authors, negativity and signals; platforms and the widest
    reach unchanged). None if even `max_factor` times the volume would not get there."""
    from core.levels import LEVELS
    from scoring import risk

    cfg = cfg or risk.RiskConfig()
    want = LEVELS.index(target_level)
    if stats.posts <= 0:
        return None

    def level_at(factor: float) -> int:
        score = risk.assess(_scaled(stats, factor), baseline, category_severity, cfg).risk_score
        return LEVELS.index(risk.level_for(score, cfg.score))

    if level_at(1.0) >= want:
        return float(stats.posts)
    if level_at(max_factor) < want:
        return None
    lo, hi = 1.0, max_factor
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if level_at(mid) >= want else (mid, hi)
    return float(math.ceil(stats.posts * hi))


def _scaled(stats, factor: float):
    names = ("posts", "negative_posts", "neg_intensity_sum", "distinct_authors", "media_posts", "kol_posts",
             "official_posts", "user_posts", "big_posts", "engagement_sum", "legal_hits", "trending_hits")
    return replace(stats, **{n: int(round(getattr(stats, n) * factor)) for n in names})
