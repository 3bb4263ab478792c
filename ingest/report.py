"""The report endpoint: employees (internal OA) and users (in-app feedback) file posts directly.

It faces the outside, so it trusts nothing it is sent:

Public port (report.host:report.port):
  POST /reports   `Authorization: Bearer TOKEN` (ingest.report_auth), JSON or
                  application/x-www-form-urlencoded. 202 {"id"} once Kafka has the post;
                  400 {"error"} with the reason (the raw body also goes to posts.dlq);
                  401 without a valid token; 408 request not complete within the deadline;
                  413 too large; 415 other content types; 429 rate limited (Retry-After);
                  503 Kafka did not acknowledge or the server is saturated (Retry-After).
  GET  /healthz   liveness: 200 while the server answers.
  GET  /readyz    readiness: 200 when Kafka answers metadata, else 503.
Metrics port (metrics.host:metrics.report_server_port): GET /metrics, /healthz, /readyz.

The server, not the caller, sets `id` (report:<channel>:<uuid>), `platform`, `source`,
`channel` and the author (the token's channel: one author per channel unless the channel
separates its reporters; 0 followers, not verified, kind user unless configured). Whatever
else the caller sent (platform, author, metrics, id, url, ...) is kept under `claimed`, an
unverified extra field that scoring never reads. `published_at` must lie within
[now - report.max_age_s, now + report.max_future_s]; missing means now.

Why asyncio + h11 and not http.server: a client that sends its request slowly holds only a
socket here, not a thread; the whole request (headers and body) has one deadline; open
connections are capped in total and per address; the blocking Kafka acknowledgement runs in
a fixed pool of `report.workers` threads.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import math
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter as Tally
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import h11
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from ingest.metrics import IngestMetrics
from ingest.normalize import clean_text
from ingest.producer import DeliveryError
from ingest.report_auth import Channel, RateLimiter, TokenRegistry
from core.config import ReportSettings
from core.post import Post, PostError, Rejected, parse_post, parse_time

SOURCE = "report"
MAX_JSON_DEPTH = 8
MAX_INT_DIGITS = 19
MAX_FORM_FIELDS = 64
MAX_TITLE_CHARS = 1000
MAX_HEADER_BYTES = 16 * 1024
CONTENT_FIELDS = ("text", "content", "title", "lang", "published_at")
_MEDIA = ("application/json", "application/x-www-form-urlencoded")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$")


class BadReport(ValueError):
    """A request the endpoint refuses with a 4xx and this reason (400 unless said)."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


# ---------------------------------------------------------------- pure: body -> post dict

def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadReport(f"invalid JSON: a number with {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text) if len(text) <= 40 else math.inf
    if not math.isfinite(value):
        raise BadReport(f"invalid JSON: number out of range: {text[:40]}")
    return value


def _parse_constant(name: str) -> Any:
    raise BadReport(f"invalid JSON: {name} is not a JSON value")


def _check_value(value: Any, path: str, depth: int = 0) -> None:
    """Depth bound and valid Unicode everywhere (a lone surrogate cannot be stored or sent on)."""
    if depth > MAX_JSON_DEPTH:
        raise BadReport(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels at {path or 'top'}")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise BadReport(f"{path or 'value'}: lone surrogate (not valid Unicode)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                raise BadReport(f"{path or 'object'}: a key holds a lone surrogate (not valid Unicode)")
            _check_value(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)


def decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    """Request body -> fields; BadReport (400, or 415 for another content type) otherwise."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in _MEDIA:
        raise BadReport(f"unsupported content type {media or 'none'!r}: send application/json or "
                        "application/x-www-form-urlencoded", 415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadReport(f"invalid UTF-8 at byte {exc.start}") from None
    if media == "application/json":
        try:
            data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
        except RecursionError:
            raise BadReport(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
        except json.JSONDecodeError as exc:
            raise BadReport(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except ValueError as exc:
            if isinstance(exc, BadReport):
                raise
            raise BadReport(f"invalid JSON: {str(exc)[:120]}") from None
        if not isinstance(data, dict):
            raise BadReport(f"expected a JSON object, got {type(data).__name__}")
        _check_value(data, "")
        return data
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise BadReport("invalid form: a percent-encoded value is not valid UTF-8") from None
    except ValueError:
        raise BadReport(f"invalid form: more than {MAX_FORM_FIELDS} fields") from None
    fields = dict(pairs)
    _check_value(fields, "")
    return fields


def _bounded(value: Any, depth: int = 0) -> Any:
    """A claim as kept: short strings, a few items, shallow."""
    if isinstance(value, str):
        return value[:500]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if depth >= 2:
        return None
    if isinstance(value, list):
        return [_bounded(item, depth + 1) for item in value[:20]]
    if isinstance(value, dict):
        return {str(k)[:64]: _bounded(v, depth + 1) for k, v in list(value.items())[:20]}
    return None


def caller_claims(fields: dict[str, Any]) -> dict[str, Any]:
    """Everything but the content, kept for people to read: never trusted, never scored."""
    claims = [(k, v) for k, v in fields.items() if k not in CONTENT_FIELDS][:32]
    return {str(k)[:64]: _bounded(v) for k, v in claims}


def _published(value: Any, now: datetime, max_future_s: int, max_age_s: int) -> str:
    if value is None or value == "":
        return now.isoformat(timespec="seconds")
    try:
        published = parse_time(value, "published_at")
    except PostError as exc:
        raise BadReport(str(exc)) from None
    if published > now + timedelta(seconds=max_future_s):
        raise BadReport(f"published_at: {value[:40]} is more than {max_future_s} s ahead of the server's clock "
                        f"({now.isoformat(timespec='seconds')})")
    if published < now - timedelta(seconds=max_age_s):
        raise BadReport(f"published_at: {value[:40]} is more than {max_age_s // 86400} days old "
                        f"(server clock {now.isoformat(timespec='seconds')})")
    return published.isoformat()


def build_report(fields: dict[str, Any], channel: Channel, now: datetime, idempotency_key: str | None = None,
                 max_future_s: int = 300, max_age_s: int = 7 * 86400) -> dict[str, Any]:
    """Request fields + the authenticated channel -> contract-shaped post dict (validated
    afterwards by core.post). Identity fields come from the channel, never the caller."""
    text = fields.get("text", fields.get("content"))
    if text is None:
        raise BadReport("missing required field: text")
    if not isinstance(text, str):
        raise BadReport(f"text: expected a string, got {type(text).__name__}")
    text = clean_text(text)
    if not text:
        raise BadReport("text: must not be empty")
    if idempotency_key:
        if len(idempotency_key) > 200:
            raise BadReport("Idempotency-Key: longer than 200 characters")
        suffix = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    else:
        suffix = uuid.uuid4().hex
    reporter = fields.get("reporter_id")
    reporter = str(reporter)[:64] if isinstance(reporter, (str, int)) and not isinstance(reporter, bool) \
        and str(reporter).strip() else None
    post: dict[str, Any] = {
        "id": f"report:{channel.name}:{suffix}",
        "platform": channel.platform,
        "text": text,
        "published_at": _published(fields.get("published_at"), now, max_future_s, max_age_s),
        "source": SOURCE,
        "fetched_at": now.isoformat(timespec="seconds"),
        "channel": channel.name,
        "author": channel.author(reporter),
    }
    title = fields.get("title")
    if title not in (None, ""):
        if not isinstance(title, str):
            raise BadReport(f"title: expected a string, got {type(title).__name__}")
        title = clean_text(title)
        if len(title) > MAX_TITLE_CHARS:
            raise BadReport(f"title: longer than {MAX_TITLE_CHARS} characters")
        if title:
            post["title"] = title
    lang = fields.get("lang")
    if lang not in (None, ""):
        if not isinstance(lang, str) or not _LANG.match(lang):
            raise BadReport(f"lang: expected a language tag such as zh or zh-Hant, got {str(lang)[:20]!r}")
        post["lang"] = lang
    claims = caller_claims(fields)
    if claims:
        post["claimed"] = claims
    return post


# ---------------------------------------------------------------- the server

class _TooLarge(Exception):
    pass


class _Closed(Exception):
    pass


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
            415: "Unsupported Media Type", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`10.0.0.0/8, 127.0.0.1` -> networks; ValueError names the bad entry."""
    out = []
    for item in (p.strip() for p in text.split(",")):
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"report.trusted_proxies: {item!r} is not an address or CIDR") from None
    return tuple(out)


def check_settings(s: ReportSettings) -> None:
    """One-line ValueError naming the first report.* setting that cannot work."""
    for key in ("token_rate_per_s", "address_rate_per_s", "request_deadline_s"):
        if not getattr(s, key) > 0:
            raise ValueError(f"report.{key}: must be > 0, got {getattr(s, key)}")
    for key in ("token_burst", "address_burst", "address_connections", "max_connections", "max_body_bytes",
                "workers", "max_future_s", "max_age_s"):
        if getattr(s, key) < 1:
            raise ValueError(f"report.{key}: must be >= 1, got {getattr(s, key)}")
    parse_networks(s.trusted_proxies)


def _in(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple) -> str:
    """The peer, or behind a trusted proxy the rightmost X-Forwarded-For entry that is not a
    trusted proxy itself (entries further left are the client's own claims)."""
    if not trusted or not _in(peer, trusted) or not forwarded_for:
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")][-16:]):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a proxy we trust: count it as the proxy
    return peer


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


class ReportServer:
    """The public listener and (optionally) the metrics listener, on one asyncio loop in a
    thread of their own. `producer` needs deliver_post/deliver_dlq/connected."""

    def __init__(self, producer: Any, tokens: TokenRegistry, settings: ReportSettings | None = None, *,
                 host: str | None = None, port: int | None = None,
                 metrics_host: str = "127.0.0.1", metrics_port: int | None = None,
                 metrics: IngestMetrics | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
                 monotonic: Callable[[], float] = time.monotonic):
        self.producer = producer
        self.tokens = tokens
        self.settings = s = settings or ReportSettings()
        self.metrics = metrics or IngestMetrics()
        registry = self.metrics.registry
        self.requests = Counter("yuqing_report_requests_total", "Report endpoint answers by HTTP status",
                                ["status"], registry=registry)
        self.limited = Counter("yuqing_report_limited_total",
                               "Requests refused by a limit (address, token, connections, busy, deadline)",
                               ["by"], registry=registry)
        self.clock = clock
        self.monotonic = monotonic
        check_settings(s)
        self.address_limiter = RateLimiter(s.address_rate_per_s, s.address_burst)
        self.trusted_proxies = parse_networks(s.trusted_proxies)
        self.token_limiter = RateLimiter(s.token_rate_per_s, s.token_burst)
        self._public_sock = _listen(host or s.host, s.port if port is None else port)
        self._metrics_sock = None
        if metrics_port is not None:
            try:
                self._metrics_sock = _listen(metrics_host, metrics_port)
            except OSError:
                self._public_sock.close()
                raise
        self._pool = ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="report-kafka")
        self._queued = 0
        self._open = 0
        self._open_by_address: Tally[str] = Tally()
        self._ready: tuple[float, bool] = (-1e9, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self._public_sock.getsockname()[1]

    @property
    def metrics_port(self) -> int | None:
        return None if self._metrics_sock is None else self._metrics_sock.getsockname()[1]

    # -- lifecycle
    def start(self) -> "ReportServer":
        ready = threading.Event()
        self._loop = loop = asyncio.new_event_loop()

        async def listen() -> None:
            self._servers.append(await asyncio.start_server(self._on_public, sock=self._public_sock))
            if self._metrics_sock is not None:
                self._servers.append(await asyncio.start_server(self._on_metrics, sock=self._metrics_sock))

        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(listen())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of start()
                failed.append(exc)
                loop.close()
                return
            finally:
                ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="report-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]
        return self

    def shutdown(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            async def stop() -> None:
                for server in self._servers:
                    server.close()
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                loop.stop()

            loop.call_soon_threadsafe(lambda: loop.create_task(stop()))
            thread.join(timeout=10)
        else:
            self._public_sock.close()
            if self._metrics_sock is not None:
                self._metrics_sock.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- connections
    async def _on_public(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._guarded(reader, writer, public=True)

    async def _on_metrics(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._guarded(reader, writer, public=False)

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, public: bool) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        address = _peer(writer)
        s = self.settings
        counted = False
        try:
            if public and self._open >= s.max_connections:
                self.limited.labels("connections").inc()
                await self._respond(writer, 503, {"error": "too many open connections, try again"}, retry_after=1)
                return
            if public and self._open_by_address[address] >= s.address_connections \
                    and not _in(address, self.trusted_proxies):
                self.limited.labels("connections").inc()
                await self._respond(writer, 429, {"error": f"more than {s.address_connections} open connections "
                                                           "from your address"}, retry_after=1, linger=reader)
                return
            self._open += 1
            self._open_by_address[address] += 1
            counted = True
            await self._serve(reader, writer, address, public)
        except (ConnectionError, _Closed, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the listener; say what, not the body
            print(f"report-server: internal error {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            try:
                await self._respond(writer, 500, {"error": "internal error"})
            except Exception:  # noqa: BLE001
                pass
        finally:
            if counted:
                self._open -= 1
                self._open_by_address[address] -= 1
                if self._open_by_address[address] <= 0:
                    del self._open_by_address[address]
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await reader.read(65536)
            conn.receive_data(data)  # b"" = the client closed: h11 then raises or returns ConnectionClosed
            if not data and conn.their_state is h11.CLOSED:
                raise _Closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str,
                     public: bool) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.request_deadline_s
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        try:
            async with asyncio.timeout_at(deadline):
                request = await self._next_event(conn, reader)
        except TimeoutError:
            self.limited.labels("deadline").inc()
            await self._respond(writer, 408, {"error": f"request not complete within {s.request_deadline_s:g} s"})
            return
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in (400, 413, 431) else 400
            await self._respond(writer, status, {"error": f"bad HTTP request: {str(exc)[:120]}"})
            return
        if not isinstance(request, h11.Request):
            return
        if len(request.target) + sum(len(n) + len(v) + 4 for n, v in request.headers) > MAX_HEADER_BYTES:
            # h11 bounds a head that arrives in pieces; this one that came in one read
            await self._respond(writer, 431, {"error": f"bad HTTP request: headers larger than {MAX_HEADER_BYTES} bytes"},
                                linger=reader)
            return
        method = request.method.decode("ascii", "replace")
        path = urlsplit(request.target.decode("ascii", "replace")).path
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
        if path in ("/healthz", "/readyz") or (not public and path == "/metrics"):
            if method != "GET":
                await self._respond(writer, 405, {"error": f"use GET {path}"}, linger=reader)
            elif path == "/healthz":
                await self._respond(writer, 200, {"status": "ok"})
            elif path == "/readyz":
                ok = await self._kafka_ready()
                await self._respond(writer, 200 if ok else 503, {"status": "ready" if ok else "kafka unavailable"})
            else:
                await self._send(writer, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
            return
        if not public or path != "/reports":
            await self._respond(writer, 404, {"error": f"no such path: {path[:100]}"}, linger=reader)
            return
        if method != "POST":
            await self._respond(writer, 405, {"error": "use POST /reports"}, linger=reader)
            return
        await self._report(conn, reader, writer, headers, address, deadline)

    async def _report(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      headers: dict[str, str], address: str, deadline: float) -> None:
        s = self.settings
        address = client_address(address, headers.get("x-forwarded-for"), self.trusted_proxies)
        wait = self.address_limiter.take(address, self.monotonic())
        if wait:
            self.limited.labels("address").inc()
            await self._respond(writer, 429, {"error": "too many requests from your address"},
                                retry_after=wait, linger=reader)
            return
        channel = self.tokens.authenticate(headers.get("authorization"))
        if channel is None:
            await self._respond(writer, 401, {"error": "missing or invalid bearer token "
                                                       "(Authorization: Bearer TOKEN)"},
                                linger=reader, extra={"WWW-Authenticate": 'Bearer realm="yuqing-report"'})
            return
        wait = self.token_limiter.take(channel.name, self.monotonic(), channel.rate_per_s, channel.burst)
        if wait:
            self.limited.labels("token").inc()
            await self._respond(writer, 429, {"error": f"too many reports for channel {channel.name}"},
                                retry_after=wait, linger=reader)
            return
        content_type = headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() not in _MEDIA:
            error = BadReport(f"unsupported content type {content_type[:60]!r}: send application/json or "
                              "application/x-www-form-urlencoded", 415)
            await self._respond(writer, 415, {"error": str(error)}, linger=reader)
            return
        declared = headers.get("content-length")
        if declared is not None and int(declared) > s.max_body_bytes:  # h11 checked it is a number
            await self._respond(writer, 413, {"error": f"body larger than {s.max_body_bytes} bytes"}, linger=reader)
            return
        if "100-continue" in headers.get("expect", "").lower():
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout_at(deadline):
                body = await self._read_body(conn, reader, s.max_body_bytes)
        except TimeoutError:
            self.limited.labels("deadline").inc()
            await self._respond(writer, 408, {"error": f"request not complete within {s.request_deadline_s:g} s"})
            return
        except _TooLarge:
            await self._respond(writer, 413, {"error": f"body larger than {s.max_body_bytes} bytes"}, linger=reader)
            return
        except h11.RemoteProtocolError as exc:
            await self._respond(writer, 400, {"error": f"bad HTTP request: {str(exc)[:120]}"})
            return
        if self._queued >= s.workers * 8:
            self.limited.labels("busy").inc()
            await self._respond(writer, 503, {"error": "server busy, try again"}, retry_after=1)
            return
        self._queued += 1
        try:
            status, payload = await asyncio.get_running_loop().run_in_executor(
                self._pool, self.file_report, channel, body, content_type, headers.get("idempotency-key"))
        finally:
            self._queued -= 1
        await self._respond(writer, status, payload, retry_after=1 if status == 503 else None)

    async def _read_body(self, conn: h11.Connection, reader: asyncio.StreamReader, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(conn, reader)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise _TooLarge()
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise _Closed()

    async def _kafka_ready(self) -> bool:
        now = self.monotonic()
        checked_at, ok = self._ready
        if now - checked_at < 1.0:  # a probe flood costs one metadata request a second
            return ok
        self._ready = (now, ok)
        try:
            ok = bool(await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self._pool, self.producer.connected), 5))
        except (TimeoutError, RuntimeError):
            ok = False
        self._ready = (self.monotonic(), ok)
        return ok

    async def _respond(self, writer: asyncio.StreamWriter, status: int, obj: dict[str, Any], *,
                       retry_after: float | None = None, linger: asyncio.StreamReader | None = None,
                       extra: dict[str, str] | None = None) -> None:
        headers = dict(extra or {})
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        await self._send(writer, status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                         "application/json; charset=utf-8", headers)
        if linger is not None:
            await self._linger(writer, linger)

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str,
                    headers: dict[str, str] | None = None) -> None:
        self.requests.labels(str(status)).inc()
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}", "Connection: close", "Cache-Control: no-store",
                "X-Content-Type-Options: nosniff"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        try:
            await asyncio.wait_for(writer.drain(), 5)
        except (TimeoutError, ConnectionError):
            pass

    async def _linger(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        """Answered before reading the whole request: half-close and discard what the client
        still sends (briefly), so that closing does not reset the connection under our answer."""
        if writer.is_closing() or not writer.can_write_eof():
            return
        try:
            writer.write_eof()
            async with asyncio.timeout(2):
                received = 0
                while received < 1 << 20:
                    data = await reader.read(65536)
                    if not data:
                        break
                    received += len(data)
        except (TimeoutError, OSError, RuntimeError):
            pass

    # -- the blocking part (a pool thread)
    def file_report(self, channel: Channel, body: bytes, content_type: str,
                    idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        """Decode, build, validate and deliver one report; (HTTP status, JSON answer)."""
        s = self.settings
        self.metrics.fetched.labels(SOURCE).inc()
        now = self.clock()
        try:
            fields = decode_body(body, content_type)
            candidate = build_report(fields, channel, now, idempotency_key, s.max_future_s, s.max_age_s)
            checked = parse_post(json.dumps(candidate, ensure_ascii=False).encode("utf-8"))
            if isinstance(checked, Rejected):
                raise BadReport(checked.reason)
        except BadReport as exc:
            if exc.status == 400:
                self._reject(str(exc), body)
            return exc.status, {"error": str(exc)}
        return self._accept(checked)

    def _reject(self, reason: str, body: bytes) -> None:
        try:
            self.producer.deliver_dlq(reason, body, SOURCE)
            self.metrics.rejected.labels(SOURCE).inc()
        except DeliveryError:
            self.metrics.errors.labels(SOURCE, "produce").inc()
            self.metrics.produce_failures.labels(SOURCE).inc()

    def _accept(self, post: Post) -> tuple[int, dict[str, Any]]:
        try:
            self.producer.deliver_post(post)
        except DeliveryError:
            self.metrics.errors.labels(SOURCE, "produce").inc()
            self.metrics.produce_failures.labels(SOURCE).inc()
            return 503, {"error": "not stored: Kafka did not acknowledge the report, try again"}
        self.metrics.produced.labels(SOURCE).inc()
        self.metrics.saw_published(SOURCE, post.published_at)
        self.metrics.success(SOURCE)
        return 202, {"id": post.id, "status": "accepted"}
