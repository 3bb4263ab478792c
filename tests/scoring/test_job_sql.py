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
