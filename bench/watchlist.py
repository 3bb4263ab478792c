"""Watchlist scale: matching and the job at 10 / 100 / 1,000 / 10,000 brands, and the
window state when 10,000 brands x 8 categories of keys are mostly quiet.

* matcher (no stack): the bench's post pool (the throughput phase's posts) matched with
  the sample watchlist grown by generated brands (yuqing.synth_watchlist) to each size:
  CPU posts/s of one core (the least CPU of 3 runs), in the job's batch form (`match_many`,
  1,000 posts a call) and the engine's one-post form (`match`), and the time to validate
  and build the watchlist;
* job (stack): the same posts, loaded once, through `yuqing job run --bounded` with each
  watchlist; posts/s from its first output to its last assessment (as in the throughput
  phase), and the job's CPU per post;
* state: posts naming brands spread over a generated 10,000-brand, 8-category watchlist
  (most keys get a post or two in two hours of event time), through the job with a
  checkpoint every 5 s: checkpoint size and duration (Flink's own log lines), keys with
  state, bytes per key, and the job's CPU per assessment (the per-key work of a window).

Each table has the 10-brand figure as its baseline (ratio column).
"""
from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

from bench import posts as bench_posts
from bench.harness import Workbench, say

SIZES = (10, 100, 1_000, 10_000)
BATCH = 1_000
REPEATS = 3
STARTUP_TIMEOUT_S = 600
SEED = 19
STATE_BRANDS = 10_000
STATE_MINUTES = 120
_CHECKPOINT = re.compile(r"Completed checkpoint (\d+) for job \S+ \((\d+) bytes, checkpointDuration=(\d+) ms")


def _watchlist_path():
    from bench.throughput import WATCHLIST

    return WATCHLIST


def watchlist_data(n: int) -> dict:
    """The sample watchlist grown by generated brands to `n` (its 4 brands come first)."""
    import yaml

    from yuqing import synth_watchlist

    base = yaml.safe_load(_watchlist_path().read_text(encoding="utf-8"))
    return synth_watchlist.watchlist_data(n, seed=SEED, base=base)


def pool_texts(pool, n: int) -> list[tuple[str, str | None]]:
    out = []
    for _, _, template in pool.entries[:n]:
        post = json.loads(template.replace(bench_posts.TS, "2026-11-25T08:00:00+08:00"))
        out.append((post["text"], post.get("title")))
    return out


def matcher_speed(texts: list[tuple[str, str | None]], sizes=SIZES, progress=say) -> dict:
    from scoring.matching import Matcher
    from scoring.watchlist import parse_watchlist

    bodies = [t for t, _ in texts]
    titles = [h for _, h in texts]
    out: dict = {"watchlist_matcher_posts": len(texts)}
    for n in sizes:
        data = watchlist_data(n)
        c0 = time.process_time()
        wl = parse_watchlist(data)
        c1 = time.process_time()
        matcher = Matcher(wl)
        c2 = time.process_time()
        matcher.match_many(bodies[:2000], titles[:2000])  # warm: the segmenter's first use
        batch_cpu = single_cpu = float("inf")
        for _ in range(REPEATS):  # the least CPU of a few runs: other work on the machine only adds
            c3 = time.process_time()
            matched = 0
            for i in range(0, len(texts), BATCH):
                matched += sum(1 for r in matcher.match_many(bodies[i:i + BATCH], titles[i:i + BATCH]) if r)
            batch_cpu = min(batch_cpu, time.process_time() - c3)
            c4 = time.process_time()
            for text, title in texts:
                matcher.match(text, title)
            single_cpu = min(single_cpu, time.process_time() - c4)
        single = texts
        row = {"brands": len(wl.brands), "words": matcher.words, "validate_s": round(c1 - c0, 2),
               "build_s": round(c2 - c1, 2), "posts_per_s": round(len(texts) / max(batch_cpu, 1e-9), 1),
               "us_per_post": round(1e6 * batch_cpu / len(texts), 2),
               "single_posts_per_s": round(len(single) / max(single_cpu, 1e-9), 1),
               "matched_share": round(matched / len(texts), 3)}
        out[f"watchlist_matcher_{n}"] = row
        progress(f"watchlist: matcher at {n:,} brands ({row['words']:,} words): {row['posts_per_s']:,.0f} posts/s "
                 f"per core in batches, {row['single_posts_per_s']:,.0f} one by one; validated in "
                 f"{row['validate_s']} s, built in {row['build_s']} s")
    base = out[f"watchlist_matcher_{sizes[0]}"]
    for n in sizes:
        row = out[f"watchlist_matcher_{n}"]
        row["ratio"] = round(row["posts_per_s"] / base["posts_per_s"], 3)
        row["single_ratio"] = round(row["single_posts_per_s"] / base["single_posts_per_s"], 3)
    return out


def run_matcher(n_posts: int = 30_000, progress=say) -> dict:
    """The no-stack half: matcher speed and loading time at every size."""
    from core.config import load_settings

    cache = load_settings().state_dir / "bench" / "cache"
    pool = bench_posts.load_pool(cache, _watchlist_path())
    texts = pool_texts(pool, n_posts)
    return matcher_speed(texts, progress=progress)


# ------------------------------------------------------------------ the job

def _write_watchlist(path: Path, data: dict) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_job(wb: Workbench, name: str, watchlist: Path, raw: str, n: int, timeout_s: float,
            checkpoint_s: int = 30, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> dict:
    """One bounded job over `raw` with its own output topics; first output -> last assessment."""
    from bench.resources import CpuMeter
    from bench.throughput import OffsetWatch, time_outputs
    from yuqing.pipeline import last_line

    topics = wb.make_topics(name, 1)
    topics["raw"] = raw
    pipeline = wb.pipeline(name, wb.env(topics))
    watch = OffsetWatch(wb.settings, [topics["scored"], topics["assessments"], topics["dlq"]])
    job = pipeline.start("job", "job", "run", "--watchlist", str(watchlist), "--bounded", "--no-resume",
                         "--parallelism", "1", "--python-worker", "loopback", "--python-mode", "thread",
                         "--group-id", f"bench-{wb.tag}-{name}", "--checkpoint-interval", str(checkpoint_s))
    cpu = CpuMeter(lambda: {"job": job.record.pid} if job.alive() else {})

    def check(elapsed_s: float, started: bool) -> None:
        if not started and elapsed_s > startup_timeout_s:
            raise RuntimeError(f"no output within {startup_timeout_s:.0f} s of the start (the plan's "
                               "code generation grows with the number of keys)")
        if elapsed_s > timeout_s:
            raise RuntimeError(f"watchlist {name}: the job did not finish within {timeout_s:.0f} s; {job.log}")

    try:
        span = time_outputs(watch, cpu, job.alive, [topics["scored"], topics["dlq"]], check,
                            done_topic=topics["assessments"])
    finally:
        watch.close()
        pipeline.stop()
    t_first, t_last, first_out, last_out = span.t_first, span.t_last, span.first_out, span.last_out
    ends, last_assess = span.ends, span.last_done
    if t_first is None or t_last is None or t_last <= t_first:
        raise RuntimeError(f"watchlist {name}: the job wrote nothing; {job.log}: {last_line(job.log)}")
    posts = max(n * (1 - first_out / max(last_out, 1)), 1.0)
    seconds = t_last - t_first
    job_cpu = cpu.between("first", "last").get("job", 0.0)
    checkpoints = [(int(a), int(b), int(c)) for a, b, c in _CHECKPOINT.findall(job.log.read_text(errors="replace"))]
    return {"posts_per_s": round(posts / seconds, 1), "seconds": round(seconds, 2),
            "cpu_us_per_post": round(1e6 * job_cpu / posts, 1), "job_cpu_s": round(job_cpu, 2),
            "scored": ends[topics["scored"]], "assessments": last_assess,
            "checkpoints": len(checkpoints),
            "checkpoint_max_bytes": max((b for _, b, _ in checkpoints), default=0),
            "checkpoint_last_bytes": checkpoints[-1][1] if checkpoints else 0,
            "checkpoint_max_ms": max((d for _, _, d in checkpoints), default=0),
            "checkpoint_median_ms": sorted(d for _, _, d in checkpoints)[len(checkpoints) // 2] if checkpoints else 0,
            "log": str(job.log)}


def _produce(settings, topic: str, values) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks=1, linger_ms=50,
                             batch_size=1 << 20, max_request_size=8 << 20, client_id="yuqing-bench-watchlist")
    failures: list[Exception] = []
    sent = 0
    try:
        for ts, key, value in values:
            producer.send(topic, value=value, key=key, timestamp_ms=ts).add_errback(failures.append)
            sent += 1
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)
    if failures:
        raise RuntimeError(f"{len(failures)} posts were not accepted by Kafka, e.g. {failures[0]!r}")
    return sent


def state_posts(data: dict, n: int, start_ms: int, seed: int = SEED):
    """`n` posts naming brands all over the watchlist, spread over STATE_MINUTES of event time."""
    from yuqing import synth_watchlist

    rng = random.Random(seed)
    texts = synth_watchlist.texts(data, n, seed=seed, brand_share=1.0)
    span = STATE_MINUTES * 60_000
    times = sorted(start_ms + rng.randrange(span) for _ in range(n))
    for i, ((text, title), ts) in enumerate(zip(texts, times)):
        followers = int(rng.paretovariate(1.2) * 50)
        post = {"id": f"wl:{i}", "platform": rng.choice(("weibo", "douyin", "zhihu", "news", "tieba")),
                "text": text, "published_at": bench_posts.format_time(ts),
                "author": {"id": f"u{rng.randrange(50_000)}", "name": "用户", "followers": followers,
                           "verified": followers > 10_000, "kind": "user"},
                "metrics": {"reposts": rng.randrange(20), "comments": rng.randrange(20),
                            "likes": rng.randrange(100), "views": 0}}
        if title:
            post["title"] = title
        yield ts, post["id"].encode(), json.dumps(post, ensure_ascii=False).encode()


def run_jobs(wb: Workbench, n: int, progress=say, sizes=SIZES, state_posts_n: int | None = None) -> dict:
    """The stack half: the job at every size, then the state at 10,000 brands x 8 categories."""
    from bench.throughput import RAW_PARTITIONS
    from scoring.batch import key_pairs
    from scoring.watchlist import parse_watchlist

    pool = bench_posts.load_pool(wb.cache_dir, _watchlist_path())
    base_ms = bench_posts.base_time_ms(pool, n, int(time.time() * 1000))
    topics = wb.make_topics("wl-raw", RAW_PARTITIONS)
    progress(f"watchlist: loading {n:,} posts into {topics['raw']}")
    _produce(wb.settings, topics["raw"], bench_posts.stream(pool, n, base_ms))
    out: dict = {"watchlist_job_posts": n}
    for size in sizes:
        path = _write_watchlist(wb.run_dir / "watchlists" / f"brands-{size}.yaml", watchlist_data(size))
        progress(f"watchlist: job at {size:,} brands")
        try:
            row = run_job(wb, f"wl{size}", path, topics["raw"], n, timeout_s=900 + n / 50)
        except RuntimeError as exc:  # recorded, and the larger sizes are not tried
            out[f"watchlist_job_{size}"] = {"error": str(exc)}
            progress(f"watchlist: job at {size:,} brands: {exc}")
            break
        out[f"watchlist_job_{size}"] = row
        progress(f"watchlist: job at {size:,} brands: {row['posts_per_s']:,.0f} posts/s, "
                 f"{row['cpu_us_per_post']} µs of CPU per post")
    base = out[f"watchlist_job_{sizes[0]}"].get("posts_per_s")
    for size in sizes:
        row = out.get(f"watchlist_job_{size}", {})
        if base and row.get("posts_per_s"):
            row["ratio"] = round(row["posts_per_s"] / base, 3)
    if any("error" in out.get(f"watchlist_job_{size}", {}) for size in sizes):
        out["watchlist_state"] = {"error": "not run: the job did not start at a smaller watchlist"}
        return out

    # state at scale
    state_posts_n = state_posts_n or n
    from yuqing import synth_watchlist

    data = synth_watchlist.watchlist_data(STATE_BRANDS, seed=SEED)
    wl = parse_watchlist(data)
    path = _write_watchlist(wb.run_dir / "watchlists" / f"state-{STATE_BRANDS}.yaml", data)
    state_topics = wb.make_topics("wl-state-raw", RAW_PARTITIONS)
    start_ms = int(time.time() * 1000) - (STATE_MINUTES + 90) * 60_000
    start_ms -= start_ms % 60_000
    progress(f"watchlist: state run, {state_posts_n:,} posts over {STATE_MINUTES} min naming "
             f"{STATE_BRANDS:,} brands x {len(wl.categories)} categories")
    _produce(wb.settings, state_topics["raw"], state_posts(data, state_posts_n, start_ms))
    # the keys these posts touch, as the matcher finds them (what the job keeps state for)
    from scoring.matching import Matcher

    matcher = Matcher(wl)
    keys: set = set()
    texts = [json.loads(v) for _, _, v in state_posts(data, state_posts_n, start_ms)]
    for i in range(0, len(texts), BATCH):
        chunk = texts[i:i + BATCH]
        for r in matcher.match_many([p["text"] for p in chunk], [p.get("title") for p in chunk]):
            keys.update(r.pairs)
    row = run_job(wb, "wl-state", path, state_topics["raw"], state_posts_n, timeout_s=900 + state_posts_n / 25,
                  checkpoint_s=5)
    row.update({"brands": STATE_BRANDS, "categories": len(wl.categories), "possible_keys": len(key_pairs(wl)),
                "keys_with_posts": len(keys),
                "bytes_per_key": round(row["checkpoint_max_bytes"] / max(len(keys), 1), 1),
                "cpu_us_per_assessment": round(1e6 * row["job_cpu_s"] / max(row["assessments"], 1), 1)})
    out["watchlist_state"] = row
    progress(f"watchlist: state: {len(keys):,} keys with posts, checkpoints up to {row['checkpoint_max_bytes']:,} "
             f"bytes in {row['checkpoint_max_ms']} ms, {row['cpu_us_per_assessment']} µs of job CPU per assessment")
    return out


def render(results: dict) -> str:
    """The tables, 10 brands as the baseline."""
    lines = []
    if "watchlist_matcher_10" in results:
        lines += ["watchlist: matcher (one core, same posts; ratio to 10 brands)",
                  f"{'brands':>8} {'words':>7} {'posts/s batch':>14} {'ratio':>6} {'posts/s single':>15} "
                  f"{'ratio':>6} {'validate s':>10} {'build s':>8}"]
        for n in SIZES:
            r = results.get(f"watchlist_matcher_{n}")
            if r:
                lines.append(f"{n:>8,} {r['words']:>7,} {r['posts_per_s']:>14,.0f} {r['ratio']:>6.2f} "
                             f"{r['single_posts_per_s']:>15,.0f} {r['single_ratio']:>6.2f} {r['validate_s']:>10} "
                             f"{r['build_s']:>8}")
    if "watchlist_job_10" in results:
        lines += ["", "watchlist: job (bounded, parallelism 1; ratio to 10 brands)",
                  f"{'brands':>8} {'posts/s':>9} {'ratio':>6} {'CPU µs/post':>12} {'assessments':>12}"]
        for n in SIZES:
            r = results.get(f"watchlist_job_{n}")
            if r and "error" in r:
                lines.append(f"{n:>8,} failed: {r['error']}")
            elif r:
                lines.append(f"{n:>8,} {r['posts_per_s']:>9,.0f} {r['ratio']:>6.2f} {r['cpu_us_per_post']:>12} "
                             f"{r['assessments']:>12,}")
    s = results.get("watchlist_state")
    if s and "error" in s:
        lines += ["", f"watchlist: state: {s['error']}"]
    elif s:
        lines += ["", f"watchlist: state at {s['brands']:,} brands x {s['categories']} categories "
                      f"({s['possible_keys']:,} possible keys, {s['keys_with_posts']:,} with posts)",
                  f"  checkpoints {s['checkpoints']}, size max {s['checkpoint_max_bytes']:,} B "
                  f"(last {s['checkpoint_last_bytes']:,} B, {s['bytes_per_key']} B per key with posts), "
                  f"duration median {s['checkpoint_median_ms']} ms, max {s['checkpoint_max_ms']} ms",
                  f"  job {s['posts_per_s']:,.0f} posts/s, {s['assessments']:,} assessments, "
                  f"{s['cpu_us_per_assessment']} µs of job CPU per assessment, {s['cpu_us_per_post']} µs per post"]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.watchlist: the matcher half alone
    result = run_matcher()
    print(render(result))
