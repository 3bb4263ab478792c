"""Acceptance: replay seeded scenarios through the plain-Python engine (same functions as Flink)."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest

from scoring.engine import Engine, KeyState, score_window
from scoring.features import aggregate, post_features
from core.levels import load_playbooks
from scoring.risk import RiskConfig
from core.post import post_from_dict
from yuqing.synth import DEFAULT_START, calm_chatter, complaint_trickle, crisis, generate, positive_launch

from .conftest import label_sentiment

MIN = 60_000
START = DEFAULT_START
ONSET = START + timedelta(minutes=60)
PEAK_AT = 60  # minutes after onset
ONSET_MS = int(ONSET.timestamp() * 1000)
CRISIS, CALM, LAUNCH, TRICKLE = "快送", "青柠云盘", "优品手机", "星云支付"

CONTRACT_FIELDS = {"brand", "category", "window_start", "window_end", "posts", "negative_ratio",
                   "influence", "severity", "volatility", "risk_score", "level"}
ALERT_FIELDS = {"alert_id", "event", "brand", "category", "level", "previous_level", "at", "first_detected_at",
                "window_start", "window_end", "posts", "negative_ratio", "influence", "severity", "volatility",
                "risk_score", "examples", "playbook", "deadlines", "forecast"}


def scenario_posts(watchlist, seed: int):
    scenarios = [calm_chatter(b.name, START, 200) for b in watchlist.brands]
    scenarios += [
        crisis(CRISIS, "privacy", ONSET, minutes=90, peak_per_min=300, peak_at=PEAK_AT),
        positive_launch(LAUNCH, START + timedelta(minutes=40), minutes=80, peak_per_min=300),
        complaint_trickle(TRICKLE, "refund", START, 200, per_min=1.5),
    ]
    return [post_from_dict(d) for d in generate(scenarios, watchlist, seed=seed, arrival_jitter_s=20)]


@pytest.fixture(scope="module", params=[1, 2])
def replay(request, watchlist, matcher):
    posts = scenario_posts(watchlist, request.param)
    result = Engine(watchlist, label_sentiment, matcher=matcher).run(posts)
    return posts, result


def levels_of(result, brand):
    return [a for a in result.assessments if a.brand == brand]


def test_crisis_reaches_high_early_and_not_before_onset(replay):
    posts, result = replay
    crisis_rows = levels_of(result, CRISIS)
    assert not [a for a in crisis_rows if a.level == "high" and a.window_end_ms <= ONSET_MS]
    first_high = min(a.window_end_ms for a in crisis_rows if a.level == "high")
    minutes_after_onset = (first_high - ONSET_MS) / MIN
    assert 0 < minutes_after_onset <= 30
    # well before the peak: far less volume than at the peak when the alarm goes
    peak_posts = max(a.posts for a in crisis_rows if a.category == "privacy")
    at_alarm = max(a.posts for a in crisis_rows if a.window_end_ms == first_high)
    assert minutes_after_onset < PEAK_AT - 20 and at_alarm < peak_posts / 10


def test_calm_launch_and_trickle_stay_down(replay):
    _, result = replay
    assert {a.level for a in levels_of(result, CALM)} == {"low"}
    assert levels_of(result, LAUNCH) and "high" not in {a.level for a in levels_of(result, LAUNCH)}
    assert max(a.posts for a in levels_of(result, LAUNCH)) > 1000  # it really was big
    trickle = [a for a in levels_of(result, TRICKLE) if a.category == "refund"]
    assert trickle and "high" not in {a.level for a in trickle}
    assert sum(a.negative_ratio for a in trickle) / len(trickle) > 0.7  # it really was negative


def test_alert_events(replay):
    _, result = replay
    raised = [e for e in result.alerts if e.brand == CRISIS and e.category == "privacy" and e.event == "raised"]
    assert raised and raised[-1].level == "high"
    assert len({e.alert_id for e in raised}) == 1  # one episode
    record = raised[-1].to_dict()
    assert set(record) == ALERT_FIELDS
    assert "专项小组" in record["playbook"]["title"] and record["playbook"]["steps"]
    assert 1 <= len(record["examples"]) <= 3 and record["examples"][0]["text"]
    hours = {d["hours_after_detection"] for d in record["deadlines"]}
    assert {2.0, 4.0, 12.0} <= hours
    assert not [e for e in result.alerts if e.brand == CALM]


def test_raised_alerts_carry_a_forecast_fitted_to_the_key_history(replay):
    _, result = replay
    raised = [e for e in result.alerts if e.event == "raised"]
    assert raised and all(e.forecast is not None for e in raised)
    lowered = [e for e in result.alerts if e.event == "lowered"]
    assert all(e.forecast is None for e in lowered)
    high = [e for e in raised if e.brand == CRISIS and e.category == "privacy" and e.level == "high"][-1].forecast
    assert high["history_minutes"] >= 10
    assert 0 <= high["next_1h_low"] <= high["next_1h"] <= high["next_1h_high"]
    assert high["next_6h"] >= high["next_1h"]
    assert high["next_level"] is None  # already at the top level
    medium = [e for e in raised if e.level == "medium"]
    if medium:
        f = medium[0].forecast
        assert f["next_level"] in ("high", None)
        if f["next_level"] == "high":
            assert 0.0 <= f["p_next_level_1h"] <= f["p_next_level_6h"] <= 1.0


def test_assessment_records_follow_the_contract(replay):
    _, result = replay
    record = result.assessments[0].to_dict()
    assert set(record) == CONTRACT_FIELDS | {"first_detected_at"}
    for a in result.assessments:
        assert a.level in ("low", "medium", "high") and a.posts >= 0
        assert all(0.0 <= x <= 1.0 for x in (a.negative_ratio, a.influence, a.severity, a.volatility, a.risk_score))


def test_a_silent_key_is_still_assessed_until_its_level_falls(watchlist):
    """Without this, a key whose posts stop would stay high (and keep paging) forever."""
    from datetime import datetime, timedelta, timezone

    from scoring.engine import Engine
    from yuqing.synth import crisis, generate

    start = datetime(2026, 11, 25, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    posts = generate([crisis(CRISIS, "privacy", start, minutes=40, peak_per_min=300, peak_at=20)], watchlist, seed=5)
    from core.post import post_from_dict

    engine = Engine(watchlist, lambda ps: [0.05] * len(ps))
    result = engine.run([post_from_dict(p) for p in posts])
    key = [a for a in result.assessments if (a.brand, a.category) == (CRISIS, "privacy")]
    assert any(a.level == "high" for a in key)
    last_post_ms = max(post_from_dict(p).published_ms for p in posts)
    silent = [a for a in key if a.posts == 0]
    assert silent, "no assessment after the posts stopped"
    assert all(a.window_start_ms > last_post_ms for a in silent)
    assert key[-1].level == "low" and key[-1].posts == 0
    lowered = [e for e in result.alerts if (e.brand, e.category) == (CRISIS, "privacy") and e.event == "lowered"]
    assert lowered and lowered[-1].level == "low"
    ends = [a.window_end_ms for a in key]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_panes_equal_brute_force_windows(watchlist, matcher):
    """The engine's incremental windows give the same numbers as aggregating each window's
    posts from scratch (what Flink SQL does), i.e. both paths share one WindowStats."""
    posts = [post_from_dict(d) for d in generate(
        [crisis(CRISIS, "privacy", ONSET, minutes=30, peak_per_min=30, peak_at=20)], watchlist, seed=5)]
    cfg = RiskConfig()
    result = Engine(watchlist, label_sentiment, cfg, matcher=matcher).run(posts)
    rows = defaultdict(list)
    for post, s in zip(posts, label_sentiment(posts)):
        match = matcher.match(post.text, post.title)
        for key in match.pairs:
            rows[key].append(post_features(post, s < 0.5, s, match))
    state: dict = defaultdict(KeyState)
    books = load_playbooks()
    checked = 0
    for a in result.assessments:
        key = (a.brand, a.category)
        inside = [r for r in rows[key] if a.window_start_ms <= r.event_ms < a.window_end_ms]
        stats = aggregate(a.brand, a.category, a.window_start_ms, a.window_end_ms, inside)
        assert stats.posts == a.posts
        again, _, state[key] = score_window(stats, state[key], watchlist, cfg, books)
        assert again.influence == pytest.approx(a.influence) and again.severity == pytest.approx(a.severity)
        assert again.risk_score == pytest.approx(a.risk_score) and again.level == a.level
        checked += 1
    assert checked > 30


def test_out_of_order_input_gives_the_same_result(watchlist, matcher):
    posts = [post_from_dict(d) for d in generate(
        [crisis(CRISIS, "privacy", ONSET, minutes=40, peak_per_min=50, peak_at=30)], watchlist, seed=9)]
    ordered = Engine(watchlist, label_sentiment, matcher=matcher).run(posts)
    shuffled = list(posts)
    rng = random.Random(3)
    # displace each post by up to 25 s of arrival delay (< the 30 s watermark delay)
    shuffled.sort(key=lambda p: p.published_ms + rng.randrange(25_000))
    again = Engine(watchlist, label_sentiment, matcher=matcher).run(shuffled)
    assert again.late_dropped == 0
    assert [a.to_dict() for a in again.assessments] == [a.to_dict() for a in ordered.assessments]


def test_late_posts_are_dropped_and_counted(watchlist, matcher):
    posts = [post_from_dict(d) for d in generate([calm_chatter(CALM, START, 30, per_min=3)], watchlist, seed=4)]
    old = posts[0]
    engine = Engine(watchlist, label_sentiment, matcher=matcher)
    engine.feed(posts)
    engine.feed([old])  # 30 minutes behind the watermark: every window it belongs to has fired
    assert engine.flush().late_dropped == 1


def test_bundled_sample_has_a_crisis_the_engine_catches(watchlist, matcher):
    from yuqing.synth import sample_scenarios

    posts = [post_from_dict(d) for d in generate(sample_scenarios(watchlist, hours=4), watchlist, seed=7,
                                                 arrival_jitter_s=20)]
    result = Engine(watchlist, label_sentiment, matcher=matcher).run(posts)
    high = {a.brand for a in result.assessments if a.level == "high"}
    assert high == {watchlist.brands[0].name}
