"""`yuqing notify`: receives Alertmanager webhooks and the job's Kafka alert events,
deduplicates them, and delivers Chinese messages to chat robots.

Threads: the HTTP server (one thread per request), a Kafka consumer, a small pool that
does the deliveries (so a slow robot never blocks a webhook answer), and a retry loop
that drains the retry queue every `retry.retry_every_s`.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.metrics import Metrics

from .channels import DeliveryError, channel_secrets, deliver
from .config import LEVELS, ROUTES, NotifyConfig
from .dedup import Deduplicator
from .escape import REDACTOR
from .notice import Notice, NoticeError, notice_from_alert_event, notices_from_alertmanager
from .retryqueue import Pending, RetryQueue

log = logging.getLogger("yuqing.notify")  # redacted: see sinks.notify.channels
MAX_BODY = 1 << 20


class NotifyService:
    """Dedup + dispatch; transport-free so it is testable without HTTP or Kafka."""

    def __init__(self, config: NotifyConfig, metrics: Metrics, clock: Callable[[], float] = time.time):
        self.config = config
        self.metrics = metrics
        self.clock = clock
        REDACTOR.add([secret for c in config.channels for secret in channel_secrets(c)])
        if config.token:
            REDACTOR.add([config.token])
        self.dedup = Deduplicator(config.dedup_window_s)
        self.queue = RetryQueue(config.retry.queue_size, config.retry.queue_file)
        self.metrics.notify_retry_queue.set(len(self.queue))
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify-send")
        self._futures: set[Future] = set()
        self._futures_lock = threading.Lock()
        self._latest_event: dict[tuple[str, str], Notice] = {}
        self._stop = threading.Event()
        self._retry_thread: threading.Thread | None = None

    # --- intake ------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        """True if `Authorization` carries the webhook token (constant-time compare).

        With no token configured nothing is authorized: a notifier that pages on-call must
        not accept pages from whoever can reach its port.
        """
        token = self.config.token
        scheme, _, given = (header or "").strip().partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())

    def handle_alertmanager(self, route: str, payload: Any) -> tuple[int, int]:
        """Returns (sent, deduplicated). Raises NoticeError on a malformed body."""
        notices = notices_from_alertmanager(payload, route)
        sent = deduped = 0
        for notice in notices:
            self.metrics.notify_received.labels("alertmanager").inc()
            cached = self._latest_event.get((notice.brand or "", notice.category or ""))
            if cached is not None and notice.is_brand_alert:
                notice = notice.enriched_from(cached)
            if self.submit(notice):
                sent += 1
            else:
                deduped += 1
        return sent, deduped

    def handle_alert_event(self, event: Any) -> bool:
        """A Kafka `alerts` record; True if it was paged. Raises NoticeError if malformed."""
        notice = notice_from_alert_event(event)
        self.metrics.notify_received.labels("kafka").inc()
        if notice.status == "update":
            return False  # an incident's update or partial fall: recorded, not a page
        if notice.status == "firing":
            self._latest_event[(notice.brand or "", notice.category or "")] = notice
        if LEVELS.index(notice.level) < LEVELS.index(self.config.kafka.min_level):
            return False  # not worth a direct page; Prometheus covers sustained medium risk
        return self.submit(notice)

    def submit(self, notice: Notice) -> bool:
        if not self.dedup.admit(notice, self.clock()):
            self.metrics.notify_deduplicated.labels(notice.path).inc()
            log.info("notify: %s %s from %s already paged", notice.status, notice.dedup_keys()[0], notice.path)
            return False
        targets = [c for c in self.config.channels if c.wants(notice.route, notice.brand)]
        if not targets:
            log.warning("notify: no channel for route %s (brand %s): %s", notice.route, notice.brand, notice.dedup_keys()[0])
        for channel in targets:
            self._spawn(channel.name, notice)
        return True

    # --- delivery ----------------------------------------------------------------------
    def _spawn(self, channel_name: str, notice: Notice, failures: int = 0, first_failed_at: float | None = None) -> None:
        future = self._pool.submit(self._deliver, channel_name, notice, failures, first_failed_at)
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._futures_lock:
            self._futures.discard(future)

    def _deliver(self, channel_name: str, notice: Notice, failures: int, first_failed_at: float | None) -> None:
        channel = next((c for c in self.config.channels if c.name == channel_name), None)
        if channel is None:
            log.error("notify: dropping a queued message for unknown channel %s", channel_name)
            return
        fail = self.metrics.notify_failures.labels(channel.name)
        try:
            deliver(channel, notice, self.config.retry, clock=self.clock, on_failure=lambda _e: fail.inc())
        except DeliveryError as exc:
            item = Pending(channel.name, notice, failures + self.config.retry.attempts,
                           first_failed_at or self.clock(), str(exc))
            dropped = self.queue.push(item)
            if dropped is not None:
                self.metrics.notify_dropped.labels(dropped.channel).inc()
                log.error("notify: retry queue full, dropped the oldest message for %s", dropped.channel)
            self.metrics.notify_retry_queue.set(len(self.queue))
            log.error("notify: %s; queued for retry (%d waiting)", exc, len(self.queue))
            return
        except Exception:  # never lose a page to a bug in rendering: log it loudly
            log.exception("notify: unexpected error delivering to %s", channel.name)
            return
        self.metrics.notify_sent.labels(channel.name).inc()
        log.info("notify: sent %s to %s", notice.dedup_keys()[0], channel.name)

    def retry_pending(self) -> int:
        """Hand every queued message to the senders again; returns how many."""
        items = self.queue.take_all()
        self.metrics.notify_retry_queue.set(len(self.queue))
        for item in items:
            self._spawn(item.channel, item.notice, item.failures, item.first_failed_at)
        return len(items)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Block until no delivery is in flight (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._futures_lock:
                if not self._futures:
                    return True
            time.sleep(0.02)
        return False

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.config.retry.retry_every_s):
                if len(self.queue):
                    self.retry_pending()
        self._retry_thread = threading.Thread(target=loop, name="notify-retry", daemon=True)
        self._retry_thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self.wait_idle(timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=False)
        if self._retry_thread:
            self._retry_thread.join(timeout=5)


# --- Kafka -------------------------------------------------------------------------------
class AlertConsumer:
    """Consumes the `alerts` topic in group yuqing-notify; commits after handing records on."""

    def __init__(self, service: NotifyService, bootstrap: str, topic: str, client_options: dict | None = None):
        self.service = service
        self.bootstrap = bootstrap
        self.client_options = client_options or {}  # listener auth: KafkaSettings.kafka_python_options()
        self.topic = topic
        self.state = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-kafka", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _connect(self):
        from kafka import KafkaConsumer  # imported lazily: `yuqing --help` stays fast
        from kafka.errors import KafkaError

        cfg = self.service.config.kafka
        pause = 0.5
        while not self._stop.is_set():
            try:
                return KafkaConsumer(
                    self.topic, bootstrap_servers=self.bootstrap, group_id=cfg.group_id, **self.client_options,
                    auto_offset_reset=cfg.auto_offset_reset, enable_auto_commit=False,
                    request_timeout_ms=int(cfg.request_timeout_s * 1000) + 1000,
                    session_timeout_ms=10000, heartbeat_interval_ms=3000,
                    # a topic created a moment before may have no metadata yet at the first
                    # join: the group then assigns nothing until the next refresh (kafka-python
                    # default: 5 min, pages held back that long); every 10 s costs nothing
                    metadata_max_age_ms=10000,
                    connections_max_idle_ms=int(cfg.request_timeout_s * 1000) + 60000,
                    client_id="yuqing-notify")
            except KafkaError:
                self.state = "no-broker"
                log.warning("notify: no Kafka broker at %s yet; retrying in %.1fs", self.bootstrap, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 10)
        return None

    def _run(self) -> None:
        consumer = self._connect()
        if consumer is None:
            return
        self.state = "joining"
        try:
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=300)
                if self.state != "assigned" and consumer.assignment():
                    for tp in consumer.assignment():
                        consumer.position(tp)  # resolve the start offset before saying "ready"
                    self.state = "assigned"
                if not batches:
                    continue
                for records in batches.values():
                    for record in records:
                        self._handle(record)
                try:
                    consumer.commit()
                except Exception as exc:  # a rebalance; records may be redelivered, dedup absorbs it
                    log.warning("notify: offset commit failed: %s", exc)
        except Exception:
            log.exception("notify: Kafka consumer stopped")
            self.state = "failed"
        finally:
            consumer.close(autocommit=False)

    def _handle(self, record) -> None:
        try:
            event = json.loads(record.value)
            self.service.handle_alert_event(event)
        except (ValueError, NoticeError) as exc:
            self.service.metrics.notify_received.labels("kafka-invalid").inc()
            log.error("notify: skipping bad alert record at %s[%d]@%d: %s",
                      record.topic, record.partition, record.offset, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# --- HTTP --------------------------------------------------------------------------------
_ROUTE_PATH = re.compile(r"^/alertmanager/([a-z-]+)/?$")


def make_handler(service: NotifyService, consumer_state: Callable[[], str]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "yuqing-notify"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("http: " + fmt, *args)

        def _reply(self, code: int, payload: Any, content_type: str = "application/json") -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(service.metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/"):
                self._reply(200, {"ok": True, "kafka": consumer_state(), "retry_queue": len(service.queue)})
            else:
                self._reply(404, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:
            # Authentication first, before the body is read, parsed or deduplicated: a forged
            # page must never suppress the real one that follows.
            if not service.authorized(self.headers.get("Authorization")):
                service.metrics.notify_received.labels("alertmanager-unauthorized").inc()
                log.warning("notify: refused an unauthenticated POST from %s (401)", self.client_address[0])
                self.close_connection = True
                body = json.dumps({"error": "missing or wrong bearer token"}).encode()
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Bearer realm="yuqing-notify"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                return
            match = _ROUTE_PATH.match(self.path.split("?")[0])
            if not match or match.group(1) not in ROUTES:
                self._reply(404, {"error": f"POST /alertmanager/<route> with route one of {', '.join(ROUTES)}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._reply(400, {"error": "bad Content-Length"})
                return
            if length > MAX_BODY:
                self.close_connection = True
                self._reply(413, {"error": "body too large"})
                return
            try:
                payload = json.loads(self.rfile.read(length) or b"null")
                sent, deduped = service.handle_alertmanager(match.group(1), payload)
            except (ValueError, NoticeError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, {"sent": sent, "deduplicated": deduped})

    return Handler


class NotifyServer:
    """The whole process: HTTP server + service + optional Kafka consumer."""

    def __init__(self, config: NotifyConfig, metrics: Metrics, *, port: int,
                 kafka_bootstrap: str | None = None, kafka_topic: str | None = None,
                 kafka_client_options: dict | None = None):
        self.service = NotifyService(config, metrics)
        self.consumer = None
        if config.kafka.enabled and kafka_bootstrap and kafka_topic:
            self.consumer = AlertConsumer(self.service, kafka_bootstrap, kafka_topic, kafka_client_options)
        state = (lambda: self.consumer.state) if self.consumer else (lambda: "disabled")
        self.httpd = ThreadingHTTPServer((config.host, port), make_handler(self.service, state))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="notify-http", daemon=True)

    def start(self) -> "NotifyServer":
        self.service.start()
        if self.consumer:
            self.consumer.start()
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.consumer:
            self.consumer.close()
        self.service.close()
