"""`yuqing replay` (the real Flink job) matches posts written in traditional characters and
full-width letters, and honours a brand's exclude words, exactly as the reference engine."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import opencc
import pytest

from scoring.engine import Engine, text_scorer
from scoring.watchlist import load_watchlist
from core.post import post_from_dict
from yuqing.synth import DEFAULT_START, calm_chatter, crisis, generate

REPO = Path(__file__).resolve().parents[2]
WATCHLIST = REPO / "data" / "watchlist.sample.yaml"

pytestmark = [pytest.mark.flink, pytest.mark.slow]


def _posts() -> list[dict]:
    wl = load_watchlist(WATCHLIST)
    scenarios = [calm_chatter("星云支付", DEFAULT_START, 40, per_min=2),
                 crisis("快送", "privacy", DEFAULT_START + timedelta(minutes=5), minutes=30, peak_per_min=20, peak_at=15)]
    rows = generate(scenarios, wl, seed=31)
    to_trad = opencc.OpenCC("s2hk")
    for i, d in enumerate(rows):
        if d["synth"]["scenario"] == "crisis":  # the whole crisis in Hong Kong's script
            d["text"] = to_trad.convert(d["text"])
            if d.get("title"):
                d["title"] = to_trad.convert(d["title"])
        elif i % 3 == 0:  # full-width Latin in some chatter
            d["text"] = "ＸｉｎｇｙｕｎＰａｙ：" + d["text"]
    # the sample watchlist's exclude words: a juice story names 青柠 but is not about the app
    for k in range(6):
        rows.append({"id": f"juice:{k}", "platform": "weibo", "published_at": f"2026-11-25T08:2{k}:00+08:00",
                     "text": f"青柠盘装的青柠果汁被曝农药超标，数据泄露了配方 {k}"})
    return rows


def test_replay_matches_traditional_posts_like_the_engine(tmp_path):
    from scoring.sentiment import load_model

    rows = _posts()
    (tmp_path / "posts.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in rows) + "\n",
                                          encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "yuqing", "replay", "--input", str(tmp_path / "posts.jsonl"),
                          "--watchlist", str(WATCHLIST)], capture_output=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    got = [json.loads(line) for line in run.stdout.decode().splitlines()]
    posts = sorted((post_from_dict(d) for d in rows), key=lambda p: p.published_ms)
    expected = Engine(load_watchlist(WATCHLIST), text_scorer(load_model().predict_proba)).run(posts)
    want = {(a.brand, a.category, a.to_dict()["window_end"]): a.posts for a in expected.assessments}
    have = {(d["brand"], d["category"], d["window_end"]): d["posts"] for d in got}
    assert have == want
    keys = {(b, c) for b, c, _ in have}
    assert ("快送", "privacy") in keys  # the traditional crisis: 個人資訊, 洩露 ... folded
    assert ("星云支付", "general") in keys
    assert not any(b == "青柠云盘" for b, _ in keys)  # excluded: 青柠果汁
