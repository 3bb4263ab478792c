"""Benchmark posts: a cached pool of synthetic posts re-identified into any number of posts,
and the crisis bursts of the latency trials.

Why a pool: `yuqing.synth` builds each post in Python (~50k posts/s), and the benchmark
must produce the same posts to Kafka and feed them to the plain-Python loop. A pool of
about 110k posts (four hours of a busy day: calm chatter for every watched brand, a
privacy crisis, a launch, a refund trickle and chatter about an unwatched brand) is made
once and cached as JSON templates under `.yuqing/bench/`; copy k of the pool is shifted
k pool-spans later in event time and its ids get a `~k` suffix, so 1 M posts are 9 copies
end to end with distinct ids and a continuous timeline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

POOL_VERSION = 1
POOL_MINUTES = 240
CST = timezone(timedelta(hours=8))
UNWATCHED_BRAND = "乐途商城"  # chatter that names no watched brand: matched against, then dropped
ID, REPOST, TS = "@@ID@@", "@@RP@@", "@@TS@@"


@dataclass(frozen=True)
class Pool:
    """Post templates with their event-time offsets (ms from the pool start), in arrival order."""

    entries: tuple[tuple[int, str, str], ...]  # (offset_ms, original id, template)
    span_ms: int

    def __len__(self) -> int:
        return len(self.entries)


def format_time(ms: int) -> str:
    """RFC 3339 in China time, like the crawlers write it."""
    return datetime.fromtimestamp(ms / 1000, CST).isoformat(timespec="seconds")


def pool_scenarios(watchlist, start: datetime):
    from yuqing.synth import calm_chatter, complaint_trickle, crisis, positive_launch

    names = [b.name for b in watchlist.brands]
    out = [calm_chatter(name, start, POOL_MINUTES, per_min=40) for name in names]
    out.append(calm_chatter(UNWATCHED_BRAND, start, POOL_MINUTES, per_min=100))
    out.append(crisis(names[0], "privacy", start + timedelta(minutes=60), minutes=180, peak_per_min=400))
    if len(names) > 1:
        out.append(complaint_trickle(names[1], "refund", start, POOL_MINUTES, per_min=5))
    if len(names) > 2:
        out.append(positive_launch(names[-1], start + timedelta(minutes=100), minutes=120, peak_per_min=300))
    return out


def template_of(post: dict[str, Any]) -> str:
    """The post as JSON with markers where the id, repost_of and published_at go."""
    post = dict(post)
    post.pop("synth", None)
    post["id"] = ID
    if post.get("repost_of"):
        post["repost_of"] = REPOST
    post["published_at"] = TS
    return json.dumps(post, ensure_ascii=False)


def build_pool(watchlist, seed: int = 1) -> Pool:
    from yuqing.synth import DEFAULT_START, generate

    start_ms = int(DEFAULT_START.timestamp() * 1000)
    posts = generate(pool_scenarios(watchlist, DEFAULT_START), watchlist, seed=seed, arrival_jitter_s=10)
    entries = []
    for post in posts:
        offset = int(datetime.fromisoformat(post["published_at"]).timestamp() * 1000) - start_ms
        entries.append((offset, post["id"] + ("|" + post["repost_of"] if post.get("repost_of") else ""),
                        template_of(post)))
    return Pool(tuple(entries), POOL_MINUTES * 60_000)


def load_pool(cache_dir: Path, watchlist_path: Path, seed: int = 1) -> Pool:
    """The pool from the cache, built and cached on first use (keyed by watchlist and seed)."""
    from scoring.watchlist import load_watchlist

    import hashlib

    digest = hashlib.sha1(Path(watchlist_path).read_bytes()).hexdigest()[:10]
    path = Path(cache_dir) / f"pool-v{POOL_VERSION}-{digest}-seed{seed}.jsonl"
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            entries = tuple(tuple(json.loads(line)) for line in handle)
        return Pool(entries, POOL_MINUTES * 60_000)
    pool = build_pool(load_watchlist(watchlist_path), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for entry in pool.entries:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return pool


def base_time_ms(pool: Pool, n: int, now_ms: int) -> int:
    """Where copy 0 starts: early enough that the last copy ends an hour before now (Kafka
    refuses timestamps far in the future), on a minute boundary so windows line up."""
    copies = -(-n // len(pool))
    base = now_ms - copies * pool.span_ms - 3_600_000
    return base - base % 60_000


def stream(pool: Pool, n: int, base_ms: int) -> Iterator[tuple[int, bytes, bytes]]:
    """`n` posts as (timestamp ms, key, value), ready for `posts.raw`, in arrival order."""
    sent = 0
    copy = 0
    while sent < n:
        shift = base_ms + copy * pool.span_ms
        suffix = f"~{copy}"
        for offset, ids, template in pool.entries:
            if sent >= n:
                return
            ts = shift + offset
            post_id, _, repost = ids.partition("|")
            post_id += suffix
            value = template.replace(ID, post_id, 1).replace(TS, format_time(ts), 1)
            if repost:
                value = value.replace(REPOST, repost + suffix, 1)
            yield ts, post_id.encode(), value.encode()
            sent += 1
        copy += 1


# ------------------------------------------------------------------ latency trials

def crisis_burst(watchlist, brand: str, category: str, pane_start_ms: int, posts: int = 300,
                 seed: int = 0) -> list[dict[str, Any]]:
    """About `posts` crisis posts about a never-seen brand, all inside one 1-minute pane.

    They are the 30th minute of a synthetic crisis (media and big-V accounts, six platforms,
    hot-search and legal words), moved to start at `pane_start_ms`, so that the first window
    holding them scores high for the fresh (brand, category) key.
    """
    from yuqing.synth import crisis, generate

    onset = datetime(2026, 1, 1, tzinfo=timezone.utc)
    scenario = crisis(brand, category, onset, minutes=31, peak_per_min=posts, peak_at=30)
    generated = generate([scenario], watchlist, seed=seed)
    lo = onset + timedelta(minutes=30)
    out = []
    for post in generated:
        when = datetime.fromisoformat(post["published_at"])
        if when < lo:
            continue
        ms = pane_start_ms + int((when - lo).total_seconds() * 1000) % 60_000
        post = dict(post, id=f"{post['id']}-{brand}-{pane_start_ms}", published_at=format_time(ms))
        post.pop("repost_of", None)
        post.pop("synth", None)
        out.append(post)
    return out


def closing_post(ts_ms: int, tag: str) -> dict[str, Any]:
    """A post naming no watched brand: it only moves event time (the watermark) forward."""
    return {"id": f"bench-tick:{tag}", "platform": "news", "text": "今日天气晴，气温回升。",
            "published_at": format_time(ts_ms), "source": "bench"}


def post_ms(post: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(post["published_at"]).timestamp() * 1000)


TRIAL_CHARS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"


def run_prefix(seed: int) -> str:
    """Three characters that differ between runs: Prometheus and Alertmanager remember a
    brand's high level for minutes, and must not page a new run's trial brand early."""
    k = len(TRIAL_CHARS)
    return "雷" + TRIAL_CHARS[(seed // k) % k] + TRIAL_CHARS[seed % k]


def trial_brands(n: int, prefix: str = "雷测") -> list[str]:
    """`n` distinct made-up brand names: the prefix and two more Chinese characters (no
    digits or Latin letters, which the matcher treats as ASCII words), one per trial."""
    k = len(TRIAL_CHARS)
    if n > k * k:
        raise ValueError(f"at most {k * k} trial brands")
    return [f"{prefix}{TRIAL_CHARS[i // k]}{TRIAL_CHARS[i % k]}" for i in range(n)]


def watchlist_with_brands(base: dict[str, Any], brands: list[str]) -> dict[str, Any]:
    """The base watchlist's categories and signals with these brands (no aliases)."""
    out = {key: value for key, value in base.items() if key != "brands"}
    out["brands"] = [{"name": name} for name in brands]
    return out
