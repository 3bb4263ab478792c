"""A polite HTTP client for crawlers: timeouts, retries with backoff, per-host pacing, robots.txt.

Every request has a timeout (connect/read via the socket, plus a total deadline while the
body is read, so a server that trickles bytes cannot hold a crawler forever). 5xx, 429,
timeouts and connection failures are retried with exponential backoff and jitter;
other 4xx answers fail at once. robots.txt is fetched per host (through the same client)
and cached; a disallowed URL raises RobotsDisallowed before anything is sent.
"""
from __future__ import annotations

import gzip
import random
import socket
import threading
import time
import urllib.error
import urllib.request
import urllib.robotparser
import zlib
from dataclasses import dataclass, field
from email.message import Message
from typing import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

DEFAULT_USER_AGENT = "YuqingBot/0.1 (+https://github.com/yuqing/yuqing)"


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
    max_body_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Message
    body: bytes

    @property
    def charset(self) -> str:
        return self.headers.get_content_charset() or "utf-8"

    def text(self) -> str:
        return self.body.decode(self.charset, errors="replace")


class FetchError(RuntimeError):
    """A request that failed for good; `status` is a short bounded label for metrics."""

    def __init__(self, url: str, status: str, detail: str):
        super().__init__(f"{url}: {detail}")
        self.url = url
        self.status = status


class RobotsDisallowed(FetchError):
    def __init__(self, url: str):
        super().__init__(url, "robots", "disallowed by robots.txt")


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


class _NoRedirectLoops(urllib.request.HTTPRedirectHandler):
    max_redirections = 5


class HttpClient:
    """Thread-safe; one per crawler process so pacing and robots caches are shared."""

    def __init__(self, config: HttpConfig = HttpConfig(), *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random):
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser]] = {}
        self._opener = urllib.request.build_opener(_NoRedirectLoops())

    # -------------------------------------------------------------- pacing
    def _interval(self, host: str) -> float:
        netloc = urlsplit(host).netloc
        interval = self.config.host_intervals.get(netloc, self.config.min_interval_s)
        cached = self._robots.get(host)
        if cached is not None:
            delay = cached[1].crawl_delay(self.config.user_agent)
            if delay:
                interval = max(interval, float(delay))
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
    def robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        host = host_key(url)
        with self._lock:
            cached = self._robots.get(host)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        parser = urllib.robotparser.RobotFileParser(host + "/robots.txt")
        ttl = self.config.robots_ttl_s
        try:
            response = self._fetch_with_retries(host + "/robots.txt", None, {}, check_robots=False,
                                                accept_status=range(400, 500))
            if response.status in (401, 403):
                parser.disallow_all = True
            elif response.status >= 400:
                parser.allow_all = True   # no robots.txt: everything is allowed
            else:
                parser.parse(response.text().splitlines())
        except FetchError:
            parser.disallow_all = True    # unreachable robots.txt: assume no, ask again soon
            ttl = min(ttl, 60.0)
        with self._lock:
            self._robots[host] = (self._clock() + ttl, parser)
        return parser

    def allowed(self, url: str) -> bool:
        if not self.config.respect_robots:
            return True
        return self.robots_for(url).can_fetch(self.config.user_agent, url)

    # -------------------------------------------------------------- requests
    def get(self, url: str, params: dict[str, object] | None = None,
            headers: dict[str, str] | None = None, timeout_s: float | None = None,
            observe: Callable[[str], None] | None = None) -> Response:
        """GET with retries; `observe(status_label)` is called once per attempt (for metrics)."""
        full = with_params(url, params or {})
        return self._fetch_with_retries(full, timeout_s, headers or {}, check_robots=True, observe=observe)

    def _fetch_with_retries(self, url: str, timeout_s: float | None, headers: dict[str, str], *,
                            check_robots: bool, accept_status: range | None = None,
                            observe: Callable[[str], None] | None = None) -> Response:
        report = observe or (lambda _status: None)
        if check_robots and not self.allowed(url):
            report("robots")
            raise RobotsDisallowed(url)
        attempts = self.config.retries + 1
        last: FetchError | None = None
        for attempt in range(attempts):
            self._wait_turn(url)
            retry_after: float | None = None
            try:
                response = self._fetch_once(url, timeout_s or self.config.timeout_s, headers)
                report(str(response.status))
                return response
            except urllib.error.HTTPError as exc:
                status = exc.code
                report(str(status))
                if accept_status is not None and status in accept_status:
                    return Response(url, status, exc.headers, b"")
                last = FetchError(url, str(status), f"HTTP {status} {exc.reason}")
                if status != 429 and status < 500:
                    raise last from None
                retry_after = _retry_after(exc.headers)
            except (TimeoutError, socket.timeout) as exc:
                report("timeout")
                last = FetchError(url, "timeout", f"timed out ({exc or 'no answer'})")
            except urllib.error.URLError as exc:
                reason = exc.reason
                label = "timeout" if isinstance(reason, (TimeoutError, socket.timeout)) else "connection"
                report(label)
                last = FetchError(url, label, f"{label}: {reason}")
            except (ConnectionError, OSError) as exc:
                report("connection")
                last = FetchError(url, "connection", f"connection: {exc}")
            if attempt + 1 < attempts:
                delay = backoff_delay(attempt, self.config.backoff_base_s, self.config.backoff_max_s, self._rng)
                if retry_after is not None:
                    delay = min(self.config.backoff_max_s, max(delay, retry_after))
                self._sleep(delay)
        assert last is not None
        raise last

    def _fetch_once(self, url: str, timeout_s: float, headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, headers={
            "User-Agent": self.config.user_agent,
            "Accept-Encoding": "gzip, deflate",
            **headers,
        })
        deadline = time.monotonic() + timeout_s
        with self._opener.open(request, timeout=timeout_s) as answer:
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"body not complete after {timeout_s:g}s")
                chunk = answer.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.config.max_body_bytes:
                    raise FetchError(url, "too_large", f"body larger than {self.config.max_body_bytes} bytes")
                chunks.append(chunk)
            body = b"".join(chunks)
            encoding = (answer.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            return Response(answer.geturl(), answer.status, answer.headers, body)
