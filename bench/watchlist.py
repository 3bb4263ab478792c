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
import time
from pathlib import Path

from bench import posts as bench_posts
from bench.harness import Workbench, say

SIZES = (10, 100, 1_000, 10_000)  # --watchlist-full
DEFAULT_SIZES = (10, 1_000)  # the default run (`make bench`): the two sizes of the #19 target
DEFAULT_JOB_POSTS = 60_000  # ~20 s of each job past its start-up: the default phase in ~5 min
ROUNDS = 2
STATE_POSTS = 2_000  # the state run: ~2,700 keys with a post or two (~14 windows scored per post); 5,000 did not finish in 18 min
BATCH = 1_000
REPEATS = 3
STARTUP_TIMEOUT_S = 600
SEED = 19
STATE_BRANDS = 10_000
STATE_MINUTES = 120
STATE_TIMEOUT_S = 1_200  # the state run is stopped here; its checkpoint figures so far are kept


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
    t0 = time.monotonic()
    pool = bench_posts.load_pool(cache, _watchlist_path())
    texts = pool_texts(pool, n_posts)
    out = matcher_speed(texts, progress=progress)
    out["watchlist_matcher_s"] = round(time.monotonic() - t0, 1)
    return out


# ------------------------------------------------------------------ the job

def _write_watchlist(path: Path, data: dict) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:  # Flink removed it meanwhile (it keeps the newest few)
            pass
    return total


class CheckpointWatch:
    """A bounded job's checkpoints, read while it runs: Flink's checkpoint statistics from
    the REST endpoint of the job's own mini-cluster (on a port picked here), and the bytes
    of each completed chk-N folder the job writes. Not Flink's log: every local job shares
    one log file, and a job's start truncates it (the first state run lost its figures so)."""

    def __init__(self, port: int, checkpoint_root: Path, interval_s: float = 1.0):
        self.url = f"http://127.0.0.1:{port}"
        self.root = checkpoint_root
        self.interval_s = interval_s
        self.job_id: str | None = None
        self.counts: dict = {}
        self.history: dict[int, dict] = {}  # checkpoint id -> Flink's entry (completed only)
        self.folder_bytes: dict[int, int] = {}  # checkpoint id -> bytes of its chk-N folder
        self.failure = ""  # Flink's message for the first failed checkpoint seen
        self._next = 0.0

    def poll(self, force: bool = False) -> None:
        from bench.harness import http_get

        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.interval_s
        try:
            if self.job_id is None:
                jobs = json.loads(http_get(f"{self.url}/jobs/overview", timeout_s=1.0) or b"{}").get("jobs", [])
                if not jobs:
                    return
                self.job_id = jobs[0]["jid"]
            self.take(json.loads(http_get(f"{self.url}/jobs/{self.job_id}/checkpoints", timeout_s=1.0) or b"{}"))
        except (ValueError, KeyError, TypeError):
            pass  # the endpoint not up yet, or gone with the finished job
        if self.job_id is not None:
            self.read_folders()

    def take(self, data: dict) -> None:
        """One answer of /jobs/<id>/checkpoints: its counts and the completed checkpoints
        it lists (the newest, and the history of the last few)."""
        self.counts = data.get("counts") or self.counts
        latest = (data.get("latest") or {}).get("completed")
        for entry in [latest, *(data.get("history") or [])]:
            if entry and entry.get("status") == "COMPLETED":
                self.history[int(entry["id"])] = entry
            elif entry and entry.get("status") == "FAILED" and not self.failure:
                self.failure = str(entry.get("failure_message") or "")[:300]

    def read_folders(self) -> None:
        """Bytes of each completed chk-N folder (one with _metadata), once each."""
        folder = self.root / str(self.job_id)
        for chk in folder.glob("chk-*") if folder.is_dir() else ():
            number = int(chk.name[4:]) if chk.name[4:].isdigit() else None
            if number is not None and number not in self.folder_bytes and (chk / "_metadata").exists():
                self.folder_bytes[number] = _folder_bytes(chk)

    def summary(self) -> dict:
        done = [self.history[k] for k in sorted(self.history)]
        state = [int(e.get("state_size") or 0) for e in done]
        persisted = [int(e.get("checkpointed_size") or 0) for e in done]
        durations = sorted(int(e.get("end_to_end_duration") or 0) for e in done)
        folders = [self.folder_bytes[k] for k in sorted(self.folder_bytes)]
        return {"checkpoints": int(self.counts.get("completed") or len(done)),
                "checkpoints_failed": int(self.counts.get("failed") or 0), "checkpoint_failure": self.failure,
                "state_max_bytes": max(state, default=0), "state_last_bytes": state[-1] if state else 0,
                "checkpoint_max_bytes": max(persisted, default=0),
                "checkpoint_last_bytes": persisted[-1] if persisted else 0,
                "checkpoint_folder_max_bytes": max(folders, default=0),
                "checkpoint_folder_last_bytes": folders[-1] if folders else 0,
                "checkpoint_max_ms": durations[-1] if durations else 0,
                "checkpoint_median_ms": durations[len(durations) // 2] if durations else 0}


class JobUnfinished(RuntimeError):
    """A bounded job that did not finish in time, with what was measured until then."""

    def __init__(self, message: str, partial: dict):
        super().__init__(message)
        self.partial = partial


def run_job(wb: Workbench, name: str, watchlist: Path, raw: str, n: int, timeout_s: float,
            checkpoint_s: int = 30, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> dict:
    """One bounded job over `raw` with its own output topics; first output -> last
    assessment; its checkpoints as Flink reports them (`CheckpointWatch`)."""
    from bench.resources import CpuMeter
    from bench.throughput import OffsetWatch, time_outputs
    from scoring.job import PLAN_VERSION
    from yuqing.pipeline import last_line

    topics = wb.make_topics(name, 1)
    topics["raw"] = raw
    pipeline = wb.pipeline(name, wb.env(topics))
    watch = OffsetWatch(wb.settings, [topics["scored"], topics["assessments"], topics["dlq"]])
    rest_port = _free_port()
    checkpoints = CheckpointWatch(rest_port, wb.settings.state_dir / "flink" / "checkpoints" / PLAN_VERSION)
    job = pipeline.start("job", "job", "run", "--watchlist", str(watchlist), "--bounded", "--no-resume",
                         "--parallelism", "1", "--python-worker", "loopback", "--python-mode", "thread",
                         "--group-id", f"bench-{wb.tag}-{name}", "--checkpoint-interval", str(checkpoint_s),
                         "-D", f"rest.port={rest_port}")
    cpu = CpuMeter(lambda: {"job": job.record.pid} if job.alive() else {})

    def check(elapsed_s: float, started: bool) -> None:
        checkpoints.poll()
        if not started and elapsed_s > startup_timeout_s:
            raise RuntimeError(f"no output within {startup_timeout_s:.0f} s of the start (the plan's "
                               "code generation grows with the number of keys)")
        if elapsed_s > timeout_s:
            raise RuntimeError(f"watchlist {name}: the job did not finish within {timeout_s:.0f} s; {job.log}")

    try:
        span = time_outputs(watch, cpu, job.alive, [topics["scored"], topics["dlq"]], check,
                            done_topic=topics["assessments"])
    except RuntimeError as exc:  # what was measured until then still counts (the state run)
        checkpoints.poll(force=True)
        ends = watch.ends()
        raise JobUnfinished(str(exc), dict(checkpoints.summary(), assessments=ends[topics["assessments"]],
                                           scored=ends[topics["scored"]])) from None
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
    return {"posts_per_s": round(posts / seconds, 1), "seconds": round(seconds, 2),
            "cpu_us_per_post": round(1e6 * job_cpu / posts, 1), "job_cpu_s": round(job_cpu, 2),
            "scored": ends[topics["scored"]], "assessments": last_assess,
            **checkpoints.summary(), "log": str(job.log)}


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


def run_jobs(wb: Workbench, n: int = DEFAULT_JOB_POSTS, progress=say, sizes=DEFAULT_SIZES, rounds: int = ROUNDS,
             state: bool = False, state_posts_n: int | None = None) -> dict:
    """The stack half: the job at each size, `rounds` times in turn (10, 1,000, 10, 1,000:
    a burst of other work on the machine then hits both sizes, and each size keeps its
    fastest run); with `state`, then the state at 10,000 brands x 8 categories."""
    from bench.throughput import RAW_PARTITIONS

    t_phase = time.monotonic()
    pool = bench_posts.load_pool(wb.cache_dir, _watchlist_path())
    base_ms = bench_posts.base_time_ms(pool, n, int(time.time() * 1000))
    topics = wb.make_topics("wl-raw", RAW_PARTITIONS)
    progress(f"watchlist: loading {n:,} posts into {topics['raw']}")
    _produce(wb.settings, topics["raw"], bench_posts.stream(pool, n, base_ms))
    out: dict = {"watchlist_job_posts": n, "watchlist_job_rounds": rounds}
    paths = {size: _write_watchlist(wb.run_dir / "watchlists" / f"brands-{size}.yaml", watchlist_data(size))
             for size in sizes}
    failed: set[int] = set()
    for round_no in range(rounds):
        for size in sizes:
            if size in failed:
                continue
            progress(f"watchlist: job at {size:,} brands (round {round_no + 1} of {rounds})")
            try:
                row = run_job(wb, f"wl{size}r{round_no}", paths[size], topics["raw"], n, timeout_s=900 + n / 50)
            except RuntimeError as exc:  # recorded, and this size is not tried again
                out[f"watchlist_job_{size}"] = {"error": str(exc)}
                failed.add(size)
                progress(f"watchlist: job at {size:,} brands: {exc}")
                continue
            progress(f"watchlist: job at {size:,} brands: {row['posts_per_s']:,.0f} posts/s, "
                     f"{row['cpu_us_per_post']} µs of CPU per post")
            best = out.get(f"watchlist_job_{size}")
            runs = (best or {}).get("runs_posts_per_s", []) + [row["posts_per_s"]]
            if best is None or row["posts_per_s"] > best["posts_per_s"]:
                best = row
            out[f"watchlist_job_{size}"] = dict(best, runs_posts_per_s=runs)
    base = out.get(f"watchlist_job_{sizes[0]}", {})
    for size in sizes:
        row = out.get(f"watchlist_job_{size}", {})
        if base.get("posts_per_s") and row.get("posts_per_s"):
            row["ratio"] = round(row["posts_per_s"] / base["posts_per_s"], 3)
        if base.get("cpu_us_per_post") and row.get("cpu_us_per_post"):  # the figure other load moves least
            row["cpu_ratio"] = round(base["cpu_us_per_post"] / row["cpu_us_per_post"], 3)
    out["watchlist_jobs_s"] = round(time.monotonic() - t_phase, 1)
    if not state:
        return out
    if failed:
        out["watchlist_state"] = {"error": "not run: the job did not finish at a smaller watchlist"}
        return out
    t_state = time.monotonic()
    out["watchlist_state"] = run_state(wb, state_posts_n or STATE_POSTS, progress)
    out["watchlist_state_s"] = round(time.monotonic() - t_state, 1)
    return out


def run_state(wb: Workbench, n: int, progress=say) -> dict:
    """The job over `n` posts naming brands all over a 10,000-brand, 8-category watchlist,
    a checkpoint every 5 s: state and checkpoint sizes, checkpoint durations, per-key work."""
    from bench.throughput import RAW_PARTITIONS
    from scoring.batch import key_pairs
    from scoring.watchlist import parse_watchlist

    state_posts_n = n
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
    try:
        row = run_job(wb, "wl-state", path, state_topics["raw"], state_posts_n,
                      timeout_s=STATE_TIMEOUT_S, checkpoint_s=5)
    except JobUnfinished as exc:
        row = dict(exc.partial, error=str(exc), brands=STATE_BRANDS, categories=len(wl.categories),
                   possible_keys=len(key_pairs(wl)), keys_with_posts=len(keys))
        progress(f"watchlist: state: {exc}; checkpoints until then: {exc.partial}")
        return row
    row.update({"brands": STATE_BRANDS, "categories": len(wl.categories), "possible_keys": len(key_pairs(wl)),
                "keys_with_posts": len(keys),
                # the larger of Flink's figure and the folder's: a checkpoint that completes as
                # the job ends may be on disk before the REST endpoint is read again
                "bytes_per_key": round(max(row["state_max_bytes"], row["checkpoint_folder_max_bytes"])
                                       / max(len(keys), 1), 1),
                "cpu_us_per_assessment": round(1e6 * row["job_cpu_s"] / max(row["assessments"], 1), 1)})
    progress(f"watchlist: state: {len(keys):,} keys with posts, state up to {row['state_max_bytes']:,} bytes, "
             f"checkpoints up to {row['checkpoint_max_bytes']:,} bytes in {row['checkpoint_max_ms']} ms, "
             f"{row['cpu_us_per_assessment']} µs of job CPU per assessment")
    return row


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
        posts = f"{results['watchlist_job_posts']:,}" if "watchlist_job_posts" in results else "?"
        rounds = results.get("watchlist_job_rounds", 1)
        lines += ["", f"watchlist: job ({posts} posts, bounded, parallelism 1, the fastest of {rounds} "
                      "runs in turn; ratio to 10 brands)",
                  f"{'brands':>8} {'posts/s':>9} {'ratio':>6} {'CPU µs/post':>12} {'CPU ratio':>9} {'assessments':>12}"
                  "  runs posts/s"]
        for n in SIZES:
            r = results.get(f"watchlist_job_{n}")
            if r and "error" in r:
                lines.append(f"{n:>8,} failed: {r['error']}")
            elif r:
                runs = ", ".join(f"{v:,.0f}" for v in r.get("runs_posts_per_s", []))
                lines.append(f"{n:>8,} {r['posts_per_s']:>9,.0f} {r.get('ratio', 0):>6.2f} {r['cpu_us_per_post']:>12} "
                             f"{r.get('cpu_ratio', 0):>9.2f} {r['assessments']:>12,}  {runs}")
    s = results.get("watchlist_state")
    if s and "error" in s and "state_max_bytes" not in s:
        lines += ["", f"watchlist: state: {s['error']}"]
    elif s and "error" in s:  # stopped unfinished: its checkpoints so far
        lines += ["", f"watchlist: state at {s['brands']:,} brands x {s['categories']} categories, unfinished: "
                      f"{s['error']}",
                  f"  until then: {s.get('assessments', 0):,} assessments, {s.get('scored', 0):,} scored records; "
                  f"state max {s['state_max_bytes']:,} B; checkpoints {s['checkpoints']} ({s['checkpoints_failed']} "
                  f"failed), size max {s['checkpoint_max_bytes']:,} B (folder {s['checkpoint_folder_max_bytes']:,} B), "
                  f"duration median {s['checkpoint_median_ms']} ms, max {s['checkpoint_max_ms']} ms",
                  *([f"  first failed checkpoint: {s['checkpoint_failure']}"] if s.get("checkpoint_failure") else [])]
    elif s:
        lines += ["", f"watchlist: state at {s['brands']:,} brands x {s['categories']} categories "
                      f"({s['possible_keys']:,} possible keys, {s['keys_with_posts']:,} with posts)",
                  f"  state max {s['state_max_bytes']:,} B (last {s['state_last_bytes']:,} B, "
                  f"{s['bytes_per_key']} B per key with posts); checkpoints {s['checkpoints']} "
                  f"({s['checkpoints_failed']} failed), size max {s['checkpoint_max_bytes']:,} B "
                  f"(folder {s['checkpoint_folder_max_bytes']:,} B), duration median {s['checkpoint_median_ms']} ms, "
                  f"max {s['checkpoint_max_ms']} ms",
                  *([f"  first failed checkpoint: {s['checkpoint_failure']}"] if s.get("checkpoint_failure") else []),
                  f"  job {s['posts_per_s']:,.0f} posts/s, {s['assessments']:,} assessments, "
                  f"{s['cpu_us_per_assessment']} µs of job CPU per assessment, {s['cpu_us_per_post']} µs per post"]
    timings = [f"{label} {results[key]:,.0f} s" for key, label in
               (("watchlist_matcher_s", "matcher"), ("watchlist_jobs_s", "jobs"), ("watchlist_state_s", "state"))
               if key in results]
    if timings:
        lines += ["", "watchlist: phase time: " + ", ".join(timings)]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.watchlist: the matcher half alone
    result = run_matcher()
    print(render(result))
