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


def test_checkpoint_watch_counts_completed_checkpoints_and_their_folders(tmp_path):
    watch = wl_bench.CheckpointWatch(port=1, checkpoint_root=tmp_path)
    watch.job_id = "abc"
    done = tmp_path / "abc" / "chk-3"
    done.mkdir(parents=True)
    (done / "_metadata").write_bytes(b"m" * 100)
    (done / "state-1").write_bytes(b"s" * 900)
    running = tmp_path / "abc" / "chk-4"  # no _metadata yet: not complete
    running.mkdir()
    (running / "state-1").write_bytes(b"s" * 5000)
    watch.read_folders()
    entry = {"status": "COMPLETED", "state_size": 2_000, "checkpointed_size": 1_500, "end_to_end_duration": 40}
    watch.take({"counts": {"completed": 3, "failed": 1},
                "latest": {"completed": dict(entry, id=3, state_size=3_000, end_to_end_duration=90)},
                "history": [dict(entry, id=4, status="IN_PROGRESS"), dict(entry, id=3, state_size=3_000,
                            end_to_end_duration=90), dict(entry, id=2), dict(entry, id=1, end_to_end_duration=10),
                            dict(entry, id=0, status="FAILED", end_to_end_duration=99_999,
                                 failure_message="Checkpoint expired before completing.")]})
    got = watch.summary()
    assert got["checkpoint_folder_max_bytes"] == 1_000 and watch.folder_bytes == {3: 1_000}
    assert got["checkpoints"] == 3 and got["checkpoints_failed"] == 1
    assert got["checkpoint_failure"] == "Checkpoint expired before completing."
    assert got["state_max_bytes"] == 3_000 and got["state_last_bytes"] == 3_000
    assert got["checkpoint_max_bytes"] == 1_500
    assert got["checkpoint_max_ms"] == 90 and got["checkpoint_median_ms"] == 40


def test_render_shows_state_runs_and_phase_times():
    results = {
        "watchlist_job_posts": 100_000, "watchlist_job_rounds": 2,
        "watchlist_job_10": {"posts_per_s": 5_000.0, "ratio": 1.0, "cpu_us_per_post": 170.0, "assessments": 693,
                             "runs_posts_per_s": [4_800.0, 5_000.0]},
        "watchlist_job_1000": {"posts_per_s": 4_500.0, "ratio": 0.9, "cpu_us_per_post": 180.0, "cpu_ratio": 0.944,
                               "assessments": 693,
                               "runs_posts_per_s": [4_500.0, 4_100.0]},
        "watchlist_state": {"brands": 10_000, "categories": 8, "possible_keys": 80_000, "keys_with_posts": 9_000,
                            "state_max_bytes": 4_000_000, "state_last_bytes": 3_900_000, "bytes_per_key": 444.4,
                            "checkpoints": 12, "checkpoints_failed": 0, "checkpoint_max_bytes": 4_000_000,
                            "checkpoint_folder_max_bytes": 4_100_000, "checkpoint_median_ms": 120,
                            "checkpoint_max_ms": 300, "posts_per_s": 900.0, "assessments": 50_000,
                            "cpu_us_per_assessment": 80.0, "cpu_us_per_post": 900.0},
        "watchlist_matcher_s": 61.0, "watchlist_jobs_s": 230.4,
    }
    text = wl_bench.render(results)
    assert "100,000 posts" in text and "fastest of 2" in text
    assert "4,500   0.90" in text and "4,500, 4,100" in text and "0.94" in text
    assert "state max 4,000,000 B" in text and "median 120 ms, max 300 ms" in text
    assert "matcher 61 s, jobs 230 s" in text


def test_render_keeps_an_unfinished_state_runs_checkpoints():
    summary = wl_bench.CheckpointWatch(port=1, checkpoint_root=None).summary()  # nothing seen: zeros
    assert summary["checkpoints"] == 0 and summary["checkpoint_max_ms"] == 0
    state = dict(summary, error="the job did not finish within 1200 s", brands=10_000, categories=8,
                 possible_keys=90_000, keys_with_posts=6_000, assessments=66_835, scored=9_539,
                 state_max_bytes=6_500_000, checkpoints=4, checkpoints_failed=9, checkpoint_max_ms=61_000,
                 checkpoint_failure="Checkpoint expired before completing.")
    text = wl_bench.render({"watchlist_state": state})
    assert "unfinished: the job did not finish within 1200 s" in text
    assert "66,835 assessments" in text and "state max 6,500,000 B" in text and "(9 failed)" in text
    assert "first failed checkpoint: Checkpoint expired" in text
