"""The three-dimension risk model: influence, severity, volatility -> risk score -> level.

Everything here is a pure function of a window's aggregates (`WindowStats`) and, for
volatility, the key's own history (`Baseline`), so the Flink job and the plain-Python
engine compute identical numbers. Formulas and tuning: docs/risk-model.md.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from core.times import format_ms
from scoring.features import FeatureConfig, WindowStats, log_scale
from scoring.watchlist import GENERAL, Watchlist


class RiskConfigError(ValueError):
    pass


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class WindowConfig:
    size_s: int = 600  # sliding window length
    slide_s: int = 60  # how often a window closes
    out_of_orderness_s: int = 30  # watermark delay (bounded out-of-orderness)


@dataclass(frozen=True)
class InfluenceConfig:
    """Spread: how many people are seeing this, and through whom."""

    w_volume: float = 0.35
    w_platforms: float = 0.20
    w_tier: float = 0.25
    w_engagement: float = 0.10
    w_reach: float = 0.10
    volume_ref: float = 2000.0  # posts per window that count as full volume (log scale)
    platforms_ref: int = 5  # this many platforms = full coverage
    media_weight: float = 2.0  # core-spreader weight per media post
    kol_weight: float = 1.5  # ... per big-V post
    official_weight: float = 0.5  # ... per official-account post (often the brand itself)
    tier_scale: float = 10.0  # weighted core posts at which the tier term reaches 63%
    engagement_ref: float = 100_000.0  # reposts+comments+likes per window (log scale)
    reach_ref: float = 10_000_000.0  # followers/views of the widest single post (log scale)


@dataclass(frozen=True)
class SeverityConfig:
    """Harm: how grave the category is, how negative and intense, whether it turns legal."""

    general_severity: float = 0.3  # category weight of `general` (brand named, no category)
    floor: float = 0.25  # share of the category weight kept even with no negative posts
    legal_weight: float = 0.6  # how far legal/regulator mentions push severity towards 1
    legal_scale: float = 3.0  # legal mentions per window at which that push reaches 63%


@dataclass(frozen=True)
class VolatilityConfig:
    """Momentum: growth against the key's own baseline and signs of going viral."""

    w_surge: float = 0.30
    w_growth: float = 0.20
    w_momentum: float = 0.15
    w_trending: float = 0.15
    w_big_accounts: float = 0.10
    w_new_platforms: float = 0.10
    ewma_alpha: float = 0.05  # per window close (1 min): ~20 min memory
    prior_rate: float = 0.2  # posts/min assumed for a key never seen before
    min_std: float = 0.3  # posts/min noise floor of the z-score
    z_ref: float = 6.0  # z-score counted as a full surge
    growth_ref: float = 8.0  # rate / baseline ratio counted as full growth
    momentum_ref: float = 3.0  # window-over-window increase, in Poisson sigmas, for full momentum
    trending_scale: float = 3.0  # hot-search mentions at which that term reaches 63%
    big_scale: float = 2.0  # big-account posts above their usual count for 63%
    platforms_scale: float = 2.0  # platforms above the usual count for full score
    # Sustained growth (issue #22): a story that keeps growing for hours never surges against
    # the 20-minute memory above; it is measured by a fast against a slow average of the rate.
    sustained_fast_windows: int = 30  # memory of the fast average, in window closes (~30 min)
    sustained_slow_windows: int = 180  # memory of the slow average (~3 h)
    sustained_doublings_ref: float = 1.0  # fast = 2^this x slow counts as full growth ...
    sustained_z_ref: float = 3.0  # ... when this many Poisson sigmas sure


@dataclass(frozen=True)
class NormalConfig:
    """A key's own normal (its baseline of volume, negativity and spread): influence and
    severity count only what goes beyond it, so a brand's everyday chatter is not a crisis."""

    alpha: float = 1.0 / 60.0  # per window close (1 min): ~1 h memory; a new key starts from 0
    settle_windows: int = 120  # learned windows after which an elevated window no longer teaches the normal
    noise_sigmas: float = 1.0  # counts within this many Poisson sigmas of the normal are not excess
    quiet_rate: float = 1.0  # posts/min of normal that every key may have: a quieter key is scored as today


@dataclass(frozen=True)
class ScoreConfig:
    """risk = severity^severity_exponent * exposure^(1-severity_exponent)."""

    severity_exponent: float = 0.5
    exposure_influence: float = 0.6  # exposure = this*influence + (1-this)*volatility
    medium: float = 0.40  # level thresholds on risk_score
    high: float = 0.60


@dataclass(frozen=True)
class AlertConfig:
    margin: float = 0.05  # fall only below threshold - margin ...
    cooldown_windows: int = 5  # ... for this many consecutive windows
    examples: int = 3
    # evidence before medium (scoring/alerts.py has_evidence): a window with fewer posts cannot
    # alone lift a low key, unless a post is grave (media/official author, legal/regulator word)
    evidence_posts: int = 3
    # ... or unless the key has had this many posts over the last hour (its per-slide history):
    # a story that persists is evidence, even when each window holds only one or two posts
    evidence_hour_posts: int = 6
    incident_quiet_s: int = 7200  # a brand's incident closes after every key is low this long


@dataclass(frozen=True)
class RiskConfig:
    window: WindowConfig = field(default_factory=WindowConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    influence: InfluenceConfig = field(default_factory=InfluenceConfig)
    severity: SeverityConfig = field(default_factory=SeverityConfig)
    volatility: VolatilityConfig = field(default_factory=VolatilityConfig)
    normal: NormalConfig = field(default_factory=NormalConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _apply(obj: Any, values: Any, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise RiskConfigError(f"{prefix or 'risk config'}: expected a mapping")
    hints = get_type_hints(type(obj))
    known = {f.name for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in known:
            raise RiskConfigError(f"unknown risk setting {dotted!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            changes[key] = _apply(current, value, dotted)
            continue
        target = hints[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RiskConfigError(f"{dotted}: expected a number, got {value!r}")
        if target is int and value != int(value):
            raise RiskConfigError(f"{dotted}: expected an integer, got {value!r}")
        changes[key] = target(value)
    return replace(obj, **changes) if changes else obj


def validate_config(cfg: RiskConfig) -> RiskConfig:
    """Range checks; each failure names the setting."""

    def check(ok: bool, message: str) -> None:
        if not ok:
            raise RiskConfigError(message)

    for section in ("influence", "severity", "volatility", "normal", "score", "alerts", "window", "features"):
        for f in fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            check(value >= 0, f"{section}.{f.name}: must not be negative, got {value}")
    for section, prefix in (("influence", "w_"), ("volatility", "w_")):
        obj = getattr(cfg, section)
        total = sum(getattr(obj, f.name) for f in fields(obj) if f.name.startswith(prefix))
        check(total > 0, f"{section}: the w_* weights must not all be 0")
    w = cfg.window
    check(w.slide_s > 0 and w.size_s > 0, "window.size_s and window.slide_s must be positive")
    check(w.size_s % w.slide_s == 0, f"window.size_s ({w.size_s}) must be a multiple of window.slide_s ({w.slide_s})")
    s = cfg.score
    check(0 < s.medium < s.high <= 1, f"score: need 0 < medium ({s.medium}) < high ({s.high}) <= 1")
    check(0 <= s.severity_exponent <= 1, "score.severity_exponent must be in 0..1")
    check(0 <= s.exposure_influence <= 1, "score.exposure_influence must be in 0..1")
    check(0 < cfg.volatility.ewma_alpha <= 1, "volatility.ewma_alpha must be in (0, 1]")
    check(0 < cfg.normal.alpha <= 1, "normal.alpha must be in (0, 1]")
    check(cfg.alerts.margin < s.medium, "alerts.margin must be smaller than score.medium")
    check(0 <= cfg.severity.general_severity <= 1, "severity.general_severity must be in 0..1")
    check(cfg.severity.floor <= 1 and cfg.severity.legal_weight <= 1, "severity.floor and legal_weight must be <= 1")
    check(0 < cfg.features.negative_below <= 1, "features.negative_below must be in (0, 1]")
    for name in ("volume_ref", "platforms_ref", "tier_scale", "engagement_ref", "reach_ref"):
        check(getattr(cfg.influence, name) > 0, f"influence.{name} must be positive")
    for name in ("z_ref", "growth_ref", "momentum_ref", "trending_scale", "big_scale", "platforms_scale", "min_std"):
        check(getattr(cfg.volatility, name) > 0, f"volatility.{name} must be positive")
    check(cfg.volatility.growth_ref > 1, "volatility.growth_ref must be > 1")
    for name in ("sustained_fast_windows", "sustained_slow_windows", "sustained_doublings_ref", "sustained_z_ref"):
        check(getattr(cfg.volatility, name) > 0, f"volatility.{name} must be positive")
    check(cfg.severity.legal_scale > 0, "severity.legal_scale must be positive")
    return cfg


def parse_risk_config(data: Any) -> RiskConfig:
    if data is None:
        return RiskConfig()
    return validate_config(_apply(RiskConfig(), data, ""))


def load_risk_config(path: str | Path | None) -> RiskConfig:
    """Defaults, overridden by a YAML file shaped like RiskConfig().to_dict() (any subset)."""
    if path is None:
        return RiskConfig()
    path = Path(path)
    if not path.is_file():
        raise RiskConfigError(f"risk config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RiskConfigError(f"risk config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_risk_config(data)


# ---------------------------------------------------------------- the three dimensions


def _clip(x: float) -> float:
    return 0.0 if x <= 0 else 1.0 if x >= 1 else x


def _saturate(x: float, scale: float) -> float:
    """1 - exp(-x/scale): 0 at 0, 63% at `scale`, tends to 1; for counts of rare signals."""
    return 0.0 if x <= 0 else 1.0 - math.exp(-x / scale)


def _weighted(parts: dict[str, float], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    return _clip(sum(weights[k] * parts[k] for k in parts) / total)


def core_posts(stats: WindowStats, cfg: InfluenceConfig = InfluenceConfig()) -> float:
    """Core-spreader posts weighted by tier (media > big-V > official)."""
    return stats.media_posts * cfg.media_weight + stats.kol_posts * cfg.kol_weight + stats.official_posts * cfg.official_weight


def excess(count: float, expected: float, noise_sigmas: float) -> float:
    """What a count has beyond its expected value and that value's Poisson noise."""
    if expected <= 0:
        return max(0.0, count)
    return max(0.0, count - expected - noise_sigmas * math.sqrt(expected))


def normal_share(baseline: "Baseline", normal: "NormalConfig | None" = None) -> float:
    """The part of a key's normal that is discounted: 0 for a key at or under the quiet
    rate (scored on absolute numbers, as a new key), tending to 1 for a loud key."""
    q = (normal or NormalConfig()).quiet_rate
    if baseline.norm_posts <= q:
        return 0.0
    return (baseline.norm_posts - q) / baseline.norm_posts


def influence_parts(stats: WindowStats, cfg: InfluenceConfig = InfluenceConfig(),
                    baseline: "Baseline | None" = None, normal: "NormalConfig | None" = None) -> dict[str, float]:
    """The five parts; with a `baseline`, each counts only the spread beyond the key's normal
    (a quiet or new key has no normal to discount: the absolute parts)."""
    core = core_posts(stats, cfg)
    platforms_usual = 1.0
    posts, engagement_usual, reach_usual = float(stats.posts), 0.0, 0.0
    share = 0.0 if baseline is None else normal_share(baseline, normal)
    if share > 0:
        k = (normal or NormalConfig()).noise_sigmas
        minutes = stats.window_minutes
        posts = excess(stats.posts, share * baseline.norm_posts * minutes, k)
        core = excess(core, share * baseline.norm_core * minutes, k)
        platforms_usual = max(1.0, 1.0 + share * (baseline.norm_platforms - 1.0))
        engagement_usual = share * baseline.norm_engagement * minutes
        reach_usual = math.expm1(share * baseline.norm_reach_log)
    platforms = 0.0 if cfg.platforms_ref <= 1 else (stats.distinct_platforms - platforms_usual) / (cfg.platforms_ref - 1)
    return {
        "volume": log_scale(posts, cfg.volume_ref),
        "platforms": _clip(platforms),
        "tier": _saturate(core, cfg.tier_scale),
        "engagement": _clip(log_scale(stats.engagement_sum, cfg.engagement_ref) - log_scale(engagement_usual, cfg.engagement_ref)),
        "reach": _clip(log_scale(stats.max_reach, cfg.reach_ref) - log_scale(reach_usual, cfg.reach_ref)),
    }


def influence(stats: WindowStats, cfg: InfluenceConfig = InfluenceConfig(), baseline: "Baseline | None" = None,
              normal: "NormalConfig | None" = None) -> float:
    """Weighted mean of log-scaled volume, platform coverage, core-spreader tier,
    engagement and the widest single post's reach (beyond the key's normal, given one)."""
    parts = influence_parts(stats, cfg, baseline, normal)
    return _weighted(parts, {k: getattr(cfg, f"w_{k}") for k in parts})


def category_weight(category: str, watchlist: Watchlist | None, cfg: SeverityConfig = SeverityConfig()) -> float:
    if category == GENERAL or watchlist is None:
        return cfg.general_severity
    cat = watchlist.category(category)
    return cfg.general_severity if cat is None else cat.severity


def negativity(stats: WindowStats) -> float:
    """Share of negative posts, scaled by how sure the model is they are negative (0.5..1)."""
    if not stats.negative_posts:
        return 0.0
    mean_intensity = stats.neg_intensity_sum / 1000.0 / stats.negative_posts  # mean of 1 - p(positive)
    return _clip(stats.negative_ratio * (0.5 + 0.5 * _clip(2.0 * mean_intensity - 1.0)))


def severity(stats: WindowStats, category_severity: float, cfg: SeverityConfig = SeverityConfig(),
             baseline: "Baseline | None" = None, normal: "NormalConfig | None" = None) -> float:
    """Category gravity scaled by negativity, then pushed towards 1 by legal mentions. With a
    `baseline`, only negative posts and legal mentions beyond the key's normal count."""
    neg = negativity(stats)
    legal_hits = float(stats.legal_hits)
    share = 0.0 if baseline is None else normal_share(baseline, normal)
    if share > 0:
        k = (normal or NormalConfig()).noise_sigmas
        minutes = stats.window_minutes
        if stats.negative_posts:
            neg *= excess(stats.negative_posts, share * baseline.norm_negative * minutes, k) / stats.negative_posts
        legal_hits = excess(legal_hits, share * baseline.norm_legal * minutes, k)
    base = _clip(category_severity) * (cfg.floor + (1.0 - cfg.floor) * neg)
    legal = cfg.legal_weight * _saturate(legal_hits, cfg.legal_scale)
    return _clip(base + (1.0 - base) * legal)


@dataclass(frozen=True)
class Baseline:
    """A key's own history, kept in Flink keyed ValueState between windows.

    `mean`/`var` are the EWMA of the per-minute post rate over past windows; `big_mean`
    and `platforms_mean` the EWMA of big-account posts and platforms per window (short
    memory: volatility). The `norm_*` fields are the key's normal (long memory: relative
    influence and severity).
    """

    mean: float = -1.0  # < 0: never seen, use the prior
    var: float = 0.0
    big_mean: float = 0.0
    platforms_mean: float = 1.0
    last_posts: int = 0
    last_window_end_ms: int = 0
    windows: int = 0
    first_seen_ms: int = 0
    # The key's normal (NormalConfig: slow EWMAs, per minute unless said): what influence
    # and severity measure beyond. All 0 for a new key (and in older checkpoints' state).
    norm_posts: float = 0.0
    norm_negative: float = 0.0
    norm_core: float = 0.0  # tier-weighted core-spreader posts
    norm_legal: float = 0.0
    norm_engagement: float = 0.0
    norm_platforms: float = 0.0  # per window
    norm_reach_log: float = 0.0  # log1p of the widest post's reach, per window
    norm_windows: int = 0  # windows the normal has learned from (or been seeded with)
    # Sustained growth (VolatilityConfig.sustained_*): a fast and a slow average of the rate,
    # posts/min; plain means of the windows seen while younger than their memory.
    trend_fast: float = 0.0
    trend_slow: float = 0.0
    trend_windows: int = 0  # windows folded in, empty ones included (0: none, as in older state)

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar (tests/scoring/test_window_scorer.py checks): a shallow copy
        # equals asdict's, whose recursive deep copy was ~20% of the job's per-window Python
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Baseline":
        if not data:
            return cls()
        names = _BASELINE_FIELDS
        return cls(**{k: v for k, v in data.items() if k in names})


_BASELINE_FIELDS = frozenset(f.name for f in fields(Baseline))


def _gap_windows(baseline: Baseline, window_end_ms: int, slide_ms: int) -> int:
    """Empty windows (no posts, so never emitted) between the last one seen and this one."""
    if baseline.last_window_end_ms <= 0 or window_end_ms <= baseline.last_window_end_ms:
        return 0
    return max(0, (window_end_ms - baseline.last_window_end_ms) // slide_ms - 1)


def _decayed(baseline: Baseline, gap: int, alpha: float) -> Baseline:
    """Fold `gap` zero-count windows into the EWMAs (closed form of `gap` updates with x=0)."""
    if gap <= 0 or baseline.mean < 0:
        return baseline
    mean, var = baseline.mean, baseline.var
    for _ in range(min(gap, 200)):  # after 200 windows at alpha>=0.05 the mean is ~0
        var = (1 - alpha) * (var + alpha * mean * mean)
        mean = (1 - alpha) * mean
    keep = (1 - alpha) ** gap
    return replace(baseline, mean=mean, var=var, big_mean=baseline.big_mean * keep,
                   platforms_mean=baseline.platforms_mean * keep, last_posts=0)


_NORM_FIELDS = ("norm_posts", "norm_negative", "norm_core", "norm_legal", "norm_engagement",
                "norm_platforms", "norm_reach_log")


def _normal_decayed(baseline: Baseline, gap: int, alpha: float) -> Baseline:
    """Fold `gap` empty windows into the normal: silence is part of a key's normal."""
    if gap <= 0 or baseline.norm_windows <= 0:
        return baseline
    keep = (1 - alpha) ** gap
    return replace(baseline, **{name: getattr(baseline, name) * keep for name in _NORM_FIELDS})


def normal_at(baseline: Baseline, window_end_ms: int, slide_s: int = 60,
              cfg: "NormalConfig | None" = None) -> Baseline:
    """The baseline with its normal brought up to this window (empty windows folded in)."""
    cfg = cfg or NormalConfig()
    return _normal_decayed(baseline, _gap_windows(baseline, window_end_ms, slide_s * 1000), cfg.alpha)


def volatility_parts(stats: WindowStats, baseline: Baseline, slide_s: int = 60,
                     cfg: VolatilityConfig = VolatilityConfig()) -> dict[str, float]:
    b = _decayed(baseline, _gap_windows(baseline, stats.window_end_ms, slide_s * 1000), cfg.ewma_alpha)
    rate = stats.posts / stats.window_minutes
    mean = cfg.prior_rate if b.mean < 0 else b.mean
    # Poisson noise of a rate measured over the window, plus the observed variance.
    std = math.sqrt(b.var + mean / stats.window_minutes + cfg.min_std ** 2)
    z = (rate - mean) / std
    growth = math.log((rate + 1.0) / (mean + 1.0)) / math.log(cfg.growth_ref)
    delta = stats.posts - b.last_posts
    momentum = delta / math.sqrt(stats.posts + b.last_posts + 4.0)
    return {
        "surge": _clip(z / cfg.z_ref),
        "growth": _clip(growth),
        "momentum": _clip(momentum / cfg.momentum_ref),
        "trending": _saturate(stats.trending_hits, cfg.trending_scale),
        "big_accounts": _saturate(stats.big_posts - b.big_mean, cfg.big_scale),
        "new_platforms": _clip((stats.distinct_platforms - b.platforms_mean) / cfg.platforms_scale),
    }


def _trend_fold(fast: float, slow: float, n: int, rate: float, count: int,
                cfg: VolatilityConfig) -> tuple[float, float, int]:
    """Fold `count` windows of `rate` into the two averages. Each is the plain mean of the
    windows seen while fewer than its memory (a new key's first windows teach it fully, so
    a key first seen at its usual rate shows no growth); an EWMA after that."""
    a_fast, a_slow = 1.0 / cfg.sustained_fast_windows, 1.0 / cfg.sustained_slow_windows
    while count > 0 and n < max(cfg.sustained_fast_windows, cfg.sustained_slow_windows):
        n += 1
        count -= 1
        fast += max(a_fast, 1.0 / n) * (rate - fast)
        slow += max(a_slow, 1.0 / n) * (rate - slow)
    if count > 0:  # both past their ramp: the closed form of `count` equal updates
        fast = rate + (fast - rate) * (1 - a_fast) ** count
        slow = rate + (slow - rate) * (1 - a_slow) ** count
        n += count
    return fast, slow, n


def trend_with(baseline: Baseline, stats: WindowStats, slide_s: int = 60,
               cfg: VolatilityConfig = VolatilityConfig(), window_end_ms: int | None = None
               ) -> tuple[float, float, int]:
    """The key's fast and slow averages of the rate with this window (and the empty windows
    before it) folded in: (trend_fast, trend_slow, trend_windows). A baseline without them
    (new, seeded, or from older state) starts them at this window."""
    end = stats.window_end_ms if window_end_ms is None else window_end_ms
    gap = _gap_windows(baseline, end, slide_s * 1000) if baseline.trend_windows > 0 else 0
    fast, slow, n = _trend_fold(baseline.trend_fast, baseline.trend_slow, baseline.trend_windows, 0.0, gap, cfg)
    return _trend_fold(fast, slow, n, stats.posts / stats.window_minutes, 1, cfg)


def sustained_growth(fast: float, slow: float, slide_s: int = 60,
                     cfg: VolatilityConfig = VolatilityConfig()) -> float:
    """0..1: how far the fast average is above the slow one (in doublings, against
    `sustained_doublings_ref`) times how sure that is (Poisson sigmas of the posts the fast
    memory holds, against `sustained_z_ref`). A story that has doubled every 90 minutes for
    hours scores near 1; a steady key, however loud, and noise at a few posts an hour near 0."""
    if fast <= slow:
        return 0.0
    doublings = math.log2((fast + 0.01) / (slow + 0.01))
    memory_min = cfg.sustained_fast_windows * slide_s / 60.0
    z = (fast - slow) * memory_min / math.sqrt(slow * memory_min + 1.0)
    return _clip(doublings / cfg.sustained_doublings_ref) * _clip(z / cfg.sustained_z_ref)


def volatility(stats: WindowStats, baseline: Baseline, slide_s: int = 60,
               cfg: VolatilityConfig = VolatilityConfig()) -> float:
    """Growth against the key's own baseline (z-score, ratio, window-over-window momentum)
    plus signs of going viral (hot-search words, big accounts joining, new platforms) - or,
    if it says more, growth sustained over hours (`sustained_growth`)."""
    parts = volatility_parts(stats, baseline, slide_s, cfg)
    weights = {"surge": cfg.w_surge, "growth": cfg.w_growth, "momentum": cfg.w_momentum,
               "trending": cfg.w_trending, "big_accounts": cfg.w_big_accounts, "new_platforms": cfg.w_new_platforms}
    fast, slow, _ = trend_with(baseline, stats, slide_s, cfg)
    return max(_weighted(parts, weights), sustained_growth(fast, slow, slide_s, cfg))


def update_baseline(baseline: Baseline, stats: WindowStats, window_end_ms: int | None = None,
                    slide_s: int = 60, cfg: VolatilityConfig = VolatilityConfig(),
                    normal: "NormalConfig | None" = None, elevated: bool = False,
                    influence_cfg: InfluenceConfig = InfluenceConfig(), warmup: bool = False) -> Baseline:
    """Fold this window into the key's history (call after scoring it). The normal learns
    from every window of a young key, but a settled key (`normal.settle_windows`) does not
    learn from `elevated` windows: an incident is not the brand's normal. In a `warmup`
    (no alerts at stake) a young normal is the plain mean of its windows so far, so an hour
    of warm-up teaches it fully, where live learning ramps up from nothing."""
    end = stats.window_end_ms if window_end_ms is None else window_end_ms
    a = cfg.ewma_alpha
    gap = _gap_windows(baseline, end, slide_s * 1000)
    b = _decayed(baseline, gap, a)
    rate = stats.posts / stats.window_minutes
    if b.mean < 0:
        mean, var = cfg.prior_rate, 0.0
        big_mean, platforms_mean = b.big_mean, b.platforms_mean
    else:
        mean, var, big_mean, platforms_mean = b.mean, b.var, b.big_mean, b.platforms_mean
    diff = rate - mean
    mean += a * diff
    var = (1 - a) * (var + a * diff * diff)
    ncfg = normal or NormalConfig()
    n = _normal_decayed(b, gap, ncfg.alpha)
    norm = {name: getattr(n, name) for name in _NORM_FIELDS}
    norm_windows = n.norm_windows
    if not elevated or n.norm_windows < ncfg.settle_windows:
        minutes = stats.window_minutes
        seen = {"norm_posts": stats.posts / minutes, "norm_negative": stats.negative_posts / minutes,
                "norm_core": core_posts(stats, influence_cfg) / minutes, "norm_legal": stats.legal_hits / minutes,
                "norm_engagement": stats.engagement_sum / minutes, "norm_platforms": float(stats.distinct_platforms),
                "norm_reach_log": math.log1p(stats.max_reach)}
        na = max(ncfg.alpha, 1.0 / (n.norm_windows + 1)) if warmup else ncfg.alpha
        norm = {name: norm[name] + na * (seen[name] - norm[name]) for name in _NORM_FIELDS}
        norm_windows += 1
    trend_fast, trend_slow, trend_windows = trend_with(baseline, stats, slide_s, cfg, end)
    return Baseline(
        mean=mean, var=var,
        big_mean=big_mean + a * (stats.big_posts - big_mean),
        platforms_mean=platforms_mean + a * (stats.distinct_platforms - platforms_mean),
        last_posts=stats.posts, last_window_end_ms=end, windows=b.windows + 1,
        first_seen_ms=b.first_seen_ms or stats.first_ms or stats.window_start_ms,
        norm_windows=norm_windows, **norm,
        trend_fast=trend_fast, trend_slow=trend_slow, trend_windows=trend_windows,
    )


@dataclass(frozen=True)
class Scores:
    influence: float
    severity: float
    volatility: float
    risk_score: float


def assess(stats: WindowStats, baseline: Baseline, category_severity: float, cfg: RiskConfig) -> Scores:
    """The three dimensions and the score of one window against the key's baseline (what the
    engine, the Flink job and the forecast's level search all call)."""
    normal = normal_at(baseline, stats.window_end_ms, cfg.window.slide_s, cfg.normal)
    inf = influence(stats, cfg.influence, normal, cfg.normal)
    sev = severity(stats, category_severity, cfg.severity, normal, cfg.normal)
    vol = volatility(stats, baseline, cfg.window.slide_s, cfg.volatility)
    return Scores(inf, sev, vol, risk_score(inf, sev, vol, cfg.score))


def exposure(influence_value: float, volatility_value: float, cfg: ScoreConfig = ScoreConfig()) -> float:
    return cfg.exposure_influence * influence_value + (1 - cfg.exposure_influence) * volatility_value


def risk_score(influence_value: float, severity_value: float, volatility_value: float,
               cfg: ScoreConfig = ScoreConfig()) -> float:
    """Weighted geometric mean of harm (severity) and exposure (influence + volatility):
    a crisis needs both, so a huge positive launch or a grave but unseen post stays low."""
    e = _clip(exposure(influence_value, volatility_value, cfg))
    s = _clip(severity_value)
    if e <= 0 or s <= 0:
        return 0.0
    k = cfg.severity_exponent
    return _clip(s ** k * e ** (1 - k))


def level_for(score: float, cfg: ScoreConfig = ScoreConfig()) -> str:
    """Plain threshold mapping (no hysteresis; alerts.py adds that)."""
    if score >= cfg.high:
        return "high"
    if score >= cfg.medium:
        return "medium"
    return "low"


# ---------------------------------------------------------------- playbooks and output


@dataclass(frozen=True)
class Assessment:
    brand: str
    category: str
    window_start_ms: int
    window_end_ms: int
    posts: int
    negative_ratio: float
    influence: float
    severity: float
    volatility: float
    risk_score: float
    level: str  # after hysteresis (alerts.py); `raw_level` is the plain threshold level
    raw_level: str = "low"
    first_detected_ms: int | None = None
    computed_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """CONTRACTS §3 fields plus first_detected_at (and computed_at when set)."""
        out = {
            "brand": self.brand, "category": self.category,
            "window_start": format_ms(self.window_start_ms), "window_end": format_ms(self.window_end_ms),
            "posts": self.posts, "negative_ratio": round(self.negative_ratio, 4),
            "influence": round(self.influence, 4), "severity": round(self.severity, 4),
            "volatility": round(self.volatility, 4), "risk_score": round(self.risk_score, 4),
            "level": self.level,
            "first_detected_at": None if self.first_detected_ms is None else format_ms(self.first_detected_ms),
        }
        if self.computed_at is not None:
            out["computed_at"] = self.computed_at
        return out
