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


@dataclass(frozen=True, slots=True)
class Author:
    id: str | None = None
    name: str | None = None
    followers: int = 0
    verified: bool = False
    kind: str = "user"


@dataclass(frozen=True, slots=True)
class Metrics:
    reposts: int = 0
    comments: int = 0
    likes: int = 0
    views: int = 0

    @property
    def engagement(self) -> int:
        return self.reposts + self.comments + self.likes


@dataclass(frozen=True, slots=True)
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


def _optional_str(obj: dict[str, Any], name: str, where: str = "") -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PostError(f"{where}{name}: expected a string, got {type(value).__name__}")
    return value


def _parse_author(value: Any) -> Author:
    if value is None:
        return Author()
    if not isinstance(value, dict):
        raise PostError(f"author: expected an object, got {type(value).__name__}")
    author_id = value.get("id")
    if isinstance(author_id, bool) or (author_id is not None and not isinstance(author_id, (str, int))):
        raise PostError(f"author.id: expected a string, got {type(author_id).__name__}")
    verified = value.get("verified", False)
    if not isinstance(verified, bool):
        raise PostError(f"author.verified: expected a boolean, got {type(verified).__name__}")
    kind = value.get("kind", "user")
    if kind is None:
        kind = "user"
    if kind not in AUTHOR_KINDS:
        raise PostError(f"author.kind: expected one of {', '.join(AUTHOR_KINDS)}, got {kind!r}")
    followers = value.get("followers", 0)
    return Author(
        id=None if author_id is None else str(author_id),
        name=_optional_str(value, "name", "author."),
        followers=0 if followers is None else _non_negative_int(followers, "author.followers"),
        verified=verified,
        kind=kind,
    )


def _parse_metrics(value: Any) -> Metrics:
    if value is None:
        return Metrics()
    if not isinstance(value, dict):
        raise PostError(f"metrics: expected an object, got {type(value).__name__}")
    counts = {}
    for name in METRIC_NAMES:
        raw = value.get(name, 0)
        counts[name] = 0 if raw is None else _non_negative_int(raw, f"metrics.{name}")
    return Metrics(**counts)


def post_from_dict(obj: Any) -> Post:
    """Build a Post from decoded JSON, raising PostError with the first problem found."""
    if not isinstance(obj, dict):
        raise PostError(f"not a JSON object: got {type(obj).__name__}")
    missing = [name for name in REQUIRED_FIELDS if obj.get(name) is None]
    if missing:
        raise PostError(f"missing required field(s): {', '.join(missing)}")
    for name in ("id", "platform", "text"):
        if not isinstance(obj[name], str):
            raise PostError(f"{name}: expected a string, got {type(obj[name]).__name__}")
    if not obj["id"].strip():
        raise PostError("id: must not be empty")
    if not obj["platform"].strip():
        raise PostError("platform: must not be empty")
    if len(obj["text"]) > MAX_TEXT_CHARS:
        raise PostError(f"text: longer than {MAX_TEXT_CHARS} characters ({len(obj['text'])})")
    for name in OPTIONAL_STRING_FIELDS:
        _optional_str(obj, name)
    known = set(REQUIRED_FIELDS) | set(OPTIONAL_STRING_FIELDS) | {"author", "metrics"}
    return Post(
        id=obj["id"],
        platform=obj["platform"].strip().lower(),
        text=obj["text"],
        published_at=parse_time(obj["published_at"], "published_at"),
        title=obj.get("title"),
        url=obj.get("url"),
        lang=obj.get("lang") or "zh",
        author=_parse_author(obj.get("author")),
        metrics=_parse_metrics(obj.get("metrics")),
        repost_of=obj.get("repost_of"),
        source=obj.get("source"),
        fetched_at=parse_time(obj["fetched_at"], "fetched_at") if obj.get("fetched_at") else None,
        extra={k: v for k, v in obj.items() if k not in known},
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
