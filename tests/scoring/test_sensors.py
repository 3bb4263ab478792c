"""The job's sensors: a spec names a factory, the job's operators call it, the Prometheus
sensor of sinks.metrics counts what they report (and serves it when given a port)."""
from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from core.config import Settings
from scoring import sensors
from scoring.batch import BatchCounts
from scoring.sensors import NullSensor, SensorError, make_sensor, plug, plugged, resolve_factory, sensor_spec
from sinks.metrics import JobMetricsSensor

PROMETHEUS = sensor_spec(JobMetricsSensor)


def value(registry: CollectorRegistry, name: str, **labels) -> float:
    got = registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_no_spec_is_the_null_sensor_and_a_spec_round_trips():
    assert isinstance(make_sensor("", "score"), NullSensor)
    assert PROMETHEUS == "sinks.metrics:JobMetricsSensor"
    assert resolve_factory(PROMETHEUS) is JobMetricsSensor
    assert isinstance(make_sensor(PROMETHEUS, "window"), JobMetricsSensor)


@pytest.mark.parametrize("spec, says", [
    ("sinks.metrics", "expected 'module:attribute'"),
    ("no_such_module_yq:Thing", "cannot import no_such_module_yq"),
    ("sinks.metrics:NoSuchSensor", "sinks.metrics has no NoSuchSensor"),
    ("sinks.metrics:DLQ_STAGES", "is not callable"),
])
def test_a_bad_spec_fails_with_one_line_naming_it(spec, says):
    with pytest.raises(SensorError, match=says):
        resolve_factory(spec)


def test_a_role_outside_the_jobs_is_refused_and_a_local_factory_has_no_name():
    with pytest.raises(SensorError, match="role 'sink'"):
        make_sensor("", "sink")

    def local(**_):
        return NullSensor()

    with pytest.raises(SensorError, match="not importable by name"):
        sensor_spec(local)


def test_plugging_sets_what_jobconfig_build_carries_to_the_workers(monkeypatch):
    from scoring.job import JobConfig
    from tests.fixtures.streams import WATCHLIST

    monkeypatch.setattr(sensors, "_plugged", "")
    assert JobConfig.build(Settings(), WATCHLIST).sensor == ""
    plug(JobMetricsSensor)
    assert plugged() == PROMETHEUS
    assert JobConfig.build(Settings(), WATCHLIST).sensor == PROMETHEUS
    plug(None)
    assert plugged() == ""


def test_the_prometheus_sensor_counts_batches_clamps_assessments_and_alerts():
    sensor = JobMetricsSensor(role="score")
    r = sensor.metrics.registry
    sensor.on_batch(BatchCounts(scored=3, unmatched=1, rejected=2, by_platform={"weibo": 2, "微信": 1},
                                by_brand={"快送": 3}, lag_s=4.5,
                                rejected_reasons=("invalid JSON: Expecting value", "text: empty")))
    sensor.on_event_time_clamped(7)
    sensor.on_assessment({"brand": "快送", "category": "privacy", "level": "high", "risk_score": 0.8,
                          "influence": 0.5, "severity": 0.9, "volatility": 0.7})
    sensor.on_alert("opened", "high")
    assert value(r, "yuqing_posts_processed_total", platform="weibo") == 2
    assert value(r, "yuqing_posts_matched_total", brand="快送") == 3
    assert sum(value(r, "yuqing_dlq_records_total", stage="job", reason=s.labels["reason"])
               for m in r.collect() if m.name == "yuqing_dlq_records" for s in m.samples
               if s.name.endswith("_total")) == 2
    assert value(r, "yuqing_pipeline_lag_seconds", stage="job") == 4.5
    assert value(r, "yuqing_job_event_time_clamped_total") == 7
    assert value(r, "yuqing_risk_level", brand="快送", category="privacy") == 2
    assert value(r, "yuqing_assessments_total", level="high") == 1
    assert value(r, "yuqing_alerts_emitted_total", event="opened", level="high") == 1
    assert sensor.exporter is None  # port 0: counted, not served


def test_a_second_sensor_of_a_role_serves_on_the_next_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    first = JobMetricsSensor(role="window", port=base)
    second = JobMetricsSensor(role="window", port=base)
    try:
        assert first.exporter.port == base and second.exporter.port == base + 1
        second.on_alert("escalated", "medium")
        body = urllib.request.urlopen(f"http://127.0.0.1:{base + 1}/metrics", timeout=5).read().decode()
        assert 'yuqing_alerts_emitted_total{event="escalated",level="medium"} 1.0' in body
    finally:
        for s in (first, second):
            if s.exporter:
                s.exporter.close()


def test_the_window_scorer_reports_each_assessment_and_alert_to_its_sensor():
    pytest.importorskip("pyflink")
    from pyflink.common import Types
    from pyflink.datastream import OutputTag

    from scoring.job import JobConfig, _make_window_scorer, _worker_cache
    from tests.fixtures.streams import WATCHLIST
    from tests.scoring.test_window_scorer import KEY, SLIDE_MS, T0, _Context, _Row, window_row

    cfg = JobConfig.build(Settings(), WATCHLIST, metrics_port=0, udf_metrics_port=0, sensor=PROMETHEUS)
    _worker_cache.pop(("sensor", "window", PROMETHEUS), None)  # a fresh registry for this test
    ws = _make_window_scorer(cfg, OutputTag("alerts", Types.STRING()))
    ctx = _Context()
    ws.open(ctx)
    ctx.set_key(KEY)
    assert isinstance(ws.sensor, JobMetricsSensor)
    for i in range(1, 4):
        list(ws.process_element(_Row(window_row(T0 + i * SLIDE_MS, 40 * i, cfg.window_slides)), ctx))
    outs = list(ws.on_timer(T0 + 3 * SLIDE_MS, ctx))
    assessments = [o for o in outs if isinstance(o, str)]
    alerts = [o for o in outs if not isinstance(o, str)]
    r = ws.sensor.metrics.registry
    assert len(assessments) == 3 and alerts, (len(assessments), len(alerts))
    assert sum(value(r, "yuqing_assessments_total", level=lv) for lv in ("low", "medium", "high")) == 3
    assert sum(s.value for m in r.collect() if m.name == "yuqing_alerts_emitted" for s in m.samples
               if s.name.endswith("_total")) == len(alerts)


def test_a_job_with_a_sensor_that_names_nothing_fails_at_build_not_in_a_worker():
    from scoring.job import JobConfig
    from tests.fixtures.streams import WATCHLIST

    with pytest.raises(SensorError, match="sinks.metrics has no Nope"):
        JobConfig.build(Settings(), WATCHLIST, sensor="sinks.metrics:Nope")


def test_the_prometheus_sensors_settings_are_checked_when_the_job_is_built(monkeypatch):
    from scoring.job import JobConfig
    from scoring.sensors import check_sensor
    from sinks.metrics import LOW_KEY_TTL_ENV

    monkeypatch.setenv(LOW_KEY_TTL_ENV, "half an hour")
    with pytest.raises(SensorError, match=f"sensor {PROMETHEUS}: {LOW_KEY_TTL_ENV}: expected seconds >= 0") as info:
        JobConfig(watchlist_path="unused.yaml", sensor=PROMETHEUS).check()
    assert "\n" not in str(info.value)
    JobConfig(watchlist_path="unused.yaml").check()  # no sensor: nothing to check
    monkeypatch.setenv(LOW_KEY_TTL_ENV, "600")
    check_sensor(PROMETHEUS)
    check_sensor("scoring.sensors:NullSensor")  # a factory without `check`
