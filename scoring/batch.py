"""Per-post work done in batches: parse, validate, match, sentiment, features.

This is what the PyFlink job's vectorised (pandas) UDF calls once per Arrow batch, so
the Python cost is paid per batch, not per record. Its output is one compact string per
input record that Flink SQL can take apart on the JVM with SPLIT_INDEX / SPLIT:

    kind GS part1 GS part2 GS part3

* kind "S" (scored: valid and matched at least one brand):
  part1 = the `posts.scored` JSON, part2 = keys separated by RS, each key being the
  `KEY_FIELDS` joined by US, part3 = the example-candidate string (see `example_rank`).
* kind "U" (valid, matched nothing): no parts. Counted, not stored.
* kind "E" (rejected): part1 = the dead-letter JSON (docs/internal-formats.md).

GS/RS/US are ASCII 0x1D/0x1E/0x1F: JSON escapes them, and they are removed from the few
free-text key fields, so they never occur inside a part.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import orjson

from scoring.features import FeatureConfig, post_features
from scoring.matching import Matcher, MatchResult
from scoring.watchlist import Watchlist
from yuqing.post import Post, PostError, parse_post_strict

GS, RS, US = "\x1d", "\x1e", "\x1f"
_STRIP = str.maketrans("", "", GS + RS + US)

# The order of fields in one key record; the SQL in scoring/job.py reads them by index.
KEY_FIELDS = (
    "brand", "category", "platform", "author", "event_ms", "negative", "neg_intensity",
    "media", "kol", "official", "user", "big_account", "engagement", "followers", "reach",
    "legal", "trending",
)
# Flink SQL type of each key field (for CAST after SPLIT_INDEX)
KEY_FIELD_TYPES = {
    "brand": "STRING", "category": "STRING", "platform": "STRING", "author": "STRING",
    "event_ms": "BIGINT", "neg_intensity": "DOUBLE", "engagement": "BIGINT", "followers": "BIGINT",
    "reach": "BIGINT",
}
EXAMPLE_TEXT_CHARS = 200


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


def example_rank(post: Post, negative: bool, reach: int, engagement: int) -> str:
    """Example posts ranked negative first, then by reach + engagement, as a string whose
    lexicographic MAX in SQL picks the best one (zero-padded so that order is numeric)."""
    weight = min(reach + engagement, 10 ** 15 - 1)
    example = {"id": post.id, "text": post.text[:EXAMPLE_TEXT_CHARS], "platform": post.platform,
               "author": post.author.name or post.author.id, "url": post.url}
    return f"{int(negative)}{weight:015d}{US}" + orjson.dumps(example).decode()


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


class PostScorer:
    """Loaded once per worker (in the UDF's open()); `score_batch` is the hot path."""

    def __init__(self, watchlist: Watchlist, sentiment: Callable[[Sequence[str]], Sequence[float]],
                 features: FeatureConfig | None = None, matcher: Matcher | None = None):
        self.matcher = matcher or Matcher(watchlist)
        self.sentiment = sentiment
        self.features = features or FeatureConfig()

    def score_batch(self, raws: Sequence[bytes | str], partitions: Sequence[int | None] | None = None,
                    offsets: Sequence[int | None] | None = None, topic: str | None = None,
                    stage: str = "job") -> tuple[list[str], BatchCounts]:
        n = len(raws)
        out: list[str] = [""] * n
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
                from yuqing.post import Rejected

                dlq = Rejected(str(exc), data).to_dlq_dict(
                    stage, topic=topic,
                    partition=None if partitions is None else _int_or_none(partitions[i]),
                    offset=None if offsets is None else _int_or_none(offsets[i]))
                out[i] = "E" + GS + json.dumps(dlq, ensure_ascii=False, separators=(",", ":"))
        matches = self.matcher.match_many([p.text for _, p in posts], [p.title for _, p in posts])
        hits = [(i, p, m) for (i, p), m in zip(posts, matches) if m]
        scores = self.sentiment([p.text for _, p, _ in hits]) if hits else []
        now = datetime.now(timezone.utc)
        ingested_at = now.isoformat()
        cut = self.features.negative_below
        by_platform: dict[str, int] = {}
        by_brand: dict[str, int] = {}
        newest_ms = None
        for _, post in posts:
            by_platform[post.platform] = by_platform.get(post.platform, 0) + 1
        for (i, post, match), sentiment in zip(hits, scores):
            sentiment = float(sentiment)
            negative = sentiment < cut
            ts = post.published_ms
            newest_ms = ts if newest_ms is None or ts > newest_ms else newest_ms
            row = post_features(post, negative, sentiment, match, self.features, ts)
            common = US.join((
                row.platform.translate(_STRIP), row.author.translate(_STRIP), str(row.event_ms),
                str(row.negative), repr(row.neg_intensity), str(row.media), str(row.kol), str(row.official),
                str(row.user), str(row.big_account), str(row.engagement), str(row.followers), str(row.reach),
                str(row.legal), str(row.trending),
            ))
            keys = RS.join(
                f"{b.translate(_STRIP)}{US}{c.translate(_STRIP)}{US}{common}" for b, c in dict.fromkeys(match.pairs)
            )
            for brand in match.brands:
                by_brand[brand] = by_brand.get(brand, 0) + 1
            scored = orjson.dumps(scored_record(post, match, sentiment, negative, ingested_at)).decode()
            out[i] = GS.join(("S", scored, keys, example_rank(post, negative, row.reach, row.engagement)))
        hit_rows = {i for i, _, _ in hits}
        for i, _ in posts:
            if i not in hit_rows:
                out[i] = "U"
        lag = None if newest_ms is None else max(0.0, now.timestamp() - newest_ms / 1000.0)
        counts = BatchCounts(len(hits), len(posts) - len(hits), len(reasons), by_platform, by_brand, lag,
                             tuple(reasons))
        return out, counts


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def decode(record: str) -> dict[str, Any]:
    """Take one output string apart (tests and tools; the job does this in SQL)."""
    parts = record.split(GS)
    kind = parts[0]
    if kind == "E":
        return {"kind": "E", "dlq": json.loads(parts[1])}
    if kind == "U":
        return {"kind": "U"}
    keys = []
    for key in parts[2].split(RS):
        values = key.split(US)
        keys.append(dict(zip(KEY_FIELDS, values)))
    return {"kind": "S", "scored": json.loads(parts[1]), "keys": keys, "example": decode_example(parts[3])}
