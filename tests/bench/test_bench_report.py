"""bench.report, bench.harness.metric_sum and the command line: pure logic."""
from __future__ import annotations

import numpy as np
import pytest

from bench import report
from bench.__main__ import parse_args
from bench.harness import metric_sum


@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy(q):
    values = [3.2, 1.0, 2.5, 9.0, 4.4, 1.7, 2.2]
    assert report.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        report.percentile([], 50)


def test_seconds_summary_names_and_rounds_the_percentiles_and_the_max():
    values = [0.41234, 2.0, 1.25, 7.77777, 3.3]
    got = report.seconds_summary("window_close_to_page", values)
    assert list(got) == ["window_close_to_page_p50_s", "window_close_to_page_p95_s",
                         "window_close_to_page_p99_s", "window_close_to_page_max_s"]
    for q in (50, 95, 99):
        assert got[f"window_close_to_page_p{q}_s"] == pytest.approx(float(np.percentile(values, q)), abs=5e-4)
    assert got["window_close_to_page_max_s"] == 7.778


def test_targets_pass_fail_and_not_run():
    rows = {r["key"]: r for r in report.target_rows({"posts_per_s": 12_000.0, "window_close_to_page_p95_s": 5.5, "live_post_to_page_p95_s": 9.0})}
    assert rows["posts_per_s"]["pass"] is True
    assert rows["window_close_to_page_p95_s"]["pass"] is False
    assert rows["live_post_to_page_p95_s"]["pass"] is True
    assert rows["stack_peak_rss_mib"]["pass"] is None
    text = report.render({"posts_per_s": 9_999.0, "stack_peak_rss_mib": 3000.0, "peak_rss_mib": {"kafka": 500.0}})
    assert "FAIL" in text and "PASS" in text and "not run" in text and "peak RSS kafka" in text


def test_metric_sum_reads_prometheus_text():
    text = (b'# HELP yuqing_clickhouse_rows_inserted_total rows\n'
            b'yuqing_clickhouse_rows_inserted_total{table="posts"} 120.0\n'
            b'yuqing_clickhouse_rows_inserted_total{table="alerts"} 3.0\n'
            b'yuqing_clickhouse_rows_inserted_total_created{table="posts"} 1.7e9\n')
    assert metric_sum(text, "yuqing_clickhouse_rows_inserted_total") == 123.0
    assert metric_sum(text, "yuqing_clickhouse_rows_inserted_total", {"table": "posts"}) == 120.0
    assert metric_sum(None, "x") == 0.0


def test_command_line():
    args = parse_args(["--only", "resources", "--posts", "5000"])
    assert args.phases == {"resources", "throughput", "latency", "live"} and args.posts == 5000
    assert {"throughput", "latency", "live", "resources", "floor", "sentiment"} <= parse_args([]).phases
    assert parse_args(["--only", "live", "--feed-s", "10"]).feed_s == 10.0
    assert parse_args(["--only", "floor"]).phases == {"floor"}
    job = parse_args(["--parallelism", "2", "--python-worker", "process"])
    assert (job.parallelism, job.python_worker) == (2, "process")
    assert (parse_args([]).parallelism, parse_args([]).python_worker) == (1, "loopback")
    for bad in (["--only", "speed"], ["--posts", "0"], ["--burst", "10"], ["--parallelism", "0"],
                ["--python-worker", "thread"], ["--feed-s", "1"]):
        with pytest.raises(SystemExit) as exc:
            parse_args(bad)
        assert exc.value.code == 2


def test_cpu_lines_skip_processes_that_used_no_cpu():
    from bench.report import render

    text = render({"cpu_us_per_post": {"job": 362.0, "job/java": 186.0, "job/bash": 0.0, "sink": 86.1}})
    assert "CPU per post, job/java" in text and "CPU per post, sink" in text
    assert "job/bash" not in text
    assert text.index("CPU per post, job ") < text.index("CPU per post, sink")  # largest first


def test_machine_info_reads_the_first_processor(tmp_path):
    from bench.__main__ import machine_info

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 167\nmodel name\t: Test CPU\n"
                       "cpu MHz\t\t: 2599.996\n\nprocessor\t: 1\nmodel name\t: Other CPU\n")
    info = machine_info(cpuinfo)
    assert (info["cpu_model"], info["cpu_family"], info["cpu_model_number"], info["cpu_mhz"]) == (
        "Test CPU", "6", "167", "2599.996")
    assert "machine" in report.render({"machine": info}) and "Test CPU (2,600 MHz)" in report.render({"machine": info})
    missing = machine_info(tmp_path / "absent")  # not Linux: the rest still recorded
    assert "cpu_model" not in missing and missing["cpus"] >= 1


def test_compare_assessments_catches_a_changed_field_a_missing_window_and_ignores_provisional():
    from bench.throughput import compare_assessments
    from scoring.risk import Assessment

    def made(end_ms: int, score: float, level: str = "low") -> Assessment:
        return Assessment(brand="快送", category="privacy", window_start_ms=end_ms - 600_000, window_end_ms=end_ms,
                          posts=12, negative_ratio=0.5, influence=0.2, severity=0.4, volatility=0.1,
                          risk_score=score, level=level, raw_level=level, first_detected_ms=None)

    reference = [made(1_800_000_000_000, 0.31), made(1_800_000_060_000, 0.33)]
    same = [a.to_dict() for a in reference]
    provisional = dict(made(1_800_000_120_000, 0.7, "high").to_dict(), provisional=True)
    ok = compare_assessments(reference, same + [provisional])
    assert ok["assessments_differing"] == 0 and ok["assessments_closed"] == 2 and ok["assessments_provisional"] == 1
    changed = [same[0], dict(same[1], risk_score=0.34)]
    bad = compare_assessments(reference, changed)
    assert bad["assessments_differing"] == 1
    assert bad["assessments_difference_examples"][0]["field"] == "risk_score"
    assert compare_assessments(reference, same[:1])["assessments_differing"] == 1
    assert compare_assessments(reference, same + same[1:])["assessments_differing"] == 1  # a duplicate
