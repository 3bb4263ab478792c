"""The job's keyed window scorer, driven directly with in-memory Flink state.

The live-job tests (test_job.py) prove job == engine end to end; these pin the state
handling they cannot reach: windows that arrive out of order, a key whose state was
written by an earlier release (waiting windows inside the key's state), and early firing
(provisional rows of an open window: docs/risk-model.md, "Early firing").
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
from core.config import Settings  # noqa: E402

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
        assert list(ws.process_element(_Row(window_row(end, 5, cfg.window_slides)), ctx)) == []
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
    list(ws.process_element(_Row(window_row(T0 + 3 * SLIDE_MS, 11, cfg.window_slides)), ctx))
    assert [a["posts"] for a in fire(ws, ctx, T0 + SLIDE_MS)] == [7]
    state = json.loads(ctx.states[0].value())
    assert "pending" not in state and state["last_end"] == T0 + SLIDE_MS
    assert sorted(ctx.states[1].keys()) == [T0 + 2 * SLIDE_MS, T0 + 3 * SLIDE_MS]  # moved, not lost
    assert [a["posts"] for a in fire(ws, ctx, T0 + 3 * SLIDE_MS)] == [9, 11]


def crisis_row(end_ms: int, slides: int, posts: int = 400, provisional: int = 0) -> dict:
    """A window of a spreading crisis: negative, media and big-V posts on six platforms,
    legal and hot-search words."""
    row = window_row(end_ms, posts, slides)
    row.update(negative_posts=posts * 9 // 10, neg_intensity_sum=posts * 800, distinct_platforms=6,
               media_posts=posts // 10, kol_posts=posts // 10, big_posts=posts // 10, engagement_sum=posts * 500,
               max_followers=30_000_000, max_reach=50_000_000, legal_hits=posts // 5, trending_hits=posts // 4,
               provisional=provisional)
    return row


def early(ws, ctx, row):
    """process_element of a provisional row: (assessments, alerts) it emitted."""
    out = list(ws.process_element(_Row(row), ctx))
    return ([json.loads(o) for o in out if isinstance(o, str)],
            [json.loads(o[1]) for o in out if isinstance(o, tuple)])


def reference_level(row: dict, cfg) -> str:
    """What the engine's score_window says of the row on a fresh key (no hard-coded level)."""
    from scoring.engine import KeyState, score_window
    from scoring.features import WindowStats
    from core.levels import load_playbooks
    from scoring.risk import load_risk_config
    from scoring.watchlist import load_watchlist

    values = {k: v for k, v in row.items() if not k.startswith("slide_posts_") and k not in ("example", "provisional")}
    assessment, _, _ = score_window(WindowStats.from_row(values), KeyState(), load_watchlist(WATCHLIST),
                                    load_risk_config(None), load_playbooks())
    return assessment.raw_level


def test_a_provisional_raise_pages_once_marked_and_leaves_the_baseline_alone(scorer):
    ws, ctx, cfg = scorer
    fired = T0 + 25_000  # processing time of an early firing, inside the slide ending T0 + 60 s
    row = crisis_row(fired, cfg.window_slides, provisional=1)
    assert reference_level(row, cfg) == "high"
    assessments, alerts = early(ws, ctx, row)
    assert [(a["level"], a["provisional"]) for a in assessments] == [("high", True)]
    from core.times import format_ms

    assert assessments[0]["window_end"] == format_ms(T0 + SLIDE_MS)  # the event-time window that closes next
    assert [(a["event"], a["level"], a["previous_level"], a["provisional"]) for a in alerts] == [
        ("raised", "high", "low", True)]
    state = json.loads(ctx.states[0].value())
    from scoring.engine import KeyState
    assert KeyState.from_dict(state.get("key")) == KeyState()  # baseline, history, hysteresis untouched
    assert state["provisional"]["level"] == "high" and not ctx.timers
    # the next early firing of the same open window: already paged at that level
    assert early(ws, ctx, crisis_row(fired + 5_000, cfg.window_slides, posts=500, provisional=1)) == ([], [])


def test_the_closed_window_confirms_a_provisional_raise(scorer):
    ws, ctx, cfg = scorer
    early(ws, ctx, crisis_row(T0 + 25_000, cfg.window_slides, provisional=1))
    list(ws.process_element(_Row(crisis_row(T0 + SLIDE_MS, cfg.window_slides)), ctx))
    outs = list(ws.on_timer(T0 + SLIDE_MS, ctx))
    assessments = [json.loads(o) for o in outs if isinstance(o, str)]
    alerts = [json.loads(o[1]) for o in outs if isinstance(o, tuple)]
    assert [(a["level"], a.get("provisional")) for a in assessments] == [("high", None)]
    assert [(a["event"], a["level"], a.get("withdrawn")) for a in alerts] == [("raised", "high", None)]
    assert "provisional" not in json.loads(ctx.states[0].value())


def test_a_provisional_raise_the_closed_window_does_not_bear_out_is_withdrawn(scorer):
    ws, ctx, cfg = scorer
    early(ws, ctx, crisis_row(T0 + 25_000, cfg.window_slides, provisional=1))
    calm = window_row(T0 + SLIDE_MS, 3, cfg.window_slides)
    assert reference_level(calm, cfg) == "low"
    list(ws.process_element(_Row(calm), ctx))
    outs = list(ws.on_timer(T0 + SLIDE_MS, ctx))
    alerts = [json.loads(o[1]) for o in outs if isinstance(o, tuple)]
    assert [(a["event"], a["level"], a["previous_level"], a["provisional"], a["withdrawn"]) for a in alerts] == [
        ("lowered", "low", "high", True, True)]
    assert "provisional" not in json.loads(ctx.states[0].value())


def test_an_early_firing_of_a_window_already_closed_is_ignored(scorer):
    ws, ctx, cfg = scorer
    list(ws.process_element(_Row(window_row(T0 + SLIDE_MS, 3, cfg.window_slides)), ctx))
    fire(ws, ctx, T0 + SLIDE_MS)
    assert early(ws, ctx, crisis_row(T0 + 25_000, cfg.window_slides, provisional=1)) == ([], [])


def test_key_state_parts_are_flat_so_their_shallow_to_dict_equals_asdict():
    """Baseline and AlertState.to_dict copy their fields shallowly (asdict's deep copy was
    ~20% of the window scorer's Python per window): that is only right while every field
    holds a scalar."""
    from dataclasses import asdict, fields, replace

    from scoring.alerts import AlertState
    from scoring.risk import Baseline

    for cls in (Baseline, AlertState):
        assert all(f.type in ("int", "float", "str", "int | None", "float | None") for f in fields(cls)), cls
    baseline = replace(Baseline(), mean=2.5, windows=7, norm_posts=1.25, trend_windows=3)
    alert = AlertState(level="high", below=1, first_detected_ms=T0, last_window_end_ms=T0 + SLIDE_MS)
    for value in (baseline, alert, Baseline(), AlertState()):
        as_dict = value.to_dict()
        assert as_dict == asdict(value) and list(as_dict) == list(asdict(value))
        assert type(value).from_dict(as_dict) == value
        as_dict["windows" if "windows" in as_dict else "below"] = 99  # a copy, not the object's own
        assert type(value).from_dict(as_dict) != value
