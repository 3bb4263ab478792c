"""ClickHouseWriter: insert rows by table, retrying while the server is unreachable.

Exactly-once in query results comes from three layers:
* every table is a ReplacingMergeTree on its natural key (FINAL / argMax at read time);
* `posts` feeds a materialized view, which counts every inserted block and would count a
  replayed post twice, so posts are inserted only if their id is not stored yet (and
  once per batch). A Kafka key = post id keeps one id on one partition, so one sink
  instance owns it at a time;
* failed inserts are retried with the same rows; on servers with replicated tables,
  insert_deduplicate also drops an identical retried block.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Callable, Sequence

from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import NetworkError, ServerException, SocketTimeoutError

from core.config import ClickHouseSettings

from . import metrics
from .client import connect, error_text, server_version
from .rows import COLUMNS, PARTITION_COLUMN

log = logging.getLogger("yuqing.sinks.clickhouse")

# Server error codes worth retrying: overload, timeouts, network, tables not ready.
RETRYABLE_CODES = {
    3, 23, 32, 60, 81, 159, 202, 203, 209, 210, 241, 242, 252, 285, 319, 394, 425, 999,
}
MAX_PARTITIONS_PER_INSERT = 90  # modern servers refuse blocks spanning > 100 partitions
_CHINA = timezone(timedelta(hours=8))  # partitions are Asia/Shanghai days (no DST)
EXISTS_CHUNK = 2000  # ids per existence query (keeps the query below max_query_size)


class WriterStopped(Exception):
    """Retrying was abandoned because stop was requested; nothing was acknowledged."""


class RetriesExhausted(Exception):
    """max_attempts failed attempts in a row; the last error is the cause."""


@dataclass
class InsertReport:
    inserted: int = 0
    duplicates: int = 0
    # (row index in the caller's list, server's reason) for rows the server refused
    refused: list[tuple[int, str]] = field(default_factory=list)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ServerException):
        return exc.code in RETRYABLE_CODES
    return isinstance(exc, (NetworkError, SocketTimeoutError, EOFError, OSError, ConnectionError, TimeoutError))


def _reason(exc: BaseException) -> str:
    return f"clickhouse refused the row: {error_text(exc)}"


class ClickHouseWriter:
    """Insert rows into Yuqing's tables; safe to call again with the same rows."""

    def __init__(
        self,
        ch: ClickHouseSettings,
        *,
        max_attempts: int | None = None,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        stop_event: threading.Event | None = None,
    ):
        self.ch = ch
        self.database = ch.database
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stop_event = stop_event or threading.Event()
        self._client = None
        self.version: tuple[int, int, int] | None = None

    # -- connection -----------------------------------------------------------------
    def connect(self) -> "ClickHouseWriter":
        """Open the connection now (one attempt) and check that the tables exist."""
        client = self._get_client()
        self.version = server_version(client)
        have = {r[0] for r in client.execute(
            "SELECT name FROM system.tables WHERE database = %(db)s", {"db": self.database})}
        missing = sorted(set(COLUMNS) - have)
        if missing:
            raise RuntimeError(
                f"ClickHouse database {self.database!r} lacks table(s) {', '.join(missing)}: run `yuqing db migrate`")
        metrics.CLICKHOUSE_UP.set(1)
        return self

    def _get_client(self):
        if self._client is None:
            self._client = connect(self.ch)
        return self._client

    def _reset(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:  # already broken; a new client follows
                pass
        self._client = None

    def close(self) -> None:
        self._reset()

    # -- retries ------------------------------------------------------------------
    def _with_retries(self, what: str, table: str, fn: Callable, on_wait: Callable[[float], None] | None):
        delay = self.backoff_initial_s
        attempt = 0
        while True:
            attempt += 1
            try:
                out = fn(self._get_client())
                metrics.CLICKHOUSE_UP.set(1)
                return out
            except Exception as exc:
                self._reset()
                if not _retryable(exc):
                    raise
                metrics.CLICKHOUSE_UP.set(0)
                metrics.INSERT_ERRORS.labels(table, "retryable").inc()
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    raise RetriesExhausted(f"{what}: {attempt} attempts failed: {exc}") from exc
                log.warning("%s failed (%s: %s); retry %d in %.1fs", what, type(exc).__name__,
                            error_text(exc), attempt, delay)
                deadline = time.monotonic() + delay
                while (left := deadline - time.monotonic()) > 0:
                    if self.stop_event.is_set():
                        raise WriterStopped(what) from exc
                    if on_wait:
                        on_wait(min(left, 0.5))  # the sink keeps its Kafka session alive here
                    else:
                        self.stop_event.wait(min(left, 0.5))
                if self.stop_event.is_set():
                    raise WriterStopped(what) from exc
                delay = min(delay * 2, self.backoff_max_s)

    # -- inserts ------------------------------------------------------------------
    def existing_post_ids(self, ids: Sequence[str], on_wait=None) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), EXISTS_CHUNK):
            chunk = list(ids[i:i + EXISTS_CHUNK])
            # the ids go as an external table (a native column), not as an escaped IN literal:
            # a quarter of the client CPU, and nothing for the server to parse
            wanted = [{"id": pid} for pid in chunk]
            rows = self._with_retries(
                "post id lookup", "posts",
                lambda c: c.execute(f"SELECT id FROM {self.database}.posts WHERE id IN wanted_ids",
                                    external_tables=[{"name": "wanted_ids", "structure": [("id", "String")],
                                                      "data": wanted}]),
                on_wait,
            )
            found.update(r[0] for r in rows)
        return found

    def insert(self, table: str, rows: Sequence[tuple], on_wait: Callable[[float], None] | None = None) -> InsertReport:
        """Insert rows (tuples in rows.COLUMNS[table] order), retrying transient failures.

        Rows the server refuses for their content are isolated by bisection and returned
        in `refused`, so one bad row never blocks the rest. Raises WriterStopped if stop is
        requested while waiting, RetriesExhausted after max_attempts failures.
        """
        if table not in COLUMNS:
            raise ValueError(f"unknown table {table!r} (known: {', '.join(COLUMNS)})")
        report = InsertReport()
        indices = list(range(len(rows)))
        if table == "posts":
            indices = self._new_posts(rows, indices, report, on_wait)
        if not indices:
            return report
        columns = COLUMNS[table]
        query = f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES"
        part_pos = columns.index(PARTITION_COLUMN[table])
        for chunk in _partition_chunks(rows, indices, part_pos):
            self._insert_isolating(table, query, rows, chunk, report, on_wait)
        return report

    def _new_posts(self, rows, indices, report: InsertReport, on_wait) -> list[int]:
        first: dict[str, int] = {}
        for i in indices:
            first.setdefault(rows[i][0], i)
        existing = self.existing_post_ids(list(first), on_wait)
        keep = [i for pid, i in first.items() if pid not in existing]
        report.duplicates += len(indices) - len(keep)
        if report.duplicates:
            metrics.ROWS_DUPLICATE.labels("posts").inc(report.duplicates)
        return sorted(keep)

    def _insert_isolating(self, table, query, rows, idx: list[int], report: InsertReport, on_wait) -> None:
        data = [rows[i] for i in idx]
        try:
            self._with_retries(f"insert into {table}", table, lambda c: c.execute(query, data), on_wait)
        except (WriterStopped, RetriesExhausted):
            raise
        except (DriverError, ValueError, TypeError, OverflowError, AttributeError, KeyError, IndexError) as exc:
            metrics.INSERT_ERRORS.labels(table, "rejected").inc()
            if len(idx) == 1:
                report.refused.append((idx[0], _reason(exc)))
                return
            mid = len(idx) // 2
            self._insert_isolating(table, query, rows, idx[:mid], report, on_wait)
            self._insert_isolating(table, query, rows, idx[mid:], report, on_wait)
            return
        report.inserted += len(data)
        metrics.ROWS_INSERTED.labels(table).inc(len(data))

    def record_action(self, alert_id: str, action: str, actor: str, at=None, note: str = "") -> None:
        """Append one response-clock step (acked/resolved/…) for an alert."""
        from .rows import action_row

        self.insert("alert_actions", [action_row(alert_id, action, actor, at, note)])


def _partition_chunks(rows, indices: list[int], part_pos: int) -> list[list[int]]:
    """Split so that no insert block spans more than MAX_PARTITIONS_PER_INSERT days."""
    days = {}
    for i in indices:
        value = rows[i][part_pos]
        day = value.astimezone(_CHINA).date() if value is not None else None
        days.setdefault(day, []).append(i)
    if len(days) <= MAX_PARTITIONS_PER_INSERT:
        return [indices]
    ordered = [days[d] for d in sorted(days, key=lambda d: (d is None, d))]
    return [sum(ordered[k:k + MAX_PARTITIONS_PER_INSERT], []) for k in range(0, len(ordered), MAX_PARTITIONS_PER_INSERT)]
