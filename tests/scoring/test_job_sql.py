"""The SQL the job generates (pure strings; the Flink tests run it)."""
from __future__ import annotations

import re
from pathlib import Path

from scoring.batch import FEATURE_COLUMNS, key_ids
from scoring.features import SLIDE_AGGREGATES, WINDOW_AGGREGATES
from scoring.job import JobConfig, key_name_sql, key_rows_sql, window_sql
from scoring.watchlist import load_watchlist

WATCHLIST = Path(__file__).resolve().parents[2] / "data" / "watchlist.sample.yaml"


def test_no_window_aggregate_names_the_window_so_flink_can_slice():
    """An aggregate that names window_start/window_end makes Flink expand every post into
    each window it belongs to (ten copies for 10 min / 1 min) instead of aggregating it once
    into its slide."""
    for expr in (*WINDOW_AGGREGATES.values(), *SLIDE_AGGREGATES.values()):
        assert not re.search(r"window_(start|end|time)", expr), expr


def test_window_sql_joins_the_newest_slide_and_names_every_key():
    ids = key_ids(load_watchlist(WATCHLIST))
    sql = window_sql(JobConfig(watchlist_path=str(WATCHLIST)), ids)
    assert "TABLE(HOP(TABLE key_rows" in sql and "TABLE(TUMBLE(TABLE key_rows" in sql
    assert "LEFT JOIN" in sql and "s.window_time BETWEEN w.window_time AND w.window_time" in sql
    for name in SLIDE_AGGREGATES:
        assert f"COALESCE(s.`{name}`, 0) AS `{name}`" in sql
    for name in WINDOW_AGGREGATES:
        assert f"w.`{name}`" in sql
    brand_case, category_case = key_name_sql(ids, 0), key_name_sql(ids, 1)
    for (brand, category), key in ids.items():
        assert f"WHEN {key} THEN '{brand}'" in brand_case
        assert f"WHEN {key} THEN '{category}'" in category_case


def test_key_name_sql_quotes_names():
    assert key_name_sql({("O'Neil", "general"): 7}, 0) == "CASE w.key_id WHEN 7 THEN 'O''Neil' END"


def test_key_rows_carry_every_feature_column():
    sql = key_rows_sql("scored_parts")
    assert "UNNEST(keys)" in sql and "WHERE kind = 'S'" in sql
    for name, _ in FEATURE_COLUMNS:
        assert f"`{name}`" in sql
