"""Prometheus metrics for crawlers and the report server.

Labels are bounded: the source name (from crawl.yaml or "report") and a status label
(an HTTP code, "timeout", "connection", "robots", "parse", "produce", ...); never post ids.
Each process gets its own registry so tests can build several without clashes.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.fetched = Counter("yuqing_crawler_fetched_total", "Items a source found", ["source"], registry=r)
        self.produced = Counter("yuqing_crawler_produced_total", "Posts acknowledged by Kafka (posts.raw)",
                                ["source"], registry=r)
        self.rejected = Counter("yuqing_crawler_rejected_total", "Items sent to the dead-letter topic",
                                ["source"], registry=r)
        self.duplicates = Counter("yuqing_crawler_duplicates_total", "Posts dropped as already sent",
                                  ["source", "by"], registry=r)
        self.requests = Counter("yuqing_crawler_requests_total", "HTTP attempts by answer status",
                                ["source", "status"], registry=r)
        self.errors = Counter("yuqing_crawler_errors_total", "Failed polls and deliveries by status",
                              ["source", "status"], registry=r)
        self.produce_failures = Counter("yuqing_crawler_produce_failures_total",
                                        "Kafka sends that failed (retried on the next poll)", ["source"], registry=r)
        self.last_success = Gauge("yuqing_crawler_last_success_timestamp_seconds",
                                  "Unix time of the last poll that completed", ["source"], registry=r)
        self.consecutive_failures = Gauge("yuqing_crawler_consecutive_failures",
                                          "Polls of a source that failed in a row (0 after a success)",
                                          ["source"], registry=r)
        self.last_error = Gauge("yuqing_crawler_last_error_timestamp_seconds",
                                "Unix time of the source's last failed poll", ["source"], registry=r)
        self.last_error_status = Gauge("yuqing_crawler_last_error_info",
                                       "1 for the status of the source's last failed poll", ["source", "status"],
                                       registry=r)
        self.lag = Gauge("yuqing_crawler_lag_seconds", "Now minus the newest published_at delivered",
                         ["source"], registry=r)
        self._newest: dict[str, float] = {}
        self._last_status: dict[str, str] = {}
        self._status_lock = threading.Lock()

    def saw_published(self, source: str, published: datetime) -> None:
        """Track the newest event time per source; lag is computed at scrape time."""
        at = published.timestamp()
        if at > self._newest.get(source, float("-inf")):
            first = source not in self._newest
            self._newest[source] = at
            if first:
                self.lag.labels(source).set_function(lambda s=source: time.time() - self._newest[s])

    def success(self, source: str) -> None:
        self.last_success.labels(source).set(time.time())
        self.consecutive_failures.labels(source).set(0)

    def failed(self, source: str, status: str, consecutive: int) -> None:
        """A failed poll: the run of failures, when, and the status label (bounded) of the last one."""
        self.consecutive_failures.labels(source).set(consecutive)
        self.last_error.labels(source).set(time.time())
        with self._status_lock:
            previous = self._last_status.get(source)
            if previous is not None and previous != status:
                self.last_error_status.remove(source, previous)
            self._last_status[source] = status
        self.last_error_status.labels(source, status).set(1)
