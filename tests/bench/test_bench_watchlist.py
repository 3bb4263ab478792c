"""The watchlist bench phase's inputs and table (the timings themselves are the bench's)."""
from __future__ import annotations

from bench import watchlist as wl_bench
from scoring.watchlist import parse_watchlist
from yuqing import synth_watchlist


def test_grown_watchlists_keep_the_sample_first_and_validate():
    for n in (10, 1_000):
        wl = parse_watchlist(wl_bench.watchlist_data(n))
        assert len(wl.brands) == n
        assert [b.name for b in wl.brands[:4]] == ["快送", "星云支付", "青柠云盘", "优品手机"]
    big = parse_watchlist(synth_watchlist.watchlist_data(10_000, seed=wl_bench.SEED))
    assert len(big.brands) == 10_000 and len(big.categories) == 8
    assert any(b.exclude for b in big.brands) and any(b.require for b in big.brands)


def test_texts_are_seeded_and_name_brands_in_several_forms():
    data = synth_watchlist.watchlist_data(100, seed=1)
    a, b = synth_watchlist.texts(data, 300, seed=2), synth_watchlist.texts(data, 300, seed=2)
    assert a == b
    joined = "".join(t for t, _ in a)
    assert any("\uff21" <= ch <= "\uff5a" for ch in joined)  # full-width letters
    import opencc

    assert opencc.OpenCC("t2s").convert(joined) != joined  # some traditional text


def test_render_shows_ratios_and_failures():
    results = {
        "watchlist_matcher_10": {"words": 100, "posts_per_s": 50_000.0, "ratio": 1.0, "single_posts_per_s": 40_000.0,
                                 "single_ratio": 1.0, "validate_s": 0.01, "build_s": 0.3},
        "watchlist_matcher_10000": {"words": 23_000, "posts_per_s": 45_000.0, "ratio": 0.9,
                                    "single_posts_per_s": 38_000.0, "single_ratio": 0.95, "validate_s": 0.2,
                                    "build_s": 0.4},
        "watchlist_job_10": {"posts_per_s": 3_670.0, "ratio": 1.0, "cpu_us_per_post": 208.7, "assessments": 120},
        "watchlist_job_100": {"error": "no output within 600 s"},
        "watchlist_state": {"error": "not run"},
    }
    text = wl_bench.render(results)
    assert "45,000   0.90" in text and "10,000" in text
    assert "100 failed: no output within 600 s" in text
    assert "state: not run" in text
