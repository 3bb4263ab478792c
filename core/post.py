"""The Post contract (CONTRACTS.md §1): parsing and validation shared by ingest and scoring.

Validation never raises on bad input: it returns a `Rejected` with a machine-readable
reason, so that callers can route the raw bytes to the dead-letter topic.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

AUTHOR_KINDS = ("media", "kol", "official", "user")
METRIC_NAMES = ("reposts", "comments", "likes", "views")
REQUIRED_FIELDS = ("id", "platform", "text", "published_at")
OPTIONAL_STRING_FIELDS = ("title", "url", "lang", "repost_of", "source", "fetched_at")
MAX_TEXT_CHARS = 200_000
# counts above this are not real (and overflow the job's BIGINT sums and ClickHouse UInt64)
MAX_COUNT = 10 ** 15
# dead letters keep at most this many raw bytes (JSON-escaped + base64 it stays < 1 MB)
DLQ_MAX_RAW_BYTES = 64 * 1024


# Author, Metrics and Post are values: nothing mutates one after parsing. They are not
# `frozen` because a frozen dataclass sets each field through object.__setattr__, which made
# building the three a sixth of the scoring UDF's parse time (~7 us of ~40 per post).
@dataclass(slots=True)
class Author:
    id: str | None = None
    name: str | None = None
    followers: int = 0
    verified: bool = False
    kind: str = "user"


@dataclass(slots=True)
class Metrics:
    reposts: int = 0
    comments: int = 0
    likes: int = 0
    views: int = 0

    @property
    def engagement(self) -> int:
        return self.reposts + self.comments + self.likes


@dataclass(slots=True)
class Post:
    id: str
    platform: str
    text: str
    published_at: datetime
    title: str | None = None
    url: str | None = None
    lang: str = "zh"
    author: Author = field(default_factory=Author)
    metrics: Metrics = field(default_factory=Metrics)
    repost_of: str | None = None
    source: str | None = None
    fetched_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def published_ms(self) -> int:
        return int(self.published_at.timestamp() * 1000)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON shape; unknown fields received are carried through."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            id=self.id,
            platform=self.platform,
            text=self.text,
            published_at=self.published_at.isoformat(),
            lang=self.lang,
            author={
                "id": self.author.id,
                "name": self.author.name,
                "followers": self.author.followers,
                "verified": self.author.verified,
                "kind": self.author.kind,
            },
            metrics={name: getattr(self.metrics, name) for name in METRIC_NAMES},
        )
        for name in ("title", "url", "repost_of", "source"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.fetched_at is not None:
            out["fetched_at"] = self.fetched_at.isoformat()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that failed the contract; `raw` keeps the exact bytes received."""

    reason: str
    raw: bytes

    def to_dlq_dict(self, stage: str, source: str | None = None, topic: str | None = None,
                    partition: int | None = None, offset: int | None = None) -> dict[str, Any]:
        """The dead-letter record of docs/internal-formats.md.

        A huge record (e.g. a 1 MB text) keeps only its first DLQ_MAX_RAW_BYTES, flagged
        with `raw_truncated`, its full size and SHA-256: the whole copy (raw + base64) would
        exceed Kafka's 1 MB request size and fail the job on every retry."""
        data = self.raw
        record = {
            "reason": self.reason,
            "raw": data[:DLQ_MAX_RAW_BYTES].decode("utf-8", errors="replace"),
            "raw_b64": base64.b64encode(data[:DLQ_MAX_RAW_BYTES]).decode("ascii"),
            "stage": stage,
            "source": source,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "rejected_at": datetime.now(timezone.utc).isoformat(),
        }
        if len(data) > DLQ_MAX_RAW_BYTES:
            record.update(raw_truncated=True, raw_bytes=len(data), raw_sha256=hashlib.sha256(data).hexdigest())
        return record


class PostError(ValueError):
    """Raised by `parse_post_strict` with the same reason a `Rejected` carries."""


def parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise PostError(f"{name}: expected an RFC 3339 string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PostError(f"{name}: not an RFC 3339 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        raise PostError(f"{name}: timestamp lacks a UTC offset: {value[:64]!r}")
    return parsed


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PostError(f"{name}: expected a non-negative integer, got {type(value).__name__}")
    if value < 0:
        raise PostError(f"{name}: must not be negative, got {value}")
    if value > MAX_COUNT:
        raise PostError(f"{name}: larger than {MAX_COUNT:.0e}, got {str(value)[:40]}")
    return value


def _parse_author(value: Any) -> Author:
    if value is None:
        return Author()
    if not isinstance(value, dict):
        raise PostError(f"author: expected an object, got {type(value).__name__}")
    get = value.get
    author_id = get("id")
    if author_id is not None and (isinstance(author_id, bool) or not isinstance(author_id, (str, int))):
        raise PostError(f"author.id: expected a string, got {type(author_id).__name__}")
    verified = get("verified", False)
    if verified is not True and verified is not False:
        raise PostError(f"author.verified: expected a boolean, got {type(verified).__name__}")
    kind = get("kind", "user")
    if kind is None:
        kind = "user"
    if kind not in AUTHOR_KINDS:
        raise PostError(f"author.kind: expected one of {', '.join(AUTHOR_KINDS)}, got {kind!r}")
    name = get("name")
    if name is not None and not isinstance(name, str):
        raise PostError(f"author.name: expected a string, got {type(name).__name__}")
    followers = get("followers", 0)
    if followers is None:
        followers = 0
    elif type(followers) is not int or not 0 <= followers <= MAX_COUNT:
        followers = _non_negative_int(followers, "author.followers")
    return Author(None if author_id is None else str(author_id), name, followers, verified, kind)


def _parse_metrics(value: Any) -> Metrics:
    if value is None:
        return Metrics()
    if not isinstance(value, dict):
        raise PostError(f"metrics: expected an object, got {type(value).__name__}")
    get = value.get
    reposts, comments, likes, views = counts = (get("reposts", 0), get("comments", 0), get("likes", 0), get("views", 0))
    if (type(reposts) is int and type(comments) is int and type(likes) is int and type(views) is int
            and 0 <= reposts <= MAX_COUNT and 0 <= comments <= MAX_COUNT and 0 <= likes <= MAX_COUNT
            and 0 <= views <= MAX_COUNT):
        return Metrics(reposts, comments, likes, views)
    # in METRIC_NAMES order, so that the first problem is the one named
    return Metrics(*(0 if raw is None else _non_negative_int(raw, f"metrics.{name}")
                     for name, raw in zip(METRIC_NAMES, counts)))


_KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_STRING_FIELDS + ("author", "metrics"))


def post_from_dict(obj: Any) -> Post:
    """Build a Post from decoded JSON, raising PostError with the first problem found."""
    if not isinstance(obj, dict):
        raise PostError(f"not a JSON object: got {type(obj).__name__}")
    get = obj.get
    post_id, platform, text, published_at = get("id"), get("platform"), get("text"), get("published_at")
    if post_id is None or platform is None or text is None or published_at is None:
        missing = [name for name in REQUIRED_FIELDS if get(name) is None]
        raise PostError(f"missing required field(s): {', '.join(missing)}")
    for name, value in (("id", post_id), ("platform", platform), ("text", text)):
        if not isinstance(value, str):
            raise PostError(f"{name}: expected a string, got {type(value).__name__}")
    if not post_id.strip():
        raise PostError("id: must not be empty")
    platform = platform.strip().lower()
    if not platform:
        raise PostError("platform: must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise PostError(f"text: longer than {MAX_TEXT_CHARS} characters ({len(text)})")
    title, url, lang, repost_of, source, fetched_at = optional = (
        get("title"), get("url"), get("lang"), get("repost_of"), get("source"), get("fetched_at"))
    for name, value in zip(OPTIONAL_STRING_FIELDS, optional):
        if value is not None and not isinstance(value, str):
            raise PostError(f"{name}: expected a string, got {type(value).__name__}")
    published = parse_time(published_at, "published_at")
    author = _parse_author(get("author"))
    metrics = _parse_metrics(get("metrics"))
    return Post(
        post_id, platform, text, published, title, url, lang or "zh", author, metrics, repost_of, source,
        parse_time(fetched_at, "fetched_at") if fetched_at else None,
        {k: v for k, v in obj.items() if k not in _KNOWN_FIELDS},
    )


def parse_post_strict(raw: bytes | str) -> Post:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogateescape")
    try:
        # the fast path: orjson accepts only valid UTF-8 and Unicode (no lone surrogates)
        # and standard JSON; anything it refuses takes the json-module path below, which
        # names the problem exactly as it always has (or accepts what that module accepts)
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _parse_post_slow(raw)
    try:
        post = post_from_dict(obj)
    except PostError:
        # orjson reads an integer beyond 64 bits as a float: the slow path gives the reason
        return _parse_post_slow(raw)
    if post.extra and _has_float(post.extra):
        return _parse_post_slow(raw)  # keep a huge integer in an unknown field an integer
    return post


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _parse_post_slow(raw: bytes) -> Post:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PostError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PostError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PostError("invalid JSON: nested too deeply") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _check_no_lone_surrogates(obj)
    return post_from_dict(obj)


# JSON may spell a lone UTF-16 surrogate as an escape; such a string is not Unicode text and
# cannot be written back as UTF-8 (it would crash every later stage), so it is rejected here.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_no_lone_surrogates(obj: Any) -> None:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PostError(f"invalid Unicode: lone surrogate {exc.object[exc.start]!r} in a string") from None


def parse_post(raw: bytes | str) -> Post | Rejected:
    """Parse one record; never raises for bad data."""
    try:
        return parse_post_strict(raw)
    except PostError as exc:
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogateescape")
        return Rejected(reason=str(exc), raw=data)
