"""Prometheus metrics of the ClickHouse writer and sink (default registry)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS_INSERTED = Counter(
    "yuqing_clickhouse_rows_inserted", "Rows written to ClickHouse", ["table"]
)
ROWS_DUPLICATE = Counter(
    "yuqing_clickhouse_rows_duplicate",
    "Rows not inserted because their key was already stored or repeated in the batch",
    ["table"],
)
INSERT_ERRORS = Counter(
    "yuqing_clickhouse_insert_errors",
    "Failed insert attempts (kind=retryable: will retry; kind=rejected: rows went to rejects)",
    ["table", "kind"],
)
REJECTS = Counter("yuqing_clickhouse_sink_rejects", "Records stored in the rejects table", ["topic"])
BATCH_SECONDS = Histogram(
    "yuqing_clickhouse_batch_seconds",
    "Time to store one sink batch, retries included",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
BATCH_RECORDS = Histogram(
    "yuqing_clickhouse_batch_records", "Kafka records per sink batch",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 20000),
)
CONSUMER_LAG = Gauge(
    "yuqing_clickhouse_consumer_lag", "Records behind the end of the partition", ["topic", "partition"]
)
CLICKHOUSE_UP = Gauge("yuqing_clickhouse_up", "1 if the last ClickHouse call succeeded")
