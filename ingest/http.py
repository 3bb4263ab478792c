"""A polite, guarded HTTP client for crawlers: timeouts, retries, pacing, robots.txt, and
limits on where a crawl may go and how much it may read.

Every request hop has a timeout (per socket operation, plus a deadline for the whole hop that
a watchdog enforces even while the head is read, so a server that trickles bytes cannot hold
a crawler forever). 5xx, 429, timeouts and connection failures are retried with
exponential backoff and jitter; other 4xx answers fail at once. robots.txt is read per host
with protego (wildcards, `$`, longest match) and cached.

Redirects are followed by hand, at most `max_redirects`, and every hop is checked like the
first one: http(s) only, robots.txt of the hop's host, and the address guard (the host's
addresses must be public unless `allow_private_networks` lists them; the connection goes to
the address that was checked, so DNS cannot answer differently in between). A hop to another
origin (scheme, host or port) drops Authorization, Proxy-Authorization and Cookie.
Bodies are decompressed while they stream in; `max_body_bytes` caps the decompressed size.
URLs in errors have secret-looking query values redacted.
"""
from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from email.message import Message
from typing import Callable
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from protego import Protego

from ingest.netguard import (ALLOWED_SCHEMES, AddressRefused, IPAddress, IPNetwork, origin, parse_networks,
                             redact_url, request_target, resolve_allowed, without_secrets)

DEFAULT_USER_AGENT = "YuqingBot/0.1 (+https://github.com/yuqing/yuqing)"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
ROBOTS_MAX_BYTES = 512 * 1024      # what the big crawlers read of a robots.txt; the rest is ignored
_CHUNK = 65536


@dataclass(frozen=True)
class HttpConfig:
    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = 10.0
    retries: int = 3                 # extra attempts after the first
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    respect_robots: bool = True
    robots_ttl_s: float = 3600.0
    min_interval_s: float = 1.0      # per host, between request starts
    host_intervals: dict[str, float] = field(default_factory=dict)
    max_body_bytes: int = 20 * 1024 * 1024   # after decompression
    max_redirects: int = 5
    # CIDRs the crawler may reach although they are loopback/private/link-local/...;
    # strings are accepted and parsed (a bad one raises ValueError naming it)
    allow_private_networks: tuple[IPNetwork, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_private_networks",
                           parse_networks(self.allow_private_networks, "http.allow_private_networks"))


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Message
    body: bytes

    @property
    def charset(self) -> str:
        """The codec that really decodes the body (ingest.charset: header, BOM, declaration, detection)."""
        from ingest.charset import decode

        return decode(self.body, self.headers.get_content_charset(), "text").encoding

    def text(self) -> str:
        """The body as text; never raises, whatever the label (ingest.charset)."""
        from ingest.charset import decode

        return decode(self.body, self.headers.get_content_charset(), "text").text


class FetchError(RuntimeError):
    """A request that failed for good; `status` is a short bounded label for metrics.

    The URL is kept redacted (no password, no token-like query values): these errors end up
    in log lines and crawl summaries.
    """

    def __init__(self, url: str, status: str, detail: str):
        safe = redact_url(url)
        super().__init__(f"{safe}: {detail}")
        self.url = safe
        self.status = status


class RobotsDisallowed(FetchError):
    def __init__(self, url: str, why: str = ""):
        super().__init__(url, "robots", f"robots.txt unreachable, so not allowed ({why})" if why
                         else "disallowed by robots.txt")


class AddressBlocked(FetchError):
    """A URL the crawler must not visit: not http(s), or a host on a refused network."""

    def __init__(self, url: str, detail: str):
        super().__init__(url, "blocked", detail)


# labels of failures that another attempt cannot fix
_PERMANENT = ("robots", "blocked", "too_large", "encoding", "redirects")


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter-ish exponential backoff: base*2^attempt capped, times a factor in [0.5, 1)."""
    return min(cap, base * (2 ** attempt)) * (0.5 + rng() / 2)


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def with_params(url: str, params: dict[str, object]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def product_token(user_agent: str) -> str:
    """`YuqingBot` of `YuqingBot/0.1 (+https://…)`: the name robots.txt groups address."""
    return (user_agent.split("/", 1)[0].split() or ["*"])[0]


@dataclass(frozen=True)
class RobotsRules:
    """One host's robots.txt: parsed rules, or a blanket yes (no file) / no (unreachable)."""

    rules: Protego | None = None
    allow_all: bool = True
    unreachable: str = ""     # why robots.txt could not be read (then nothing is allowed for a while)

    def can_fetch(self, url: str, agent: str) -> bool:
        if self.rules is None:
            return self.allow_all
        return bool(self.rules.can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float | None:
        if self.rules is None:
            return None
        delay = self.rules.crawl_delay(agent)
        return float(delay) if delay else None


class Inflater:
    """Decodes a Content-Encoding while the body streams in and refuses to grow past a limit.

    gzip (also several members, x-gzip), deflate (zlib-wrapped or raw: servers differ) and
    identity. A 50 KB gzip bomb stops at `limit` bytes of output, not at gigabytes: zlib is
    never asked for more than the room left.
    """

    def __init__(self, content_encoding: str | None, limit: int):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
        self.coding = {"x-gzip": "gzip"}.get(codings[0], codings[0]) if codings else "identity"
        self.limit = limit
        self.size = 0
        self._pending = b""    # deflate: the first bytes, until the header tells zlib from raw
        self._engine = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.coding == "gzip" else None

    def _grow(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.limit:
            raise OverflowError(f"body larger than {self.limit} bytes")
        return data

    def _start_deflate(self) -> None:
        head = self._pending
        wrapped = (head[0] & 0x0F) == 8 and (head[0] << 8 | head[1]) % 31 == 0
        self._engine = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        if self.coding == "identity":
            return self._grow(data)
        if self._engine is None:
            self._pending += data
            if len(self._pending) < 2:
                return b""
            self._start_deflate()
            data, self._pending = self._pending, b""
        out = bytearray()
        try:
            while data:
                assert self._engine is not None
                if self._engine.eof:
                    if self.coding != "gzip":
                        break                     # bytes after a deflate stream: ignored
                    self._engine = zlib.decompressobj(16 + zlib.MAX_WBITS)   # next gzip member
                out += self._grow(self._engine.decompress(data, self.limit - self.size + 1))
                data = self._engine.unconsumed_tail or (self._engine.unused_data if self._engine.eof else b"")
        except zlib.error as exc:
            raise ValueError(f"corrupt {self.coding} body: {exc}") from None
        return bytes(out)

    def finish(self) -> bytes:
        if self.coding == "identity" or (self._engine is None and not self._pending):
            return b""
        if self._engine is None:
            raise ValueError(f"{self.coding} body ended early")
        try:
            tail = self._grow(self._engine.flush())
        except zlib.error as exc:
            raise ValueError(f"corrupt {self.coding} body: {exc}") from None
        if not self._engine.eof:
            raise ValueError(f"{self.coding} body ended early")
        return tail


class _Watchdog:
    """Cuts a connection off when its hop's deadline passes, whatever phase it is in: a server
    that sends its status line or headers a byte at a time would otherwise dodge the per-read
    socket timeout for as long as it likes."""

    def __init__(self, seconds: float, connection: http.client.HTTPConnection):
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _header_text(value: str) -> str:
    """A header as its sender meant it: http.client reads bytes as Latin-1, but servers put
    raw UTF-8 in Location (/话题/快送); undo that when it decodes, else keep what came."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _pinned_connector(addresses: list[IPAddress], port: int) -> Callable[..., socket.socket]:
    """A stand-in for socket.create_connection that dials only the addresses already checked."""

    def connect(_address: tuple[str, int], timeout: float | None = None,
                source_address: tuple[str, int] | None = None) -> socket.socket:
        last: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((str(address), port), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    return connect


class HttpClient:
    """Thread-safe; one per crawler process so pacing and robots caches are shared."""

    def __init__(self, config: HttpConfig = HttpConfig(), *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random,
                 tls_context: ssl.SSLContext | None = None):
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        self._robots: dict[str, tuple[float, RobotsRules]] = {}
        self._agent = product_token(config.user_agent)
        self._tls = tls_context or ssl.create_default_context()   # certificates always verified

    # -------------------------------------------------------------- pacing
    def _interval(self, host: str) -> float:
        netloc = urlsplit(host).netloc
        interval = self.config.host_intervals.get(netloc, self.config.min_interval_s)
        cached = self._robots.get(host)
        if cached is not None:
            delay = cached[1].crawl_delay(self._agent)
            if delay:
                interval = max(interval, delay)
        return interval

    def _wait_turn(self, url: str) -> None:
        host = host_key(url)
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + self._interval(host)
        if slot > now:
            self._sleep(slot - now)

    # -------------------------------------------------------------- robots
    def robots_for(self, url: str) -> RobotsRules:
        host = host_key(url)
        with self._lock:
            cached = self._robots.get(host)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        ttl = self.config.robots_ttl_s
        try:
            response = self._fetch_with_retries(host + "/robots.txt", None, {}, check_robots=False,
                                                accept_status=range(400, 500), body_limit=ROBOTS_MAX_BYTES)
            if response.status in (401, 403):
                rules = RobotsRules(allow_all=False)
            elif response.status >= 400:
                rules = RobotsRules(allow_all=True)   # no robots.txt: everything is allowed
            else:
                rules = RobotsRules(Protego.parse(response.body.decode("utf-8", errors="replace")))
        except FetchError as exc:
            # unreachable robots.txt: assume no, ask again soon
            rules = RobotsRules(allow_all=False, unreachable=str(exc))
            ttl = min(ttl, 60.0)
        with self._lock:
            self._robots[host] = (self._clock() + ttl, rules)
        return rules

    def allowed(self, url: str) -> bool:
        if not self.config.respect_robots:
            return True
        return self.robots_for(url).can_fetch(url, self._agent)

    def _check_robots(self, url: str) -> None:
        if not self.config.respect_robots:
            return
        rules = self.robots_for(url)
        if not rules.can_fetch(url, self._agent):
            raise RobotsDisallowed(url, rules.unreachable)

    # -------------------------------------------------------------- requests
    def get(self, url: str, params: dict[str, object] | None = None,
            headers: dict[str, str] | None = None, timeout_s: float | None = None,
            observe: Callable[[str], None] | None = None) -> Response:
        """GET with retries; `observe(status_label)` is called once per attempt (for metrics)."""
        full = with_params(url, params or {})
        return self._fetch_with_retries(full, timeout_s, headers or {}, check_robots=True, observe=observe)

    def _fetch_with_retries(self, url: str, timeout_s: float | None, headers: dict[str, str], *,
                            check_robots: bool, accept_status: range | None = None,
                            observe: Callable[[str], None] | None = None,
                            body_limit: int | None = None) -> Response:
        report = observe or (lambda _status: None)
        attempts = self.config.retries + 1
        last: FetchError | None = None
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response, reason = self._follow(url, timeout_s or self.config.timeout_s, headers,
                                                check_robots=check_robots, accept_status=accept_status,
                                                body_limit=body_limit)
            except FetchError as exc:
                report(exc.status)
                if exc.status in _PERMANENT:
                    raise
                last = exc
            except (TimeoutError, socket.timeout) as exc:
                report("timeout")
                last = FetchError(url, "timeout", f"timed out ({exc or 'no answer'})")
            except (OSError, http.client.HTTPException) as exc:
                report("connection")
                last = FetchError(url, "connection", f"connection: {exc or type(exc).__name__}")
            else:
                status = response.status
                report(str(status))
                if 200 <= status < 300 or (accept_status is not None and status in accept_status):
                    return response
                last = FetchError(url, str(status), f"HTTP {status} {reason}".rstrip())
                if status != 429 and status < 500:
                    raise last
                retry_after = _retry_after(response.headers)
            if attempt + 1 < attempts:
                delay = backoff_delay(attempt, self.config.backoff_base_s, self.config.backoff_max_s, self._rng)
                if retry_after is not None:
                    delay = min(self.config.backoff_max_s, max(delay, retry_after))
                self._sleep(delay)
        assert last is not None
        raise last

    def _follow(self, url: str, timeout_s: float, headers: dict[str, str], *, check_robots: bool,
                accept_status: range | None, body_limit: int | None) -> tuple[Response, str]:
        """One attempt: the request and its redirects, each hop checked like the first and
        given `timeout_s` from its connect to its last body byte."""
        current, sending = url, dict(headers)
        for _hop in range(self.config.max_redirects + 1):
            if urlsplit(current).scheme.lower() not in ALLOWED_SCHEMES:
                raise AddressBlocked(current, f"scheme {urlsplit(current).scheme or '(none)'!r} is not http(s)")
            addresses = self._checked_addresses(current)
            if check_robots:
                self._check_robots(current)
            self._wait_turn(current)
            deadline = time.monotonic() + timeout_s
            connection = self._connection(current, addresses, timeout_s)
            watchdog = _Watchdog(timeout_s, connection)
            try:
                try:
                    answer = self._send(current, connection, sending)
                except (OSError, http.client.HTTPException):
                    if watchdog.fired:
                        raise TimeoutError(f"no complete answer head after {timeout_s:g}s") from None
                    raise
                if watchdog.fired:    # a head cut off by the watchdog can look complete: never use it
                    raise TimeoutError(f"no complete answer head after {timeout_s:g}s")
                location = answer.getheader("Location")
                if answer.status in REDIRECT_STATUSES and location:
                    target = urljoin(current, _header_text(location).strip())
                    if origin(target) != origin(current):
                        sending = without_secrets(sending)
                    current = target
                    continue
                wanted = 200 <= answer.status < 300 or (accept_status is not None and answer.status in accept_status)
                limit = body_limit or self.config.max_body_bytes
                body = self._read_body(current, answer, connection, deadline, timeout_s, limit,
                                       truncate=body_limit is not None, cut_off=watchdog) if wanted else b""
                return Response(current, answer.status, answer.msg, body), answer.reason or ""
            finally:
                watchdog.cancel()
                connection.close()
        raise FetchError(url, "redirects", f"more than {self.config.max_redirects} redirects")

    def _checked_addresses(self, url: str) -> list[IPAddress]:
        """The addresses of the URL's host that the guard lets us connect to (or AddressBlocked)."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise AddressBlocked(url, "no host in the URL")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise AddressBlocked(url, "bad port in the URL") from None
        try:
            return resolve_allowed(parts.hostname, port, self.config.allow_private_networks)
        except AddressRefused as exc:
            raise AddressBlocked(url, str(exc)) from None

    def _connection(self, url: str, addresses: list[IPAddress], timeout_s: float) -> http.client.HTTPConnection:
        """A connection (not yet open) that will dial only the checked addresses; https still
        sends the host name (SNI) and verifies the certificate against it."""
        parts = urlsplit(url)
        assert parts.hostname is not None
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        connection: http.client.HTTPConnection
        if parts.scheme.lower() == "https":
            connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout_s, context=self._tls)
        else:
            connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout_s)
        connection._create_connection = _pinned_connector(addresses, port)  # type: ignore[attr-defined]
        return connection

    def _send(self, url: str, connection: http.client.HTTPConnection,
              headers: dict[str, str]) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection.request("GET", request_target(path), headers={
            "User-Agent": self.config.user_agent,
            "Accept-Encoding": "gzip, deflate",
            **headers,
        })
        return connection.getresponse()

    def _read_body(self, url: str, answer: http.client.HTTPResponse, connection: http.client.HTTPConnection,
                   deadline: float, timeout_s: float, limit: int, truncate: bool, cut_off: _Watchdog) -> bytes:
        try:
            inflater = Inflater(answer.getheader("Content-Encoding"), limit)
        except ValueError as exc:
            raise FetchError(url, "encoding", str(exc)) from None
        chunks: list[bytes] = []
        received = 0
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"body not complete after {timeout_s:g}s")
                if connection.sock is not None:
                    connection.sock.settimeout(min(timeout_s, left))
                try:
                    chunk = answer.read1(_CHUNK)
                except (OSError, http.client.HTTPException):
                    if cut_off.fired:
                        raise TimeoutError(f"body not complete after {timeout_s:g}s") from None
                    raise
                if not chunk:
                    if cut_off.fired:
                        raise TimeoutError(f"body not complete after {timeout_s:g}s")
                    if answer.length:   # the server closed before Content-Length was reached
                        raise http.client.IncompleteRead(b"", answer.length)
                    chunks.append(inflater.finish())
                    break
                received += len(chunk)
                if received > limit:
                    raise OverflowError(f"body larger than {limit} bytes")
                chunks.append(inflater.feed(chunk))
        except OverflowError as exc:
            if truncate:
                return b"".join(chunks)
            raise FetchError(url, "too_large", f"{exc} (http.max_body_bytes)") from None
        except ValueError as exc:
            raise FetchError(url, "encoding", str(exc)) from None
        return b"".join(chunks)
