"""The report endpoint: employees (internal OA) and users (in-app feedback) file posts directly.

POST /reports   JSON or application/x-www-form-urlencoded; 202 {"id"} once Kafka has the
                post, 400 {"error"} with the contract's reason (the raw body also goes to
                posts.dlq), 413 too large, 415 other content types, 503 Kafka unavailable.
GET  /healthz   200 when Kafka answers, else 503.
GET  /metrics   Prometheus text format.

Form and JSON fields: text (required), title, url, platform (default "internal"),
published_at (default now), lang, id (else a random one; an Idempotency-Key header gives a
stable id so client retries do not duplicate), channel ("oa", "app", ...), reporter_id,
reporter_name, author_kind, or a nested author/metrics object (JSON only).
"""
from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from ingest.metrics import IngestMetrics
from ingest.normalize import clean_text
from ingest.producer import DeliveryError
from yuqing.post import Post, Rejected, parse_post

MAX_BODY_BYTES = 64 * 1024
SOURCE = "report"
_PASSTHROUGH = ("title", "url", "lang", "channel")


class BadReport(ValueError):
    pass


def _decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadReport(f"invalid UTF-8 at byte {exc.start}") from None
        except json.JSONDecodeError as exc:
            raise BadReport(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        if not isinstance(data, dict):
            raise BadReport(f"expected a JSON object, got {type(data).__name__}")
        return data
    if media == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadReport(f"invalid UTF-8 at byte {exc.start}") from None
        return dict(parse_qsl(text, keep_blank_values=True))
    raise LookupError(media or "none")


def build_report(fields: dict[str, Any], now: datetime, idempotency_key: str | None = None) -> dict[str, Any]:
    """Request fields -> contract-shaped post dict (validated afterwards by yuqing.post)."""
    text = fields.get("text", fields.get("content"))
    if text is None:
        raise BadReport("missing required field: text")
    if not isinstance(text, str):
        raise BadReport(f"text: expected a string, got {type(text).__name__}")
    text = clean_text(text)
    if not text:
        raise BadReport("text: must not be empty")
    post_id = fields.get("id")
    if post_id is None:
        if idempotency_key:
            post_id = "report:" + hashlib.sha1(idempotency_key.encode("utf-8")).hexdigest()[:24]
        else:
            post_id = "report:" + uuid.uuid4().hex
    elif isinstance(post_id, str) and ":" not in post_id and post_id.strip():
        post_id = f"report:{post_id.strip()}"
    post: dict[str, Any] = {
        "id": post_id,
        "platform": fields.get("platform") or "internal",
        "text": text,
        "published_at": fields.get("published_at") or now.isoformat(timespec="seconds"),
        "source": SOURCE,
        "fetched_at": now.isoformat(timespec="seconds"),
    }
    for name in _PASSTHROUGH:
        if fields.get(name) not in (None, ""):
            post[name] = clean_text(fields[name]) if name == "title" and isinstance(fields[name], str) else fields[name]
    if isinstance(fields.get("author"), dict):
        post["author"] = fields["author"]
    elif any(fields.get(k) for k in ("reporter_id", "reporter_name", "author_kind")):
        post["author"] = {"id": fields.get("reporter_id") or None, "name": fields.get("reporter_name") or None,
                          "kind": fields.get("author_kind") or "user"}
    if "metrics" in fields:
        post["metrics"] = fields["metrics"]
    return post


class ReportServer:
    """Owns the HTTP server; `producer` needs deliver_post/deliver_dlq/connected."""

    def __init__(self, producer: Any, host: str = "127.0.0.1", port: int = 0,
                 metrics: IngestMetrics | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now().astimezone()):
        self.producer = producer
        self.metrics = metrics or IngestMetrics()
        self.requests = Counter("yuqing_report_requests_total", "Report endpoint answers by HTTP status",
                                ["status"], registry=self.metrics.registry)
        self.clock = clock
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "yuqing-report/0.1"
            timeout = 30  # seconds a client may take to send its request

            def log_message(self, fmt: str, *args: Any) -> None:  # keep stderr for real talk
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.handle_get(self)

            def do_POST(self) -> None:  # noqa: N802
                server.handle_post(self)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: bytes,
                content_type: str = "application/json; charset=utf-8") -> None:
        self.requests.labels(str(status)).inc()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _json(self, handler: BaseHTTPRequestHandler, status: int, obj: dict[str, Any]) -> None:
        self._answer(handler, status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path == "/healthz":
            ok = self.producer.connected()
            self._json(handler, 200 if ok else 503, {"status": "ok" if ok else "kafka unavailable"})
        elif path == "/metrics":
            self._answer(handler, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/reports":
            self._json(handler, 405, {"error": "use POST /reports"})
        else:
            self._json(handler, 404, {"error": f"no such path: {path}"})

    def handle_post(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path != "/reports":
            self._json(handler, 404, {"error": f"no such path: {path}"})
            return
        try:
            length = int(handler.headers.get("Content-Length") or "")
        except ValueError:
            self._json(handler, HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length header required"})
            return
        if length > MAX_BODY_BYTES or length < 0:
            handler.close_connection = True
            self._json(handler, 413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return
        body = handler.rfile.read(length)
        self.metrics.fetched.labels(SOURCE).inc()
        now = self.clock()
        try:
            fields = _decode_body(body, handler.headers.get("Content-Type", ""))
            candidate = build_report(fields, now, handler.headers.get("Idempotency-Key"))
            checked = parse_post(json.dumps(candidate, ensure_ascii=False).encode("utf-8"))
            if isinstance(checked, Rejected):
                raise BadReport(checked.reason)
        except LookupError as exc:
            self._json(handler, 415, {"error": f"unsupported content type {exc.args[0]!r}: "
                                               "send application/json or application/x-www-form-urlencoded"})
            return
        except BadReport as exc:
            self._reject(str(exc), body)
            self._json(handler, 400, {"error": str(exc)})
            return
        self._accept(handler, checked)

    def _reject(self, reason: str, body: bytes) -> None:
        try:
            self.producer.deliver_dlq(reason, body, SOURCE)
            self.metrics.rejected.labels(SOURCE).inc()
        except DeliveryError:
            self.metrics.errors.labels(SOURCE, "produce").inc()
            self.metrics.produce_failures.labels(SOURCE).inc()

    def _accept(self, handler: BaseHTTPRequestHandler, post: Post) -> None:
        try:
            self.producer.deliver_post(post)
        except DeliveryError as exc:
            self.metrics.errors.labels(SOURCE, "produce").inc()
            self.metrics.produce_failures.labels(SOURCE).inc()
            self._json(handler, 503, {"error": f"not stored, try again: {exc}"})
            return
        self.metrics.produced.labels(SOURCE).inc()
        self.metrics.saw_published(SOURCE, post.published_at)
        self.metrics.success(SOURCE)
        self._json(handler, 202, {"id": post.id, "status": "accepted"})

    def start(self) -> "ReportServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="report-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
