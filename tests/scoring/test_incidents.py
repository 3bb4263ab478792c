"""Incidents, not keys (issue #22): the pure per-brand incident function, the evidence guard,
and seeded replays through the plain engine counting what on-call receives."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from scoring.alerts import AlertState, has_evidence, next_level
from scoring.engine import Engine
from scoring.features import WindowStats
from scoring.incidents import (IncidentBook, IncidentConfig, IncidentError, IncidentState, close_deadline_ms,
                               incident_id, is_page, on_key_alert, on_time)
from core.times import format_ms
from scoring.risk import AlertConfig, RiskConfig
from tests.fixtures import scenarios as S
from core.post import post_from_dict
from yuqing.synth import DEFAULT_START, calm_chatter, crisis, generate

from .conftest import label_sentiment

MIN = 60_000
HOUR = 60 * MIN
T0 = int(DEFAULT_START.timestamp() * 1000)
BRAND = "星云支付"


def key(event, category, level, at_ms, previous="low", first_ms=None, brand=BRAND, **more):
    """A key-level `alerts` record as scoring.alerts.AlertEvent.to_dict() writes it."""
    first = at_ms if first_ms is None else first_ms
    return {"alert_id": f"key-{category}-{first}", "event": event, "brand": brand, "category": category,
            "level": level, "previous_level": previous, "at": format_ms(at_ms),
            "first_detected_at": format_ms(first), "posts": 7,
            "deadlines": [{"name": "首次回应", "due_at": format_ms(first + HOUR), "hours_after_detection": 1.0}],
            **more}


def feed(records, cfg=IncidentConfig()):
    state, out = IncidentState(), []
    for r in records:
        if isinstance(r, int):
            state, got = on_time(state, r, cfg)
        else:
            state, got = on_key_alert(state, r, cfg)
        out.extend(got)
    return state, out


# ------------------------------------------------------------------ the pure function


def test_first_rise_opens_a_page_with_a_stable_id_and_deadlines_from_it():
    state, out = feed([key("raised", "privacy", "medium", T0)])
    assert [r["kind"] for r in out] == ["opened"] and out[0]["page"] is True
    assert out[0]["incident_id"] == out[0]["alert_id"] == incident_id(BRAND, T0) == state.incident_id
    assert out[0]["key_alert_id"] == f"key-privacy-{T0}"
    assert out[0]["categories"] == [{"category": "privacy", "level": "medium"}]
    assert out[0]["deadlines"][0]["due_at"] == format_ms(T0 + HOUR)
    assert incident_id(BRAND, T0) != incident_id("快送", T0) != incident_id(BRAND, T0 + MIN)


def test_a_second_category_joins_without_a_page_unless_it_goes_above_the_incident_max():
    _, out = feed([key("raised", "privacy", "high", T0),
                   key("raised", "legal", "medium", T0 + 5 * MIN),
                   key("raised", "legal", "high", T0 + 9 * MIN, previous="medium", first_ms=T0 + 5 * MIN)])
    assert [r["kind"] for r in out] == ["opened", "updated", "updated"]
    assert [r["page"] for r in out] == [True, False, False]
    last = out[-1]
    assert last["categories"] == [{"category": "privacy", "level": "high"}, {"category": "legal", "level": "high"}]
    # the deadlines of a key that joined later still run from the incident's first detection
    assert last["first_detected_at"] == format_ms(T0) and last["deadlines"][0]["due_at"] == format_ms(T0 + HOUR)
    assert len({r["incident_id"] for r in out}) == 1


def test_escalation_above_the_max_pages_and_a_dip_and_rise_back_does_not():
    _, out = feed([key("raised", "privacy", "medium", T0),
                   key("lowered", "privacy", "low", T0 + 20 * MIN, previous="medium"),
                   key("raised", "privacy", "medium", T0 + 30 * MIN),
                   key("raised", "privacy", "high", T0 + 60 * MIN, previous="medium", first_ms=T0 + 30 * MIN),
                   key("lowered", "privacy", "medium", T0 + 70 * MIN, previous="high", first_ms=T0 + 30 * MIN),
                   key("raised", "privacy", "high", T0 + 80 * MIN, previous="medium", first_ms=T0 + 30 * MIN)])
    assert [r["kind"] for r in out] == ["opened", "lowered", "updated", "escalated", "lowered", "updated"]
    assert sum(is_page(r) for r in out) == 2
    assert out[3]["incident_level"] == "high" and out[4]["current_level"] == "medium"


def test_closes_only_after_every_key_is_low_for_the_quiet_period():
    cfg = IncidentConfig(quiet_s=2 * 3600)
    state, out = feed([key("raised", "privacy", "medium", T0), key("raised", "legal", "medium", T0 + MIN),
                       key("lowered", "privacy", "low", T0 + 30 * MIN, previous="medium"),
                       T0 + 5 * HOUR], cfg)
    assert state.open and out[-1]["kind"] == "updated"  # legal is still medium: no close
    state, more = on_key_alert(state, key("lowered", "legal", "low", T0 + 40 * MIN, previous="medium"), cfg)
    assert more[-1]["kind"] == "lowered" and close_deadline_ms(state, cfg) == T0 + 40 * MIN + 2 * HOUR
    state, none = on_time(state, T0 + 40 * MIN + 2 * HOUR - 1, cfg)
    assert none == [] and state.open
    state, closed = on_time(state, T0 + 9 * HOUR, cfg)  # a late time signal: dated at the end of the quiet
    assert [r["kind"] for r in closed] == ["closed"] and not state.open
    assert closed[0]["at"] == format_ms(T0 + 40 * MIN + 2 * HOUR) and closed[0]["page"] is False


def test_a_rise_within_the_quiet_period_keeps_the_incident_and_one_after_it_opens_a_new_one():
    cfg = IncidentConfig(quiet_s=3600)
    first = [key("raised", "privacy", "medium", T0), key("lowered", "privacy", "low", T0 + 10 * MIN, previous="medium")]
    state, out = feed(first + [key("raised", "privacy", "medium", T0 + 50 * MIN)], cfg)
    assert [r["kind"] for r in out] == ["opened", "lowered", "updated"] and state.quiet_since_ms is None
    # no time signal in between: the close comes first, then a new incident (a new page)
    state, out = feed(first + [key("raised", "privacy", "medium", T0 + 3 * HOUR)], cfg)
    assert [r["kind"] for r in out] == ["opened", "lowered", "closed", "opened"]
    assert out[0]["incident_id"] != out[-1]["incident_id"] == state.incident_id


def test_state_round_trips_and_old_records_still_page_by_event():
    state, _ = feed([key("raised", "privacy", "high", T0), key("raised", "legal", "medium", T0 + MIN)])
    assert IncidentState.from_dict(state.to_dict()) == state
    assert IncidentState.from_dict(None) == IncidentState() == IncidentState.from_dict({"incident_id": None})
    assert is_page({"event": "raised"}) and not is_page({"event": "lowered"})
    assert not is_page({"event": "raised", "kind": "updated"})


@pytest.mark.parametrize("bad, reason", [
    ({"brand": BRAND, "category": "privacy", "level": "critical", "event": "raised", "at": format_ms(T0)}, "level"),
    ({"brand": BRAND, "category": "privacy", "level": "high", "event": "opened", "at": format_ms(T0)}, "event"),
    ({"brand": "", "category": "privacy", "level": "high", "event": "raised", "at": format_ms(T0)}, "brand"),
    ({"brand": BRAND, "category": "privacy", "level": "high", "event": "raised", "at": "昨天"}, "RFC 3339"),
    ({"brand": BRAND, "category": "privacy", "level": "high", "event": "raised", "at": "2026-11-25T01:00:00"}, "offset"),
    ("not a record", "object"),
])
def test_bad_key_records_are_refused_with_a_reason(bad, reason):
    with pytest.raises(IncidentError, match=reason):
        on_key_alert(IncidentState(), bad)


def test_a_record_of_another_brand_is_refused_and_the_book_keeps_brands_apart():
    state, _ = feed([key("raised", "privacy", "medium", T0)])
    with pytest.raises(IncidentError, match="brand"):
        on_key_alert(state, key("raised", "privacy", "medium", T0, brand="快送"))
    book = IncidentBook(IncidentConfig(quiet_s=60))
    a = book.key_alert(key("raised", "privacy", "medium", T0))
    b = book.key_alert(key("raised", "privacy", "medium", T0 + MIN, brand="快送"))
    assert a[0]["incident_id"] != b[0]["incident_id"] and set(book.states) == {BRAND, "快送"}
    book.key_alert(key("lowered", "privacy", "low", T0 + 2 * MIN, previous="medium"))
    assert [r["kind"] for r in book.advance(T0 + 4 * MIN)] == ["closed"] and set(book.states) == {"快送"}


def test_quiet_period_must_be_whole_non_negative_seconds():
    with pytest.raises(IncidentError, match="quiet_s"):
        IncidentConfig(quiet_s=-1)


# ------------------------------------------------------------------ evidence before medium


def window(posts, **more):
    return WindowStats(BRAND, "privacy", T0, T0 + 10 * MIN, posts=posts, negative_posts=posts, **more)


@pytest.mark.parametrize("stats, ok", [
    (window(1), False), (window(2), False), (window(3), True),
    (window(1, media_posts=1), True), (window(2, official_posts=1), True), (window(1, legal_hits=1), True),
    (window(2, kol_posts=2), False),
])
def test_a_window_of_one_or_two_ordinary_posts_is_no_evidence(stats, ok):
    assert has_evidence(stats, AlertConfig()) is ok


def test_without_evidence_a_low_key_stays_low_but_an_elevated_key_is_not_pushed_down():
    low, change = next_level(AlertState(), 0.9, T0, evidence=False)
    assert (low.level, change) == ("low", None)
    raised, change = next_level(AlertState(), 0.9, T0, evidence=True)
    assert (raised.level, change) == ("high", "raised")
    kept, change = next_level(raised, 0.9, T0 + MIN, evidence=False)
    assert (kept.level, change) == ("high", None)


def two_big_account_posts(author_kind="kol"):
    """Two angry privacy posts by a big account with ten million followers, on two platforms."""
    b = S._Builder(7, "two")
    author = {"id": "k-1", "name": "数码大V", "followers": 12_000_000, "verified": True, "kind": author_kind}
    return [b.post(DEFAULT_START + timedelta(minutes=3 * i), platform, f"{BRAND}泄露我的个人信息，隐私全没了！[怒]",
                   author, 0, "two", BRAND, "privacy", boost=50) for i, platform in enumerate(("weibo", "douyin"))]


@pytest.mark.parametrize("evidence_posts, author_kind, paged", [
    (3, "kol", False),  # the default: two posts, however loud, are not a story yet
    (1, "kol", True),   # the guard switched off: the same two posts page
    (3, "media", True),  # a media author is grave: two posts are enough
])
def test_two_loud_posts_need_a_grave_author_to_open_an_incident(watchlist, matcher, evidence_posts, author_kind, paged):
    from dataclasses import replace

    cfg = replace(RiskConfig(), alerts=AlertConfig(evidence_posts=evidence_posts))
    result = Engine(watchlist, label_sentiment, cfg, matcher=matcher).run(
        [post_from_dict(p) for p in two_big_account_posts(author_kind)])
    assert max(a.risk_score for a in result.assessments) >= cfg.score.medium
    assert bool([r for r in result.incidents if r["kind"] == "opened"]) is paged
    assert bool(result.alerts) is paged


# ------------------------------------------------------------------ seeded engine scenarios


def run(watchlist, matcher, posts, cfg=RiskConfig()):
    return Engine(watchlist, label_sentiment, cfg, matcher=matcher).run([post_from_dict(p) for p in posts])


def pages(result, brand):
    return [r for r in result.incidents if r["brand"] == brand and is_page(r)]


ONSET = DEFAULT_START + timedelta(minutes=60)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_fast_crisis_over_several_categories_is_one_incident_and_at_most_two_pages(watchlist, matcher, seed):
    posts = generate([calm_chatter(b.name, DEFAULT_START, 200) for b in watchlist.brands]
                     + [crisis("快送", "privacy", ONSET, minutes=90, peak_per_min=300, peak_at=60)],
                     watchlist, seed=seed, arrival_jitter_s=20)
    result = run(watchlist, matcher, posts)
    keys = {e.category for e in result.alerts if e.brand == "快送" and e.event == "raised"}
    assert len(keys) >= 2  # the story trips more than one category ...
    records = [r for r in result.incidents if r["brand"] == "快送"]
    assert len({r["incident_id"] for r in records}) == 1  # ... and stays one incident
    assert [r["kind"] for r in pages(result, "快送")] == ["opened", "escalated"]
    assert records[-1]["kind"] == "closed" and {c["category"] for c in records[-1]["categories"]} == keys
    first = records[0]["first_detected_at"]
    assert all(r["first_detected_at"] == first for r in records)
    key_pages = [e for e in result.alerts if e.brand == "快送" and e.event == "raised"]
    assert len(key_pages) > 2  # what on-call got before incidents


def test_a_slow_burn_is_one_incident_with_at_most_three_pages(watchlist, matcher):
    result = run(watchlist, matcher, S.slow_burn())
    records = [r for r in result.incidents if r["brand"] == S.QUIET_BRAND]
    assert records and len({r["incident_id"] for r in records}) == 1
    assert records[0]["kind"] == "opened" and 1 <= len(pages(result, S.QUIET_BRAND)) <= 3
    # the key itself still flaps: the incident turns that into updates, not pages
    assert len([e for e in result.alerts if e.event == "raised"]) > len(pages(result, S.QUIET_BRAND))


def test_a_slow_burn_reaches_medium_within_3_hours_and_high_within_7(watchlist, matcher):
    result = run(watchlist, matcher, S.slow_burn())
    levels = [(r["at"], r["incident_level"]) for r in result.incidents if is_page(r)]
    medium = min((at for at, lv in levels if lv in ("medium", "high")), default=None)
    high = min((at for at, lv in levels if lv == "high"), default=None)
    assert medium is not None and medium <= format_ms(T0 + 3 * HOUR)
    assert high is not None and high <= format_ms(T0 + 7 * HOUR)


# ------------------------------------------------------------------ the job's incident operator


def _open_incident_tracker():
    """The job's IncidentTracker opened on the window-scorer tests' fake Flink context, keyed
    by BRAND, and a `send(record) -> [output records]`."""
    pytest.importorskip("pyflink")
    from core.config import Settings
    from scoring.job import JobConfig, _make_incident_tracker

    from .conftest import SAMPLE_WATCHLIST
    from .test_window_scorer import _Context

    cfg = JobConfig.build(Settings(), SAMPLE_WATCHLIST, metrics_port=0, udf_metrics_port=0)
    op = _make_incident_tracker(cfg)
    ctx = _Context()
    op.open(ctx)
    ctx.set_key(BRAND)

    def send(record):
        return [json.loads(o) for o in op.process_element(json.dumps(record, ensure_ascii=False), ctx)]

    return op, ctx, send


def test_the_jobs_incident_operator_orders_a_step_by_time_pages_early_raises_at_once_and_closes_on_a_timer():
    """scoring/job.py IncidentTracker with the window-scorer tests' fake Flink context."""
    op, ctx, send = _open_incident_tracker()

    def fire(ts):
        return [json.loads(o) for o in op.on_timer(ts, ctx)]

    # one watermark step: the legal window (later) is emitted before the privacy one (earlier)
    assert send(key("raised", "legal", "medium", T0 + 2 * MIN)) == []
    assert send(key("raised", "privacy", "medium", T0 + MIN)) == []
    out = fire(T0 + 2 * MIN)
    assert [(r["kind"], r["category"]) for r in out] == [("opened", "privacy"), ("updated", "legal")]
    # a provisional (early-firing) raise above the incident's level pages at once
    early = send(key("raised", "privacy", "high", T0 + 3 * MIN, previous="medium", provisional=True))
    assert [(r["kind"], r["provisional"]) for r in early] == [("escalated", True)]
    # both keys fall; the close comes from the timer at the end of the quiet period
    send(key("lowered", "privacy", "low", T0 + 20 * MIN, previous="high"))
    send(key("lowered", "legal", "low", T0 + 21 * MIN, previous="medium"))
    assert [r["kind"] for r in fire(T0 + 21 * MIN)] == ["lowered", "lowered"]  # high -> medium -> low
    closes_at = T0 + 21 * MIN + cfg_quiet_ms()
    assert closes_at in ctx.timers
    assert [r["kind"] for r in fire(closes_at)] == ["closed"]
    # a broken record is passed on with its reason, never dropped, and the state stays intact
    [bad] = [json.loads(o) for o in op.process_element("{not json", ctx)]
    assert "incident_error" in bad and bad["record"] == "{not json"


def cfg_quiet_ms():
    return RiskConfig().alerts.incident_quiet_s * 1000


def test_the_jobs_incident_operator_numbers_waiting_records_without_walking_its_state():
    """Two key records of one time and category both wait and apply in arrival order; the
    per-record work does not list the waiting map (a counter in state numbers them), and the
    numbering starts again once nothing waits."""
    op, ctx, send = _open_incident_tracker()
    listed = []
    waiting = op.waiting
    original_keys = waiting.keys
    waiting.keys = lambda: listed.append(1) or original_keys()

    # the second round: the incident is open at high, so medium is a fall, high an update
    for kinds in (["opened", "escalated"], ["lowered", "updated"]):
        assert send(key("raised", "privacy", "medium", T0)) == []
        assert send(key("raised", "privacy", "high", T0, previous="medium")) == []
        assert listed == []
        assert len(original_keys()) == 2 and op.waiting_seq.value() == 2
        out = [json.loads(o) for o in op.on_timer(T0, ctx)]
        assert [(r["kind"], r["level"]) for r in out] == list(zip(kinds, ["medium", "high"]))
        assert original_keys() == [] and op.waiting_seq.value() is None
        listed.clear()


@pytest.mark.parametrize("value, expected", [(None, True), ("", True), ("0", False), ("off", False),
                                             ("1", True), ("yes", True)])
def test_the_live_job_publishes_incidents_unless_switched_off(monkeypatch, value, expected):
    pytest.importorskip("pyflink")
    from core.config import Settings
    from scoring.job import JobConfig

    from .conftest import SAMPLE_WATCHLIST

    if value is None:
        monkeypatch.delenv("YUQING_JOB_INCIDENTS", raising=False)
    else:
        monkeypatch.setenv("YUQING_JOB_INCIDENTS", value)
    assert JobConfig.build(Settings(), SAMPLE_WATCHLIST, metrics_port=0, udf_metrics_port=0).incidents is expected


def test_a_mistyped_incidents_switch_is_refused_not_read_as_off(monkeypatch):
    pytest.importorskip("pyflink")
    from core.config import Settings
    from scoring.job import JobConfig

    from .conftest import SAMPLE_WATCHLIST

    monkeypatch.setenv("YUQING_JOB_INCIDENTS", "of")
    with pytest.raises(ValueError, match="YUQING_JOB_INCIDENTS"):
        JobConfig.build(Settings(), SAMPLE_WATCHLIST, metrics_port=0, udf_metrics_port=0)


def test_the_live_jobs_incident_operator_keeps_its_uid_so_its_state_restores(monkeypatch, tmp_path):
    """The incidents operator's job vertex id is the hash of its uid "incidents" (Flink maps a
    checkpoint's state to operators by that id); the JobGraph builds without a hash collision.
    PyFlink's operator chaining gives a chained Python operator the uid of its first
    operator, so the uid must sit on the chain's head: here the tracker (after a key_by)."""
    pytest.importorskip("pyflink")
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.java_gateway import get_gateway

    from core.config import Settings
    from scoring.job import JobConfig, run_live

    from .conftest import SAMPLE_WATCHLIST

    # building the job in this process points TMPDIR, tempfile and the JVM's options at the
    # run's own folder; give them back afterwards (a later test's Chromium could not open its
    # socket under that long path)
    import os
    import tempfile
    for name in ("TMPDIR", "JVM_ARGS", "PYTHONPATH", "_python_worker_execution_mode"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)

    vertices: dict[str, str] = {}

    def graph_only(env, job_name=None):
        job_graph = env._generate_stream_graph(clear_transformations=True, job_name=job_name).getJobGraph()
        found = job_graph.getVertices().iterator()
        while found.hasNext():
            vertex = found.next()
            vertices[vertex.getName()] = vertex.getID().toString()

    monkeypatch.setattr(StreamExecutionEnvironment, "execute", graph_only)
    settings = Settings(state_dir=tmp_path)
    cfg = JobConfig.build(settings, SAMPLE_WATCHLIST, metrics_port=0, udf_metrics_port=0)
    assert cfg.incidents
    run_live(settings, cfg, checkpoint_dir=tmp_path / "checkpoints")
    [incidents] = [vid for name, vid in vertices.items() if name.startswith("incidents")]
    hasher = get_gateway().jvm.org.apache.flink.streaming.api.graph.StreamGraphHasherV2
    expected = "".join(f"{b & 0xFF:02x}" for b in hasher.generateUserSpecifiedHash("incidents"))
    assert incidents == expected
