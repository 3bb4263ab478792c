"""`yuqing sink clickhouse`: Kafka topics -> ClickHouse tables, at-least-once.

Offsets are committed only after every row of a batch is stored, so a crash replays the
uncommitted batch; the writer's dedup makes the replay invisible in query results. While
ClickHouse is down the batch is kept and the partitions are paused (backpressure): the
consumer keeps polling only to stay in its group, and nothing is dropped.

The consumer is librdkafka's (confluent-kafka): kafka-python parses record batches in
Python, ~31 us of CPU per record here, which was a third of the sink's CPU; librdkafka
takes ~5.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from core.config import Settings

from . import metrics
from .rows import RowError, alert_row, assessment_row, decode_json, dlq_row, post_row, sink_reject_row
from .writer import ClickHouseWriter, WriterStopped

log = logging.getLogger("yuqing.sinks.clickhouse")
GROUP_ID = "yuqing-sink-clickhouse"
TABLE_ORDER = ("posts", "risk_assessments", "alerts", "rejects")


class Record(NamedTuple):
    """One consumed Kafka record: what a batch keeps until its rows are stored."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


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
        self._consumer: Consumer | None = None
        self._stash: list[Record] = []  # records polled while paused (after a rebalance)
        self._assigned: set[tuple[str, int]] = set()
        self._paused: set[tuple[str, int]] = set()
        self._last_error: tuple[str, float] = ("", 0.0)

    def _make_consumer(self) -> Consumer:
        k = self.settings.kafka
        timeout_ms = int(k.request_timeout_s * 1000)
        consumer = Consumer({
            "bootstrap.servers": k.bootstrap,
            **k.librdkafka_options(),  # listener auth (SASL/TLS), if the settings ask for it
            "group.id": self.options.group_id,
            "client.id": "yuqing-sink-clickhouse",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # a caught-up sink otherwise asks the broker for every few records (a fetch per
            # job batch); waiting for 256 KiB or 200 ms costs rows at most 0.2 s before an
            # insert that waits up to batch_interval_s anyway, and saves broker CPU
            "fetch.min.bytes": self.options.fetch_min_bytes,
            "fetch.wait.max.ms": self.options.fetch_max_wait_ms,
            # librdkafka prefetches up to 64 MiB by default; 16 MiB still holds three batches
            "queued.max.messages.kbytes": 16384,
            "socket.timeout.ms": max(timeout_ms, 11000),
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 3000,
            "max.poll.interval.ms": 300000,
            "topic.metadata.refresh.interval.ms": 5000,
            "logger": log,
        })
        # Join the group only once the topics' partitions are known: a member that joins
        # before (a topic created a moment ago) can be assigned nothing and stay idle.
        self._await_partitions(consumer, self.options.topic_wait_s)
        consumer.subscribe(list(self.routes), on_assign=self._on_assign, on_revoke=self._on_revoke)
        return consumer

    def _on_assign(self, consumer: Consumer, partitions: list) -> None:
        self._assigned = {(tp.topic, tp.partition) for tp in partitions}
        self._paused = set()  # a new assignment starts unpaused

    def _on_revoke(self, consumer: Consumer, partitions: list) -> None:
        self._assigned = set()
        self._paused = set()

    def _await_partitions(self, consumer: Consumer, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        missing = list(self.routes)
        timeout = self.settings.kafka.request_timeout_s
        while missing and not self.stop_event.is_set():
            try:
                topics = consumer.list_topics(timeout=timeout).topics
            except KafkaException as exc:
                log.warning("cannot read topic metadata yet (%s)", exc)
                topics = {}
            missing = [t for t in missing if t not in topics or topics[t].error is not None
                       or not topics[t].partitions]
            if not missing or time.monotonic() >= deadline:
                break
            self.stop_event.wait(0.2)
        if missing:
            log.warning("no partitions known for %s after %.0f s; joining the group without waiting longer",
                        ", ".join(missing), timeout_s)

    def _poll(self, consumer: Consumer, timeout_s: float, max_records: int) -> list[Record]:
        records = []
        for msg in consumer.consume(num_messages=max_records, timeout=timeout_s):
            error = msg.error()
            if error is None:
                records.append(Record(msg.topic(), msg.partition(), msg.offset(), msg.value()))
            elif error.code() != KafkaError._PARTITION_EOF:
                # librdkafka reconnects and retries by itself; this only says what happened,
                # once per distinct error and then every 30 s (a broker down repeats it per poll)
                now = time.monotonic()
                if str(error) != self._last_error[0] or now - self._last_error[1] >= 30.0:
                    log.warning("kafka: %s", error)
                    self._last_error = (str(error), now)
        return records

    # -- main loop ----------------------------------------------------------------
    def run(self) -> SinkStats:
        self.writer.connect()
        self._consumer = consumer = self._make_consumer()
        batch: list[Record] = []
        started = None
        last_record = time.monotonic()
        last_lag = 0.0
        try:
            while not self.stop_event.is_set():
                if self._stash:
                    batch.extend(self._stash)
                    self._stash.clear()
                room = max(1, self.options.batch_size - len(batch))
                polled = self._poll(consumer, self.options.poll_timeout_s, room)
                batch.extend(polled)
                now = time.monotonic()
                if polled or not self._assigned:  # idle time counts once partitions are ours
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
            consumer.close()  # auto-commit is off: closing commits nothing
            self.writer.close()
        return self.stats

    def _keep_alive(self, seconds: float) -> None:
        """While retrying: stay in the group without taking new records (backpressure)."""
        consumer = self._consumer
        unpaused = self._assigned - self._paused
        if unpaused:
            consumer.pause([TopicPartition(t, p) for t, p in unpaused])
            self._paused |= unpaused
        # partitions newly assigned by a rebalance are not paused yet: keep what they gave
        self._stash.extend(self._poll(consumer, seconds, self.options.batch_size))

    # -- one batch --------------------------------------------------------------------
    def convert(self, batch: list[Record]) -> tuple[dict[str, list[tuple]], dict[str, list[Record]]]:
        """Records -> rows per table; a record that does not fit becomes a reject row."""
        rows: dict[str, list[tuple]] = {t: [] for t in TABLE_ORDER}
        sources: dict[str, list[Record]] = {t: [] for t in TABLE_ORDER}
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

    def flush(self, batch: list[Record]) -> None:
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
        if self._paused and self._consumer is not None:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._paused])
            self._paused = set()
        self.stats.batches += 1
        self.stats.records += len(batch)
        metrics.BATCH_SECONDS.observe(time.monotonic() - t0)
        metrics.BATCH_RECORDS.observe(len(batch))

    def _commit(self, batch: list[Record]) -> None:
        offsets: dict[tuple[str, int], int] = {}
        for rec in batch:
            key = (rec.topic, rec.partition)
            offsets[key] = max(offsets.get(key, -1), rec.offset + 1)
        try:
            # synchronous; bounded by socket.timeout.ms (request_timeout_s, at least 11 s)
            self._consumer.commit(offsets=[TopicPartition(t, p, off) for (t, p), off in offsets.items()],
                                  asynchronous=False)
        except KafkaException as exc:  # rebalanced away: the new owner replays; dedup absorbs it
            log.warning("offset commit failed (%s); the batch will be replayed and deduplicated", exc)

    def _update_lag(self) -> None:
        consumer = self._consumer
        if consumer is None or not self._assigned:
            return
        try:
            positions = consumer.position([TopicPartition(t, p) for t, p in sorted(self._assigned)])
        except KafkaException:  # no position yet
            return
        for tp in positions:
            if tp.offset < 0:  # nothing consumed yet on this partition
                continue
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high is not None and high >= 0:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))
