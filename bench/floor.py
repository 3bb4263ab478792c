"""Floor: what the framework costs without Yuqing's work, on the same posts and settings.

Two bounded PyFlink jobs read the throughput phase's kind of raw topic with the scoring
job's own source, settings (`scoring.job.create_environments`) and Kafka sink:

* `identity`: a pandas UDF that returns each post's bytes unchanged, written to a topic.
  Kafka in, Arrow to Python and back, Kafka out: the least any PyFlink job with a
  vectorised Python step pays per post.
* `scoring`: the real scoring UDF (`yq_score`), its scored posts and dead letters to
  Kafka, but no windows and no window scorer: the gap to the full job is what the
  windows cost.

Either is compared with the full pipeline's figures (throughput phase): if the floor
alone could not carry a target, no change to Yuqing's code would meet it.

    python -m bench.floor --variant identity|scoring --raw TOPIC --out TOPIC --dlq TOPIC
        --checkpoint-dir DIR        (the job side; the bench starts it)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import posts as bench_posts
from bench.harness import Workbench, say
from bench.throughput import RAW_PARTITIONS, WATCHLIST, OffsetWatch, load_posts, time_outputs

VARIANTS = ("identity", "scoring")


def run_variant(wb: Workbench, variant: str, raw: str, topics: dict[str, str], n: int, timeout_s: float) -> dict:
    """Start one floor job, time it from its first output to its last; CPU in between."""
    from bench.resources import CpuMeter
    from yuqing.pipeline import child_env, last_line
    from yuqing.stack.process import spawn, terminate

    run_dir = wb.run_dir / "floor"
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = run_dir / "logs" / f"{variant}.log"
    command = [sys.executable, "-m", "bench.floor", "--variant", variant, "--raw", raw,
               "--out", topics["scored"], "--dlq", topics["dlq"],
               "--checkpoint-dir", str(run_dir / "checkpoints" / variant)]
    env = child_env({"PYTHONUNBUFFERED": "1"})
    watch = OffsetWatch(wb.settings, [topics["scored"], topics["dlq"]])
    from core.config import REPO_ROOT

    record = spawn(command, log, env=env, cwd=REPO_ROOT)  # bench is not an installed package
    cpu = CpuMeter(lambda: {"job": record.pid} if record.alive() else {})

    def check(elapsed_s: float, started: bool) -> None:
        if elapsed_s > timeout_s:
            raise RuntimeError(f"floor {variant}: not done within {timeout_s:.0f} s; see {log}")

    try:
        span = time_outputs(watch, cpu, record.alive, [topics["scored"], topics["dlq"]], check)
    finally:
        watch.close()
        terminate(record, timeout_s=20)
    t_first, t_last, first_out, last_out = span.t_first, span.t_last, span.first_out, span.last_out
    if t_first is None or t_last is None or t_last <= t_first:
        raise RuntimeError(f"floor {variant}: the job wrote nothing; {log}: {last_line(log)}")
    seconds = t_last - t_first
    cpu_s = cpu.between("first", "last")
    # the posts done between the two marks: these jobs run for seconds, so the share already
    # out at the first mark (the first bundle or more) is not negligible; outputs per post
    # are constant (1, or 1 per matched or rejected post)
    posts = max(n * (1 - first_out / last_out), 1.0)
    return {
        f"floor_{variant}_posts_per_s": round(posts / seconds, 1),
        f"floor_{variant}_cpu_us_per_post": round(1e6 * cpu_s.get("job", 0.0) / posts, 1),
        f"floor_{variant}_cpu_us_per_post_by_process": {
            name.split("/", 1)[1]: round(1e6 * s / posts, 1) for name, s in cpu_s.items()
            if name.startswith("job/") and s > 0},
        f"floor_{variant}_s": round(seconds, 2),
        f"floor_{variant}_cores_busy": round(cpu_s.get("job", 0.0) / seconds, 2),
        f"floor_{variant}_records_out": last_out,
    }


def run(wb: Workbench, n: int, progress=say) -> dict:
    pool = bench_posts.load_pool(wb.cache_dir, WATCHLIST)
    base_ms = bench_posts.base_time_ms(pool, n, int(time.time() * 1000))
    topics = wb.make_topics("floor", RAW_PARTITIONS)
    progress(f"floor: {n:,} posts into {topics['raw']}")
    out: dict = {}
    load = load_posts(wb.settings, topics["raw"], pool, n, base_ms)
    for variant in VARIANTS:
        # each variant writes to topics of its own (the first set's raw topic is the input)
        outputs = topics if variant == VARIANTS[0] else wb.make_topics(f"floor-{variant}", 1)
        progress(f"floor: {variant} job")
        result = run_variant(wb, variant, topics["raw"], outputs, n, timeout_s=300 + n / 1000)
        progress(f"floor: {variant} {result[f'floor_{variant}_posts_per_s']:,.0f} posts/s, "
                 f"{result[f'floor_{variant}_cpu_us_per_post']:.1f} µs of CPU per post")
        out.update(result)
    out["floor_posts"] = load["posts"]
    return out


# ------------------------------------------------------------------ the job side

def build_job(variant: str, raw: str, out: str, dlq: str, checkpoint_dir: Path):
    """The floor job on the scoring job's own environment, source and sink definitions."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    from scoring.job import JobConfig, create_environments, create_scored_views, kafka_sink_ddl, kafka_source_ddl
    from core.config import load_settings

    settings = load_settings()
    cfg = JobConfig.build(settings, WATCHLIST, topic=raw, metrics_port=0, udf_metrics_port=0)
    _, t_env = create_environments(settings, cfg, checkpoint_dir=checkpoint_dir)
    t_env.execute_sql(kafka_source_ddl(settings, cfg, f"bench-floor-{out}", bounded=True))
    t_env.execute_sql(kafka_sink_ddl("floor_out", out, settings))
    statements = t_env.create_statement_set()
    if variant == "identity":
        t_env.create_temporary_function("floor_identity", udf(
            lambda value, partition, offset, ts: value,
            input_types=[DataTypes.BYTES(), DataTypes.INT(), DataTypes.BIGINT(), DataTypes.TIMESTAMP_LTZ(3)],
            result_type=DataTypes.BYTES(), func_type="pandas", deterministic=False))
        statements.add_insert_sql("INSERT INTO floor_out SELECT floor_identity(`raw`, kpartition, koffset, ts) "
                                  "FROM posts_raw")
        return statements
    t_env.execute_sql(kafka_sink_ddl("floor_dlq", dlq, settings))
    create_scored_views(t_env, cfg, base64_input=False)  # the job's own, up to its windows
    statements.add_insert_sql("INSERT INTO floor_dlq SELECT payload FROM scored_parts WHERE kind = 'E'")
    statements.add_insert_sql("INSERT INTO floor_out SELECT payload FROM scored_parts WHERE kind = 'S'")
    return statements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dlq", required=True)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    build_job(args.variant, args.raw, args.out, args.dlq, args.checkpoint_dir.resolve()).execute().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
