"""`yuqing sample`: write the bundled synthetic sample (JSON lines, CONTRACTS §1)."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

DEFAULT_WATCHLIST = Path(__file__).resolve().parent.parent / "data" / "watchlist.sample.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample", help="write a seeded synthetic sample of posts (calm chatter, a crisis, a launch)",
        description="Write seeded synthetic posts as JSON lines: calm chatter for every watchlist brand, "
                    "a privacy crisis growing among it, a positive launch and a refund-complaint trickle.")
    p.add_argument("--out", default="-", help="output file (default: stdout)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7); same seed, same file")
    p.add_argument("--hours", type=float, default=4.0, help="time span in hours (default 4)")
    p.add_argument("--start", default=None, help="RFC 3339 start time (default 2026-11-25T08:00:00+08:00)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply crisis/launch peak volume (default 1)")
    p.add_argument("--watchlist", default=str(DEFAULT_WATCHLIST), help="watchlist YAML (brands and terms)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.errors import CommandError
    from scoring.watchlist import WatchlistError, load_watchlist
    from yuqing.synth import DEFAULT_START, generate, sample_scenarios

    if args.hours <= 0 or args.hours > 24 * 14:
        raise CommandError(f"--hours must be in (0, 336], got {args.hours}")
    if args.scale <= 0:
        raise CommandError(f"--scale must be positive, got {args.scale}")
    start = DEFAULT_START
    if args.start:
        try:
            start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        except ValueError:
            raise CommandError(f"--start is not an RFC 3339 time: {args.start!r}") from None
        if start.tzinfo is None:
            raise CommandError("--start needs a UTC offset, e.g. 2026-11-25T08:00:00+08:00")
    try:
        watchlist = load_watchlist(args.watchlist)
    except WatchlistError as exc:
        raise CommandError(str(exc)) from None
    posts = generate(sample_scenarios(watchlist, args.hours, start, args.scale), watchlist,
                     seed=args.seed, arrival_jitter_s=20)
    lines = "".join(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n" for p in posts)
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        try:
            Path(args.out).write_text(lines, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"wrote {len(posts)} posts ({args.hours:g} h, seed {args.seed}) to {args.out}", file=sys.stderr)
    return 0
