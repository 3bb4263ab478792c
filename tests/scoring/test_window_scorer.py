"""The job's keyed window scorer, driven directly with in-memory Flink state.

The live-job tests (test_job.py) prove job == engine end to end; these pin the state
handling they cannot reach: windows that arrive out of order, and a key whose state was
written by an earlier release (waiting windows inside the key's state).
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pyflink")

from pyflink.common import Types  # noqa: E402
from pyflink.datastream import OutputTag  # noqa: E402

from scoring.batch import US  # noqa: E402
from scoring.features import slide_count_name  # noqa: E402
from scoring.job import JobConfig, _make_window_scorer  # noqa: E402
from tests.fixtures.streams import WATCHLIST  # noqa: E402
from yuqing.config import Settings  # noqa: E402

KEY = f"快送{US}privacy"
SLIDE_MS = 60_000
T0 = 1_796_124_960_000  # a whole minute


class _Value:
    def __init__(self):
        self.data: dict = {}
        self.key = None

    def value(self):
        return self.data.get(self.key)

    def update(self, value):
        self.data[self.key] = value

    def clear(self):
        self.data.pop(self.key, None)


class _Map:
    def __init__(self):
        self.data: dict = {}
        self.key = None

    def _mine(self):
        return self.data.setdefault(self.key, {})

    def put(self, k, v):
        self._mine()[k] = v

    def get(self, k):
        return self._mine().get(k)

    def remove(self, k):
        self._mine().pop(k, None)

    def keys(self):
        return list(self._mine())


class _Context:
    """Runtime context, timer service and keyed context in one."""

    def __init__(self):
        self.states: list = []
        self.timers: set[int] = set()

    def get_state(self, descriptor):
        self.states.append(_Value())
        return self.states[-1]

    def get_map_state(self, descriptor):
        self.states.append(_Map())
        return self.states[-1]

    def set_key(self, key):
        for state in self.states:
            state.key = key

    def timer_service(self):
        return self

    def register_event_time_timer(self, ts):
        self.timers.add(ts)

    def get_current_key(self):
        return KEY


class _Row:
    def __init__(self, values):
        self.values = values

    def as_dict(self):
        return dict(self.values)


def window_row(end_ms: int, posts: int, slides: int) -> dict:
    row = {"brand": "快送", "category": "privacy", "window_start_ms": end_ms - slides * SLIDE_MS,
           "window_end_ms": end_ms, "posts": posts, "negative_posts": posts // 2, "distinct_platforms": 2,
           "distinct_authors": posts, "user_posts": posts, "first_ms": end_ms - SLIDE_MS, "last_ms": end_ms - 1,
           "example": None}
    for position in range(slides):
        row[slide_count_name(position)] = posts if position == (end_ms // SLIDE_MS - 1) % slides else 0
    return row


@pytest.fixture()
def scorer():
    cfg = JobConfig.build(Settings(), WATCHLIST, metrics_port=0, udf_metrics_port=0)
    ws = _make_window_scorer(cfg, OutputTag("alerts", Types.STRING()))
    ctx = _Context()
    ws.open(ctx)
    ctx.set_key(KEY)
    return ws, ctx, cfg


def fire(ws, ctx, timestamp):
    outs = list(ws.on_timer(timestamp, ctx))
    return [json.loads(o) for o in outs if isinstance(o, str)]


def test_windows_arriving_out_of_order_are_scored_in_order_once_due(scorer):
    ws, ctx, cfg = scorer
    ends = [T0 + 3 * SLIDE_MS, T0 + SLIDE_MS, T0 + 2 * SLIDE_MS]
    for end in ends:
        ws.process_element(_Row(window_row(end, 5, cfg.window_slides)), ctx)
    assert set(ends) <= ctx.timers
    assert fire(ws, ctx, T0) == []  # nothing due yet
    scored = fire(ws, ctx, T0 + 2 * SLIDE_MS)
    assert [a["posts"] for a in scored] == [5, 5]
    assert [a["window_end"] for a in scored] == sorted(a["window_end"] for a in scored)
    assert [a["posts"] for a in fire(ws, ctx, T0 + 3 * SLIDE_MS)] == [5]
    assert fire(ws, ctx, T0 + 3 * SLIDE_MS) == []  # each window once
    state = json.loads(ctx.states[0].value())
    assert state["last_end"] == T0 + 3 * SLIDE_MS and "pending" not in state


def test_state_of_an_earlier_release_with_waiting_windows_inside_is_migrated(scorer):
    ws, ctx, cfg = scorer
    old = [window_row(T0 + SLIDE_MS, 7, cfg.window_slides), window_row(T0 + 2 * SLIDE_MS, 9, cfg.window_slides)]
    for row in old:  # what process_element stored before the waiting windows had a state of their own
        row["last_slide_posts"] = 0
    ctx.states[0].update(json.dumps({"pending": old}))
    ws.process_element(_Row(window_row(T0 + 3 * SLIDE_MS, 11, cfg.window_slides)), ctx)
    assert [a["posts"] for a in fire(ws, ctx, T0 + SLIDE_MS)] == [7]
    state = json.loads(ctx.states[0].value())
    assert "pending" not in state and state["last_end"] == T0 + SLIDE_MS
    assert sorted(ctx.states[1].keys()) == [T0 + 2 * SLIDE_MS, T0 + 3 * SLIDE_MS]  # moved, not lost
    assert [a["posts"] for a in fire(ws, ctx, T0 + 3 * SLIDE_MS)] == [9, 11]
