"""`python -m bench`: Yuqing's benchmarks against the targets (docs/bench.md).

    python -m bench [--posts N] [--only throughput|latency|resources|floor|sentiment[,…]] [--json PATH]

Starts the default local stack (what `yuqing stack up` starts; only what was not already
running, and stops that again at the end), runs the phases, prints a table of targets
(target, measured, pass/fail) and every other figure to stdout, writes the results as
JSON (default bench/results.json); progress goes to stderr. Exit 0 when the benchmark
ran (whatever the figures; --strict: 1 when a measured target is missed); 1 on an error,
and 1 when the job and the plain-Python loop disagree (matched posts, the number of
closed-window assessments, or any assessment's fields): a fast wrong answer is no result.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.harness import say

PHASES = ("throughput", "latency", "live", "resources", "floor", "sentiment", "crawl", "watchlist")
DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"


PHASE_SECONDS: dict[str, float] = {}  # wall seconds of each phase run, to plan a full run


@contextmanager
def timed(phase: str):
    t0 = time.monotonic()
    try:
        yield
    finally:
        PHASE_SECONDS[phase] = round(time.monotonic() - t0, 1)
        say(f"{phase}: {PHASE_SECONDS[phase]:,.0f} s")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000, help="posts for the throughput run (default 1,000,000)")
    parser.add_argument("--only", default=None, metavar="PHASE[,PHASE]",
                        help="run only these: throughput, latency (window close -> page), live (a live "
                             "crisis: tipping post -> page), resources (= throughput + latency + live, "
                             "which are sampled), floor (the framework alone: bench/floor.py), "
                             "sentiment (sentiment model and matcher speed; no stack), "
                             "crawl (crawl parsers, items/s per core, new beside the old; no stack), "
                             "watchlist (matcher at 10..10,000 brands, job at 10 and 1,000; with "
                             "--watchlist-full also 100 and 10,000 and the window state at scale: "
                             "bench/watchlist.py)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--trials", type=int, default=25, help="latency trials after one warm-up (default 25)")
    parser.add_argument("--burst", type=int, default=200, help="crisis posts per latency trial (default 200)")
    parser.add_argument("--feed-s", type=float, default=20.0,
                        help="seconds over which each live trial's crisis posts are sent (default 20)")
    parser.add_argument("--parallelism", type=int, default=1,
                        help="the throughput job's parallelism (default 1; latency always runs 1)")
    parser.add_argument("--python-worker", choices=("loopback", "process"), default="loopback",
                        help="the throughput job's Python worker (default loopback; process: one per slot, "
                             "see docs/bench.md 'Python workers')")
    parser.add_argument("--watchlist-full", action="store_true",
                        help="watchlist phase: the job at 10, 100, 1,000 and 10,000 brands and the state run at "
                             "10,000 brands x 8 categories (default: the job at 10 and 1,000 brands only, ~5 min)")
    parser.add_argument("--keep-stack", action="store_true", help="leave the services the bench started running")
    parser.add_argument("--keep-data", action="store_true", help="keep the bench topics and ClickHouse databases")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a measured target is missed")
    args = parser.parse_args(argv)
    phases = set(PHASES) if args.only is None else {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = phases - set(PHASES)
    if unknown or not phases:
        parser.error(f"--only: unknown phase(s) {', '.join(sorted(unknown)) or '(none)'}; choose from {', '.join(PHASES)}")
    if args.posts < 1:
        parser.error("--posts must be at least 1")
    if not 1 <= args.parallelism <= 8:
        parser.error("--parallelism must be between 1 and 8")
    if not 1 <= args.trials <= 400:
        parser.error("--trials must be between 1 and 400")
    if args.burst < 50:
        parser.error("--burst must be at least 50 (a smaller burst may not reach high)")
    if not 2.0 <= args.feed_s <= 300.0:
        parser.error("--feed-s must be between 2 and 300")
    if "resources" in phases:
        phases |= {"throughput", "latency", "live"}
    args.phases = phases
    return args


def sentiment_and_matcher(n_texts: int = 50_000) -> dict:
    """Sentiment texts/s (ours vs snownlp, scoring.sentiment.bench) and matcher posts/s."""
    out: dict = {}
    try:
        from scoring.sentiment import bench as sentiment_bench
    except ImportError:
        sentiment_bench = None
    if sentiment_bench is not None:
        say("sentiment: scoring.sentiment.bench (ours vs snownlp)")
        result = sentiment_bench.run(n_texts, 300, None, out=sys.stderr)
        out["sentiment_texts_per_s"] = round(result["ours"]["per_core"], 1)
        out["sentiment_source"] = result.get("source")
        if "snownlp" in result:
            out["snownlp_texts_per_s"] = round(result["snownlp"]["per_core"], 1)
            out["sentiment_speedup"] = round(result["ratio"], 1)
    out.update(matcher_speed(n_texts))
    return out


def matcher_speed(n: int) -> dict:
    """Matcher.match over the texts and titles of `n` benchmark posts, CPU time of one core."""
    from bench import posts as bench_posts
    from bench.throughput import WATCHLIST
    from scoring.matching import Matcher
    from scoring.watchlist import load_watchlist
    from core.config import load_settings

    pool = bench_posts.load_pool(load_settings().state_dir / "bench" / "cache", WATCHLIST)
    items = [json.loads(template) for _, _, template in pool.entries[:n]]
    pairs = [(p["text"], p.get("title")) for p in items]
    matcher = Matcher(load_watchlist(WATCHLIST))
    for text, title in pairs[:200]:
        matcher.match(text, title)  # load the segmenter outside the timing
    c0 = time.process_time()
    matched = sum(1 for text, title in pairs if matcher.match(text, title))
    cpu = time.process_time() - c0
    say(f"matcher: {len(pairs):,} posts, {matched:,} matched, {len(pairs) / cpu:,.0f} posts/s per core")
    return {"matcher_posts_per_s": round(len(pairs) / max(cpu, 1e-9), 1), "matcher_posts": len(pairs),
            "matcher_matched_share": round(matched / max(len(pairs), 1), 3), "matcher_backend": matcher.backend}


def resources(sampler, wb) -> dict:
    """Per component peaks during the bench's own phases (the services plus the larger
    phase). Not the whole product: `stack_peak_rss_mib` comes from a full `yuqing run`
    (bench/resources.py `full_run`)."""
    peaks = sampler.peaks_mib()
    services = {k: v for k, v in peaks.items() if "/" not in k}
    phases: dict[str, float] = {}
    for key, mib in peaks.items():
        if "/" in key:
            phase = key.split("/", 1)[0]
            phases[phase] = phases.get(phase, 0.0) + mib
    total = sum(services.values()) + (max(phases.values()) if phases else 0.0)
    return {"peak_rss_mib": peaks, "phases_peak_rss_mib": round(total, 1),
            "phases_simultaneous_rss_mib": round(sampler.simultaneous_peak_kib / 1024, 1)}


def machine_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """What the figures were measured on. Machines of one "kind" here differed 3.4x in the
    plain loop's speed between two sessions (docs/bench.md, session 6): posts/s only compare
    beside the processor and the plain loop."""
    info: dict = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(),
                  "python": platform.python_version()}
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    first = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        first[key.strip()] = value.strip()
    for key, name in (("model name", "cpu_model"), ("cpu family", "cpu_family"), ("model", "cpu_model_number"),
                      ("cpu MHz", "cpu_mhz")):
        if first.get(key):
            info[name] = first[key]
    return info


def main(argv=None) -> int:
    args = parse_args(argv)
    from bench import report

    results: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv[1:],
                     "machine": machine_info()}
    if "crawl" in args.phases:
        from bench import crawl
        with timed("crawl"):
            results.update(crawl.run())
    if "sentiment" in args.phases:
        with timed("sentiment"):
            results.update(sentiment_and_matcher())
    if "watchlist" in args.phases:
        from bench import watchlist as watchlist_bench
        with timed("watchlist_matcher"):
            results.update(watchlist_bench.run_matcher())
    if args.phases & {"throughput", "latency", "live", "floor", "watchlist"}:
        results.update(run_stack_phases(args))
    results["phase_seconds"] = dict(PHASE_SECONDS)
    results["targets"] = report.target_rows(results)
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(report.render(results))
    if "crawl" in args.phases:
        print("\n" + crawl.render(results))
    if "watchlist" in args.phases:
        print("\n" + watchlist_bench.render(results))
    if results.get("phase_seconds"):
        print("\nphase time (wall): " + ", ".join(f"{k} {v:,.0f} s" for k, v in results["phase_seconds"].items())
              + f"; total {sum(results['phase_seconds'].values()):,.0f} s")
    say(f"results written to {args.json}")
    missed = [r for r in results["targets"] if r["pass"] is False]
    if results.get("job_matches_plain_loop") is False:
        say("bench: FAILED: the job's results differ from the plain loop's "
            f"(assessments_difference_examples in {args.json})")
        return 1
    return 1 if args.strict and missed else 0


def run_stack_phases(args) -> dict:
    from bench import latency, live, throughput
    from bench.harness import Workbench
    from bench.resources import RssSampler
    from core.config import load_settings

    settings = load_settings()
    wb = Workbench(settings)
    say(f"run {wb.tag}: starting the default stack under {settings.state_dir} (logs in {wb.run_dir})")
    out: dict = {}
    sampler = None
    try:
        wb.stack_up()

        def roots() -> dict[str, int]:
            named = dict(wb.stack_pids())
            for pipeline in wb.pipelines:
                for process in pipeline.processes:
                    if process.record is not None and process.alive():
                        named[f"{pipeline.run_dir.name}/{process.name}"] = process.record.pid
            return named

        sampler = RssSampler(roots).start()
        if "throughput" in args.phases:
            with timed("throughput"):
                out.update(throughput.run(wb, args.posts, parallelism=args.parallelism,
                                          python_worker=args.python_worker))
        if "latency" in args.phases:
            with timed("latency"):
                out.update(latency.run(wb, trials=args.trials, burst=args.burst))
        if "live" in args.phases:
            with timed("live"):
                out.update(live.run(wb, trials=max(args.trials, 20), burst=args.burst, feed_s=args.feed_s))
        sampler.stop()
        if args.phases & {"throughput", "latency", "live"}:
            out.update(resources(sampler, wb))
        if "resources" in args.phases:
            from bench.resources import full_run

            run = full_run(wb, progress=say)
            out.update(run)
            # the whole product at once: every process of `yuqing run` and the services
            out["stack_peak_rss_mib"] = run["full_run_sum_of_peaks_mib"]
            out["stack_simultaneous_rss_mib"] = run["full_run_simultaneous_rss_mib"]
        if "floor" in args.phases:  # last: the pipeline's memory figures are without it
            from bench import floor

            with timed("floor"):
                out.update(floor.run(wb, args.posts))
        if "watchlist" in args.phases:
            from bench import watchlist as watchlist_bench

            n = min(args.posts, watchlist_bench.DEFAULT_JOB_POSTS)
            with timed("watchlist_jobs"):
                if args.watchlist_full:
                    out.update(watchlist_bench.run_jobs(wb, n, sizes=watchlist_bench.SIZES, state=True))
                else:
                    out.update(watchlist_bench.run_jobs(wb, n))
    finally:
        if sampler is not None:
            sampler.stop()
        wb.close(keep_stack=args.keep_stack, keep_data=args.keep_data)
    return out


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except (RuntimeError, ValueError, OSError) as exc:  # StackError, ConfigError, Kafka/ClickHouse down
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(1)
