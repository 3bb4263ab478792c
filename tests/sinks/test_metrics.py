"""sinks.metrics: bounded labels, the assessment -> gauge mapping, and a real exporter."""
from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from sinks.metrics import (CRAWLER_METRICS, DLQ_REASON_CLASSES, Metrics, classify_dlq_reason, level_value,
                           platform_label, start_exporter)


def test_set_assessment_publishes_the_five_gauges():
    m = Metrics(CollectorRegistry())
    m.set_assessment({"brand": "快送", "category": "privacy", "level": "high", "risk_score": 0.82,
                      "influence": 0.7, "severity": 0.9, "volatility": 0.6})
    get = lambda name: m.registry.get_sample_value(name, {"brand": "快送", "category": "privacy"})
    assert (get("yuqing_risk_level"), get("yuqing_risk_score")) == (2, 0.82)
    assert (get("yuqing_risk_influence"), get("yuqing_risk_severity"), get("yuqing_risk_volatility")) == (0.7, 0.9, 0.6)
    m.set_risk("快送", "privacy", level="medium", risk_score=0.5, influence=0, severity=0, volatility=0)
    assert get("yuqing_risk_level") == 1


def test_unknown_level_is_a_clear_error():
    assert [level_value(x) for x in ("low", "medium", "high")] == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown risk level 'severe'"):
        level_value("severe")


@pytest.mark.parametrize("reason, cls", [
    ("missing required field(s): text, published_at", "missing_field"),
    ("invalid JSON: Expecting value at line 1 column 1", "invalid_json"),
    ("not a JSON object: got list", "not_object"),
    ("invalid UTF-8 at byte 17", "invalid_utf8"),
    ("published_at: timestamp lacks a UTC offset: '2026-11-25T10:00:00'", "bad_timestamp"),
    ("title: expected a string, got int", "wrong_type"),
    ("metrics.likes: must not be negative, got -3", "bad_value"),
    ("author.kind: expected one of media, kol, official, user, got 'bot'", "bad_value"),
    ("text: longer than 200000 characters (250001)", "too_large"),
    ("something nobody foresaw: 快送 weibo:123", "other"),
    (None, "other"),
])
def test_dlq_reasons_collapse_to_a_small_fixed_set(reason, cls):
    assert classify_dlq_reason(reason) == cls


def test_dlq_and_platform_labels_stay_bounded():
    m = Metrics(CollectorRegistry())
    for i in range(200):  # many distinct raw reasons and platforms: few series
        m.count_dlq("ingest", f"missing required field(s): field{i}")
        m.count_dlq("weird-stage", f"zzz {i}")
        m.count_processed(f"platform{i}")
    m.count_processed("Weibo")
    samples = [s for metric in m.registry.collect() for s in metric.samples
               if s.name in ("yuqing_dlq_records_total", "yuqing_posts_processed_total")]
    assert {(s.labels.get("stage"), s.labels.get("reason")) for s in samples if s.name == "yuqing_dlq_records_total"} \
        == {("ingest", "missing_field"), ("other", "other")}
    assert {s.labels["platform"] for s in samples if s.name == "yuqing_posts_processed_total"} == {"other", "weibo"}
    assert m.registry.get_sample_value("yuqing_posts_processed_total", {"platform": "other"}) == 200
    assert set(DLQ_REASON_CLASSES) >= {"other", "invalid_json"} and platform_label(None) == "other"


def test_every_metric_is_prefixed_and_crawler_names_follow_the_convention():
    m = Metrics(CollectorRegistry())
    names = {metric.name for metric in m.registry.collect()}
    assert names and all(n.startswith("yuqing_") for n in names)
    assert all(n.startswith("yuqing_crawler_") for n in CRAWLER_METRICS)


def test_exporter_serves_the_registry_over_http_and_frees_its_port():
    m = Metrics(CollectorRegistry())
    m.set_risk("快送", "outage", level="high", risk_score=0.9, influence=0.1, severity=0.2, volatility=0.3)
    exporter = start_exporter(0, registry=m.registry)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=3).read().decode()
    finally:
        exporter.close()
    assert 'yuqing_risk_level{brand="快送",category="outage"} 2.0' in body
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=1)


def test_crawler_metric_table_matches_the_ingest_registry():
    """Rules and dashboards read CRAWLER_METRICS names: they must be what ingest exports."""
    from ingest.metrics import IngestMetrics
    from sinks.metrics import CRAWLER_METRICS

    metrics = IngestMetrics()
    metrics.fetched.labels("s").inc()
    metrics.requests.labels("s", "200").inc()
    metrics.errors.labels("s", "timeout").inc()
    metrics.produced.labels("s").inc()
    metrics.rejected.labels("s").inc()
    metrics.last_success.labels("s").set(1)
    metrics.lag.labels("s").set(1)
    exported = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            exported[sample.name] = tuple(sample.labels)
    for name, labels in CRAWLER_METRICS.items():
        assert name in exported, f"{name} is read by rules/dashboards but ingest does not export it"
        assert exported[name] == labels, name
