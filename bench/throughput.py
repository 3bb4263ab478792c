"""Throughput: N generated posts through Kafka -> the scoring job -> ClickHouse, beside the
plain-Python scoring loop on the same posts.

Steps (docs/bench.md has the exact definitions):
1. load: produce the N posts to a fresh `posts.raw` topic (3 partitions, key = id,
   timestamp = published_at) with kafka-python. Load, not measured.
2. plain loop: `scoring.engine.Engine` with the same watchlist, risk settings and
   sentiment model over the same posts (JSON parse included), in this process.
3. pipeline: `yuqing job run --bounded` (parallelism 1 and the loopback Python worker
   unless the bench was told otherwise; thread mode) and
   `yuqing sink clickhouse` start together, as in production; the bench only polls Kafka
   end offsets and the sink's /metrics twice a second (cheap: it never reads the posts).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench import posts as bench_posts
from bench.harness import Workbench, check_alive, http_get, metric_sum, say
from core.config import REPO_ROOT

WATCHLIST = REPO_ROOT / "data" / "watchlist.sample.yaml"
RAW_PARTITIONS = 3
CHUNK = 50_000


def load_posts(settings, topic: str, pool, n: int, base_ms: int) -> dict:
    """Produce the posts (acks=1, large batches). Returns counts and the load rate."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks=1, linger_ms=50,
                             batch_size=1 << 20, max_request_size=8 << 20,
                             request_timeout_ms=30_000, max_block_ms=120_000, client_id="yuqing-bench-load")
    failures: list[Exception] = []
    t0 = time.perf_counter()
    sent = 0
    try:
        for ts, key, value in bench_posts.stream(pool, n, base_ms):
            producer.send(topic, value=value, key=key, timestamp_ms=ts).add_errback(failures.append)
            sent += 1
            if sent % 100_000 == 0:
                say(f"  loaded {sent:,}/{n:,} posts ({sent / (time.perf_counter() - t0):,.0f}/s)")
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)
    if failures:
        raise RuntimeError(f"{len(failures)} posts were not accepted by Kafka, e.g. {failures[0]!r}")
    seconds = time.perf_counter() - t0
    return {"posts": sent, "load_s": round(seconds, 2), "load_posts_per_s": round(sent / seconds, 1)}


def plain_loop(pool, n: int, base_ms: int, watchlist_path: Path = WATCHLIST, keep: list | None = None) -> dict:
    """The reference engine over the same posts; only parse + score + windows are timed.
    `keep` receives the engine's assessments (to compare the job's with)."""
    from scoring.engine import Engine, text_scorer
    from scoring.risk import load_risk_config
    from scoring.sentiment import load_model
    from scoring.watchlist import load_watchlist
    from core.post import parse_post_strict

    engine = Engine(load_watchlist(watchlist_path), text_scorer(load_model().predict_proba), load_risk_config(None))
    timed = 0.0
    cpu = 0.0
    chunk: list[bytes] = []

    def run(values: list[bytes]) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        engine.feed(parse_post_strict(v) for v in values)
        return time.perf_counter() - w0, time.process_time() - c0

    for _, _, value in bench_posts.stream(pool, n, base_ms):
        chunk.append(value)
        if len(chunk) >= CHUNK:
            w, c = run(chunk)
            timed, cpu = timed + w, cpu + c
            chunk = []
    if chunk:
        w, c = run(chunk)
        timed, cpu = timed + w, cpu + c
    w0, c0 = time.perf_counter(), time.process_time()
    result = engine.flush()
    timed += time.perf_counter() - w0
    cpu += time.process_time() - c0
    if keep is not None:
        keep.extend(result.assessments)
    return {"plain_loop_s": round(timed, 2), "plain_loop_cpu_s": round(cpu, 2),
            "plain_loop_posts_per_s": round(n / timed, 1), "plain_loop_cpu_posts_per_s": round(n / max(cpu, 1e-9), 1), "plain_loop_matched": result.posts_matched,
            "plain_loop_assessments": len(result.assessments), "plain_loop_alerts": len(result.alerts),
            # the live job's alerts topic carries incident records (per brand), not key alerts
            "plain_loop_incident_records": len(result.incidents)}


class OffsetWatch:
    """End offsets of the output topics, read without consuming anything."""

    def __init__(self, settings, topics: list[str]):
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, client_id="yuqing-bench-watch",
                                      request_timeout_ms=30_000, enable_auto_commit=False)
        self.parts = {}
        for topic in topics:
            for _ in range(50):  # metadata of a topic created a moment ago may lag
                self.consumer.topics()
                partitions = self.consumer.partitions_for_topic(topic)
                if partitions:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"Kafka has no partitions for topic {topic}")
            self.parts[topic] = [TopicPartition(topic, p) for p in sorted(partitions)]

    def ends(self) -> dict[str, int]:
        every = [tp for tps in self.parts.values() for tp in tps]
        offsets = self.consumer.end_offsets(every)
        return {t: sum(offsets[tp] for tp in tps) for t, tps in self.parts.items()}

    def close(self) -> None:
        self.consumer.close()


@dataclass
class OutputSpan:
    """What `time_outputs` saw: when the first output came and when the watched count last
    moved, the output count at both moments, and the end offsets last read."""
    t_first: float | None = None
    t_last: float | None = None
    first_out: int = 0
    last_out: int = 0
    last_done: int = 0
    ends: dict[str, int] = field(default_factory=dict)


def time_outputs(watch, cpu, alive: Callable[[], bool], out_topics: list[str], check: Callable[[float, bool], None],
                 done_topic: str | None = None, poll_s: float = 0.25) -> OutputSpan:
    """Poll a bounded job's output offsets until it exits, with CPU marks "first" (first
    output) and "last" (the last change of `done_topic`'s count, or of the outputs' when
    None). `check(elapsed_s, started)` raises when the job has run too long."""
    span = OutputSpan()
    t_spawn = time.monotonic()
    while True:
        now = time.monotonic()
        check(now - t_spawn, span.t_first is not None)
        span.ends = watch.ends()
        out = sum(span.ends[t] for t in out_topics)
        done = out if done_topic is None else span.ends[done_topic]
        cpu.sample()
        if out and span.t_first is None:
            span.t_first, span.first_out = now, out
            cpu.mark("first")
        if done != span.last_done:
            span.last_done, span.t_last = done, now
            cpu.mark("last")
        span.last_out = out
        if not alive():
            return span
        time.sleep(poll_s)


def run_pipeline(wb: Workbench, topics: dict[str, str], database: str, n: int, timeout_s: float,
                 parallelism: int = 1, python_worker: str = "loopback") -> dict:
    """Start job + sink, poll until ClickHouse holds every output; return the timings."""
    settings = wb.settings
    pipeline = wb.pipeline("throughput", wb.env(topics, database))
    watch = OffsetWatch(settings, [topics["scored"], topics["assessments"], topics["dlq"], topics["alerts"]])
    sink_url = f"http://{settings.metrics.host}:{settings.metrics.sink_port}/metrics"
    from bench.resources import CpuMeter

    def roots() -> dict[str, int]:
        named = dict(wb.stack_pids())
        for process in pipeline.processes:
            if process.record is not None and process.alive():
                named[process.name] = process.record.pid
        return named

    cpu = CpuMeter(roots)
    cpu.mark("spawn")
    bench_cpu_first = bench_cpu_complete = time.process_time()
    t_spawn = time.monotonic()
    pipeline.start("job", "job", "run", "--watchlist", str(WATCHLIST), "--bounded", "--no-resume",
                   "--parallelism", str(parallelism), "--python-worker", python_worker,
                   "--python-mode", "thread", "--group-id", f"bench-{wb.tag}",
                   "--checkpoint-interval", "30")
    pipeline.start("sink", "sink", "clickhouse")
    sink_alive = check_alive(pipeline, "sink")
    t_first = t_last_assess = t_last_scored = t_job_exit = t_first_insert = t_complete = None
    first_out = 0  # records already out when the timer starts (their posts are not in its span)
    last_assess = last_scored = -1
    ends: dict[str, int] = {}
    inserted = {}
    deadline = t_spawn + timeout_s
    last_report = t_spawn
    try:
        while True:
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"the pipeline did not finish {n:,} posts within {timeout_s:.0f} s; "
                                   f"logs in {pipeline.run_dir / 'logs'}")
            sink_alive()
            ends = watch.ends()
            scored, assessed = ends[topics["scored"]], ends[topics["assessments"]]
            if t_first is None and (scored or ends[topics["dlq"]]):
                t_first, first_out = now, scored + ends[topics["dlq"]]
                cpu.mark("first")
                bench_cpu_first = time.process_time()
            cpu.sample()
            if scored != last_scored:
                last_scored, t_last_scored = scored, now
            if assessed != last_assess:
                last_assess, t_last_assess = assessed, now
            job_alive = pipeline.get("job").alive()
            if t_job_exit is None and not job_alive:
                t_job_exit = now
                if t_first is None:
                    from yuqing.pipeline import last_line

                    raise RuntimeError(f"the job exited without output: {last_line(pipeline.get('job').log)}")
            text = http_get(sink_url)
            inserted = {table: metric_sum(text, "yuqing_clickhouse_rows_inserted_total", {"table": table})
                        + metric_sum(text, "yuqing_clickhouse_rows_duplicate_total", {"table": table})
                        for table in ("posts", "risk_assessments", "alerts", "rejects")}
            if t_first_insert is None and sum(inserted.values()) > 0:
                t_first_insert = now
            if (t_job_exit is not None and inserted["posts"] >= scored and inserted["risk_assessments"] >= assessed
                    and inserted["alerts"] >= ends[topics["alerts"]]):
                t_complete = now
                cpu.mark("complete")
                bench_cpu_complete = time.process_time()
                break
            if now - last_report >= 10:
                last_report = now
                say(f"  {now - t_spawn:5.0f} s: scored {scored:,}, assessments {assessed:,}, "
                    f"in ClickHouse {int(inserted['posts']):,} posts"
                    + (" (job finished)" if t_job_exit else ""))
            time.sleep(0.5)
    finally:
        watch.close()
        pipeline.stop()
    job_s = max(t_last_assess - t_first, 1e-9)
    e2e_s = max(t_complete - t_first, 1e-9)
    # steady rate: only the posts done inside the timed span. The first output appears when
    # a whole bundle (or more) is already through, so those posts are taken out, in the
    # proportion of outputs (one per scored or rejected post) already out at that moment
    last_out = max(ends[topics["scored"]] + ends[topics["dlq"]], 1)
    timed_posts = max(n * (1 - first_out / last_out), 1.0)
    rows = sum(inserted.values())
    # where the CPU went while the posts flowed (first scored record -> all in ClickHouse)
    cpu_s = cpu.between("first", "complete")
    cpu_s["bench"] = round(bench_cpu_complete - bench_cpu_first, 2)  # this process alone (it polls)
    total_cpu_s = sum(v for k, v in cpu_s.items() if "/" not in k)  # components, not their parts
    return {
        "cpu_s": cpu_s,
        "cpu_us_per_post": {name: round(1e6 * seconds / n, 1) for name, seconds in cpu_s.items()},
        "cpu_us_per_post_total": round(1e6 * total_cpu_s / n, 1),
        "cpu_cores_busy": round(total_cpu_s / e2e_s, 2),
        # what the same CPU per post would carry with every core busy: the gap to posts_per_s
        # is the time the job's JVM and Python worker spend waiting for each other
        "cpu_bound_posts_per_s": round((os.cpu_count() or 1) * n / max(total_cpu_s, 1e-9), 1),
        "job_startup_s": round(t_first - t_spawn, 2),
        "job_s": round(job_s, 2),
        "job_posts_per_s": round(n / job_s, 1),
        # split of the job's time: posts scored (UDF) vs. windows still firing after the last post
        "job_scoring_s": round(t_last_scored - t_first, 2),
        "job_window_tail_s": round(max(t_last_assess - t_last_scored, 0.0), 2),
        "pipeline_s": round(e2e_s, 2),
        "posts_per_s": round(timed_posts / e2e_s, 1),
        "posts_in_timed_span": round(timed_posts),
        # end to end as a user sees it: spawn of the job -> every output stored
        "posts_per_s_with_startup": round(n / max(t_complete - t_spawn, 1e-9), 1),
        "sink_rows": int(rows),
        "sink_rows_per_s": round(rows / max(t_complete - (t_first_insert or t_first), 1e-9), 1),
        "sink_drain_s": round(max(t_complete - t_last_assess, 0.0), 2),
        "scored_posts": ends[topics["scored"]],
        "assessments": ends[topics["assessments"]],
        "alerts": ends[topics["alerts"]],
        "dead_letters": ends[topics["dlq"]],
        "logs": str(pipeline.run_dir / "logs"),
    }


def run(wb: Workbench, n: int, progress=say, parallelism: int = 1, python_worker: str = "loopback") -> dict:
    """The whole throughput phase; returns the flat results."""
    pool = bench_posts.load_pool(wb.cache_dir, WATCHLIST)
    base_ms = bench_posts.base_time_ms(pool, n, int(time.time() * 1000))
    progress(f"throughput: {n:,} posts from a pool of {len(pool):,} ({-(-n // len(pool))} copies)")
    topics = wb.make_topics("tp", RAW_PARTITIONS)
    database = wb.make_database("tp")
    out = {"posts": n, "job_parallelism": parallelism, "job_python_worker": python_worker}
    out.update(load_posts(wb.settings, topics["raw"], pool, n, base_ms))
    progress(f"throughput: loaded into {topics['raw']} at {out['load_posts_per_s']:,.0f} posts/s; "
             "timing the plain-Python loop")
    reference: list = []
    out.update(plain_loop(pool, n, base_ms, keep=reference))
    progress(f"throughput: plain loop {out['plain_loop_posts_per_s']:,.0f} posts/s; starting job + sink")
    out.update(run_pipeline(wb, topics, database, n, timeout_s=600 + n / 500, parallelism=parallelism,
                            python_worker=python_worker))
    out["ratio_to_plain_loop"] = round(out["posts_per_s"] / out["plain_loop_posts_per_s"], 3)
    # the whole machine's CPU per post in units of the plain loop's: independent of how fast
    # (or how shared) the machine is, so runs on different machines compare
    loop_us = 1e6 / out["plain_loop_cpu_posts_per_s"]
    out["cpu_per_post_in_plain_loops"] = round(out["cpu_us_per_post_total"] / loop_us, 2)
    out["cpu_per_post_in_plain_loops_by_component"] = {
        name: round(us / loop_us, 2) for name, us in out["cpu_us_per_post"].items()}
    got = [json.loads(v) for v in read_topic(wb.settings, topics["assessments"], out["assessments"])]
    out.update(compare_assessments(reference, got))
    out["job_matches_plain_loop"] = (out["scored_posts"] == out["plain_loop_matched"]
                                     and out["assessments_closed"] == out["plain_loop_assessments"]
                                     and out["assessments_differing"] == 0)
    if not out["job_matches_plain_loop"]:
        progress("throughput: ERROR the job and the plain loop disagree: "
                 + json.dumps({k: out[k] for k in ("scored_posts", "plain_loop_matched", "assessments_closed",
                                                    "plain_loop_assessments", "assessments_differing",
                                                    "assessments_difference_examples")}, ensure_ascii=False))
    return out


COMPARED = ("posts", "negative_ratio", "influence", "severity", "volatility", "risk_score", "level")


def compare_assessments(reference, got: list[dict], tolerance: float = 1e-9) -> dict:
    """The job's closed-window assessments against the plain loop's, field by field
    (provisional ones, from early firing, are not results of closed windows)."""
    closed = [a for a in got if not a.get("provisional")]
    want = {(a.brand, a.category, a.to_dict()["window_end"]): a.to_dict() for a in reference}
    have: dict = {}
    duplicates = 0
    for a in closed:
        key = (a.get("brand"), a.get("category"), a.get("window_end"))
        duplicates += key in have
        have[key] = a
    differing = []
    for key in sorted(set(want) | set(have), key=str):
        a, b = want.get(key), have.get(key)
        if a is None or b is None:
            differing.append({"window": list(key), "missing_in": "job" if b is None else "plain loop"})
            continue
        for name in COMPARED:
            x, y = a.get(name), b.get(name)
            same = (abs(float(x) - float(y)) <= tolerance) if isinstance(x, float) and isinstance(y, (int, float)) else x == y
            if not same:
                differing.append({"window": list(key), "field": name, "plain_loop": x, "job": y})
                break
    return {"assessments_closed": len(closed), "assessments_provisional": len(got) - len(closed),
            "assessments_duplicate": duplicates, "assessments_differing": len(differing) + duplicates,
            "assessments_difference_examples": differing[:5]}


def read_topic(settings, topic: str, expect: int, timeout_s: float = 120.0) -> list[bytes]:
    """Every record of a (finished) topic, from the start."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=5000,
                             client_id="yuqing-bench-compare", max_partition_fetch_bytes=8 << 20)
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < expect and time.monotonic() < deadline:
            values.extend(record.value for record in consumer)
    finally:
        consumer.close()
    return values
