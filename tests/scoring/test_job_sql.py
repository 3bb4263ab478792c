"""The SQL the job generates (pure strings; the Flink tests run it)."""
from __future__ import annotations

import re
from pathlib import Path

from scoring.batch import FEATURE_COLUMNS, key_ids
from scoring.features import WINDOW_AGGREGATES, slide_count_aggregates
from scoring.job import JobConfig, key_name_sql, key_rows_sql, window_sql
from scoring.watchlist import load_watchlist

WATCHLIST = Path(__file__).resolve().parents[2] / "data" / "watchlist.sample.yaml"


def test_no_window_aggregate_names_the_window_so_flink_can_slice():
    """An aggregate that names window_start/window_end makes Flink expand every post into
    each window it belongs to (ten copies for 10 min / 1 min) instead of aggregating it once
    into its slide."""
    for expr in (*WINDOW_AGGREGATES.values(), *slide_count_aggregates(10).values()):
        assert not re.search(r"window_(start|end|time)", expr), expr


def test_window_sql_is_one_sliding_window_with_slide_position_counts_and_names_every_key():
    ids = key_ids(load_watchlist(WATCHLIST))
    cfg = JobConfig(watchlist_path=str(WATCHLIST), window_size_s=300, window_slide_s=60)
    sql = window_sql(cfg, ids)
    assert sql.count("TABLE(HOP(TABLE key_rows") == 1
    assert "TUMBLE" not in sql and "JOIN" not in sql  # no second window, no join
    for name in (*WINDOW_AGGREGATES, *slide_count_aggregates(5)):
        assert f"w.`{name}`" in sql
    assert "slide_posts_4" in sql and "slide_posts_5" not in sql
    brand_case, category_case = key_name_sql(ids, 0), key_name_sql(ids, 1)
    for (brand, category), key in ids.items():
        assert f"WHEN {key} THEN '{brand}'" in brand_case
        assert f"WHEN {key} THEN '{category}'" in category_case


def test_key_name_sql_quotes_names():
    assert key_name_sql({("O'Neil", "general"): 7}, 0) == "CASE w.key_id WHEN 7 THEN 'O''Neil' END"


def test_key_rows_carry_every_feature_column():
    sql = key_rows_sql("scored_parts")
    assert "UNNEST(keys)" in sql and "WHERE kind = 'S'" in sql and "slide_pos" in sql
    for name, _ in FEATURE_COLUMNS:
        assert f"`{name}`" in sql


def test_early_firing_adds_a_processing_time_window_over_recent_rows_only():
    from scoring.job import recent_rows_sql

    ids = key_ids(load_watchlist(WATCHLIST))
    cfg = JobConfig(watchlist_path=str(WATCHLIST), early_fire_s=5)
    sql = window_sql(cfg, ids)
    closed, provisional = sql.split(" UNION ALL ")
    assert "DESCRIPTOR(ts)" in closed and "0 AS provisional" in closed
    assert "TABLE(HOP(TABLE recent_key_rows, DESCRIPTOR(pt), INTERVAL '0 00:00:05' DAY TO SECOND, " \
           "INTERVAL '0 00:10:00' DAY TO SECOND))" in provisional and "1 AS provisional" in provisional
    assert "CURRENT_TIMESTAMP - INTERVAL '0 00:10:00' DAY TO SECOND" in recent_rows_sql(cfg)
    off = window_sql(JobConfig(watchlist_path=str(WATCHLIST), early_fire_s=0), ids)
    assert "UNION" not in off and "DESCRIPTOR(pt)" not in off


def test_event_time_is_bounded_by_the_clock_in_the_watermarked_column():
    from core.config import Settings
    from scoring.job import event_time_sql, kafka_source_ddl

    bound = "CAST(CURRENT_TIMESTAMP + INTERVAL '0 00:05:00' DAY TO SECOND AS TIMESTAMP_LTZ(3))"
    assert event_time_sql("rts", 300) == f"CASE WHEN rts > {bound} THEN {bound} ELSE rts END"
    assert event_time_sql("rts", 0) == "rts"
    ddl = kafka_source_ddl(Settings(), JobConfig(watchlist_path=str(WATCHLIST)), "g", bounded=False)
    assert f"ts AS CASE WHEN rts > {bound}" in ddl and "WATERMARK FOR ts AS ts - " in ddl
    assert "rts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'" in ddl


def test_job_settings_from_the_environment_are_checked(monkeypatch):
    import pytest

    from core.config import Settings

    monkeypatch.setenv("YUQING_JOB_EARLY_FIRE_S", "2")
    monkeypatch.setenv("YUQING_JOB_MAX_AHEAD_S", "60")
    cfg = JobConfig.build(Settings(), WATCHLIST)
    assert (cfg.early_fire_s, cfg.max_ahead_s) == (2, 60)
    for name, value, message in (("YUQING_JOB_EARLY_FIRE_S", "soon", "whole seconds"),
                                 ("YUQING_JOB_MAX_AHEAD_S", "-1", r"0 \(off\) or positive"),
                                 ("YUQING_JOB_EARLY_FIRE_S", "7", "must divide the window size")):
        monkeypatch.setenv("YUQING_JOB_EARLY_FIRE_S", "2")
        monkeypatch.setenv("YUQING_JOB_MAX_AHEAD_S", "60")
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=message):
            JobConfig.build(Settings(), WATCHLIST)
