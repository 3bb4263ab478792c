"""bench.live: which post of a live crisis tips its key over, by the engine's own functions."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench import posts as bp
from bench.live import PAGE_LEVEL, tipping_index
from scoring.watchlist import parse_watchlist

WATCHLIST = Path(__file__).resolve().parents[2] / "data" / "watchlist.sample.yaml"
T0 = 1_796_124_960_000


def _levels_after(posts, send_ms, watchlist, risk, predict, playbooks, count: int) -> set[str]:
    """The open-window levels of every key after the first `count` posts (fresh keys)."""
    from scoring.engine import KeyState, score_window
    from scoring.features import Accumulator, post_features
    from scoring.matching import Matcher
    from core.post import Post, parse_post

    matcher = Matcher(watchlist)
    accs: dict = {}
    for post_dict, ms in zip(posts[:count], send_ms):
        post = parse_post(json.dumps(post_dict, ensure_ascii=False))
        assert isinstance(post, Post)
        match = matcher.match(post.text, post.title)
        if not match:
            continue
        sentiment = float(predict([post.text])[0])
        row = post_features(post, sentiment < risk.features.negative_below, sentiment, match, risk.features, ms)
        for key in dict.fromkeys(match.pairs):
            accs.setdefault(key, Accumulator()).add(row)
    end = send_ms[count - 1] - send_ms[count - 1] % 60_000 + 60_000
    return {score_window(acc.stats(k[0], k[1], end - 600_000, end), KeyState(), watchlist, risk, playbooks)[0].raw_level
            for k, acc in accs.items()}


def test_the_tipping_post_is_the_first_after_which_a_key_scores_high():
    from core.levels import load_playbooks
    from scoring.risk import load_risk_config
    from scoring.sentiment import load_model

    brands = bp.trial_brands(1, bp.run_prefix(3))
    watchlist = parse_watchlist(bp.watchlist_with_brands(yaml.safe_load(WATCHLIST.read_text(encoding="utf-8")), brands))
    risk, playbooks, predict = load_risk_config(None), load_playbooks(), load_model().predict_proba
    posts = bp.crisis_burst(watchlist, brands[0], "privacy", T0, posts=200, seed=4)
    send_ms = [T0 + 100 * i for i in range(len(posts))]
    tip = tipping_index(posts, send_ms, watchlist, risk, predict, playbooks)
    assert tip is not None and 0 < tip < len(posts) - 1
    assert PAGE_LEVEL in _levels_after(posts, send_ms, watchlist, risk, predict, playbooks, tip + 1)
    assert PAGE_LEVEL not in _levels_after(posts, send_ms, watchlist, risk, predict, playbooks, tip)
    calm = [dict(p, text="今天天气不错，出去走走") for p in posts]  # names no brand: nothing tips
    assert tipping_index(calm, send_ms, watchlist, risk, predict, playbooks) is None
