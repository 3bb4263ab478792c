"""sinks.metrics: bounded labels, the assessment -> gauge mapping, and a real exporter."""
from __future__ import annotations

import gzip
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from sinks.metrics import (CRAWLER_METRICS, DLQ_REASON_CLASSES, LOW_KEY_TTL_ENV, JobMetricsSensor, Metrics,
                           classify_dlq_reason, level_value, low_key_ttl_s_from_env, platform_label, start_exporter)


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


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _risk(m, brand, category, level, score=0.5):
    m.set_risk(brand, category, level=level, risk_score=score, influence=0.1, severity=0.2, volatility=0.3)


def _series(m):
    return {(s.labels["brand"], s.labels["category"]): s.value for metric in m.registry.collect()
            for s in metric.samples if s.name == "yuqing_risk_level"}


def test_low_keys_series_expire_after_the_ttl_and_elevated_keys_stay():
    clock = FakeClock()
    m = Metrics(CollectorRegistry(), low_key_ttl_s=1800, clock=clock)
    _risk(m, "快送", "privacy", "low")
    _risk(m, "星云支付", "refund", "high")
    _risk(m, "極速外賣", "outage", "medium")  # a traditional-script brand
    clock.now += 1799
    assert _series(m) == {("快送", "privacy"): 0, ("星云支付", "refund"): 2, ("極速外賣", "outage"): 1}
    clock.now += 2
    assert _series(m) == {("星云支付", "refund"): 2, ("極速外賣", "outage"): 1}
    clock.now += 100_000  # elevated keys keep their series however long no window comes
    assert set(_series(m)) == {("星云支付", "refund"), ("極速外賣", "outage")}
    _risk(m, "星云支付", "refund", "low", score=0.1)  # back to low: 0 at once (the rules resolve) ...
    assert _series(m)[("星云支付", "refund")] == 0
    assert m.registry.get_sample_value("yuqing_risk_score", {"brand": "星云支付", "category": "refund"}) == 0.1
    clock.now += 1801  # ... and gone after the TTL
    assert _series(m) == {("極速外賣", "outage"): 1}
    assert len(m.risk) == 1


def test_a_new_assessment_renews_a_low_key_and_a_raise_stops_its_expiry():
    clock = FakeClock()
    m = Metrics(CollectorRegistry(), low_key_ttl_s=60, clock=clock)
    _risk(m, "快送", "privacy", "low")
    _risk(m, "快送", "legal", "low")
    clock.now += 50
    _risk(m, "快送", "privacy", "low")  # renewed: now the youngest
    _risk(m, "快送", "legal", "high")   # raised: no longer a low key
    clock.now += 50
    assert _series(m) == {("快送", "privacy"): 0, ("快送", "legal"): 2}
    clock.now += 11
    assert _series(m) == {("快送", "legal"): 2}
    # every one of the five gauges goes with the key
    names = {s.name for metric in m.registry.collect() for s in metric.samples if s.labels.get("category") == "privacy"}
    assert names == set()


def test_ttl_zero_keeps_low_keys_and_the_env_setting_is_checked():
    clock = FakeClock()
    m = Metrics(CollectorRegistry(), low_key_ttl_s=0, clock=clock)
    _risk(m, "快送", "privacy", "low")
    clock.now += 10**7
    assert _series(m) == {("快送", "privacy"): 0}
    assert low_key_ttl_s_from_env({}) == 1800
    assert low_key_ttl_s_from_env({LOW_KEY_TTL_ENV: " 600 "}) == 600
    for bad in ("-1", "thirty", "nan", "inf"):
        with pytest.raises(ValueError, match=f"{LOW_KEY_TTL_ENV}: expected seconds >= 0") as info:
            low_key_ttl_s_from_env({LOW_KEY_TTL_ENV: bad})
        assert "\n" not in str(info.value)


def test_the_job_sensor_takes_its_ttl_from_the_environment(monkeypatch):
    monkeypatch.setenv(LOW_KEY_TTL_ENV, "90")
    sensor = JobMetricsSensor("window")
    assert sensor.metrics.risk.low_ttl_s == 90
    monkeypatch.setenv(LOW_KEY_TTL_ENV, "soon")
    with pytest.raises(ValueError, match=LOW_KEY_TTL_ENV):
        JobMetricsSensor("window")


def test_the_exporter_page_stays_bounded_with_many_quiet_keys():
    """10,000 brands x 8 categories assessed low over two hours of processing time, 1% of
    them elevated: the page holds the elevated keys and the last half hour's low ones."""
    clock = FakeClock()
    m = Metrics(CollectorRegistry(), low_key_ttl_s=1800, clock=clock)
    keys = [(f"品牌{b}", f"类别{c}") for b in range(10_000) for c in range(8)]
    for i, (brand, category) in enumerate(keys):
        clock.now = 1000.0 + i * 7200 / len(keys)
        _risk(m, brand, category, "high" if i % 100 == 0 else "low")
    exporter = start_exporter(0, registry=m.registry)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=10).read().decode()
    finally:
        exporter.close()
    levels = [line for line in body.splitlines() if line.startswith("yuqing_risk_level{")]
    elevated, recent_low = len(keys) // 100, len(keys) // 4  # 1,800 of 7,200 s
    assert abs(len(levels) - (elevated + recent_low * 99 // 100)) <= 10
    assert sum(line.endswith(" 2.0") for line in levels) == elevated
    assert f'yuqing_risk_level{{brand="品牌0",category="类别0"}} 2.0' in body  # the oldest, but high
    assert 'brand="品牌1",' not in body  # an early low key: expired


PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def _get(port, accept=None, encoding=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    if encoding:
        request.add_header("Accept-Encoding", encoding)
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
        return (gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body).decode()


def _samples(families):
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples
                  if not s.name.endswith("_created"))


@pytest.mark.parametrize("accept", [None, PROMETHEUS_ACCEPT])
def test_the_exporters_risk_lines_equal_prometheus_clients_own(accept):
    """The page written from cached text parses to the same samples as prometheus_client's
    formatting of the same registry, in the text format and in OpenMetrics, with label
    values that need escaping (quotes, backslash, newline) and non-ASCII brands."""
    m = Metrics(CollectorRegistry())
    brands = ['快送', '極速外賣', 'say "hi"', 'back\\slash', 'two\nlines', '🍔外卖', 'Ｆｕｌｌ']
    for i, brand in enumerate(brands):
        _risk(m, brand, "privacy", ("low", "medium", "high")[i % 3], score=i / 10)
    m.count_processed("weibo", 3)
    m.count_dlq("job", "invalid JSON")
    exporter = start_exporter(0, registry=m.registry)
    try:
        page = _get(exporter.port, accept)
        zipped = _get(exporter.port, accept, encoding="gzip")
    finally:
        exporter.close()
    assert zipped == page
    if accept:
        assert page.endswith("# EOF\n") and page.count("# EOF") == 1
        parsed = openmetrics_parser.text_string_to_metric_families(page)
        expected = openmetrics_parser.text_string_to_metric_families(openmetrics_exposition.generate_latest(m.registry).decode())
    else:
        parsed = text_string_to_metric_families(page)
        expected = text_string_to_metric_families(generate_latest(m.registry).decode())
    got, want = _samples(parsed), _samples(expected)
    assert got == want
    assert sum(name == "yuqing_risk_level" for name, _, _ in got) == len(brands)
    assert ("yuqing_risk_level", (("brand", 'say "hi"'), ("category", "privacy")), 2.0) in got
