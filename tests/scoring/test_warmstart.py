"""Warm start: history rows -> Baseline, baseline files (hostile input refused with one line)."""
from __future__ import annotations

import json

import pytest

from scoring.features import WindowStats
from scoring.risk import Baseline, RiskConfig, update_baseline
from scoring.warmstart import (BaselineFileError, HistoryRow, baseline_from_history, dump_baselines, load_baselines,
                               parse_baselines)
from yuqing.baselines import rows_to_history

HOUR_MS = 3_600_000
MIN = 60_000


def steady_hours(n, posts=1800, negative=1700, platforms=(300,) * 6, start=0):
    return [HistoryRow(start + i * HOUR_MS, 60.0, posts, negative, 30.0, 50_000, 0, 12_000_000, platforms)
            for i in range(n)]


def test_a_day_of_steady_hours_gives_that_normal():
    b = baseline_from_history(steady_hours(24))
    assert b.norm_posts == pytest.approx(30.0, rel=1e-3) and b.norm_negative == pytest.approx(1700 / 60, rel=1e-3)
    assert b.norm_core == pytest.approx(0.5, rel=1e-3) and b.norm_engagement == pytest.approx(50_000 / 60, rel=1e-3)
    assert b.norm_platforms == pytest.approx(6.0, abs=0.01)  # 50 posts per platform per window: always all six
    assert b.mean == pytest.approx(30.0, rel=1e-3) and b.var > 0
    assert b.norm_windows == 24 * 60 and b.last_window_end_ms == 0  # no silence folded in at the first window


def test_the_seed_matches_what_live_learning_reaches():
    """History folded in closed form ~ the same windows learned one by one."""
    live = Baseline()
    for i in range(6 * 60):
        end = (i + 10) * MIN
        live = update_baseline(live, WindowStats("b", "privacy", end - 10 * MIN, end, posts=300, negative_posts=280,
                                                 distinct_platforms=6, user_posts=300), normal=RiskConfig().normal)
    seeded = baseline_from_history(steady_hours(6, posts=1800, negative=1680))
    assert seeded.norm_posts == pytest.approx(live.norm_posts, rel=0.01)
    assert seeded.norm_negative == pytest.approx(live.norm_negative, rel=0.01)


def test_a_sparse_key_sees_few_platforms_per_window_and_silent_hours_decay_its_normal():
    sparse = baseline_from_history([HistoryRow(i * HOUR_MS, 60.0, 6, 3, platform_posts=(2, 2, 2)) for i in range(24)])
    assert 0.8 < sparse.norm_platforms < 0.9  # 2 posts an hour on each of 3 platforms: 0.28 of a window each
    quiet_after = baseline_from_history(steady_hours(3) + [HistoryRow(10 * HOUR_MS, 60.0, 0)])
    busy = baseline_from_history(steady_hours(3))
    assert quiet_after.norm_posts < busy.norm_posts * 0.01  # seven silent hours and an empty one
    assert baseline_from_history([]) == Baseline()


def test_baseline_files_round_trip_and_start_fresh():
    b = baseline_from_history(steady_hours(4))
    live = update_baseline(b, WindowStats("青柠云盘", "privacy", 0, 10 * MIN, posts=5))
    text = dump_baselines({("青柠云盘", "privacy"): live, ("星云支付", "general"): Baseline()})
    back = parse_baselines(json.loads(text))
    assert back[("青柠云盘", "privacy")].norm_posts == live.norm_posts
    assert back[("青柠云盘", "privacy")].last_window_end_ms == 0  # applies from its first window, no gap


@pytest.mark.parametrize("data, says", [
    ([], "expected"),
    ({"version": 2, "keys": []}, "expected"),
    ({"version": 1, "keys": [{"brand": "b"}]}, "brand and a category"),
    ({"version": 1, "keys": [{"brand": "b", "category": "c", "baseline": {"nope": 1}}]}, "unknown baseline fields"),
    ({"version": 1, "keys": [{"brand": "b", "category": "c", "baseline": {"norm_posts": -1}}]}, "negative"),
    ({"version": 1, "keys": [{"brand": "b", "category": "c", "baseline": {"norm_posts": "12"}}]}, "finite number"),
    ({"version": 1, "keys": [{"brand": "b", "category": "c", "baseline": {"norm_posts": True}}]}, "finite number"),
])
def test_bad_baseline_files_fail_with_one_line(data, says):
    with pytest.raises(BaselineFileError, match=says) as err:
        parse_baselines(data)
    assert "\n" not in str(err.value)


def test_unreadable_baseline_files(tmp_path):
    nan = tmp_path / "nan.json"
    nan.write_text('{"version": 1, "keys": [{"brand": "b", "category": "c", "baseline": {"norm_posts": NaN}}]}')
    with pytest.raises(BaselineFileError, match="finite"):
        load_baselines(nan)
    gbk = tmp_path / "gbk.json"
    gbk.write_bytes('{"version": 1, "keys": [{"brand": "青柠云盘"'.encode("gb18030"))
    with pytest.raises(BaselineFileError, match="not valid JSON"):
        load_baselines(gbk)
    with pytest.raises(BaselineFileError, match="does not exist"):
        load_baselines(tmp_path / "missing.json")


def test_clickhouse_rows_fold_platforms_into_hours():
    rows = [("青柠云盘", "privacy", 3600, "weibo", 100, 90, 3.5, 1000, 5_000_000),
            ("青柠云盘", "privacy", 3600, "douyin", 20, 19, 0.0, 10, 2000),
            ("青柠云盘", "privacy", 7200, "weibo", 50, 40, None, None, None)]
    history = rows_to_history(rows)[("青柠云盘", "privacy")]
    assert [(h.start_ms, h.posts, h.negative_posts, h.platform_posts) for h in history] == [
        (3_600_000, 120, 109, (100, 20)), (7_200_000, 50, 40, (50,))]
    assert history[0].max_reach == 5_000_000 and history[1].core_posts == 0.0
