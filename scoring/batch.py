"""Per-post work done in batches: parse, validate, match, sentiment, features.

This is what the PyFlink job's vectorised (pandas) UDF calls once per Arrow batch, so
the Python cost is paid per batch, not per record. Its output is one row per input record
with the typed columns of `OUTPUT_COLUMNS` (the UDF's ROW result): Flink SQL reads them
as they are, with nothing to parse on the JVM.

* kind "S" (scored: valid and matched at least one brand): `payload` = the `posts.scored`
  JSON, `keys` = the ids of its (brand, category) keys (`key_id`), the post's
  `PostFeatures` in the feature columns, and `example` = its example-candidate string
  (`example_rank`) when it is the best candidate of one of its keys in its slide within
  this batch, else NULL: the window's MAX(example) only needs each batch's best, and the
  other candidates would be carried through the windows for nothing; `slide_pos` = the
  position of its slide (by the event time Flink windows it by) within a window
  (`features.slide_position`), which the windows count posts by.
* kind "U" (valid, matched nothing): every other column NULL. Counted, not stored.
* kind "E" (rejected): `payload` = the dead-letter JSON (docs/internal-formats.md).
"""
from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import orjson

from scoring.features import SLIDE_POSITION_COLUMN, FeatureConfig, PostFeatures, post_features, slide_position
from scoring.matching import Matcher, MatchResult
from scoring.watchlist import GENERAL, Watchlist
from core.post import Post, PostError, parse_post_strict

US = "\x1f"  # separates an example's rank from its JSON (JSON escapes it)

# The per-post columns, in PostFeatures order, with their Flink SQL types (every integer
# BIGINT, so that window sums never overflow).
FEATURE_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (f.name, "STRING" if f.type == "str" else "BIGINT") for f in fields(PostFeatures))
# The UDF's ROW result, in order.
OUTPUT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "STRING"), ("payload", "BYTES"), ("keys", "ARRAY<BIGINT>"),
    *FEATURE_COLUMNS,
    (SLIDE_POSITION_COLUMN, "BIGINT"),
    ("example", "STRING"),
)
EXAMPLE_TEXT_CHARS = 200
_FEATURE_VALUES = operator.attrgetter(*(name for name, _ in FEATURE_COLUMNS))


def key_pairs(watchlist: Watchlist) -> tuple[tuple[str, str], ...]:
    """Every (brand, category) key a post can have."""
    categories = [c.name for c in watchlist.categories]
    if GENERAL not in categories:
        categories.append(GENERAL)
    return tuple((b.name, c) for b in watchlist.brands for c in categories)


def key_id(pair: tuple[str, str]) -> int:
    """A key's id: the job groups windows by it (an integer is cheaper to carry and hash than
    two strings) and names the key again from `key_pairs`. A hash of the names, not a
    position, so that editing the watchlist never hands a restored window to another key."""
    digest = hashlib.blake2b("\x1f".join(pair).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # a positive BIGINT


def key_ids(watchlist: Watchlist) -> dict[tuple[str, str], int]:
    ids = {pair: key_id(pair) for pair in key_pairs(watchlist)}
    if len(set(ids.values())) != len(ids):  # 63-bit hashes: not expected in any real watchlist
        raise ValueError("two watchlist keys share an id; rename one brand or category")
    return ids


@dataclass(frozen=True)
class BatchCounts:
    """What one batch did, for metrics (bounded labels: platform, brand)."""

    scored: int
    unmatched: int
    rejected: int
    by_platform: dict[str, int]
    by_brand: dict[str, int]
    lag_s: float | None
    rejected_reasons: tuple[str, ...] = ()


def example_weight(negative: bool, reach: int, engagement: int) -> tuple[int, int]:
    """What `example_rank` orders by, before its tie-break on the example's JSON."""
    return int(negative), min(reach + engagement, 10 ** 15 - 1)


def example_rank(post: Post, negative: bool, reach: int, engagement: int) -> str:
    """Example posts ranked negative first, then by reach + engagement, as a string whose
    lexicographic MAX in SQL picks the best one (zero-padded so that order is numeric)."""
    neg, weight = example_weight(negative, reach, engagement)
    example = {"id": post.id, "text": post.text[:EXAMPLE_TEXT_CHARS], "platform": post.platform,
               "author": post.author.name or post.author.id, "url": post.url}
    return f"{neg}{weight:015d}{US}" + orjson.dumps(example).decode()


def decode_example(value: str | None) -> dict[str, Any] | None:
    if not value or US not in value:
        return None
    return json.loads(value.split(US, 1)[1])


def scored_record(post: Post, match: MatchResult, sentiment: float, negative: bool, ingested_at: str) -> dict[str, Any]:
    a, m = post.author, post.metrics
    return {
        "id": post.id, "platform": post.platform, "text": post.text, "title": post.title, "url": post.url,
        "lang": post.lang, "published_at": post.published_at.isoformat(), "ingested_at": ingested_at,
        "author_id": a.id, "author_name": a.name, "author_kind": a.kind, "followers": a.followers,
        "verified": a.verified, "reposts": m.reposts, "comments": m.comments, "likes": m.likes,
        "views": m.views, "repost_of": post.repost_of, "source": post.source,
        "sentiment": round(float(sentiment), 4), "negative": negative,
        "brands": list(match.brands), "categories": list(match.categories),
        "matches": [{"brand": b, "category": c} for b, c in match.pairs],
    }


@dataclass
class BatchOutput:
    """The columns of one batch's result (OUTPUT_COLUMNS order), one list per column."""

    columns: dict[str, list]

    def __len__(self) -> int:
        return len(self.columns["kind"])

    def row(self, i: int) -> dict[str, Any]:
        return {name: values[i] for name, values in self.columns.items()}


class PostScorer:
    """Loaded once per worker (in the UDF's open()); `score_batch` is the hot path."""

    def __init__(self, watchlist: Watchlist, sentiment: Callable[[Sequence[str]], Sequence[float]],
                 features: FeatureConfig | None = None, matcher: Matcher | None = None,
                 slide_ms: int = 60_000, window_slides: int = 10):
        self.matcher = matcher or Matcher(watchlist)
        self.sentiment = sentiment
        self.features = features or FeatureConfig()
        self.slide_ms = slide_ms
        self.window_slides = window_slides
        self.key_ids = key_ids(watchlist)

    def score_batch(self, raws: Sequence[bytes | str], partitions: Sequence[int | None] | None = None,
                    offsets: Sequence[int | None] | None = None, topic: str | None = None,
                    stage: str = "job", timestamps_ms: Sequence[int] | None = None,
                    ) -> tuple[BatchOutput, BatchCounts]:
        """`timestamps_ms` are the records' event times as Flink windows them (the Kafka
        timestamp); without them the posts' own `published_at`."""
        n = len(raws)
        kinds: list[str] = ["U"] * n
        # bytes: the JVM hands them to Kafka as they are (a STRING would be decoded from
        # UTF-8 and encoded again on the way through the job)
        payloads: list[bytes | None] = [None] * n
        keys: list[list[int] | None] = [None] * n
        features: list[list] = [[None] * n for _ in FEATURE_COLUMNS]
        examples: list[str | None] = [None] * n
        positions: list[int | None] = [None] * n
        posts: list[tuple[int, Post]] = []
        reasons: list[str] = []
        for i, raw in enumerate(raws):
            if raw is None:
                raw = b""
            try:
                posts.append((i, parse_post_strict(raw)))
            except PostError as exc:
                reasons.append(str(exc))
                data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
                from core.post import Rejected

                dlq = Rejected(str(exc), data).to_dlq_dict(
                    stage, topic=topic,
                    partition=None if partitions is None else _int_or_none(partitions[i]),
                    offset=None if offsets is None else _int_or_none(offsets[i]))
                kinds[i] = "E"
                payloads[i] = json.dumps(dlq, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
        matches = self.matcher.match_many([p.text for _, p in posts], [p.title for _, p in posts])
        hits = [(i, p, m) for (i, p), m in zip(posts, matches) if m]
        scores = self.sentiment([p.text for _, p, _ in hits]) if hits else []
        now = datetime.now(timezone.utc)
        ingested_at = now.isoformat()
        cut = self.features.negative_below
        feature_values = _FEATURE_VALUES
        by_platform: dict[str, int] = {}
        by_brand: dict[str, int] = {}
        newest_ms = None
        # (key id, slide) -> (example_weight, row) of the best candidate so far; the example
        # string is built only for winners, and for the rows of a tie (its JSON decides)
        best: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
        candidates: dict[int, str] = {}
        hit_rows: dict[int, tuple[Post, bool, PostFeatures]] = {}

        def candidate(row_index: int) -> str:
            text = candidates.get(row_index)
            if text is None:
                p, neg, f = hit_rows[row_index]
                text = candidates[row_index] = example_rank(p, neg, f.reach, f.engagement)
            return text
        for _, post in posts:
            by_platform[post.platform] = by_platform.get(post.platform, 0) + 1
        for (i, post, match), sentiment in zip(hits, scores):
            sentiment = float(sentiment)
            negative = sentiment < cut
            ts = post.published_ms
            newest_ms = ts if newest_ms is None or ts > newest_ms else newest_ms
            row = post_features(post, negative, sentiment, match, self.features, ts)
            for column, value in zip(features, feature_values(row)):
                column[i] = value
            ids = [self.key_ids[pair] for pair in dict.fromkeys(match.pairs)]
            kinds[i], keys[i] = "S", ids
            record = scored_record(post, match, sentiment, negative, ingested_at)
            for brand in record["brands"]:  # MatchResult.brands is built anew on each use
                by_brand[brand] = by_brand.get(brand, 0) + 1
            payloads[i] = orjson.dumps(record)
            weight = example_weight(negative, row.reach, row.engagement)
            hit_rows[i] = (post, negative, row)
            event_ms = ts if timestamps_ms is None else int(timestamps_ms[i])
            slide = event_ms // self.slide_ms
            positions[i] = slide_position(event_ms, self.slide_ms, self.window_slides)
            for key_id in ids:
                held = best.get((key_id, slide))
                if (held is None or weight > held[0]
                        or (weight == held[0] and candidate(i) > candidate(held[1]))):
                    best[(key_id, slide)] = (weight, i)
        for _, i in best.values():
            examples[i] = candidate(i)
        lag = None if newest_ms is None else max(0.0, now.timestamp() - newest_ms / 1000.0)
        counts = BatchCounts(len(hits), len(posts) - len(hits), len(reasons), by_platform, by_brand, lag,
                             tuple(reasons))
        columns = {"kind": kinds, "payload": payloads, "keys": keys}
        columns.update({name: values for (name, _), values in zip(FEATURE_COLUMNS, features)})
        columns[SLIDE_POSITION_COLUMN] = positions
        columns["example"] = examples
        return BatchOutput(columns), counts


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def decode(output: BatchOutput, i: int, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One output row as plain data (tests and tools; the job reads the columns in SQL)."""
    names = {key_id(pair): pair for pair in pairs}
    row = output.row(i)
    kind = row["kind"]
    if kind == "E":
        return {"kind": "E", "dlq": json.loads(row["payload"])}
    if kind == "U":
        return {"kind": "U"}
    feature = {name: row[name] for name, _ in FEATURE_COLUMNS}
    keys = [dict(zip(("brand", "category"), names[k]), **feature) for k in row["keys"]]
    return {"kind": "S", "scored": json.loads(row["payload"]), "keys": keys,
            "example": decode_example(row["example"])}
