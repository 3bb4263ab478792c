"""bench.posts: the re-identified post stream and the latency trials' crisis bursts."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from bench import posts as bp
from scoring.watchlist import load_watchlist, parse_watchlist
from core.post import parse_post_strict

REPO = Path(__file__).resolve().parents[2]
WATCHLIST = REPO / "data" / "watchlist.sample.yaml"


@pytest.fixture(scope="module")
def small_pool() -> bp.Pool:
    from yuqing.synth import DEFAULT_START, calm_chatter, crisis, generate

    wl = load_watchlist(WATCHLIST)
    posts = generate([calm_chatter("快送", DEFAULT_START, 30, per_min=5),
                      crisis("快送", "privacy", DEFAULT_START, minutes=30, peak_per_min=20, peak_at=10)], wl, seed=3)
    start = int(DEFAULT_START.timestamp() * 1000)
    entries = tuple(
        (int(datetime.fromisoformat(p["published_at"]).timestamp() * 1000) - start,
         p["id"] + ("|" + p["repost_of"] if p.get("repost_of") else ""), bp.template_of(p)) for p in posts)
    assert any("|" in ids for _, ids, _ in entries), "the fixture should hold reposts"
    return bp.Pool(entries, 30 * 60_000)


def test_stream_makes_distinct_valid_posts_across_copies(small_pool):
    n = len(small_pool) * 2 + 7
    base = 1_790_000_040_000
    out = list(bp.stream(small_pool, n, base))
    assert len(out) == n
    ids = [key.decode() for _, key, _ in out]
    assert len(set(ids)) == n
    assert ids[0].endswith("~0") and ids[-1].endswith("~2")
    for ts, key, value in out[:: max(1, n // 50)]:
        post = parse_post_strict(value)
        assert post.id == key.decode()
        assert int(post.published_at.timestamp() * 1000) == ts
        assert "@@" not in value.decode()
        if post.repost_of:
            assert post.repost_of.endswith(post.id[post.id.index("~"):])
    # copy 1 is copy 0 one pool span later, same text
    first, second = out[0], out[len(small_pool)]
    assert second[0] - first[0] == small_pool.span_ms
    assert json.loads(first[2])["text"] == json.loads(second[2])["text"]


def test_base_time_is_a_minute_boundary_and_ends_an_hour_before_now(small_pool):
    now = 1_790_000_123_456
    n = len(small_pool) * 3
    base = bp.base_time_ms(small_pool, n, now)
    assert base % 60_000 == 0
    assert base + 3 * small_pool.span_ms <= now - 3_600_000


def test_format_time_is_china_time_rfc3339():
    assert bp.format_time(0) == "1970-01-01T08:00:00+08:00"


def test_trial_brands_are_distinct_chinese_names_that_change_between_runs():
    names = bp.trial_brands(40)
    assert len(set(names)) == 40
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{4}", n) for n in names)
    a, b = bp.trial_brands(5, bp.run_prefix(1000)), bp.trial_brands(5, bp.run_prefix(1001))
    assert not set(a) & set(b)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{5}", n) for n in a)
    with pytest.raises(ValueError):
        bp.trial_brands(10_000)


def test_crisis_burst_sits_in_one_pane_and_its_first_window_scores_high():
    """The assumption the latency benchmark rests on, checked with the reference engine."""
    from scoring.engine import Engine, text_scorer
    from scoring.sentiment import load_model
    from core.post import post_from_dict

    data = bp.watchlist_with_brands(yaml.safe_load(WATCHLIST.read_text(encoding="utf-8")), bp.trial_brands(2))
    wl = parse_watchlist(data)
    brand = wl.brands[1].name
    pane = 1_790_000_040_000 - 1_790_000_040_000 % 60_000
    burst = bp.crisis_burst(wl, brand, "privacy", pane, posts=200, seed=5)
    assert 150 <= len(burst) <= 260
    assert all(pane <= bp.post_ms(p) < pane + 60_000 for p in burst)
    assert len({p["id"] for p in burst}) == len(burst)
    engine = Engine(wl, text_scorer(load_model().predict_proba))
    engine.feed(post_from_dict(p) for p in burst)
    assert not engine.result.assessments  # nothing closes before the closing post
    engine.feed([post_from_dict(bp.closing_post(pane + 91_000, "t"))])
    first = [a for a in engine.result.assessments if a.window_end_ms == pane + 60_000]
    assert any(a.brand == brand and a.category == "privacy" and a.level == "high" for a in first)
    assert any(e.brand == brand and e.level == "high" for e in engine.result.alerts)
    assert not post_from_dict(bp.closing_post(0, "x")).text.count(brand)
