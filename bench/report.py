"""Targets, percentiles and the printed table: pure functions over the results dict."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

GIB_MIB = 1024.0


@dataclass(frozen=True)
class Target:
    key: str  # top-level key of results.json
    label: str
    op: str  # ">=" or "<="
    value: float
    unit: str

    def check(self, measured: float | None) -> bool | None:
        if measured is None:
            return None
        return measured >= self.value if self.op == ">=" else measured <= self.value


TARGETS = (
    Target("posts_per_s", "sustained posts/s, Kafka -> job -> ClickHouse", ">=", 10_000, "posts/s"),
    Target("live_post_to_page_p95_s", "live crisis: tipping post -> page, p95", "<=", 10.0, "s"),
    Target("window_close_to_page_p95_s", "window close -> page, p95", "<=", 5.0, "s"),
    Target("stack_peak_rss_mib", "peak RSS, all of `yuqing run` + services", "<=", 4 * GIB_MIB, "MiB"),
)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in 0..100."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def seconds_summary(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    """`{prefix}_p50_s`, `_p95_s`, `_p99_s` and `_max_s` of timed trials, to the millisecond:
    the figures every timed phase reports the same way."""
    summary = {f"{prefix}_p{q}_s": round(percentile(seconds, q), 3) for q in (50, 95, 99)}
    summary[f"{prefix}_max_s"] = round(max(seconds), 3)
    return summary


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip()


def target_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for t in TARGETS:
        measured = results.get(t.key)
        ok = t.check(measured)
        rows.append({"key": t.key, "what": t.label, "target": f"{t.op} {fmt(float(t.value), t.unit)}",
                     "measured": fmt(measured, t.unit), "pass": ok})
    return rows


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain aligned text table (CJK-free content, so len() is the display width)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]])


def render(results: dict[str, Any]) -> str:
    """Targets first (pass/fail), then every other measured figure."""
    out = []
    trows = [[r["what"], r["target"], r["measured"],
              {True: "PASS", False: "FAIL", None: "not run"}[r["pass"]]] for r in target_rows(results)]
    out.append(table(trows, ["target", "wanted", "measured", "result"]))
    detail = []
    machine = results.get("machine") or {}
    if results.get("started_at"):
        detail.append(["run started", str(results["started_at"])])
    if machine.get("cpu_model"):
        detail.append(["machine", f"{machine.get('cpus')} x {machine['cpu_model']}"
                       + (f" ({float(machine['cpu_mhz']):,.0f} MHz)" if machine.get("cpu_mhz") else "")])
    for key, label, unit in DETAIL:
        if results.get(key) is not None:
            detail.append([label, fmt(results[key], unit)])
    for name, us in sorted((results.get("cpu_us_per_post") or {}).items(), key=lambda kv: -kv[1]):
        if us >= 0.05:  # helpers of a process tree (a shell, tee) that used no CPU stay in the JSON only
            detail.append([f"CPU per post, {name}", fmt(us, "µs")])
    for name, mib in sorted((results.get("peak_rss_mib") or {}).items()):
        detail.append([f"peak RSS {name}", fmt(mib, "MiB")])
    if detail:
        out.append("")
        out.append(table(detail, ["figure", "value"]))
    return "\n".join(out)


DETAIL = (
    ("posts", "posts generated (throughput run)", ""),
    ("job_parallelism", "throughput job: parallelism", ""),
    ("job_python_worker", "throughput job: Python worker", ""),
    ("load_posts_per_s", "load into posts.raw (not a target)", "posts/s"),
    ("job_startup_s", "job start-up: spawn -> first scored post", "s"),
    ("job_posts_per_s", "job: first output -> last assessment", "posts/s"),
    ("job_scoring_s", "job: first -> last scored post", "s"),
    ("job_window_tail_s", "job: last scored post -> last assessment", "s"),
    ("posts_per_s", "Kafka -> job -> ClickHouse, steady (posts inside the timed span)", "posts/s"),
    ("posts_per_s_with_startup", "Kafka -> job -> ClickHouse, job spawn -> all stored", "posts/s"),
    ("plain_loop_posts_per_s", "plain-Python scoring loop, same posts", "posts/s"),
    ("plain_loop_cpu_posts_per_s", "plain loop by CPU time (one core)", "posts/s"),
    ("ratio_to_plain_loop", "pipeline / plain loop", "x"),
    ("cpu_us_per_post_total", "CPU per post, whole machine (first output -> all stored)", "µs"),
    ("cpu_cores_busy", "cores busy meanwhile (of 2)", ""),
    ("cpu_bound_posts_per_s", "posts/s at that CPU per post if every core were busy", "posts/s"),
    ("cpu_per_post_in_plain_loops", "CPU per post / plain loop's CPU per post", "x"),
    ("sink_rows_per_s", "ClickHouse sink rows/s (all tables)", "rows/s"),
    ("sink_drain_s", "sink backlog after the job's last assessment", "s"),
    ("scored_posts", "scored posts stored", ""),
    ("assessments", "assessments stored", ""),
    ("assessments_differing", "assessments differing from the plain loop", ""),
    ("job_matches_plain_loop", "job == plain loop (posts, windows, every field)", ""),
    ("live_post_to_page_trials", "live crisis trials", ""),
    ("live_post_to_page_p50_s", "live crisis: tipping post -> page p50", "s"),
    ("live_post_to_page_p95_s", "live crisis: tipping post -> page p95", "s"),
    ("live_post_to_page_p99_s", "live crisis: tipping post -> page p99", "s"),
    ("live_post_to_page_max_s", "live crisis: tipping post -> page max", "s"),
    ("window_close_to_page_trials", "window-close trials", ""),
    ("window_close_to_page_p50_s", "window close -> page p50", "s"),
    ("window_close_to_page_p95_s", "window close -> page p95", "s"),
    ("window_close_to_page_p99_s", "window close -> page p99", "s"),
    ("window_close_to_page_max_s", "window close -> page max", "s"),
    ("stack_peak_rss_mib", "whole stack: sum of per-process peaks", "MiB"),
    ("stack_simultaneous_rss_mib", "whole stack: largest sampled RSS at one moment", "MiB"),
    ("phases_peak_rss_mib", "bench phases: services + the larger phase", "MiB"),
    ("floor_identity_posts_per_s", "floor: Kafka -> identity pandas UDF -> Kafka (no Yuqing code)", "posts/s"),
    ("floor_identity_cpu_us_per_post", "floor: identity UDF, CPU per post", "µs"),
    ("floor_scoring_posts_per_s", "floor: the scoring UDF -> Kafka, no windows", "posts/s"),
    ("floor_scoring_cpu_us_per_post", "floor: scoring UDF without windows, CPU per post", "µs"),
    ("sentiment_texts_per_s", "sentiment model, texts/s per core", "texts/s"),
    ("snownlp_texts_per_s", "snownlp, texts/s per core", "texts/s"),
    ("sentiment_speedup", "our model / snownlp", "x"),
    ("matcher_posts_per_s", "watchlist matcher, posts/s per core", "posts/s"),
)
