"""Risk against a key's own normal (issue #20), in seeded replays through the plain engine.

The old model is the same code with `normal.quiet_rate` out of reach (every key counts as
quiet, so nothing is discounted): each test compares against it, which is also the
before/after table of docs/risk-model.md (`python -m tests.scoring.test_engine_baseline`).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import timedelta

import pytest

from scoring.engine import Engine, KeyState, score_window
from scoring.features import post_features
from core.levels import load_playbooks
from scoring.risk import Baseline, NormalConfig, RiskConfig
from scoring.warmstart import HistoryRow, baseline_from_history
from tests.fixtures import scenarios as S
from core.post import post_from_dict
from yuqing.synth import DEFAULT_START, calm_chatter, complaint_trickle, crisis, generate, positive_launch

from .conftest import label_sentiment

MIN = 60_000
HOUR = 60 * MIN
T0 = int(DEFAULT_START.timestamp() * 1000)
NEW = RiskConfig()
OLD = replace(NEW, normal=NormalConfig(quiet_rate=1e12))  # nothing discounted: the absolute model
LEVELS = ("low", "medium", "high")


def run(watchlist, matcher, posts, cfg=NEW, **engine_kw):
    return Engine(watchlist, label_sentiment, cfg, matcher=matcher, **engine_kw).run(
        [post_from_dict(p) for p in posts])


def first_at(result, t0_ms, level="medium", brand=None, category=None):
    """Minutes from t0 to the first window at or above `level` (None: never)."""
    want = LEVELS.index(level)
    ends = [a.window_end_ms for a in result.assessments if LEVELS.index(a.level) >= want
            and (brand is None or a.brand == brand) and (category is None or a.category == category)]
    return None if not ends else (min(ends) - t0_ms) / MIN


def pages(result, brand=None):
    return [e for e in result.alerts if e.event == "raised" and (brand is None or e.brand == brand)]


def history_rows(watchlist, matcher, posts) -> dict[tuple[str, str], list[HistoryRow]]:
    """Hourly rollups of matched posts, per key: what the ClickHouse export reads."""
    hours: dict = defaultdict(lambda: defaultdict(lambda: {"posts": 0, "neg": 0, "core": 0.0, "eng": 0,
                                                           "legal": 0, "reach": 0, "platforms": Counter()}))
    parsed = [post_from_dict(p) for p in posts]
    for post, s in zip(parsed, label_sentiment(parsed)):
        match = matcher.match(post.text, post.title)
        f = post_features(post, s < 0.5, s, match)
        for key in dict.fromkeys(match.pairs):
            h = hours[key][post.published_ms // HOUR * HOUR]
            h["posts"] += 1
            h["neg"] += f.negative
            h["core"] += f.media * 2 + f.kol * 1.5 + f.official * 0.5
            h["eng"] += f.engagement
            h["legal"] += f.legal
            h["reach"] = max(h["reach"], f.reach)
            h["platforms"][f.platform] += 1
    return {key: [HistoryRow(start, 60, h["posts"], h["neg"], h["core"], h["eng"], h["legal"], h["reach"],
                             tuple(h["platforms"].values())) for start, h in by_hour.items()]
            for key, by_hour in hours.items()}


def seeds_from_yesterday(watchlist, matcher, seed=9):
    """The big brand's previous day (another seed) as hourly history -> baselines."""
    yesterday = S.steady_big_brand(start=DEFAULT_START - timedelta(days=1), seed=seed)
    return {key: baseline_from_history(rows) for key, rows in history_rows(watchlist, matcher, yesterday).items()}


# ------------------------------------------------------------------ the steady big-brand day


@pytest.fixture(scope="module")
def steady_day():
    return S.steady_big_brand()


def test_the_steady_day_is_loud_and_grim_and_the_old_model_calls_it_high(watchlist, matcher, steady_day):
    old = run(watchlist, matcher, steady_day, OLD)
    privacy = [a for a in old.assessments if a.category == "privacy"]
    settled = [a for a in privacy if T0 + HOUR <= a.window_end_ms <= T0 + 6 * HOUR]
    assert sum(a.posts for a in settled) / len(settled) >= 100 and min(a.posts for a in settled) >= 70
    assert sum(a.negative_ratio for a in settled) / len(settled) > 0.9
    assert {a.level for a in settled} & {"high"} and len(pages(old)) >= 2  # what issue #20 reported


@pytest.mark.parametrize("start", ["seeded from yesterday", "one hour of warm-up"])
def test_steady_big_brand_day_never_reaches_high_and_pages_at_most_once(watchlist, matcher, steady_day, start):
    if start == "seeded from yesterday":
        result = run(watchlist, matcher, steady_day, baselines=seeds_from_yesterday(watchlist, matcher))
    else:
        result = run(watchlist, matcher, steady_day, warmup_until_ms=T0 + HOUR)
        assert min(a.window_end_ms for a in result.assessments) > T0 + HOUR  # warm-up windows: not emitted
    privacy = [a for a in result.assessments if a.category == "privacy"]
    assert len(privacy) > 250
    assert "high" not in {a.level for a in result.assessments}
    assert len(pages(result)) <= 1
    assert max(a.risk_score for a in privacy) < NEW.score.high - 0.1


def test_a_cold_big_brand_learns_its_normal_within_an_hour(watchlist, matcher, steady_day):
    """No history, no warm-up: scored on absolute numbers at first (it may page), then
    its normal is learned and it stays low for the rest of the day."""
    result = run(watchlist, matcher, steady_day)
    after = [a for a in result.assessments if a.window_end_ms >= T0 + HOUR]
    assert after and {a.level for a in after} == {"low"}
    assert not [e for e in pages(result) if e.at_ms >= T0 + HOUR]


# ------------------------------------------------------------------ grave stories still caught


GRAVE_AT = S.DEFAULT_START + timedelta(hours=2)
GRAVE_MS = int(GRAVE_AT.timestamp() * 1000)


def test_grave_story_at_a_quiet_brand_reaches_medium_within_15_minutes(watchlist, matcher):
    posts = S.merged(S.calm_background(S.QUIET_BRAND, hours=3), S.grave_story(S.QUIET_BRAND, GRAVE_AT),
                     S.steady_big_brand(hours=3))
    assert sum(1 for p in posts if p["synth"]["scenario"] == "grave") <= 16
    new = run(watchlist, matcher, posts, warmup_until_ms=T0 + HOUR)
    old = run(watchlist, matcher, posts, OLD, warmup_until_ms=T0 + HOUR)
    at_new = first_at(new, GRAVE_MS, brand=S.QUIET_BRAND)
    assert at_new is not None and 0 < at_new <= 15
    assert at_new <= first_at(old, GRAVE_MS, brand=S.QUIET_BRAND)  # no later than before
    assert not [a for a in new.assessments if a.brand == S.QUIET_BRAND and a.level != "low"
                and a.window_end_ms <= GRAVE_MS]


def test_grave_story_at_a_big_brand_still_pages_over_its_loud_normal(watchlist, matcher):
    posts = S.merged(S.steady_big_brand(hours=3), S.grave_story(S.BIG_BRAND, GRAVE_AT))
    result = run(watchlist, matcher, posts, baselines=seeds_from_yesterday(watchlist, matcher))
    before = [e for e in pages(result) if e.at_ms <= GRAVE_MS]
    assert not before
    at = first_at(result, GRAVE_MS, brand=S.BIG_BRAND)
    assert at is not None and 0 < at <= 15


# ------------------------------------------------------------------ slow burn and the old scenarios


def test_slow_burn_reaches_medium_no_later_than_before(watchlist, matcher):
    posts = S.slow_burn()
    new, old = run(watchlist, matcher, posts), run(watchlist, matcher, posts, OLD)
    at_new, at_old = first_at(new, T0), first_at(old, T0)
    assert at_old is not None and at_new is not None and at_new <= at_old <= 5 * 60
    high_new, high_old = first_at(new, T0, "high"), first_at(old, T0, "high")
    assert (high_old is None) or (high_new is not None and high_new <= high_old)


@pytest.mark.parametrize("seed", [1, 2, 4, 5])
def test_slow_burns_of_other_seeds_reach_medium_within_3_hours_and_high_within_7(watchlist, matcher, seed):
    """Issue #22 on more draws than the one test_incidents.py replays: growth sustained over
    hours (volatility) carries a story of ordinary users that doubles every 90 minutes."""
    from scoring.incidents import is_page

    result = run(watchlist, matcher, S.slow_burn(seed=seed))
    medium, high = first_at(result, T0), first_at(result, T0, "high")
    assert medium is not None and medium <= 3 * 60
    assert high is not None and high <= 7 * 60
    assert 2 <= len([r for r in result.incidents if is_page(r)]) <= 3


@pytest.mark.parametrize("per_min", [0.2, 1.5, 5.0])
def test_the_same_complaints_at_a_steady_rate_never_reach_high(watchlist, matcher, per_min):
    """The slow burn's posts without the doubling: whatever its rate, a flat stream has no
    growth over hours to show (the level it reaches is the model's of issue #20)."""
    result = run(watchlist, matcher, S.slow_burn(first_per_min=per_min, doubling_min=1e12))
    assert len(result.assessments) > 100
    assert first_at(result, T0, "high") is None
    late = [a for a in result.assessments if a.window_end_ms >= T0 + 4 * HOUR]
    assert late and max(a.volatility for a in late) < 0.45


ONSET = DEFAULT_START + timedelta(minutes=60)
ONSET_MS = int(ONSET.timestamp() * 1000)


def mixed_day(watchlist, seed):
    """tests/scoring/test_engine.py's mix: a crisis, a launch, a trickle, calm chatter."""
    scenarios = [calm_chatter(b.name, DEFAULT_START, 200) for b in watchlist.brands]
    scenarios += [crisis("快送", "privacy", ONSET, minutes=90, peak_per_min=300, peak_at=60),
                  positive_launch("优品手机", DEFAULT_START + timedelta(minutes=40), minutes=80, peak_per_min=300),
                  complaint_trickle("星云支付", "refund", DEFAULT_START, 200, per_min=1.5)]
    return generate(scenarios, watchlist, seed=seed, arrival_jitter_s=20)


@pytest.mark.parametrize("seed", [1, 2])
def test_crisis_launch_trickle_calm_keep_their_detection_times(watchlist, matcher, seed):
    posts = mixed_day(watchlist, seed)
    new, old = run(watchlist, matcher, posts), run(watchlist, matcher, posts, OLD)
    for level in ("medium", "high"):
        assert first_at(new, ONSET_MS, level, "快送") == first_at(old, ONSET_MS, level, "快送")
    assert first_at(new, ONSET_MS, "high", "快送") <= 30
    for brand in ("优品手机", "青柠云盘"):
        assert first_at(new, T0, "high", brand) is None
    assert first_at(new, T0, "medium", "青柠云盘") is None
    assert first_at(new, T0, "high", "星云支付") is None


def test_an_older_checkpoint_state_without_a_normal_loads_and_scores_as_a_new_key(watchlist):
    from scoring.features import WindowStats

    old_state = {"baseline": {"mean": 12.0, "var": 1.0, "big_mean": 0.2, "platforms_mean": 6.0, "last_posts": 120,
                              "last_window_end_ms": 10 * MIN, "windows": 300, "first_seen_ms": 1},
                 "alert": {}, "history": [12] * 10, "history_end_ms": 10 * MIN}
    state = KeyState.from_dict(old_state)
    assert state.baseline.norm_windows == 0 and state.baseline.norm_posts == 0.0
    stats = WindowStats("青柠云盘", "privacy", MIN, 11 * MIN, posts=120, negative_posts=114,
                        neg_intensity_sum=114 * 880, distinct_platforms=6, user_posts=120)
    a, _, new_state = score_window(stats, state, watchlist, NEW, load_playbooks())
    b, _, _ = score_window(stats, state, watchlist, OLD, load_playbooks())
    assert (a.influence, a.severity, a.risk_score) == (b.influence, b.severity, b.risk_score)
    assert new_state.baseline.norm_windows == 1 and new_state.baseline.norm_posts > 0
    assert KeyState.from_dict(new_state.to_dict()) == new_state


# ------------------------------------------------------------------ the before/after table


def detection_table(watchlist, matcher) -> list[tuple[str, str, str]]:
    """(scenario, old model, new model): minutes to the first medium / high, pages."""
    def fmt(result, t0, brand=None, category=None):
        med, high = first_at(result, t0, "medium", brand, category), first_at(result, t0, "high", brand, category)
        show = lambda m: "-" if m is None else (f"{m / 60:.1f} h" if m >= 120 else f"{m:.0f} min")
        n = len([e for e in pages(result, brand) if category is None or e.category == category])
        return f"medium {show(med)}, high {show(high)}, {n} pages"

    rows = []
    for seed in (1, 2):
        posts = mixed_day(watchlist, seed)
        old, new = run(watchlist, matcher, posts, OLD), run(watchlist, matcher, posts)
        for name, brand, cat, t0 in (("crisis", "快送", None, ONSET_MS), ("launch", "优品手机", None, T0),
                                     ("trickle", "星云支付", "refund", T0), ("calm", "青柠云盘", None, T0)):
            rows.append((f"{name} (seed {seed})", fmt(old, t0, brand, cat), fmt(new, t0, brand, cat)))
    steady = S.steady_big_brand()
    rows.append(("steady big brand, cold", fmt(run(watchlist, matcher, steady, OLD), T0),
                 fmt(run(watchlist, matcher, steady), T0)))
    rows.append(("steady big brand, 1 h warm-up", fmt(run(watchlist, matcher, steady, OLD, warmup_until_ms=T0 + HOUR), T0),
                 fmt(run(watchlist, matcher, steady, warmup_until_ms=T0 + HOUR), T0)))
    seeds = seeds_from_yesterday(watchlist, matcher)
    rows.append(("steady big brand, seeded", fmt(run(watchlist, matcher, steady, OLD, baselines=seeds), T0),
                 fmt(run(watchlist, matcher, steady, baselines=seeds), T0)))
    grave = S.merged(S.calm_background(S.QUIET_BRAND, hours=3), S.grave_story(S.QUIET_BRAND, GRAVE_AT))
    rows.append(("grave story, quiet brand", fmt(run(watchlist, matcher, grave, OLD), GRAVE_MS, S.QUIET_BRAND),
                 fmt(run(watchlist, matcher, grave), GRAVE_MS, S.QUIET_BRAND)))
    grave_big = S.merged(S.steady_big_brand(hours=3), S.grave_story(S.BIG_BRAND, GRAVE_AT))
    rows.append(("grave story, big brand (seeded)",
                 fmt(run(watchlist, matcher, grave_big, OLD, baselines=seeds), GRAVE_MS, S.BIG_BRAND),
                 fmt(run(watchlist, matcher, grave_big, baselines=seeds), GRAVE_MS, S.BIG_BRAND)))
    burn = S.slow_burn()
    rows.append(("slow burn", fmt(run(watchlist, matcher, burn, OLD), T0), fmt(run(watchlist, matcher, burn), T0)))
    return rows


if __name__ == "__main__":
    from scoring.matching import Matcher
    from scoring.watchlist import load_watchlist
    from tests.scoring.conftest import SAMPLE_WATCHLIST

    wl = load_watchlist(SAMPLE_WATCHLIST)
    print("| scenario | old model | new model |\n|---|---|---|")
    for row in detection_table(wl, Matcher(wl)):
        print("| " + " | ".join(row) + " |")


# ------------------------------------------------------------------ the Flink job agrees


@pytest.mark.flink
@pytest.mark.slow
def test_replay_with_warmup_and_seeds_matches_the_reference_engine(tmp_path, watchlist, matcher):
    """`yuqing replay --warmup-hours 1 --baselines FILE` gives the engine's numbers with the
    same warm-up and seeds: the job carries the new baseline fields through its state."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from scoring.engine import text_scorer
    from scoring.sentiment import load_model
    from scoring.warmstart import dump_baselines, load_baselines

    posts = S.merged(S.steady_big_brand(hours=2, per_min=10), S.calm_background(S.QUIET_BRAND, hours=2),
                     S.grave_story(S.QUIET_BRAND, DEFAULT_START + timedelta(minutes=80)))
    seeds = {key: b for key, b in seeds_from_yesterday(watchlist, matcher).items() if key[1] == "general"}
    (tmp_path / "baselines.json").write_text(dump_baselines(seeds), encoding="utf-8")
    (tmp_path / "posts.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts),
                                          encoding="utf-8")
    parsed = [post_from_dict(p) for p in posts]
    warmup_until = min(p.published_ms for p in parsed) + HOUR
    reference = Engine(watchlist, text_scorer(load_model().predict_proba), matcher=matcher,
                       baselines=load_baselines(tmp_path / "baselines.json"), warmup_until_ms=warmup_until).run(parsed)
    assert reference.assessments and min(a.window_end_ms for a in reference.assessments) > warmup_until
    repo = Path(__file__).resolve().parents[2]
    run_ = subprocess.run(
        [sys.executable, "-m", "yuqing", "replay", "--input", str(tmp_path / "posts.jsonl"),
         "--alerts", str(tmp_path / "alerts.jsonl"), "--warmup-hours", "1",
         "--baselines", str(tmp_path / "baselines.json")], capture_output=True, timeout=900, cwd=repo)
    assert run_.returncode == 0, run_.stderr.decode()[-3000:]
    got = {(d["brand"], d["category"], d["window_end"]): d for d in map(json.loads, run_.stdout.decode().splitlines())}
    want = {(d["brand"], d["category"], d["window_end"]): d for d in (a.to_dict() for a in reference.assessments)}
    assert set(got) == set(want)
    for key, d in want.items():
        for name in ("posts", "influence", "severity", "volatility", "risk_score", "level"):
            assert got[key][name] == pytest.approx(d[name], abs=1e-9), (key, name)
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    # incident records (scoring/incidents.py), as the engine makes them from its key alerts
    assert sorted((a["brand"], a["category"], a["at"], a["level"], a["event"], a["kind"], a["incident_id"])
                  for a in alerts) == sorted((r["brand"], r["category"], r["at"], r["level"], r["event"], r["kind"],
                                              r["incident_id"]) for r in reference.incidents)
