"""Table-driven checks of the three dimensions, the score and the level mapping."""
import json
from dataclasses import fields, replace

import pytest

from scoring.features import WINDOW_AGGREGATES, FeatureConfig, WindowStats, author_tier
from core.levels import load_playbooks
from scoring.risk import (Baseline, RiskConfig, RiskConfigError, ScoreConfig, influence, level_for, parse_risk_config,
                          risk_score, severity, update_baseline, volatility)

MIN = 60_000
W0, W1 = 0, 10 * MIN  # a 10-minute window


def stats(**kw) -> WindowStats:
    base = dict(brand="快送", category="privacy", window_start_ms=W0, window_end_ms=W1, posts=10,
                distinct_platforms=1, distinct_authors=10, user_posts=10)
    base.update(kw)
    return WindowStats(**base)


QUIET = stats(posts=5, user_posts=5, engagement_sum=10, max_reach=300)
SPREAD = stats(posts=3000, user_posts=2700, media_posts=100, kol_posts=200, distinct_platforms=6,
               engagement_sum=400_000, max_reach=30_000_000, big_posts=300)


@pytest.mark.parametrize("name, s, lo, hi", [
    ("empty window", stats(posts=0, user_posts=0, distinct_platforms=0), 0.0, 0.0),
    ("a few users on one platform", QUIET, 0.05, 0.25),
    ("hundreds of users, one platform", stats(posts=300, user_posts=300, engagement_sum=600, max_reach=5000), 0.25, 0.45),
    ("same volume, media and big-V over 5 platforms", stats(posts=300, user_posts=250, media_posts=20, kol_posts=30,
     distinct_platforms=5, engagement_sum=60_000, max_reach=8_000_000), 0.75, 0.95),
    ("thousands everywhere", SPREAD, 0.95, 1.0),
])
def test_influence_table(name, s, lo, hi):
    assert lo <= influence(s) <= hi, name


@pytest.mark.parametrize("name, s, cat, lo, hi", [
    ("grave category, all positive", stats(negative_posts=0), 0.9, 0.2, 0.25),
    ("grave category, 90% confidently negative", stats(negative_posts=9, neg_intensity_sum=9 * 900), 0.9, 0.7, 0.8),
    ("same, barely negative", stats(negative_posts=9, neg_intensity_sum=9 * 550), 0.9, 0.5, 0.6),
    ("mild category, 90% negative", stats(negative_posts=9, neg_intensity_sum=9 * 900), 0.3, 0.22, 0.28),
    ("mild category, negative, legal threats", stats(negative_posts=9, neg_intensity_sum=8100, legal_hits=6), 0.3, 0.6, 0.7),
    ("zero-severity category, no legal", stats(negative_posts=10, neg_intensity_sum=10_000), 0.0, 0.0, 0.0),
])
def test_severity_table(name, s, cat, lo, hi):
    assert lo <= severity(s, cat) <= hi, name


def settled(rate_per_min: float, windows: int = 60, big: int = 0, platforms: int = 1) -> Baseline:
    """A baseline that has seen `windows` identical windows at this rate."""
    b = Baseline()
    posts = int(rate_per_min * 10)
    for i in range(windows):
        b = update_baseline(b, stats(posts=posts, user_posts=posts, big_posts=big, distinct_platforms=platforms,
                                     window_start_ms=i * MIN - 9 * MIN, window_end_ms=(i + 1) * MIN))
    return b


def at(b: Baseline, **kw) -> WindowStats:
    """The window right after the baseline's last one."""
    end = b.last_window_end_ms + MIN
    return stats(window_start_ms=end - 10 * MIN, window_end_ms=end, **kw)


B_STEADY = settled(2.0)


@pytest.mark.parametrize("name, b, kw, lo, hi", [
    ("steady at its usual rate", B_STEADY, dict(posts=20, user_posts=20), 0.0, 0.1),
    ("below its usual rate", B_STEADY, dict(posts=5, user_posts=5), 0.0, 0.05),
    ("5x its usual rate", B_STEADY, dict(posts=100, user_posts=100), 0.5, 0.75),
    ("5x and hot-search words, big accounts, new platforms", B_STEADY,
     dict(posts=100, user_posts=80, kol_posts=20, big_posts=20, trending_hits=10, distinct_platforms=4), 0.9, 1.0),
    ("big at 20/min but that is normal for this key", settled(20.0, big=5, platforms=4),
     dict(posts=200, user_posts=195, kol_posts=5, big_posts=5, distinct_platforms=4), 0.0, 0.12),
    ("new key, one post", Baseline(), dict(posts=1, user_posts=1), 0.0, 0.1),
    ("new key, 10 posts/min at once", Baseline(), dict(posts=100, user_posts=100), 0.55, 0.9),
])
def test_volatility_table(name, b, kw, lo, hi):
    assert lo <= volatility(at(b, **kw), b) <= hi, name


def test_volatility_counts_empty_windows_as_zero():
    b = settled(5.0)
    next_window = volatility(at(b, posts=50, user_posts=50), b)
    later = replace(b)  # the same key back after two quiet hours
    s = stats(posts=50, user_posts=50, window_start_ms=b.last_window_end_ms + 111 * MIN,
              window_end_ms=b.last_window_end_ms + 121 * MIN)
    assert volatility(s, later) > next_window + 0.3


@pytest.mark.parametrize("inf, sev, vol, lo, hi", [
    (1.0, 1.0, 1.0, 1.0, 1.0),
    (0.0, 1.0, 0.0, 0.0, 0.0),   # grave but nobody sees it
    (1.0, 0.0, 1.0, 0.0, 0.0),   # huge and harmless
    (1.0, 0.1, 1.0, 0.3, 0.33),  # a positive launch
    (0.9, 0.85, 0.6, 0.75, 0.85),  # a crisis
    (0.2, 0.5, 0.1, 0.28, 0.32),  # a steady complaint trickle
])
def test_risk_score_table(inf, sev, vol, lo, hi):
    assert lo <= risk_score(inf, sev, vol) <= hi


@pytest.mark.parametrize("score, level", [
    (0.0, "low"), (0.3999, "low"), (0.40, "medium"), (0.5999, "medium"), (0.60, "high"), (1.0, "high"),
])
def test_level_mapping(score, level):
    assert level_for(score) == level


def test_level_thresholds_are_configurable():
    assert level_for(0.5, ScoreConfig(medium=0.2, high=0.5)) == "high"


@pytest.mark.parametrize("data, message", [
    ({"score": {"medium": 0.7, "high": 0.6}}, "medium (0.7) < high (0.6)"),
    ({"window": {"size_s": 600, "slide_s": 70}}, "multiple of window.slide_s"),
    ({"influence": {"w_volume": -1}}, "influence.w_volume: must not be negative"),
    ({"influence": {"volume": 1}}, "unknown risk setting 'influence.volume'"),
    ({"volatility": {"ewma_alpha": 0}}, "ewma_alpha"),
    ({"score": {"high": "x"}}, "expected a number"),
    ({"window": {"size_s": 60.5}}, "expected an integer"),
    ({"alerts": {"margin": 0.5}}, "alerts.margin"),
    ([1, 2], "expected a mapping"),
])
def test_risk_config_validation(data, message):
    with pytest.raises(RiskConfigError) as err:
        parse_risk_config(data)
    assert message in str(err.value)


def test_risk_config_round_trip():
    cfg = parse_risk_config({"score": {"high": 0.7}, "window": {"size_s": 300}})
    assert cfg.score.high == 0.7 and cfg.window.size_s == 300 and cfg.influence == RiskConfig().influence
    assert parse_risk_config(cfg.to_dict()) == cfg


def test_baseline_serialises():
    b = settled(3.0, windows=7)
    assert Baseline.from_dict(json.loads(json.dumps(b.to_dict()))) == b
    assert b.windows == 7 and 0.2 < b.mean < 3.0  # moving from the prior towards the rate
    assert abs(settled(3.0, windows=200).mean - 3.0) < 0.01


def test_window_aggregates_cover_every_stat():
    numeric = {f.name for f in fields(WindowStats)} - {"brand", "category", "window_start_ms", "window_end_ms"}
    # last_slide_posts is picked from per-position counts (tests/scoring/test_features.py)
    assert set(WINDOW_AGGREGATES) | {"last_slide_posts"} == numeric
    row = {**{k: None for k in numeric}, "brand": "快送", "category": "general",
           "window_start_ms": 0, "window_end_ms": 600_000, "posts": 3}
    assert WindowStats.from_row(row).posts == 3 and WindowStats.from_row(row).neg_intensity_sum == 0


@pytest.mark.parametrize("kind, followers, verified, tier", [
    ("user", 100, False, "user"), ("user", 2_000_000, True, "kol"), ("user", 2_000_000, False, "user"),
    ("user", 6_000_000, False, "kol"), ("media", 10, False, "media"), ("official", 0, True, "official"),
])
def test_author_tier(kind, followers, verified, tier):
    assert author_tier(kind, followers, verified, FeatureConfig()) == tier


def test_playbooks_have_levels_and_golden_hours():
    books = load_playbooks()
    assert "内部整改" in books["low"].title and "公开回应" in books["medium"].title
    assert "专项小组" in books["high"].title
    hours = [d.hours for d in books["high"].deadlines]
    assert 2 in hours and 4 in hours and 12 in hours


# ---------------------------------------------------------------- a key's normal (issue #20)


def loud(windows: int = 240, posts: int = 120, negative: int = 114, platforms: int = 6) -> Baseline:
    """A key that has seen `windows` identical windows (a big brand's everyday privacy grumbling)."""
    from scoring.risk import NormalConfig

    b = Baseline()
    for i in range(windows):
        b = update_baseline(b, stats(posts=posts, user_posts=posts, negative_posts=negative,
                                     neg_intensity_sum=negative * 880, distinct_platforms=platforms,
                                     window_start_ms=i * MIN - 9 * MIN, window_end_ms=(i + 1) * MIN),
                            normal=NormalConfig())
    return b


def test_a_loud_keys_ordinary_window_is_not_harm_or_spread_beyond_its_normal():
    from scoring.risk import assess

    b = loud()
    usual = at(b, posts=120, user_posts=120, negative_posts=114, neg_intensity_sum=114 * 880, distinct_platforms=6)
    cfg = RiskConfig()
    now = assess(usual, b, 0.9, cfg)
    absolute = (influence(usual), severity(usual, 0.9))
    assert absolute[0] > 0.4 and absolute[1] > 0.75  # what the old model counted
    assert now.influence < 0.1 and now.severity == pytest.approx(0.9 * 0.25, abs=0.02)
    assert level_for(now.risk_score) == "low"
    tripled = at(b, posts=360, user_posts=330, media_posts=10, kol_posts=20, big_posts=30,
                 negative_posts=350, neg_intensity_sum=350 * 900, distinct_platforms=6, max_reach=20_000_000)
    story = assess(tripled, b, 0.9, cfg)
    assert story.influence > 0.35 and story.severity > 0.55 and level_for(story.risk_score) != "low"


def test_a_quiet_key_is_scored_on_absolute_numbers_as_before():
    from scoring.risk import assess, normal_share

    b = loud(posts=8, negative=7, platforms=2)  # under a post a minute
    assert normal_share(b) == 0.0
    s = at(b, posts=15, user_posts=10, media_posts=5, negative_posts=12, neg_intensity_sum=12 * 900, legal_hits=4)
    got = assess(s, b, 0.9, RiskConfig())
    assert got.influence == influence(s) and got.severity == severity(s, 0.9)


def test_a_settled_key_does_not_learn_from_elevated_windows_but_a_young_one_does():
    from scoring.risk import NormalConfig

    big = stats(posts=600, user_posts=600, negative_posts=590, window_start_ms=0, window_end_ms=10 * MIN)
    settled = loud()
    after = update_baseline(settled, at(settled, **{k: getattr(big, k) for k in ("posts", "user_posts", "negative_posts")}),
                            normal=NormalConfig(), elevated=True)
    assert after.norm_posts == pytest.approx(settled.norm_posts) and after.norm_windows == settled.norm_windows
    assert after.mean > settled.mean  # the short memory (volatility) still moves
    young = update_baseline(Baseline(), big, normal=NormalConfig(), elevated=True)
    assert young.norm_posts > 0 and young.norm_windows == 1


def test_normal_settings_are_validated():
    assert parse_risk_config({"normal": {"quiet_rate": 5, "alpha": 0.01}}).normal.quiet_rate == 5.0
    with pytest.raises(RiskConfigError, match="normal.alpha"):
        parse_risk_config({"normal": {"alpha": 0}})
    with pytest.raises(RiskConfigError, match="unknown risk setting 'normal.memory'"):
        parse_risk_config({"normal": {"memory": 60}})
