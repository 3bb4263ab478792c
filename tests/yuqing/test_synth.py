"""The seeded synthetic post generator and `yuqing sample`."""
from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from scoring.watchlist import load_watchlist
from yuqing import synth_cli
from core.post import post_from_dict
from yuqing.synth import (DEFAULT_START, NEG_EMOTICONS, NEG_WORDS, POS_EMOTICONS, calm_chatter, complaint_trickle,
                          crisis, generate, positive_launch, sample_scenarios)

WATCHLIST = load_watchlist(Path(__file__).resolve().parents[2] / "data" / "watchlist.sample.yaml")


def minute_of(post) -> int:
    return int((post.published_at - DEFAULT_START).total_seconds() // 60)


def test_same_seed_same_posts_other_seed_other_posts():
    sc = [calm_chatter("快送", DEFAULT_START, 30), crisis("快送", "privacy", DEFAULT_START, minutes=30, peak_per_min=20)]
    assert generate(sc, WATCHLIST, seed=3) == generate(sc, WATCHLIST, seed=3)
    assert generate(sc, WATCHLIST, seed=3) != generate(sc, WATCHLIST, seed=4)


def test_posts_follow_the_contract_and_carry_signals():
    raw = generate(sample_scenarios(WATCHLIST, hours=2), WATCHLIST, seed=1)
    posts = [post_from_dict(d) for d in raw]  # raises on any contract violation
    assert len({p.id for p in posts}) == len(posts)
    assert {p.author.kind for p in posts} == {"media", "kol", "official", "user"}
    assert len({p.platform for p in posts}) >= 5
    assert any("//@" in p.text for p in posts) and any("http://t.cn/" in p.text for p in posts)
    negatives = [p for p in posts if p.extra["synth"]["label"] == 0]
    positives = [p for p in posts if p.extra["synth"]["label"] == 1 and p.extra["synth"]["scenario"] == "launch"]
    neg_signal = lambda t: any(e in t for e in NEG_EMOTICONS + NEG_WORDS)
    assert sum(map(neg_signal, (p.text for p in negatives))) / len(negatives) > 0.95
    pos_signal = lambda t: any(e in t for e in POS_EMOTICONS)
    assert sum(map(pos_signal, (p.text for p in positives))) / len(positives) > 0.8


def test_crisis_grows_from_nothing_over_more_platforms_with_big_accounts():
    posts = [post_from_dict(d) for d in generate(
        [crisis("快送", "privacy", DEFAULT_START, minutes=70, peak_per_min=300, peak_at=60)], WATCHLIST, seed=2)]
    per_minute = Counter(minute_of(p) for p in posts)
    assert sum(per_minute[m] for m in range(5)) <= 5
    assert per_minute[62] >= 200
    platforms = lambda a, b: {p.platform for p in posts if a <= minute_of(p) < b}
    assert len(platforms(0, 10)) <= 2 < len(platforms(30, 40)) < len(platforms(50, 60)) + 1
    late = [p for p in posts if minute_of(p) >= 40]
    assert sum(p.author.kind in ("media", "kol") for p in late) / len(late) > 0.1
    assert sum(p.extra["synth"]["label"] == 0 for p in posts) / len(posts) > 0.75


@pytest.mark.parametrize("scenario, kinds, platforms, max_negative, min_negative", [
    (positive_launch("优品手机", DEFAULT_START, minutes=30, peak_per_min=100), {"media", "kol", "user"}, 6, 0.15, 0.0),
    (complaint_trickle("星云支付", "refund", DEFAULT_START, 120, per_min=1.0), {"user"}, 1, 1.0, 0.75),
    (calm_chatter("青柠云盘", DEFAULT_START, 120, per_min=2.0), {"user"}, 4, 0.35, 0.05),
])
def test_other_scenarios(scenario, kinds, platforms, max_negative, min_negative):
    posts = [post_from_dict(d) for d in generate([scenario], WATCHLIST, seed=6)]
    neg = sum(p.extra["synth"]["label"] == 0 for p in posts) / len(posts)
    assert min_negative <= neg <= max_negative
    assert kinds <= {p.author.kind for p in posts}
    assert len({p.platform for p in posts}) == platforms if platforms == 1 else len({p.platform for p in posts}) >= platforms


def run_cli(argv):
    parser = argparse.ArgumentParser()
    synth_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_sample_command(tmp_path, capsys):
    out = tmp_path / "sample.jsonl"
    assert run_cli(["sample", "--out", str(out), "--seed", "7", "--hours", "4"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert 2000 <= len(lines) <= 10000
    posts = [post_from_dict(json.loads(line)) for line in lines]
    assert {p.extra["synth"]["scenario"] for p in posts} == {"calm", "crisis", "launch", "trickle"}
    assert len({p.extra["synth"]["brand"] for p in posts}) == 4
    assert (max(p.published_at for p in posts) - min(p.published_at for p in posts)) > timedelta(hours=3.5)
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["sample", "--hours", "0"], "--hours"),
    (["sample", "--start", "yesterday"], "--start"),
    (["sample", "--start", "2026-11-25T08:00:00"], "UTC offset"),
    (["sample", "--watchlist", "/nonexistent.yaml"], "does not exist"),
])
def test_sample_command_errors(argv, message):
    from core.errors import CommandError

    with pytest.raises(CommandError, match=message):
        run_cli(argv)
