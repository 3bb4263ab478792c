"""Every Prometheus metric Yuqing's job, sinks and notifier export, defined in one place.

Names start with `yuqing_`. Label values come from small closed sets (platforms, DLQ
reason classes, stages) or from the watchlist (brands, categories), never from posts:
one series per post id or text would blow up Prometheus. The crawler metrics are defined
by the ingest helper; their names are listed in CRAWLER_METRICS so that the alert rules
and this module agree on them.

Use `default_metrics()` in a process (it registers on prometheus_client's default
registry once) and `Metrics(CollectorRegistry())` in tests.
"""
from __future__ import annotations

import gzip
import os
import re
import socket
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted
from prometheus_client.utils import floatToGoString

PREFIX = "yuqing_"

#: Risk levels as the numbers `yuqing_risk_level` takes; alert rules compare against these.
LEVEL_VALUES: dict[str, int] = {"low": 0, "medium": 1, "high": 2}

#: Platforms that get their own label value; anything else counts as `other`.
KNOWN_PLATFORMS = frozenset(
    (
        "weibo", "douyin", "xiaohongshu", "zhihu", "tieba", "bilibili", "news", "forum",
        "appstore", "wechat", "overseas", "internal", "kuaishou", "toutiao",
    )
)

#: Pipeline stages that write dead letters (docs/internal-formats.md, posts.dlq).
DLQ_STAGES = frozenset(("ingest", "job", "sink"))

#: The bounded set of DLQ reason classes. Raw reasons carry values from the post
#: ("missing required field(s): text") and must never become label values.
DLQ_REASON_CLASSES = (
    "invalid_utf8",
    "invalid_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "bad_timestamp",
    "bad_value",
    "too_large",
    "duplicate",
    "unmatched_schema",
    "other",
)

# First matching pattern wins; patterns follow the wording of core.post's reasons.
_REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cls)
    for pattern, cls in (
        (r"utf-?8|decode", "invalid_utf8"),
        (r"invalid json|json", "invalid_json"),
        (r"not a json object", "not_object"),
        (r"missing required|missing field|lacks? .*field", "missing_field"),
        (r"timestamp|rfc ?3339|utc offset", "bad_timestamp"),
        (r"longer than|too (large|long)|exceeds", "too_large"),
        (r"expected (a|an) (string|object|boolean|integer|non-negative integer|number)", "wrong_type"),
        (r"must not be negative|expected one of|invalid value|out of range", "bad_value"),
        (r"duplicate", "duplicate"),
        (r"schema", "unmatched_schema"),
    )
)

#: The five per-(brand, category) risk gauges, in the order RiskSeries keeps their values.
RISK_GAUGES: tuple[tuple[str, str], ...] = (
    ("yuqing_risk_score", "Latest combined risk score (0..1) per brand and category."),
    ("yuqing_risk_level", "Latest risk level per brand and category: 0 low, 1 medium, 2 high."),
    ("yuqing_risk_influence", "Latest influence dimension (0..1)."),
    ("yuqing_risk_severity", "Latest severity dimension (0..1)."),
    ("yuqing_risk_volatility", "Latest volatility dimension (0..1)."),
)

#: How long a low key's risk series stay after its last assessment (seconds of processing
#: time); YUQING_JOB_METRICS_LOW_KEY_TTL_S overrides it, 0 keeps them for ever.
DEFAULT_LOW_KEY_TTL_S = 1800.0
LOW_KEY_TTL_ENV = "YUQING_JOB_METRICS_LOW_KEY_TTL_S"

#: Crawler metrics, defined in ingest/metrics.py; listed here so rules and dashboards stay in
#: step (tests/sinks/test_metrics.py checks this table against the real registry).
CRAWLER_METRICS = {
    "yuqing_crawler_fetched_total": ("source",),
    "yuqing_crawler_requests_total": ("source", "status"),
    "yuqing_crawler_produced_total": ("source",),
    "yuqing_crawler_rejected_total": ("source",),
    "yuqing_crawler_errors_total": ("source", "status"),
    "yuqing_crawler_last_success_timestamp_seconds": ("source",),
    "yuqing_crawler_lag_seconds": ("source",),
}


def classify_dlq_reason(reason: str | None) -> str:
    """Map a free-text DLQ reason to one of DLQ_REASON_CLASSES."""
    if reason in DLQ_REASON_CLASSES:
        return reason  # already a class
    text = reason or ""
    # "not a JSON object" must not be caught by the broader json pattern first.
    if re.search(r"not a json object", text, re.IGNORECASE):
        return "not_object"
    for pattern, cls in _REASON_PATTERNS:
        if pattern.search(text):
            return cls
    return "other"


def platform_label(platform: str | None) -> str:
    """The platform label value: known platforms as-is, everything else `other`."""
    value = (platform or "").strip().lower()
    return value if value in KNOWN_PLATFORMS else "other"


def stage_label(stage: str | None) -> str:
    return stage if stage in DLQ_STAGES else "other"


def low_key_ttl_s_from_env(environ: dict[str, str] | None = None) -> float:
    """The low-key TTL from YUQING_JOB_METRICS_LOW_KEY_TTL_S (default 1800 s; 0: no expiry)."""
    raw = (os.environ if environ is None else environ).get(LOW_KEY_TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_LOW_KEY_TTL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{LOW_KEY_TTL_ENV}: expected seconds >= 0 (0: keep low keys), got {raw!r}")
    return value


class RiskSeries:
    """The per-(brand, category) risk gauges, with a bounded number of series.

    Why: at 10,000 brands x 8 categories one series set per key made /metrics 400,000 lines
    and several seconds per scrape (over Prometheus' timeout: the job showed as down). A key
    at medium or high keeps its series for as long as it stays there (the alert rules take
    `max by (brand)` over them); a key assessed low has level 0, so the rules resolve at
    once, and its series go after `low_ttl_s` without another assessment. Values live in a
    dict, written under one lock (prometheus_client's labelled Gauges cost ~60 us per
    assessment for the five); the exporter (`start_exporter`) writes the page's risk lines
    from text formatted at assessment time (`exposition`), ~10 us per line less than
    prometheus_client's per-sample formatting, which a busy scorer thread slows further."""

    def __init__(self, registry: CollectorRegistry, low_ttl_s: float = DEFAULT_LOW_KEY_TTL_S,
                 clock: Callable[[], float] = time.monotonic):
        if low_ttl_s < 0:
            raise ValueError(f"low_ttl_s: expected seconds >= 0, got {low_ttl_s}")
        self.low_ttl_s = low_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], tuple[float, float, float, float, float]] = {}
        # key -> (its escaped label pairs, its five values as exposition text)
        self._text: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
        # low keys, oldest assessment first: expiry pops from the front
        self._low_since: OrderedDict[tuple[str, str], float] = OrderedDict()
        registry.register(self)

    def set(self, brand: str, category: str, *, level: int, risk_score: float, influence: float,
            severity: float, volatility: float) -> None:
        key = (brand, category)
        values = (float(risk_score), float(level), float(influence), float(severity), float(volatility))
        texts = tuple(floatToGoString(v) for v in values)
        now = self._clock()
        with self._lock:
            self._values[key] = values
            old = self._text.get(key)
            self._text[key] = (old[0] if old else f'brand="{_escape(brand)}",category="{_escape(category)}"', texts)
            if level == 0:
                self._low_since[key] = now
                self._low_since.move_to_end(key)
            else:
                self._low_since.pop(key, None)
            self._expire(now)

    def _expire(self, now: float) -> None:
        if not self.low_ttl_s:
            return
        cutoff = now - self.low_ttl_s
        low = self._low_since
        while low:
            key, since = next(iter(low.items()))
            if since > cutoff:
                break
            low.popitem(last=False)
            self._values.pop(key, None)
            self._text.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._values)

    def describe(self):
        return [GaugeMetricFamily(name, doc, labels=("brand", "category")) for name, doc in RISK_GAUGES]

    def exposition(self) -> str:
        """The five gauges' lines (HELP, TYPE, one line per key), as both the Prometheus
        text format and OpenMetrics write a gauge."""
        with self._lock:
            self._expire(self._clock())
            entries = list(self._text.values())
        parts = []
        for position, (name, doc) in enumerate(RISK_GAUGES):
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
            parts.extend([f"{name}{{{labels}}} {texts[position]}\n" for labels, texts in entries])
        return "".join(parts)

    def collect(self):
        pending = getattr(_rendered_apart, "series", None)
        if pending is not None:  # the exporter writes these lines itself (start_exporter)
            pending.append(self)
            return []
        with self._lock:
            self._expire(self._clock())
            items = list(self._values.items())
        families = self.describe()
        for labels, values in items:
            for family, value in zip(families, values):
                family.add_metric(labels, value)
        return families


def _escape(label_value: str) -> str:
    return label_value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


_rendered_apart = threading.local()


@contextmanager
def _risk_series_apart() -> Iterator[list[RiskSeries]]:
    """While the block runs, RiskSeries collected on this thread yield no samples and
    list themselves instead, for the exporter to append their pre-formatted lines."""
    _rendered_apart.series = []
    try:
        yield _rendered_apart.series
    finally:
        del _rendered_apart.series


def level_value(level: str) -> int:
    """`low`/`medium`/`high` -> 0/1/2; a clear error for anything else."""
    try:
        return LEVEL_VALUES[level]
    except KeyError:
        raise ValueError(f"unknown risk level {level!r}: expected low, medium or high") from None


class Metrics:
    """The metric objects, registered on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None, low_key_ttl_s: float = DEFAULT_LOW_KEY_TTL_S,
                 clock: Callable[[], float] = time.monotonic):
        r = REGISTRY if registry is None else registry
        self.registry = r
        # --- job -------------------------------------------------------------------
        self.posts_processed = Counter(
            "yuqing_posts_processed_total", "Valid posts the scoring job processed, by platform.",
            ("platform",), registry=r)
        self.posts_matched = Counter(
            "yuqing_posts_matched_total", "Posts that matched a watchlist brand, by brand.",
            ("brand",), registry=r)
        self.assessments = Counter(
            "yuqing_assessments_total", "Risk assessments emitted, by level.",
            ("level",), registry=r)
        self.alerts_emitted = Counter(
            "yuqing_alerts_emitted_total", "Alert events written to the alerts topic.",
            ("event", "level"), registry=r)
        self.risk = RiskSeries(r, low_key_ttl_s, clock)
        self.pipeline_lag = Gauge(
            "yuqing_pipeline_lag_seconds",
            "Event-time lag: wall clock minus the newest event time a stage has processed.",
            ("stage",), registry=r)
        # --- dead letters and sinks -------------------------------------------------
        self.dlq_records = Counter(
            "yuqing_dlq_records_total", "Records sent to the dead-letter topic, by stage and reason class.",
            ("stage", "reason"), registry=r)
        self.sink_writes = Counter(
            "yuqing_sink_rows_written_total", "Rows written by a sink.", ("sink", "table"), registry=r)
        self.sink_errors = Counter(
            "yuqing_sink_errors_total", "Sink write failures, by sink and error kind.",
            ("sink", "kind"), registry=r)
        # --- notify -----------------------------------------------------------------
        self.notify_received = Counter(
            "yuqing_notify_received_total", "Alerts the notifier received, by path (alertmanager, kafka).",
            ("path",), registry=r)
        self.notify_deduplicated = Counter(
            "yuqing_notify_deduplicated_total", "Alerts suppressed because the other path already paged.",
            ("path",), registry=r)
        self.notify_sent = Counter(
            "yuqing_notify_sent_total", "Messages delivered to a channel.", ("channel",), registry=r)
        self.notify_failures = Counter(
            "yuqing_notify_delivery_failures_total", "Failed delivery attempts to a channel.",
            ("channel",), registry=r)
        self.notify_dropped = Counter(
            "yuqing_notify_dropped_total", "Messages dropped because the retry queue was full.",
            ("channel",), registry=r)
        self.notify_retry_queue = Gauge(
            "yuqing_notify_retry_queue_size", "Messages waiting in the retry queue.", registry=r)

    # Convenience writers used by the job and sinks -----------------------------------

    def set_risk(self, brand: str, category: str, *, level: str, risk_score: float,
                 influence: float, severity: float, volatility: float) -> None:
        """Publish one assessment (CONTRACTS §3) as the five per-(brand, category) gauges."""
        self.risk.set(brand, category, level=level_value(level), risk_score=risk_score, influence=influence,
                      severity=severity, volatility=volatility)

    def set_assessment(self, assessment: dict) -> None:
        """`set_risk` from an assessment dict as the job emits it."""
        self.set_risk(
            str(assessment["brand"]), str(assessment["category"]), level=str(assessment["level"]),
            risk_score=float(assessment["risk_score"]), influence=float(assessment["influence"]),
            severity=float(assessment["severity"]), volatility=float(assessment["volatility"]))

    def count_processed(self, platform: str | None, n: int = 1) -> None:
        self.posts_processed.labels(platform_label(platform)).inc(n)

    def count_dlq(self, stage: str | None, reason: str | None, n: int = 1) -> None:
        self.dlq_records.labels(stage_label(stage), classify_dlq_reason(reason)).inc(n)


_default: Metrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> Metrics:
    """The process-wide Metrics on the default registry (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default


@dataclass
class Exporter:
    """A running /metrics HTTP server; `close()` stops it and frees the port."""

    server: object
    thread: threading.Thread
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_exporter(port: int, host: str = "127.0.0.1",
                   registry: CollectorRegistry | None = None) -> Exporter:
    """Serve `registry` (default: the process registry) on http://host:port/metrics.

    Port 0 picks a free port; the chosen one is in `Exporter.port`.
    """
    registry = REGISTRY if registry is None else registry

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = make_server(host, port, _metrics_app(registry), Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"metrics-exporter-{port}", daemon=True)
    thread.start()
    return Exporter(server=server, thread=thread, port=server.server_address[1])


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape on stderr is noise
        pass


def _metrics_app(registry: CollectorRegistry):
    """prometheus_client's WSGI app, except that a plain GET writes RiskSeries' lines from
    their cached text (RiskSeries.exposition) instead of formatting each sample."""
    standard = make_wsgi_app(registry)

    def app(environ, start_response):
        params = parse_qs(environ.get("QUERY_STRING", ""))
        if environ["REQUEST_METHOD"] != "GET" or "name[]" in params or environ.get("PATH_INFO") == "/favicon.ico":
            return standard(environ, start_response)
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT"))
        with _risk_series_apart() as apart:
            output = encoder(registry)
        if apart:
            risk = "".join(series.exposition() for series in apart).encode("utf-8")
            eof = b"# EOF\n"  # OpenMetrics' last line
            output = output[:-len(eof)] + risk + eof if output.endswith(eof) else output + risk
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING")):
            output = gzip.compress(output)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [output]

    return app


class JobMetricsSensor:
    """The scoring job's sensor (scoring.sensors): Prometheus metrics on a registry of its
    own per worker role, served from the first free port of port .. port+7 (a second
    subtask of the same role on one host takes the next), or not served when port is 0.
    Low keys' risk series expire after YUQING_JOB_METRICS_LOW_KEY_TTL_S (RiskSeries)."""

    PORTS_TRIED = 8

    def __init__(self, role: str, host: str = "127.0.0.1", port: int = 0, low_key_ttl_s: float | None = None):
        self.role = role
        ttl = low_key_ttl_s if low_key_ttl_s is not None else low_key_ttl_s_from_env()
        self.metrics = Metrics(registry=CollectorRegistry(), low_key_ttl_s=ttl)
        self.clamped = Counter(
            "yuqing_job_event_time_clamped", "Records stamped later than the job's clock + max_ahead_s, "
            "whose event time was clamped to that bound", registry=self.metrics.registry)
        self.exporter: Exporter | None = None
        for candidate in range(port, port + self.PORTS_TRIED) if port else ():
            try:
                self.exporter = start_exporter(candidate, host, registry=self.metrics.registry)
                break
            except OSError:
                continue

    @staticmethod
    def check() -> None:
        """Its environment settings, checked when the job is built (scoring.sensors.check_sensor)."""
        low_key_ttl_s_from_env()

    def on_batch(self, counts) -> None:
        for platform, n in counts.by_platform.items():
            self.metrics.count_processed(platform, n)
        for brand, n in counts.by_brand.items():
            self.metrics.posts_matched.labels(brand).inc(n)
        for reason in counts.rejected_reasons:
            self.metrics.count_dlq("job", reason)
        if counts.lag_s is not None:
            self.metrics.pipeline_lag.labels("job").set(counts.lag_s)

    def on_event_time_clamped(self, n: int) -> None:
        self.clamped.inc(n)

    def on_assessment(self, record: dict) -> None:
        self.metrics.set_assessment(record)
        self.metrics.assessments.labels(record["level"]).inc()

    def on_alert(self, event: str, level: str) -> None:
        self.metrics.alerts_emitted.labels(event, level).inc()
