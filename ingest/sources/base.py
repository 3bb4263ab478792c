"""The one Source interface every crawler implements, and the options they share.

A source turns its cursor into pages of items. Each page carries the cursor to persist
once the page's posts are safely in Kafka, so a restart resumes after the last page
that was delivered (at-least-once: posts between delivery and the cursor write may be
sent again; the id dedup state, saved with the cursor, catches most of those).
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from ingest.http import HttpClient, Response
from ingest.netguard import expand_headers
from ingest.mapping import PostDefaults, assemble_post
from ingest.normalize import parse_tz
from ingest.times import DEFAULT_ZONE, TimeError, future_reason, parse_time


class SourceConfigError(ValueError):
    """A source entry in crawl.yaml that cannot work; the message names the source and key."""


@dataclass(frozen=True)
class Item:
    """One thing a source found: a contract-shaped post dict (unvalidated) and its raw bytes.

    `reason` is set when the source already knows the item is bad (e.g. a JSONL line that
    is not JSON); then `post` is None and the item goes to the dead-letter topic.
    """

    post: dict[str, Any] | None
    raw: bytes
    reason: str | None = None


@dataclass
class Page:
    items: list[Item]
    cursor: dict[str, Any]


@dataclass
class FetchContext:
    """What a source may use while fetching; built by the crawler for each poll."""

    http: HttpClient
    known_id: Callable[[str], bool] = lambda _id: False
    observe: Callable[[str], None] = lambda _status: None
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[str], None] = lambda _msg: None
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    monotonic: Callable[[], float] = time.monotonic
    # waits up to the given seconds; True when the crawl was asked to stop meanwhile
    wait: Callable[[float], bool] | None = None

    def pause(self, seconds: float) -> bool:
        return self.wait(seconds) if self.wait is not None else self.stop.wait(seconds)

    def get(self, url: str, params: dict[str, object] | None = None,
            headers: dict[str, str] | None = None, timeout_s: float | None = None) -> Response:
        return self.http.get(url, params=params, headers=headers, timeout_s=timeout_s, observe=self.observe)


class Options:
    """Typed reads from one source's YAML mapping, with errors that name the source and key."""

    def __init__(self, raw: Mapping[str, Any], where: str):
        if not isinstance(raw, Mapping):
            raise SourceConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        self.raw = dict(raw)
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, default: Any = None, *, required: bool = False, kind: type | tuple = object) -> Any:
        self.used.add(key)
        if key not in self.raw or self.raw[key] is None:
            if required:
                raise SourceConfigError(f"{self.where}: missing required key {key!r}")
            return default
        value = self.raw[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        numeric = int in kinds or float in kinds
        bad_bool = isinstance(value, bool) and bool not in kinds and object not in kinds
        if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if bad_bool or not isinstance(value, kinds):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise SourceConfigError(f"{self.where}: {key} must be {names}, got {type(value).__name__}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(key, default, kind=(int, float))
        if isinstance(value, bool) or value < minimum:
            raise SourceConfigError(f"{self.where}: {key} must be a number >= {minimum:g}, got {value!r}")
        return float(value)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise SourceConfigError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


class Source(ABC):
    """A crawler. Subclasses read their own options in `configure` and implement `fetch`."""

    kind: str = ""
    default_interval_s: float = 300.0

    def __init__(self, raw: Mapping[str, Any], where: str, defaults: Mapping[str, Any] | None = None):
        merged = {**(defaults or {}), **dict(raw)}
        opts = Options(merged, where)
        self.name: str = opts.get("name", required=True, kind=str)
        opts.get("type")
        self.where = f"{where} ({self.name})"
        opts.where = self.where
        self.platform: str = opts.get("platform", self.default_platform(), kind=str).strip().lower()
        self.interval_s = opts.number("interval_s", self.default_interval_s, minimum=0.0)
        self.enabled: bool = opts.get("enabled", True, kind=bool)
        self.timeout_s: float | None = opts.get("timeout_s", None, kind=(int, float))
        raw_headers = {str(k): str(v) for k, v in opts.get("headers", {}, kind=dict).items()}
        try:
            self.headers: dict[str, str] = expand_headers(raw_headers, self.where)   # ${ENV} tokens
        except ValueError as exc:
            raise SourceConfigError(str(exc)) from None
        try:
            tz = parse_tz(opts.get("timezone", DEFAULT_ZONE, kind=str))
        except ValueError as exc:
            raise SourceConfigError(f"{self.where}: timezone: {exc}") from None
        self.post_defaults = PostDefaults(
            platform=self.platform,
            source=opts.get("source_label", self.kind, kind=str),
            id_prefix=opts.get("id_prefix", None, kind=str),
            default_tz=tz,
            kol_followers=int(opts.number("kol_followers", 100_000)),
            lang=opts.get("lang", None, kind=str),
            clean=opts.get("clean_text", True, kind=bool),
        )
        self.configure(opts)
        opts.check_unknown()

    def default_platform(self) -> str:
        return "news"

    @abstractmethod
    def configure(self, opts: Options) -> None:
        """Read and check this kind's own options."""

    @abstractmethod
    def fetch(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        """Yield pages of new items, each with the cursor to persist after it is delivered."""


def build_item(values: Mapping[str, Any], defaults: PostDefaults, fetched_at: datetime, raw: bytes) -> Item:
    """A source's flat values -> an Item; an unreadable or future time, or a mapping crash, makes a bad item.

    Bad items go to the dead-letter topic with their reason; the rest of the page goes on.
    """
    try:
        moment = parse_time(values.get("published_at"), defaults.default_tz, fetched_at)
    except TimeError as exc:
        return Item(None, raw, f"published_at: {exc}")
    ahead = future_reason(moment, fetched_at)
    if ahead is not None:
        return Item(None, raw, ahead)
    try:
        return Item(assemble_post(values, defaults, fetched_at, moment), raw)
    except Exception as exc:  # noqa: BLE001 - one odd item must not stop its page
        return Item(None, raw, f"item could not be mapped: {type(exc).__name__}: {exc}")


def newest_of(posts: list[dict[str, Any]], current: str | None) -> str | None:
    """The later of `current` and the posts' published_at values (RFC 3339 strings)."""
    from ingest.normalize import parse_datetime

    best = parse_datetime(current, timezone.utc) if current else None
    for post in posts:
        when = parse_datetime(post.get("published_at"), timezone.utc)
        if when is not None and (best is None or when > best):
            best = when
    return best.isoformat() if best else None
