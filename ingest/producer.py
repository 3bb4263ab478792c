"""Kafka delivery for posts and dead letters (docs/internal-formats.md).

Idempotent, acks=all; key = post id (one post, one partition), record timestamp =
published_at in epoch ms (the Flink job's event time). Every blocking call has a
timeout. `flush()` waits for every send and raises DeliveryError if any failed, so the
caller does not advance its cursor past posts that Kafka never acknowledged.
"""
from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaProducer
from kafka.errors import BrokerResponseError, KafkaError

from core.post import Post


class DeliveryError(RuntimeError):
    """Kafka did not take some records; `failed` of `total` are named in the message.

    `refused` lists the records the broker will never take (too large, a timestamp it
    refuses, a value the client cannot encode) as (kind, key, value, label, reason): sending
    them again cannot help, so the caller dead-letters them and moves on. `transient`
    counts the failures worth retrying (broker down, timeouts).
    """

    def __init__(self, message: str, failed: int = 0, total: int = 0,
                 refused: list[tuple[str, bytes | None, bytes, str, str]] | None = None, transient: int | None = None):
        super().__init__(message)
        self.failed = failed
        self.total = total
        self.refused = refused or []
        self.transient = failed - len(self.refused) if transient is None else transient


def is_refusal(exc: BaseException | None) -> bool:
    """A broker answer that no retry will change (the record itself is unacceptable)."""
    return isinstance(exc, BrokerResponseError) and not exc.retriable


def dlq_record(reason: str, raw: bytes, source: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The posts.dlq shape for a record rejected at ingest (internal-formats.md)."""
    return {
        "reason": reason,
        "raw": raw.decode("utf-8", errors="replace"),
        "raw_b64": base64.b64encode(raw).decode("ascii"),
        "stage": "ingest",
        "source": source,
        "topic": None,
        "partition": None,
        "offset": None,
        "rejected_at": (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds"),
    }


@dataclass(frozen=True)
class Sent:
    future: Any
    kind: str   # "post" | "dlq"
    label: str  # source name, for failure accounting
    key: bytes | None = None
    value: bytes = b""


class PostProducer:
    def __init__(self, bootstrap: str, topic: str, dlq_topic: str, *, timeout_s: float = 15.0,
                 client_id: str = "yuqing-ingest", linger_ms: int = 20, client_options: dict | None = None):
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.timeout_s = timeout_s
        timeout_ms = int(timeout_s * 1000)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=linger_ms,
                max_block_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                delivery_timeout_ms=2 * timeout_ms + linger_ms,
                bootstrap_timeout_ms=timeout_ms,
                **(client_options or {}),  # listener auth: KafkaSettings.kafka_python_options()
            )
        except KafkaError as exc:
            raise DeliveryError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
        self._lock = threading.Lock()
        self._pending: list[Sent] = []

    def send_post(self, post: Post, label: str) -> Any:
        value = post.to_json().encode("utf-8")
        return self._send(self.topic, post.id.encode("utf-8"), value, post.published_ms, "post", label)

    def send_dlq(self, reason: str, raw: bytes, label: str) -> Any:
        record = dlq_record(reason, raw, label)
        value = json.dumps(record, ensure_ascii=False).encode("utf-8")
        return self._send(self.dlq_topic, None, value, None, "dlq", label)

    def _send(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None,
              kind: str, label: str) -> Any:
        try:
            future = self._producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
        except (KafkaError, ValueError, TypeError) as exc:  # bad topic names raise ValueError
            message = f"Kafka refused a {kind} record for {topic}: {exc}"
            refused = [(kind, key, value, label, message)] if is_refusal(exc) else []
            raise DeliveryError(message, 1, 1, refused) from None
        with self._lock:
            self._pending.append(Sent(future, kind, label, key, value))
        return future

    def deliver_post(self, post: Post) -> Any:
        """Send one post and wait for its acknowledgement (the report server answers after it)."""
        return self._deliver(self.topic, post.id.encode("utf-8"), post.to_json().encode("utf-8"),
                             post.published_ms)

    def deliver_dlq(self, reason: str, raw: bytes, label: str) -> Any:
        value = json.dumps(dlq_record(reason, raw, label), ensure_ascii=False).encode("utf-8")
        return self._deliver(self.dlq_topic, None, value, None)

    def _deliver(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None) -> Any:
        try:
            future = self._producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
            return future.get(timeout=self.timeout_s)
        except (KafkaError, ValueError, TypeError) as exc:
            raise DeliveryError(f"Kafka did not acknowledge a record for {topic}: {exc}", 1, 1) from None

    def flush(self) -> dict[str, int]:
        """Wait for all sends; returns {'post': n, 'dlq': m} delivered, or raises DeliveryError."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return {"post": 0, "dlq": 0}
        try:
            self._producer.flush(timeout=self.timeout_s)
        except KafkaError:
            pass  # the futures below say which records are missing
        delivered = {"post": 0, "dlq": 0}
        failures: list[tuple[Sent, str]] = []
        for sent in pending:
            if not sent.future.is_done:
                failures.append((sent, f"not acknowledged within {self.timeout_s:g}s"))
            elif sent.future.failed():
                failures.append((sent, str(sent.future.exception)))
            else:
                delivered[sent.kind] += 1
        if failures:
            first = failures[0][1]
            refused = [(sent.kind, sent.key, sent.value, sent.label, reason) for sent, reason in failures
                       if sent.future.is_done and is_refusal(sent.future.exception)]
            error = DeliveryError(f"{len(failures)} of {len(pending)} records not delivered: {first}",
                                  len(failures), len(pending), refused)
            error.failures = failures  # type: ignore[attr-defined]
            raise error
        return delivered

    def connected(self) -> bool:
        """True when the broker answers metadata for our topic (bounded by max_block_ms)."""
        try:
            return bool(self._producer.partitions_for(self.topic))
        except Exception:  # noqa: BLE001 - health probing must not raise
            return False

    def close(self) -> None:
        self._producer.close(timeout=self.timeout_s)
