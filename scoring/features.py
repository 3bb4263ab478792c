"""Per-post numbers and their window aggregates: the contract between Python and Flink SQL.

The Flink job turns each (post, key) into a `PostFeatures` row with `post_features`, lets
Flink SQL aggregate the rows of each sliding window with the expressions in
`WINDOW_AGGREGATES`, and hands the aggregated row to the pure scoring functions as a
`WindowStats`. The reference engine (scoring/engine.py) builds `WindowStats` from the
same rows with `aggregate`, so both paths agree by construction.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from typing import Any, Iterable

from core.post import Post

TIERS = ("media", "kol", "official", "user")


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How a post's author is tiered; defaults fit Weibo-scale follower counts."""

    negative_below: float = 0.5  # sentiment (probability positive) under this is negative
    kol_verified_followers: int = 1_000_000  # a verified "user" above this counts as kol
    kol_followers: int = 5_000_000  # any "user" above this counts as kol
    big_followers: int = 1_000_000  # media/kol/official above this is a "big account"


@dataclass(frozen=True, slots=True)
class PostFeatures:
    """One post's contribution to one (brand, category) key. Flat: one SQL column each."""

    platform: str
    author: int  # author_hash: what distinct authors are counted by
    event_ms: int
    negative: int  # 0/1
    neg_intensity: int  # negative posts: 1 - sentiment in thousandths (integer, so sums are exact), else 0
    media: int
    kol: int
    official: int
    user: int
    big_account: int  # 0/1: media/kol/official with >= big_followers followers
    engagement: int  # reposts + comments + likes
    followers: int
    reach: int  # max(followers, views): the audience one post can reach
    legal: int  # 0/1: names a regulator or legal step
    trending: int  # 0/1: hot-search / spreading words

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def author_hash(author_key: str) -> int:
    """A stable 63-bit id of an author key ("platform:id"): the job's windows count distinct
    authors by it, the plain engine too. A BIGINT key costs the JVM's distinct-count state a
    fraction of what a string does (hashing, equality, copies in every slice merge); two
    authors share an id with probability ~n^2/2^64 (n = 10^6 authors in one window:
    about one in 18 million)."""
    digest = hashlib.blake2b(author_key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def author_tier(kind: str, followers: int, verified: bool, cfg: FeatureConfig = FeatureConfig()) -> str:
    """The platform's `kind`, promoted to kol for ordinary accounts with a big audience."""
    if kind in ("media", "kol", "official"):
        return kind
    if followers >= cfg.kol_followers or (verified and followers >= cfg.kol_verified_followers):
        return "kol"
    return "user"


def post_features(
    post: Post,
    negative: bool,
    sentiment: float,
    flags: Any = None,
    cfg: FeatureConfig = FeatureConfig(),
    event_ms: int | None = None,
) -> PostFeatures:
    """`flags` is anything with `legal` and `trending` truthy attributes (a MatchResult);
    `event_ms` saves recomputing `post.published_ms` when the caller has it already."""
    author = post.author
    tier = author_tier(author.kind, author.followers, author.verified, cfg)
    # Distinct authors need a stable id; fall back to the post id (one author per post).
    author_key = f"{post.platform}:{author.id}" if author.id else (
        f"{post.platform}:@{author.name}" if author.name else post.id)
    return PostFeatures(
        platform=post.platform,
        author=author_hash(author_key),
        event_ms=post.published_ms if event_ms is None else event_ms,
        negative=int(bool(negative)),
        neg_intensity=round(1000 * (1.0 - min(max(float(sentiment), 0.0), 1.0))) if negative else 0,
        media=int(tier == "media"),
        kol=int(tier == "kol"),
        official=int(tier == "official"),
        user=int(tier == "user"),
        big_account=int(tier != "user" and author.followers >= cfg.big_followers),
        engagement=post.metrics.engagement,
        followers=author.followers,
        reach=max(author.followers, post.metrics.views),
        legal=int(bool(getattr(flags, "legal", False))),
        trending=int(bool(getattr(flags, "trending", False))),
    )


# field -> Flink SQL aggregate over the PostFeatures columns of one window and key.
WINDOW_AGGREGATES: dict[str, str] = {
    "posts": "COUNT(*)",
    "negative_posts": "SUM(negative)",
    "neg_intensity_sum": "SUM(neg_intensity)",
    "distinct_platforms": "COUNT(DISTINCT platform)",
    "distinct_authors": "COUNT(DISTINCT author)",
    "media_posts": "SUM(media)",
    "kol_posts": "SUM(kol)",
    "official_posts": "SUM(official)",
    "user_posts": "SUM(`user`)",
    "big_posts": "SUM(big_account)",
    "engagement_sum": "SUM(engagement)",
    "max_followers": "MAX(followers)",
    "max_reach": "MAX(reach)",
    "legal_hits": "SUM(legal)",
    "trending_hits": "SUM(trending)",
    "first_ms": "MIN(event_ms)",
    "last_ms": "MAX(event_ms)",
}


# The posts of the window's newest slide (`WindowStats.last_slide_posts`, the per-slide
# history the forecast is fitted to). An aggregate that named the window's end would stop
# Flink from aggregating per slide (every post would be aggregated once per window it is
# in: ten times), and a second, tumbling window joined on the end costs a second copy of
# every key row, its own aggregation and a join. Instead each post carries its slide's
# position modulo the slides per window (`slide_position`), the window counts posts per
# position (plain SUMs, merged per slide like the others), and the newest slide's count is
# picked by the window's end afterwards (`newest_slide_posts`). A window spans exactly
# `slides` consecutive slides, so the positions inside one window never collide, and a late
# post lands in its own slide's position, never in the newest one's.
SLIDE_POSITION_COLUMN = "slide_pos"


def slide_position(event_ms: int, slide_ms: int, slides: int) -> int:
    return (event_ms // slide_ms) % slides


def slide_count_name(position: int) -> str:
    return f"slide_posts_{position}"


def slide_count_aggregates(slides: int) -> dict[str, str]:
    """SQL aggregates: posts per slide position (one column per position of a window)."""
    return {slide_count_name(j): f"SUM(CASE WHEN {SLIDE_POSITION_COLUMN} = {j} THEN 1 ELSE 0 END)"
            for j in range(slides)}


def newest_slide_posts(row: dict[str, Any], window_end_ms: int, slide_ms: int, slides: int) -> int:
    """The count of the window's newest slide, from a row of `slide_count_aggregates`."""
    newest = slide_position(window_end_ms - slide_ms, slide_ms, slides)
    return int(row.get(slide_count_name(newest)) or 0)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Aggregates of one key's PostFeatures in one window (see WINDOW_AGGREGATES).

    `brand`, `category`, `window_start_ms`, `window_end_ms` are the GROUP BY columns
    (window_start/window_end of Flink's HOP table function, as epoch ms).
    """

    brand: str
    category: str
    window_start_ms: int
    window_end_ms: int
    posts: int = 0
    negative_posts: int = 0
    neg_intensity_sum: int = 0  # thousandths; every aggregate is an integer, so any order gives the same sum
    distinct_platforms: int = 0
    distinct_authors: int = 0
    media_posts: int = 0
    kol_posts: int = 0
    official_posts: int = 0
    user_posts: int = 0
    big_posts: int = 0
    engagement_sum: int = 0
    max_followers: int = 0
    max_reach: int = 0
    legal_hits: int = 0
    trending_hits: int = 0
    first_ms: int = 0
    last_ms: int = 0
    # posts in the window's newest slide: the per-slide history the forecast is fitted to
    # (not in WINDOW_AGGREGATES: see slide_count_aggregates)
    last_slide_posts: int = 0

    @property
    def negative_ratio(self) -> float:
        return self.negative_posts / self.posts if self.posts else 0.0

    @property
    def window_minutes(self) -> float:
        return max((self.window_end_ms - self.window_start_ms) / 60_000.0, 1e-9)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "WindowStats":
        """Build from an aggregated SQL row (dict); NULL aggregates (empty SUM) become 0."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            value = row.get(f.name)
            if f.name in ("brand", "category"):
                kwargs[f.name] = str(value)
            elif f.type == "float":
                kwargs[f.name] = float(value or 0.0)
            else:
                kwargs[f.name] = int(value or 0)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def aggregate(brand: str, category: str, start_ms: int, end_ms: int, rows: Iterable[PostFeatures]) -> WindowStats:
    """The plain-Python twin of WINDOW_AGGREGATES (used by the engine and the tests)."""
    acc = Accumulator()
    for row in rows:
        acc.add(row)
    return acc.stats(brand, category, start_ms, end_ms)


class Accumulator:
    """Mergeable partial aggregate (a pane), so sliding windows need not re-read posts."""

    __slots__ = ("posts", "sums", "platforms", "authors", "max_followers", "max_reach", "first_ms", "last_ms")
    _SUMS = ("negative", "neg_intensity", "media", "kol", "official", "user", "big_account",
             "engagement", "legal", "trending")

    def __init__(self) -> None:
        self.posts = 0
        self.sums = dict.fromkeys(self._SUMS, 0)
        self.platforms: set[str] = set()
        self.authors: set[int] = set()
        self.max_followers = 0
        self.max_reach = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def add(self, row: PostFeatures) -> None:
        self.posts += 1
        sums = self.sums
        for name in self._SUMS:
            sums[name] += getattr(row, name)
        self.platforms.add(row.platform)
        self.authors.add(row.author)
        self.max_followers = max(self.max_followers, row.followers)
        self.max_reach = max(self.max_reach, row.reach)
        self.first_ms = row.event_ms if self.first_ms is None else min(self.first_ms, row.event_ms)
        self.last_ms = row.event_ms if self.last_ms is None else max(self.last_ms, row.event_ms)

    def merge(self, other: "Accumulator") -> None:
        if not other.posts:
            return
        self.posts += other.posts
        for name in self._SUMS:
            self.sums[name] += other.sums[name]
        self.platforms |= other.platforms
        self.authors |= other.authors
        self.max_followers = max(self.max_followers, other.max_followers)
        self.max_reach = max(self.max_reach, other.max_reach)
        self.first_ms = other.first_ms if self.first_ms is None else min(self.first_ms, other.first_ms)
        self.last_ms = other.last_ms if self.last_ms is None else max(self.last_ms, other.last_ms)

    def stats(self, brand: str, category: str, start_ms: int, end_ms: int, last_slide_posts: int = 0) -> WindowStats:
        s = self.sums
        return WindowStats(last_slide_posts=last_slide_posts,
            brand=brand, category=category, window_start_ms=start_ms, window_end_ms=end_ms,
            posts=self.posts, negative_posts=s["negative"], neg_intensity_sum=s["neg_intensity"],
            distinct_platforms=len(self.platforms), distinct_authors=len(self.authors),
            media_posts=s["media"], kol_posts=s["kol"], official_posts=s["official"], user_posts=s["user"],
            big_posts=s["big_account"], engagement_sum=s["engagement"],
            max_followers=self.max_followers, max_reach=self.max_reach,
            legal_hits=s["legal"], trending_hits=s["trending"],
            first_ms=self.first_ms or 0, last_ms=self.last_ms or 0,
        )


def log_scale(value: float, ref: float) -> float:
    """log1p(value)/log1p(ref), clipped to 0..1: diminishing returns on counts."""
    if value <= 0:
        return 0.0
    return min(1.0, math.log1p(value) / math.log1p(ref))
