"""The job's window query does not grow with the watchlist: window rows carry the key id
and the window scorer names the key (a CASE per key was 5 MiB of SQL at 10,000 brands,
and the planner spent minutes generating code for it at 100)."""
from __future__ import annotations

import json

import pytest

from scoring.batch import US, key_ids
from scoring.job import JobConfig, window_sql
from scoring.watchlist import parse_watchlist
from yuqing import synth_watchlist


def test_window_sql_is_the_same_size_at_10_and_10000_brands():
    cfg = JobConfig(watchlist_path="unused.yaml", early_fire_s=5)
    small = window_sql(cfg, key_ids(parse_watchlist(synth_watchlist.watchlist_data(10, seed=1))))
    large = window_sql(cfg, key_ids(parse_watchlist(synth_watchlist.watchlist_data(10_000, seed=1))))
    assert len(large) == len(small) < 8_000
    assert "w.key_id AS key_id" in small and "CASE w.key_id" not in small


def test_window_scorer_names_the_key_from_its_id():
    pytest.importorskip("pyflink")
    from pyflink.common import Types
    from pyflink.datastream import OutputTag

    from scoring.job import _make_window_scorer
    from tests.fixtures.streams import WATCHLIST
    from tests.scoring.test_window_scorer import SLIDE_MS, T0, _Context, _Row, fire, window_row
    from core.config import Settings
    from scoring.watchlist import load_watchlist

    cfg = JobConfig.build(Settings(), WATCHLIST, metrics_port=0, udf_metrics_port=0)
    ws = _make_window_scorer(cfg, OutputTag("alerts", Types.STRING()))
    ctx = _Context()
    ws.open(ctx)
    ctx.set_key(f"快送{US}privacy")
    ids = key_ids(load_watchlist(WATCHLIST))
    end = T0 + 10 * SLIDE_MS
    row = window_row(end, 12, cfg.window_slides)
    del row["brand"], row["category"]
    row["key_id"] = ids[("快送", "privacy")]
    list(ws.process_element(_Row(row), ctx))
    out = fire(ws, ctx, end)
    assert out and out[0]["brand"] == "快送" and out[0]["category"] == "privacy" and out[0]["posts"] == 12
    # a window of a key that left the watchlist (restored from a checkpoint) is dropped
    row["key_id"] = 12345
    assert list(ws.process_element(_Row(dict(row, window_end_ms=end + SLIDE_MS)), ctx)) == []
    assert json.dumps(out[0], ensure_ascii=False)
