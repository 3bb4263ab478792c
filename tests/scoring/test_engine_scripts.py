"""Seeded engine scenarios about scripts and query words (issue: real Chinese sources).

* A crisis whose first 45 minutes are written only in traditional characters (it breaks in
  Hong Kong or Taiwan first) reaches high within a few minutes of the same crisis written
  in simplified: the matcher folds the script, and so do the sentiment features.
* A loud negative story about the common word a brand's name is (an app called 蓝莓, a fruit
  story about 蓝莓农药残留) keeps that brand low when its `exclude` words name the other
  meaning, and would not without them (the control).

The real sentiment model scores the posts (not the generator's labels), so that its
reading of traditional text is part of what is checked.
"""
from __future__ import annotations

import random
from datetime import timedelta

import opencc
import pytest

from scoring.engine import Engine, text_scorer
from scoring.watchlist import parse_watchlist
from core.post import post_from_dict
from yuqing.synth import DEFAULT_START, calm_chatter, crisis, generate

MIN = 60_000
START = DEFAULT_START
ONSET = START + timedelta(minutes=40)
ONSET_MS = int(ONSET.timestamp() * 1000)
TRADITIONAL_MINUTES = 45


@pytest.fixture(scope="module")
def sentiment():
    from scoring.sentiment import load_model

    return text_scorer(load_model().predict_proba)


def first_high_minutes(result, brand: str) -> float | None:
    ends = [a.window_end_ms for a in result.assessments if a.brand == brand and a.level == "high"]
    return (min(ends) - ONSET_MS) / MIN if ends else None


def _traditional_first(posts: list[dict], brand: str, converter) -> list[dict]:
    cut = ONSET + timedelta(minutes=TRADITIONAL_MINUTES)
    out = []
    for d in posts:
        if d["synth"]["brand"] == brand and d["synth"]["scenario"] == "crisis" and d["published_at"] < cut.isoformat():
            d = dict(d, text=converter.convert(d["text"]))
            if d.get("title"):
                d["title"] = converter.convert(d["title"])
        out.append(d)
    return out


@pytest.mark.parametrize("seed, variant", [(11, "s2hk"), (12, "s2tw")])
def test_traditional_crisis_reaches_high_as_fast_as_simplified(watchlist, sentiment, seed, variant):
    brand = "快送"
    scenarios = [calm_chatter(b.name, START, 160) for b in watchlist.brands]
    scenarios.append(crisis(brand, "privacy", ONSET, minutes=110, peak_per_min=200, peak_at=50))
    simplified = generate(scenarios, watchlist, seed=seed, arrival_jitter_s=20)
    converter = opencc.OpenCC(variant)
    traditional = _traditional_first(simplified, brand, converter)
    changed = sum(1 for a, b in zip(simplified, traditional) if a["text"] != b["text"])
    assert changed > 300  # the first 45 minutes really were rewritten
    # the rewritten text is really traditional: the old matcher's lower-case text misses it
    assert any("數據" in d["text"] or "資訊" in d["text"] or "個人" in d["text"] or "隱私" in d["text"]
               for d in traditional)

    def run(rows):
        return Engine(watchlist, sentiment).run([post_from_dict(d) for d in rows])
    simple, trad = run(simplified), run(traditional)
    t_simple, t_trad = first_high_minutes(simple, brand), first_high_minutes(trad, brand)
    assert t_simple is not None and 0 < t_simple < TRADITIONAL_MINUTES  # high inside the traditional span
    assert t_trad is not None and abs(t_trad - t_simple) <= 3
    assert trad.posts_matched >= 0.98 * simple.posts_matched


def fruit_story_posts(seed: int) -> list[dict]:
    """An app called 蓝莓 chatting along, and a loud negative story about blueberries: media and
    big accounts, a safety word, hundreds of posts a minute at the peak."""
    story_wl = parse_watchlist({
        "brands": [{"name": "蓝莓"}, {"name": "快送", "aliases": ["快送APP"]}],
        "categories": [{"name": "safety", "severity": 1.0, "terms": ["农药残留", "中毒", "超标"]}]})
    scenarios = [calm_chatter("蓝莓", START, 160), calm_chatter("快送", START, 160),
                 crisis("蓝莓", "safety", ONSET, minutes=110, peak_per_min=200, peak_at=40)]
    rows = generate(scenarios, story_wl, seed=seed, arrival_jitter_s=20)
    rng = random.Random(seed)
    for d in rows:
        if d["synth"]["scenario"] == "crisis":
            d["text"] = rng.choice(("水果店", "果园", "农药", "进口水果")) + "：" + d["text"]
    return rows


APP_WATCHLIST = {
    "brands": [{"name": "蓝莓", "aliases": ["蓝莓App", "蓝莓音乐"], "exclude": ["水果", "农药", "果园"]},
               {"name": "快送", "aliases": ["快送APP"]}],
    "categories": [{"name": "safety", "severity": 1.0, "terms": ["农药残留", "中毒", "超标"]},
                   {"name": "privacy", "severity": 0.9, "terms": ["泄露"]}],
}


@pytest.mark.parametrize("seed", [21, 22])
def test_exclude_words_keep_a_common_word_brand_low(sentiment, seed):
    rows = fruit_story_posts(seed)
    story = [d for d in rows if d["synth"]["scenario"] == "crisis"]
    assert len(story) > 5000
    posts = [post_from_dict(d) for d in rows]
    excluded = Engine(parse_watchlist(APP_WATCHLIST), sentiment).run(posts)
    levels = {a.level for a in excluded.assessments if a.brand == "蓝莓"}
    assert levels == {"low"}
    # the app's own chatter still counts: the brand is watched, not muted
    assert sum(a.posts for a in excluded.assessments if a.brand == "蓝莓") > 50
    # control: the same posts without the exclude words page on-call
    control_wl = {**APP_WATCHLIST, "brands": [{k: v for k, v in b.items() if k != "exclude"}
                                              for b in APP_WATCHLIST["brands"]]}
    control = Engine(parse_watchlist(control_wl), sentiment).run(posts)
    assert "high" in {a.level for a in control.assessments if a.brand == "蓝莓"}
