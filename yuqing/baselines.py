"""`yuqing baselines`: seed keys' normals (warm start) from ClickHouse history or a file of posts.

App layer: reads ClickHouse through the sinks' read-only query helper and hands the rows
to scoring's pure warm-start functions (scoring/warmstart.py); the job and `yuqing replay`
read the file with `--baselines`. Without a seed, a loud key is scored on absolute numbers
until its normal is learned (about an hour).
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

# Hourly rollup of the posts table per key and platform. Runs on ClickHouse 18.16: no CTEs,
# no window functions. Tier weights and the big-V promotion follow scoring/features.py
# (media 2, kol 1.5, official 0.5; a user with >= 5M followers, or verified with >= 1M,
# counts as kol); legal mentions are not stored, so a seed's legal normal is 0.
HISTORY_SQL = """
SELECT brand, category, toUInt32(toStartOfHour(published_at)) AS hour, platform,
       count() AS posts, sum(negative) AS negative_posts,
       sum(multiIf(author_kind = 'media', %(media)s,
                   author_kind = 'kol' OR (author_kind = 'user' AND (followers >= %(kol_followers)s
                       OR (verified = 1 AND followers >= %(kol_verified_followers)s))), %(kol)s,
                   author_kind = 'official', %(official)s, 0.0)) AS core_posts,
       sum(reposts + comments + likes) AS engagement,
       max(greatest(followers, views)) AS max_reach
FROM posts FINAL
ARRAY JOIN match_brands AS brand, match_categories AS category
WHERE published_at >= now() - toIntervalHour(%(hours)s)
GROUP BY brand, category, hour, platform
ORDER BY brand, category, hour
"""
MAX_HISTORY_ROWS = 5_000_000


def rows_to_history(rows: Iterable[tuple]) -> dict[tuple[str, str], list[Any]]:
    """(brand, category, hour_epoch_s, platform, posts, negative, core, engagement, reach)
    rows -> HistoryRows per key (one per hour, platforms folded into platform_posts)."""
    from scoring.warmstart import HistoryRow

    hours: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for brand, category, hour, _platform, posts, negative, core, engagement, reach in rows:
        h = hours[(str(brand), str(category))].setdefault(int(hour), {
            "posts": 0, "neg": 0, "core": 0.0, "eng": 0, "reach": 0, "platforms": []})
        h["posts"] += int(posts)
        h["neg"] += int(negative or 0)
        h["core"] += float(core or 0.0)
        h["eng"] += int(engagement or 0)
        h["reach"] = max(h["reach"], int(reach or 0))
        h["platforms"].append(int(posts))
    return {key: [HistoryRow(hour * 1000, 60.0, h["posts"], h["neg"], h["core"], h["eng"], 0, h["reach"],
                             tuple(h["platforms"])) for hour, h in sorted(by_hour.items())]
            for key, by_hour in hours.items()}


def _watchlist_keys(watchlist) -> set[tuple[str, str]] | None:
    if watchlist is None:
        return None
    from scoring.watchlist import GENERAL

    cats = [c.name for c in watchlist.categories] + [GENERAL]
    return {(b.name, c) for b in watchlist.brands for c in cats}


def cmd_export(args) -> int:
    from clickhouse_driver.errors import Error as DriverError

    from scoring.features import FeatureConfig
    from scoring.risk import RiskConfigError, load_risk_config
    from scoring.warmstart import baseline_from_history, dump_baselines
    from scoring.watchlist import WatchlistError, load_watchlist
    from sinks.clickhouse.client import error_text
    from sinks.clickhouse.query import run_query
    from core.errors import CommandError
    from core.config import ConfigError, load_settings

    if not 1 <= args.hours <= 24 * 90:
        raise CommandError("--hours must be between 1 and 2160 (90 days)")
    try:
        settings = load_settings()
        cfg = load_risk_config(args.risk_config)
        watchlist = load_watchlist(args.watchlist) if args.watchlist else None
    except (ConfigError, RiskConfigError, WatchlistError) as exc:
        raise CommandError(str(exc)) from None
    features, inf = FeatureConfig(), cfg.influence
    params = {"hours": int(args.hours), "media": inf.media_weight, "kol": inf.kol_weight,
              "official": inf.official_weight, "kol_followers": features.kol_followers,
              "kol_verified_followers": features.kol_verified_followers}
    ch = settings.clickhouse
    try:
        _, rows = run_query(ch, HISTORY_SQL, params)
    except (DriverError, OSError, EOFError) as exc:
        raise CommandError(f"ClickHouse at {ch.host}:{ch.port}: {error_text(exc)}") from None
    if len(rows) > MAX_HISTORY_ROWS:
        raise CommandError(f"{len(rows):,} history rows: more than {MAX_HISTORY_ROWS:,}; ask for fewer --hours")
    keep = _watchlist_keys(watchlist)
    history = {k: v for k, v in rows_to_history(rows).items() if keep is None or k in keep}
    baselines = {key: baseline_from_history(key_rows, cfg) for key, key_rows in history.items()}
    _write(args.output, dump_baselines(baselines))
    print(f"baselines: {len(baselines)} keys from {len(rows):,} hourly rows of the last {args.hours} h",
          file=sys.stderr)
    return 0


def cmd_learn(args) -> int:
    """The plain engine in warm-up over a file of posts: every window only teaches."""
    from scoring.engine import Engine, text_scorer
    from scoring.risk import RiskConfigError, load_risk_config
    from scoring.sentiment import load_model
    from scoring.warmstart import dump_baselines
    from scoring.watchlist import WatchlistError, load_watchlist
    from core.errors import CommandError
    from core.post import Post, parse_post

    path = Path(args.input)
    if not path.is_file():
        raise CommandError(f"input file {path} does not exist")
    if args.hours is not None and args.hours <= 0:
        raise CommandError("--hours must be positive")
    try:
        cfg = load_risk_config(args.risk_config)
        watchlist = load_watchlist(args.watchlist)
    except (RiskConfigError, WatchlistError) as exc:
        raise CommandError(str(exc)) from None
    posts, rejected = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            post = parse_post(line)
            if isinstance(post, Post):
                posts.append(post)
            else:
                rejected += 1
    posts.sort(key=lambda p: p.published_ms)
    if args.hours is not None and posts:
        until = posts[0].published_ms + int(args.hours * 3_600_000)
        posts = [p for p in posts if p.published_ms < until]
    model = load_model(args.sentiment_model)
    engine = Engine(watchlist, text_scorer(model.predict_proba), cfg, warmup_until_ms=2 ** 62)
    engine.feed(posts)  # no flush: the windows after the last post would teach a fade-out
    baselines = engine.baselines()
    _write(args.output, dump_baselines(baselines))
    print(f"baselines: {len(baselines)} keys learned from {len(posts):,} posts"
          + (f" ({rejected:,} unreadable lines skipped)" if rejected else ""), file=sys.stderr)
    return 0


def _write(output: str | None, text: str) -> None:
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


def register(subparsers) -> None:
    default_watchlist = str(Path(__file__).resolve().parent.parent / "data" / "watchlist.sample.yaml")
    top = subparsers.add_parser(
        "baselines", help="seed keys' normals from history (warm start; docs/risk-model.md)",
        description="Write a baseline file that `yuqing replay` and `yuqing job` read with --baselines, so "
                    "that a brand that is loud every day does not open with false alarms.")
    sub = top.add_subparsers(dest="baselines_action", metavar="ACTION")
    top.set_defaults(func=lambda a: (top.print_help(sys.stderr), 2)[1])

    export = sub.add_parser("export", help="from the posts stored in ClickHouse (hourly, per key)")
    export.add_argument("--hours", type=int, default=7 * 24, help="history to read (default: 168, a week)")
    export.add_argument("--watchlist", help="keep only this watchlist's keys (default: every key stored)")
    export.add_argument("--risk-config", help="risk model YAML (tier weights, EWMA memory)")
    export.add_argument("--output", help="baseline file (default: stdout)")
    export.set_defaults(func=cmd_export)

    learn = sub.add_parser("learn", help="from a JSONL file of posts (the first hours of a replay, a past day)")
    learn.add_argument("--input", required=True, help="posts, one JSON object per line")
    learn.add_argument("--hours", type=float, help="only the first N hours of the file (default: all of it)")
    learn.add_argument("--watchlist", default=default_watchlist, help="watchlist YAML (CONTRACTS §2)")
    learn.add_argument("--risk-config", help="risk model YAML")
    learn.add_argument("--sentiment-model", help="model file, or 'snownlp'; default: the built-in model")
    learn.add_argument("--output", help="baseline file (default: stdout)")
    learn.set_defaults(func=cmd_learn)
