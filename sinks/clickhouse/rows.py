"""Pure conversions from Yuqing's Kafka records (docs/internal-formats.md) to table rows.

A record that cannot become a row raises RowError with a one-line reason; the sink
stores it in `rejects` instead of dropping it. Column order here is the INSERT order.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import orjson

from core.post import AUTHOR_KINDS, PostError, parse_time

# ClickHouse DateTime is an unsigned 32-bit epoch.
_MIN_TS = 0
_MAX_TS = 2**32 - 1
LEVELS = ("low", "medium", "high")
POST_REQUIRED = ("id", "platform", "text", "published_at", "sentiment", "negative")
ALERT_EVENTS = ("raised", "lowered", "closed")  # "closed": an incident's end (scoring/incidents.py)
INCIDENT_KINDS = ("opened", "escalated", "updated", "lowered", "closed")
ALERT_ACTIONS = ("acked", "resolved", "escalated", "noted")

COLUMNS: dict[str, tuple[str, ...]] = {
    "posts": (
        "id", "platform", "brands", "categories", "match_brands", "match_categories",
        "author_id", "author_name", "author_kind", "followers", "verified", "text", "title",
        "url", "lang", "repost_of", "source", "sentiment", "negative", "reposts", "comments",
        "likes", "views", "published_at", "ingested_at",
    ),
    "risk_assessments": (
        "brand", "category", "window_start", "window_end", "posts", "negative_ratio",
        "influence", "severity", "volatility", "risk_score", "level", "first_detected_at",
        "computed_at",
    ),
    "alerts": (
        "alert_id", "event", "brand", "category", "level", "previous_level", "at",
        "first_detected_at", "window_start", "window_end", "posts", "negative_ratio",
        "influence", "severity", "volatility", "risk_score", "playbook_title",
        "playbook_owner", "first_deadline_at", "examples", "playbook", "deadlines",
        "incident_id", "kind", "key_alert_id", "incident_level", "categories",
    ),
    "alert_actions": ("alert_id", "action", "actor", "at", "note"),
    "rejects": (
        "reject_id", "reason", "raw", "raw_b64", "stage", "source", "topic",
        "kafka_partition", "kafka_offset", "rejected_at",
    ),
}
# The column each table is partitioned by (one partition per day).
PARTITION_COLUMN = {
    "posts": "published_at",
    "risk_assessments": "window_start",
    "alerts": "at",
    "alert_actions": "at",
    "rejects": "rejected_at",
}


class RowError(ValueError):
    """The record does not fit the table; the message is the reject reason."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _time(obj: dict, name: str, required: bool = True, default: datetime | None = None) -> datetime | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise RowError(f"missing required field: {name}")
        return default
    try:
        parsed = parse_time(value, name)
    except PostError as exc:
        raise RowError(str(exc)) from None
    if not _MIN_TS <= parsed.timestamp() <= _MAX_TS:
        raise RowError(f"{name}: {value!r} is outside ClickHouse DateTime range (1970..2106)")
    return parsed


def _str(obj: dict, name: str, required: bool = False) -> str:
    value = obj.get(name)
    if value is None:
        if required:
            raise RowError(f"missing required field: {name}")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowError(f"{name}: expected a string, got {type(value).__name__}")
    value = str(value)
    if required and not value.strip():
        raise RowError(f"{name}: must not be empty")
    return value


def _int(obj: dict, name: str, required: bool = False, bits: int = 64) -> int:
    value = obj.get(name)
    if value is None:
        if required:
            raise RowError(f"missing required field: {name}")
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"{name}: expected an integer, got {type(value).__name__}")
    if not 0 <= value < 2**bits:
        raise RowError(f"{name}: {value} is outside 0..2^{bits}-1")
    return value


def _unit(obj: dict, name: str, required: bool = True) -> float:
    value = obj.get(name)
    if value is None:
        if required:
            raise RowError(f"missing required field: {name}")
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError(f"{name}: expected a number, got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:  # also refuses NaN
        raise RowError(f"{name}: {value} is outside 0..1")
    return float(value)


def _choice(obj: dict, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if value not in choices:
        raise RowError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _str_list(obj: dict, name: str) -> list[str]:
    value = obj.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(f"{name}: expected a list of strings")
    return value


def decode_json(raw: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)  # fast; what it refuses, the json module names below
    except orjson.JSONDecodeError:
        obj = _decode_json_slow(raw)
    if not isinstance(obj, dict):
        raise RowError(f"not a JSON object: got {type(obj).__name__}")
    return obj


def _decode_json_slow(raw: bytes) -> Any:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RowError(f"invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise RowError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise RowError("invalid JSON: nested too deeply") from None
    return obj


def _pairs(obj: dict, brands: list[str], categories: list[str]) -> tuple[list[str], list[str]]:
    """The (brand, category) pairs; without `matches`, every brand with every category."""
    matches = obj.get("matches")
    if matches is None:
        cats = categories or ["general"]
        pairs = [(b, c) for b in brands for c in cats]
    else:
        if not isinstance(matches, list):
            raise RowError("matches: expected a list of {brand, category}")
        pairs = []
        for m in matches:
            if not isinstance(m, dict) or not isinstance(m.get("brand"), str):
                raise RowError("matches: each item needs a string brand")
            category = m.get("category") or "general"
            if not isinstance(category, str):
                raise RowError("matches: category must be a string")
            pairs.append((m["brand"], category))
    pairs = list(dict.fromkeys(pairs))
    return [b for b, _ in pairs], [c for _, c in pairs]


_POST_TEXT_FIELDS = ("author_id", "author_name", "text", "title", "url", "lang", "repost_of", "source")
_POST_COUNT_FIELDS = ("followers", "reposts", "comments", "likes", "views")
_UINT64_END = 2**64


class _NotPlain(Exception):
    """The record needs the field-by-field path (an error to name, or a rare case)."""


_last_ingested: tuple[str, datetime] = ("", datetime.min)


def _plain_time(value: Any) -> datetime:
    """`_time` for the fast path: any problem sends the record to the checked path, which
    names it."""
    try:
        parsed = parse_time(value, "")
    except PostError:
        raise _NotPlain from None
    if not _MIN_TS <= parsed.timestamp() <= _MAX_TS:
        raise _NotPlain
    return parsed


def _post_row_plain(obj: dict) -> tuple:
    """The same row as `_post_row_checked` for a record that is exactly what the job writes,
    at a fraction of the cost (one pass, no per-field calls); anything else raises _NotPlain."""
    global _last_ingested
    get = obj.get
    pid, platform = get("id"), get("platform")
    if type(pid) is not str or type(platform) is not str or not pid.strip() or not platform.strip():
        raise _NotPlain
    if type(get("text")) is not str:  # required
        raise _NotPlain
    brands, categories, matches = get("brands") or [], get("categories") or [], get("matches")
    if type(brands) is not list or type(categories) is not list or type(matches) is not list:
        raise _NotPlain
    for value in brands:
        if type(value) is not str:
            raise _NotPlain
    for value in categories:
        if type(value) is not str:
            raise _NotPlain
    pairs = []
    for m in matches:
        if type(m) is not dict:
            raise _NotPlain
        brand, category = m.get("brand"), m.get("category") or "general"
        if type(brand) is not str or type(category) is not str:
            raise _NotPlain
        pairs.append((brand, category))
    if len(pairs) > 1:
        pairs = list(dict.fromkeys(pairs))
    texts = []
    for name in _POST_TEXT_FIELDS:
        value = get(name)
        if value is None:
            value = ""
        elif type(value) is not str:
            raise _NotPlain
        texts.append(value)
    counts = []
    for name in _POST_COUNT_FIELDS:
        value = get(name)
        if value is None:
            value = 0
        elif type(value) is not int or not 0 <= value < _UINT64_END:
            raise _NotPlain
        counts.append(value)
    kind = get("author_kind")
    if kind is None:
        kind = "user"
    elif kind not in AUTHOR_KINDS:
        raise _NotPlain
    verified, negative, sentiment = get("verified", False), get("negative"), get("sentiment")
    if verified is not None and type(verified) is not bool or type(negative) is not bool:
        raise _NotPlain
    if type(sentiment) is not float and type(sentiment) is not int or not 0.0 <= sentiment <= 1.0:
        raise _NotPlain
    published = _plain_time(get("published_at"))
    ingested = get("ingested_at")
    if ingested is None:
        raise _NotPlain
    if ingested != _last_ingested[0]:  # one value per job batch: parse it once
        _last_ingested = (ingested, _plain_time(ingested))
    author_id, author_name, text, title, url, lang, repost_of, source = texts
    followers, reposts, comments, likes, views = counts
    return (
        pid, platform.strip().lower(), brands, categories, [b for b, _ in pairs], [c for _, c in pairs],
        author_id, author_name, kind, followers, 1 if verified else 0, text, title, url, lang or "zh",
        repost_of, source, float(sentiment), 1 if negative else 0, reposts, comments, likes, views,
        published, _last_ingested[1],
    )


def post_row(obj: dict) -> tuple:
    """A `posts.scored` record -> a `posts` row (RowError names what does not fit)."""
    try:
        return _post_row_plain(obj)
    except _NotPlain:
        return _post_row_checked(obj)


def _post_row_checked(obj: dict) -> tuple:
    """A `posts.scored` record -> a `posts` row, each field checked with its own reason."""
    missing = [f for f in POST_REQUIRED if obj.get(f) is None]
    if missing:
        raise RowError(f"missing required field(s): {', '.join(missing)}")
    brands = _str_list(obj, "brands")
    categories = _str_list(obj, "categories")
    match_brands, match_categories = _pairs(obj, brands, categories)
    verified = obj.get("verified", False)
    if verified is not None and not isinstance(verified, bool):
        raise RowError(f"verified: expected a boolean, got {type(verified).__name__}")
    negative = obj.get("negative")
    if not isinstance(negative, bool):
        raise RowError("negative: expected a boolean" if negative is not None else "missing required field: negative")
    return (
        _str(obj, "id", required=True),
        _str(obj, "platform", required=True).strip().lower(),
        brands,
        categories,
        match_brands,
        match_categories,
        _str(obj, "author_id"),
        _str(obj, "author_name"),
        _choice(obj, "author_kind", AUTHOR_KINDS, default="user"),
        _int(obj, "followers"),
        1 if verified else 0,
        _str(obj, "text"),
        _str(obj, "title"),
        _str(obj, "url"),
        _str(obj, "lang") or "zh",
        _str(obj, "repost_of"),
        _str(obj, "source"),
        _unit(obj, "sentiment"),
        1 if negative else 0,
        _int(obj, "reposts"),
        _int(obj, "comments"),
        _int(obj, "likes"),
        _int(obj, "views"),
        _time(obj, "published_at"),
        _time(obj, "ingested_at", required=False, default=_now()),
    )


def assessment_row(obj: dict) -> tuple:
    """A `risk.assessments` record (CONTRACTS §3) -> a `risk_assessments` row."""
    return (
        _str(obj, "brand", required=True),
        _str(obj, "category", required=True),
        _time(obj, "window_start"),
        _time(obj, "window_end"),
        _int(obj, "posts", required=True, bits=32),
        _unit(obj, "negative_ratio"),
        _unit(obj, "influence"),
        _unit(obj, "severity"),
        _unit(obj, "volatility"),
        _unit(obj, "risk_score"),
        _choice(obj, "level", LEVELS),
        _time(obj, "first_detected_at", required=False),
        _time(obj, "computed_at", required=False, default=_now()),
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def alert_row(obj: dict) -> tuple:
    """An `alerts` record -> an `alerts` row; nested parts kept as JSON strings."""
    playbook = obj.get("playbook") or {}
    if not isinstance(playbook, dict):
        raise RowError("playbook: expected an object")
    deadlines = obj.get("deadlines") or []
    examples = obj.get("examples") or []
    if not isinstance(deadlines, list) or not all(isinstance(d, dict) for d in deadlines):
        raise RowError("deadlines: expected a list of objects")
    if not isinstance(examples, list):
        raise RowError("examples: expected a list")
    due = [_time(d, "due_at") for d in deadlines if d.get("due_at") is not None]
    categories = obj.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, dict) for c in categories):
        raise RowError("categories: expected a list of objects")
    kind = obj.get("kind")
    if kind is not None and kind not in INCIDENT_KINDS:
        raise RowError(f"kind: must be one of {', '.join(INCIDENT_KINDS)}")
    closed = obj.get("event") == "closed"
    if closed and kind != "closed":
        raise RowError("event: closed only on an incident's close record (kind closed)")
    return (
        _str(obj, "alert_id", required=True),
        _choice(obj, "event", ALERT_EVENTS),
        _str(obj, "brand", required=True),
        _str(obj, "category", required=True),
        _choice(obj, "level", LEVELS),
        _choice(obj, "previous_level", LEVELS, default="low"),
        _time(obj, "at"),
        _time(obj, "first_detected_at", required=False) or _time(obj, "at"),
        _time(obj, "window_start", required=not closed) or _time(obj, "at"),  # a close has no window
        _time(obj, "window_end", required=not closed) or _time(obj, "at"),
        _int(obj, "posts", bits=32),
        _unit(obj, "negative_ratio", required=False),
        _unit(obj, "influence", required=False),
        _unit(obj, "severity", required=False),
        _unit(obj, "volatility", required=False),
        _unit(obj, "risk_score", required=False),
        _str(playbook, "title"),
        _str(playbook, "owner"),
        min(due) if due else None,
        _json(examples),
        _json(playbook),
        _json(deadlines),
        _str(obj, "incident_id"),
        kind or "",
        _str(obj, "key_alert_id"),
        _choice(obj, "incident_level", LEVELS, default=obj.get("level") if obj.get("level") in LEVELS else "low"),
        _json(categories),
    )


def action_row(alert_id: str, action: str, actor: str, at: datetime | None = None, note: str = "") -> tuple:
    """One step of the response clock (ack, resolve, …) for `alert_actions`."""
    if action not in ALERT_ACTIONS:
        raise RowError(f"action: expected one of {', '.join(ALERT_ACTIONS)}, got {action!r}")
    if not alert_id:
        raise RowError("alert_id: must not be empty")
    at = at or _now()
    if at.tzinfo is None:
        raise RowError("at: timestamp lacks a UTC offset")
    return (alert_id, action, actor, at, note)


def reject_id(stage: str, source: str, topic: str, partition, offset, raw_b64: str, reason: str) -> str:
    """Stable id: the same bad record rejected again (replay, retry) is one reject."""
    key = "\x1f".join(str(x) for x in (stage, source, topic, partition, offset, raw_b64, reason))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _opt_int(obj: dict, name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"{name}: expected an integer, got {type(value).__name__}")
    return value


def dlq_row(obj: dict) -> tuple:
    """A `posts.dlq` record -> a `rejects` row (accepts `raw_hex` from older producers)."""
    raw = obj.get("raw")
    if raw is not None and not isinstance(raw, str):
        raise RowError("raw: expected a string")
    raw_b64 = obj.get("raw_b64")
    if raw_b64 is None and obj.get("raw_hex"):
        try:
            raw_b64 = base64.b64encode(bytes.fromhex(obj["raw_hex"])).decode("ascii")
        except (ValueError, TypeError):
            raise RowError("raw_hex: not valid hex") from None
    if raw_b64 is None:
        raw_b64 = base64.b64encode((raw or "").encode("utf-8")).decode("ascii")
    if not isinstance(raw_b64, str):
        raise RowError("raw_b64: expected a string")
    reason = _str(obj, "reason", required=True)
    stage = _str(obj, "stage") or "unknown"
    source, topic = _str(obj, "source"), _str(obj, "topic")
    partition, offset = _opt_int(obj, "partition"), _opt_int(obj, "offset")
    return (
        reject_id(stage, source, topic, partition, offset, raw_b64, reason),
        reason,
        raw or "",
        raw_b64,
        stage,
        source,
        topic,
        partition,
        offset,
        _time(obj, "rejected_at", required=False, default=_now()),
    )


def sink_reject_row(reason: str, raw: bytes, topic: str, partition: int, offset: int) -> tuple:
    """A record the sink itself could not store, with its Kafka position."""
    raw_b64 = base64.b64encode(raw).decode("ascii")
    return (
        reject_id("sink", "clickhouse-sink", topic, partition, offset, raw_b64, reason),
        reason,
        raw.decode("utf-8", errors="replace"),
        raw_b64,
        "sink",
        "clickhouse-sink",
        topic,
        partition,
        offset,
        _now(),
    )
