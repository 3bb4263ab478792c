"""Fixtures for ingest tests: a local HTTP server (no test reaches the internet) and Kafka readers."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest


@dataclass
class Route:
    """Answers in turn; the last one repeats. Each answer: (status, content_type, body, delay_s)."""

    answers: list[tuple[int, str, bytes, float]]
    hits: int = 0


@dataclass
class LocalWeb:
    """A tiny web server on 127.0.0.1 with scripted routes and a request log."""

    routes: dict[str, Route] = field(default_factory=dict)
    log: list[tuple[float, str]] = field(default_factory=list)
    base: str = ""

    def add(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8",
            status: int = 200, delay_s: float = 0.0) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route([(status, content_type, data, delay_s)])

    def sequence(self, path: str, answers: list[tuple[int, str, bytes | str, float]]) -> None:
        self.routes[path] = Route([(s, c, b.encode("utf-8") if isinstance(b, str) else b, d)
                                   for s, c, b, d in answers])

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for _t, p in self.log if urlsplit(p).path == path)


@pytest.fixture
def web():
    site = LocalWeb()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802
            site.log.append((time.monotonic(), self.path))
            path = urlsplit(self.path).path
            key = self.path if self.path in site.routes else path
            route = site.routes.get(key)
            if route is None:
                status, ctype, body, delay = 404, "text/plain", b"not found", 0.0
            else:
                status, ctype, body, delay = route.answers[min(route.hits, len(route.answers) - 1)]
                route.hits += 1
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


def read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout_s: float = 15.0,
               idle_s: float = 0.6) -> list[Any]:
    """All records of a topic from the beginning (waits for `expect` records, then a quiet spell)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=int(idle_s * 1000),
                             request_timeout_ms=15000)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            got = [r for part in batch.values() for r in part]
            records.extend(got)
            if expect is not None and len(records) >= expect and not got:
                # one more quiet poll so extra (duplicate) records would show up
                more = consumer.poll(timeout_ms=int(idle_s * 1000))
                records.extend(r for part in more.values() for r in part)
                if not more:
                    break
            if expect is None and not got and records:
                break
    finally:
        consumer.close()
    return records


@pytest.fixture
def topic_reader(kafka_bootstrap) -> Callable[..., list[Any]]:
    return lambda topic, **kw: read_topic(kafka_bootstrap, topic, **kw)
