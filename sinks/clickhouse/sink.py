"""`yuqing sink clickhouse`: Kafka topics -> ClickHouse tables, at-least-once.

Offsets are committed only after every row of a batch is stored, so a crash replays the
uncommitted batch; the writer's dedup makes the replay invisible in query results. While
ClickHouse is down the batch is kept and the partitions are paused (backpressure): the
consumer keeps polling only to stay in its group, and nothing is dropped.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from yuqing.config import Settings

from . import metrics
from .rows import RowError, alert_row, assessment_row, decode_json, dlq_row, post_row, sink_reject_row
from .writer import ClickHouseWriter, WriterStopped

log = logging.getLogger("yuqing.sinks.clickhouse")
GROUP_ID = "yuqing-sink-clickhouse"
TABLE_ORDER = ("posts", "risk_assessments", "alerts", "rejects")


def topic_tables(settings: Settings) -> dict[str, tuple[str, Callable[[dict], tuple]]]:
    """Which table and row builder each consumed topic maps to."""
    k = settings.kafka
    return {
        k.scored_topic: ("posts", post_row),
        k.assessments_topic: ("risk_assessments", assessment_row),
        k.alerts_topic: ("alerts", alert_row),
        k.dlq_topic: ("rejects", dlq_row),
    }


@dataclass
class SinkStats:
    batches: int = 0
    records: int = 0
    inserted: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class SinkOptions:
    # 5000: a fifth of the inserts (and of the parts ClickHouse merges) of 1000 - its CPU per
    # post fell ~40% in a measurement; a partial batch still goes after batch_interval_s
    batch_size: int = 5000
    batch_interval_s: float = 1.0
    fetch_min_bytes: int = 256 * 1024
    fetch_max_wait_ms: int = 200
    poll_timeout_s: float = 0.2
    lag_interval_s: float = 5.0
    group_id: str = GROUP_ID
    # stop after this many seconds without records and with nothing pending (tests, backfills)
    idle_exit_s: float | None = None
    # how long to wait at start for the topics' partitions before joining the group
    topic_wait_s: float = 30.0


class ClickHouseSink:
    def __init__(self, settings: Settings, options: SinkOptions = SinkOptions(),
                 stop_event: threading.Event | None = None, writer: ClickHouseWriter | None = None):
        if options.batch_size < 1 or options.batch_interval_s <= 0:
            raise ValueError("batch size must be >= 1 and batch interval > 0")
        self.settings = settings
        self.options = options
        self.stop_event = stop_event or threading.Event()
        self.writer = writer or ClickHouseWriter(settings.clickhouse, stop_event=self.stop_event)
        self.routes = topic_tables(settings)
        self.stats = SinkStats()
        self._consumer: KafkaConsumer | None = None
        self._stash: list = []  # records polled while paused (after a rebalance)

    def _make_consumer(self) -> KafkaConsumer:
        k = self.settings.kafka
        timeout_ms = int(k.request_timeout_s * 1000)
        consumer = KafkaConsumer(
            bootstrap_servers=k.bootstrap,
            group_id=self.options.group_id,
            client_id="yuqing-sink-clickhouse",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.options.batch_size,
            # a caught-up sink otherwise asks the broker for every few records (a fetch per
            # job batch); waiting for 256 KiB or 200 ms costs rows at most 0.2 s before an
            # insert that waits up to batch_interval_s anyway, and saves broker CPU
            fetch_min_bytes=self.options.fetch_min_bytes,
            fetch_max_wait_ms=self.options.fetch_max_wait_ms,
            request_timeout_ms=max(timeout_ms, 11000),
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
            max_poll_interval_ms=300000,
            bootstrap_timeout_ms=timeout_ms,
            metadata_max_age_ms=5000,
        )
        # Join the group only once the topics' partitions are known: a member that joins
        # before (a topic created a moment ago) can be assigned nothing and stay idle.
        self._await_partitions(consumer, self.options.topic_wait_s)
        consumer.subscribe(list(self.routes))
        return consumer

    def _await_partitions(self, consumer: KafkaConsumer, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        missing = list(self.routes)
        while missing and not self.stop_event.is_set():
            consumer.topics()  # refreshes the metadata
            missing = [t for t in missing if not consumer.partitions_for_topic(t)]
            if not missing or time.monotonic() >= deadline:
                break
            self.stop_event.wait(0.2)
        if missing:
            log.warning("no partitions known for %s after %.0f s; joining the group without waiting longer",
                        ", ".join(missing), timeout_s)

    # -- main loop ----------------------------------------------------------------
    def run(self) -> SinkStats:
        self.writer.connect()
        self._consumer = consumer = self._make_consumer()
        batch: list = []
        started = None
        last_record = time.monotonic()
        last_lag = 0.0
        try:
            while not self.stop_event.is_set():
                if self._stash:
                    batch.extend(self._stash)
                    self._stash.clear()
                room = max(1, self.options.batch_size - len(batch))
                polled = consumer.poll(timeout_ms=int(self.options.poll_timeout_s * 1000), max_records=room)
                for records in polled.values():
                    batch.extend(records)
                now = time.monotonic()
                if polled or not consumer.assignment():  # idle time counts once partitions are ours
                    last_record = now
                if batch and started is None:
                    started = now
                if batch and (len(batch) >= self.options.batch_size
                              or now - started >= self.options.batch_interval_s):
                    self.flush(batch)
                    batch, started = [], None
                if now - last_lag >= self.options.lag_interval_s:
                    self._update_lag()
                    last_lag = now
                if (self.options.idle_exit_s is not None and not batch
                        and now - last_record >= self.options.idle_exit_s):
                    break
            if batch:
                self.flush(batch)  # on stop: one more try; if ClickHouse is down it is replayed later
        except WriterStopped:
            log.warning("stopped while ClickHouse was unavailable; %d record(s) not committed, "
                        "they will be consumed again", len(batch))
        finally:
            self._update_lag()
            consumer.close(autocommit=False)
            self.writer.close()
        return self.stats

    def _keep_alive(self, seconds: float) -> None:
        """While retrying: stay in the group without taking new records (backpressure)."""
        consumer = self._consumer
        assigned = consumer.assignment()
        if assigned:
            consumer.pause(*assigned)
        polled = consumer.poll(timeout_ms=int(seconds * 1000))
        for records in polled.values():  # partitions newly assigned by a rebalance
            self._stash.extend(records)

    # -- one batch --------------------------------------------------------------------
    def convert(self, batch: list) -> tuple[dict[str, list[tuple]], dict[str, list]]:
        """Records -> rows per table; a record that does not fit becomes a reject row."""
        rows: dict[str, list[tuple]] = {t: [] for t in TABLE_ORDER}
        sources: dict[str, list] = {t: [] for t in TABLE_ORDER}
        for rec in batch:
            table, build = self.routes[rec.topic]
            raw = rec.value if rec.value is not None else b""
            try:
                row = build(decode_json(raw))
            except RowError as exc:
                table, row = "rejects", sink_reject_row(str(exc), raw, rec.topic, rec.partition, rec.offset)
                metrics.REJECTS.labels(rec.topic).inc()
                self.stats.rejected += 1
            rows[table].append(row)
            sources[table].append(rec)
        return rows, sources

    def flush(self, batch: list) -> None:
        t0 = time.monotonic()
        rows, sources = self.convert(batch)
        for table in TABLE_ORDER:
            if not rows[table]:
                continue
            report = self.writer.insert(table, rows[table], on_wait=self._keep_alive)
            self.stats.inserted[table] = self.stats.inserted.get(table, 0) + report.inserted
            self.stats.duplicates += report.duplicates
            if report.refused:
                bad = []
                for i, reason in report.refused:
                    rec = sources[table][i]
                    bad.append(sink_reject_row(reason, rec.value or b"", rec.topic, rec.partition, rec.offset))
                    metrics.REJECTS.labels(rec.topic).inc()
                self.stats.rejected += len(bad)
                more = self.writer.insert("rejects", bad, on_wait=self._keep_alive)
                if more.refused:  # cannot even store the reject: stop rather than lose it
                    raise RuntimeError(f"rejects table refused a row: {more.refused[0][1]}")
                self.stats.inserted["rejects"] = self.stats.inserted.get("rejects", 0) + more.inserted
        self._commit(batch)
        consumer = self._consumer
        paused = consumer.paused() if consumer else set()
        if paused:
            consumer.resume(*paused)
        self.stats.batches += 1
        self.stats.records += len(batch)
        metrics.BATCH_SECONDS.observe(time.monotonic() - t0)
        metrics.BATCH_RECORDS.observe(len(batch))

    def _commit(self, batch: list) -> None:
        offsets: dict[TopicPartition, int] = {}
        for rec in batch:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, -1), rec.offset + 1)
        try:
            self._consumer.commit(
                {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()},
                timeout_ms=int(self.settings.kafka.request_timeout_s * 1000),
            )
        except Exception as exc:  # rebalanced away: the new owner replays; dedup absorbs it
            log.warning("offset commit failed (%s); the batch will be replayed and deduplicated", exc)

    def _update_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            try:
                pos = consumer.position(tp, timeout_ms=1000)
            except Exception:  # position unknown yet
                continue
            if high is not None and pos is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - pos))
